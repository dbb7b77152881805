//! The upload's duplicate check: exact, and in memory bounded by a fraction of one upload
//! whatever the size of the campaign.
//!
//! While an upload streams in, every recipient it stages is also appended (its cid and its
//! ordinal in the upload) to one of [`PARTS`] spill files, chosen by a keyed hash of the cid.
//! When the body has ended, [`settle`] takes the partitions one at a time: sorts it, marks each
//! cid's later occurrences as duplicates, and looks the first ones up in the draft's
//! [`DraftIndex`] (the cids of its committed uploads, as sorted runs split the same way). What
//! is left is the upload's new cids, written as a new run. Runs of similar size are merged, so
//! a draft of n recipients built by many uploads holds O(log n) runs and each cid is rewritten
//! O(log n) times; a small upload to a large draft looks its cids up by binary search in the
//! runs instead of reading them.
//!
//! Partitions are chosen by a seeded hash (foldhash, its seed drawn for each process), so no
//! shape of input (sorted ids, shared prefixes) fills one partition: settling holds about a
//! 64th of the upload, at a fraction of SipHash's cost.
//! The files live in a directory of this process, locked while it runs; directories left by
//! processes that stopped are removed by the next one. An index describes the draft only as this
//! process last committed it: the caller keeps it beside the draft's chunk count and rebuilds it
//! from the store when the count moved (another daemon's upload) or the index is gone (restart,
//! eviction).

use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Partitions of a spill and of each run.
pub const PARTS: usize = 64;
/// Bytes of one spilled entry: the cid and its ordinal in the upload.
const ENTRY: usize = 20;
/// Bytes of one run entry: a cid.
const CID: usize = 16;
/// Write buffer of each spill partition.
const PART_BUFFER: usize = 16 * 1024;
/// Entries a spill holds in memory (1.5 MB) before it goes to disk: a small upload writes no
/// spill file.
const HELD_MAX: usize = 64 * 1024;
/// A run partition up to this many times longer than the cids looked up in it is read through;
/// a longer one is binary-searched, one read per step.
const SCAN_RATIO: u64 = 16;

/// The directory of this process's spill files, and the partitioning key.
pub struct SpillRoot {
    parent: PathBuf,
    key: foldhash::quality::RandomState,
    opened: Mutex<Option<Arc<OwnDir>>>,
    next_name: AtomicU64,
}

/// This process's directory under the parent, locked while the process runs.
struct OwnDir {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl SpillRoot {
    /// Spills under `parent` (created on first use).
    pub fn new(parent: impl Into<PathBuf>) -> SpillRoot {
        SpillRoot {
            parent: parent.into(),
            key: foldhash::quality::RandomState::default(),
            opened: Mutex::new(None),
            next_name: AtomicU64::new(0),
        }
    }

    /// The parent directory, for error messages.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// The partition of `cid`.
    fn part_of(&self, cid: u128) -> usize {
        (self.key.hash_one(cid) >> 58) as usize
    }

    /// A new, empty directory of this process for one spill.
    fn fresh_dir(&self, what: &str) -> io::Result<PathBuf> {
        let dir = self.fresh_file(what)?;
        fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// A new name in this process's directory.
    fn fresh_file(&self, what: &str) -> io::Result<PathBuf> {
        let own = self.own_dir()?;
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        Ok(own.path.join(format!("{what}-{n}")))
    }

    /// Opens this process's directory on first use, removing those of stopped processes. Its
    /// lock file (`NAME.lock` beside it) is made and locked before the directory exists, so a
    /// directory whose lock file is missing or free belongs to nobody.
    fn own_dir(&self) -> io::Result<Arc<OwnDir>> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(own) = opened.as_ref() {
            return Ok(Arc::clone(own));
        }
        fs::create_dir_all(&self.parent)?;
        remove_abandoned(&self.parent);
        let name = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        let lock_path = self.parent.join(format!("{name}.lock"));
        let lock = File::create(&lock_path)?;
        lock.try_lock().map_err(|e| io::Error::other(format!("cannot lock {}: {e}", lock_path.display())))?;
        let path = self.parent.join(name);
        fs::create_dir(&path)?;
        let own = Arc::new(OwnDir { path, lock_path, _lock: lock });
        *opened = Some(Arc::clone(&own));
        Ok(own)
    }
}

impl Drop for OwnDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// Removes the directories under `parent` whose process stopped: their lock file is free or
/// gone.
fn remove_abandoned(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let lock_path = dir.with_extension("lock");
        let held = match File::open(&lock_path) {
            Ok(lock) => lock.try_lock().is_err(),
            Err(_) => false,
        };
        if held {
            continue;
        }
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an abandoned upload spill");
        }
        let _ = fs::remove_file(&lock_path);
    }
}

/// A spilled recipient: its cid and its ordinal in the upload. On disk, [`ENTRY`] bytes:
/// the cid, then the ordinal, both big-endian.
///
/// The cid is held as two halves so that an entry takes 24 bytes, not the 32 of a `u128`'s
/// alignment: a partition of a 10M upload is sorted in memory. Ordered by cid, then ordinal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    cid_high: u64,
    cid_low: u64,
    ordinal: u32,
}

impl Entry {
    fn new(cid: u128, ordinal: u32) -> Entry {
        Entry { cid_high: (cid >> 64) as u64, cid_low: cid as u64, ordinal }
    }

    fn cid(&self) -> u128 {
        (u128::from(self.cid_high) << 64) | u128::from(self.cid_low)
    }

    fn to_bytes(self) -> [u8; ENTRY] {
        let mut b = [0u8; ENTRY];
        b[..CID].copy_from_slice(&self.cid().to_be_bytes());
        b[CID..].copy_from_slice(&self.ordinal.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Entry {
        let (cid, ordinal) = b.split_at(CID);
        let mut c = [0u8; CID];
        c.copy_from_slice(cid);
        let mut o = [0u8; 4];
        o.copy_from_slice(&ordinal[..4]);
        Entry::new(u128::from_be_bytes(c), u32::from_be_bytes(o))
    }
}

/// One upload's cids: held in memory while the upload is small, partitioned on disk once it
/// passes [`HELD_MAX`]. Its files go when it is dropped.
pub struct Spill {
    root: Arc<SpillRoot>,
    held: Vec<Entry>,
    files: Option<SpillFiles>,
    written: u32,
}

/// The partition files of a spill that outgrew memory.
struct SpillFiles {
    dir: PathBuf,
    parts: Vec<BufWriter<File>>,
}

impl SpillFiles {
    fn create(root: &SpillRoot) -> io::Result<SpillFiles> {
        let dir = root.fresh_dir("upload")?;
        let parts = (0..PARTS)
            .map(|p| Ok(BufWriter::with_capacity(PART_BUFFER, File::create(dir.join(format!("{p}")))?)))
            .collect::<io::Result<_>>();
        match parts {
            Ok(parts) => Ok(SpillFiles { dir, parts }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Reads partition `p` back into `into` (the writers must have been flushed), a block at
    /// a time.
    fn read_part(&self, p: usize, into: &mut Vec<Entry>) -> io::Result<()> {
        const BLOCK: usize = 4096;
        let mut file = File::open(self.dir.join(format!("{p}")))?;
        let mut left = file.metadata()?.len() as usize / ENTRY;
        into.reserve(left);
        let mut block = vec![0u8; BLOCK * ENTRY];
        while left > 0 {
            let bytes = &mut block[..left.min(BLOCK) * ENTRY];
            file.read_exact(bytes)?;
            into.extend(bytes.chunks_exact(ENTRY).map(Entry::from_bytes));
            left -= bytes.len() / ENTRY;
        }
        Ok(())
    }
}

impl Drop for SpillFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Spill {
    /// An empty spill under `root`.
    pub fn new(root: &Arc<SpillRoot>) -> Spill {
        Spill { root: Arc::clone(root), held: Vec::new(), files: None, written: 0 }
    }

    /// Notes `cid` as the next recipient; answers its ordinal in the upload.
    pub fn push(&mut self, cid: &[u8; CID]) -> io::Result<u32> {
        let ordinal = self.written;
        let entry = Entry::new(u128::from_be_bytes(*cid), ordinal);
        match &mut self.files {
            Some(files) => files.parts[self.root.part_of(entry.cid())].write_all(&entry.to_bytes())?,
            None if self.held.len() < HELD_MAX => self.held.push(entry),
            None => {
                let mut files = SpillFiles::create(&self.root)?;
                for e in std::mem::take(&mut self.held).iter().chain([&entry]) {
                    files.parts[self.root.part_of(e.cid())].write_all(&e.to_bytes())?;
                }
                self.files = Some(files);
            }
        }
        self.written =
            ordinal.checked_add(1).ok_or_else(|| io::Error::other("an upload cannot hold more than 2³² recipients"))?;
        Ok(ordinal)
    }

    /// The spill, ready to be read back a partition at a time.
    fn partitions(mut self) -> io::Result<Partitions> {
        if let Some(files) = &mut self.files {
            for part in &mut files.parts {
                part.flush()?;
            }
        }
        let root = Arc::clone(&self.root);
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_cached_key(|e| root.part_of(e.cid()));
        Ok(Partitions { held: held.into_iter().peekable(), spill: self })
    }
}

/// A spill's partitions, read back in order into one buffer the caller keeps: a partition of a
/// large upload is megabytes, and a fresh one each time would be mapped and faulted in anew.
struct Partitions {
    spill: Spill,
    /// The held entries, ordered by partition.
    held: std::iter::Peekable<std::vec::IntoIter<Entry>>,
}

impl Partitions {
    /// Replaces `into`'s entries with partition `p`'s, unsorted; `p` must not go back.
    fn read(&mut self, p: usize, into: &mut Vec<Entry>) -> io::Result<()> {
        into.clear();
        if let Some(files) = &self.spill.files {
            return files.read_part(p, into);
        }
        let root = &self.spill.root;
        while let Some(e) = self.held.next_if(|e| root.part_of(e.cid()) == p) {
            into.push(e);
        }
        Ok(())
    }
}

/// One sorted run of cids: one file, partition after partition. It goes when dropped.
struct Run {
    path: PathBuf,
    /// Where each partition starts, in cids, and where the last ends.
    bounds: Vec<u64>,
}

impl Run {
    fn total(&self) -> u64 {
        self.bounds.last().copied().unwrap_or(0)
    }

    /// The first cid of partition `p` and how many it holds.
    fn part(&self, p: usize) -> (u64, u64) {
        (self.bounds[p], self.bounds[p + 1] - self.bounds[p])
    }

    /// Reads partition `p` in order.
    fn reader(&self, p: usize) -> io::Result<CidReader> {
        let (start, len) = self.part(p);
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(start * CID as u64))?;
        Ok(CidReader { inner: BufReader::with_capacity(64 * 1024, file).take(len * CID as u64) })
    }

    /// Keeps the `sorted` cids of partition `p` that this run does not hold, handing the
    /// ordinals of the others to `held`.
    fn keep_absent(&self, p: usize, sorted: &mut Vec<Entry>, held: &mut impl FnMut(u32)) -> io::Result<()> {
        let (start, len) = self.part(p);
        if len == 0 || sorted.is_empty() {
            return Ok(());
        }
        if len <= SCAN_RATIO * sorted.len() as u64 {
            let mut cids = self.reader(p)?;
            let mut next = cids.next();
            sorted.retain(|e| {
                let cid = e.cid();
                while matches!(next, Ok(Some(c)) if c < cid) {
                    next = cids.next();
                }
                let found = matches!(next, Ok(Some(c)) if c == cid);
                if found {
                    held(e.ordinal);
                }
                !found
            });
            return next.map(drop);
        }
        let file = File::open(&self.path)?;
        let mut failure = None;
        sorted.retain(|e| match holds(&file, start, len, e.cid()) {
            Ok(true) => {
                held(e.ordinal);
                false
            }
            Ok(false) => true,
            Err(e) => {
                failure = Some(e);
                true
            }
        });
        failure.map_or(Ok(()), Err)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Binary search for `cid` among the `len` sorted cids of a file from cid `start` on.
fn holds(file: &File, start: u64, len: u64, cid: u128) -> io::Result<bool> {
    let (mut lo, mut hi) = (0u64, len);
    let mut buf = [0u8; CID];
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        file.read_exact_at(&mut buf, (start + mid) * CID as u64)?;
        match u128::from_be_bytes(buf).cmp(&cid) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(true),
        }
    }
    Ok(false)
}

/// Reads one partition of a run one cid at a time.
struct CidReader {
    inner: io::Take<BufReader<File>>,
}

impl CidReader {
    fn next(&mut self) -> io::Result<Option<u128>> {
        let mut buf = [0u8; CID];
        match self.inner.read_exact(&mut buf) {
            Ok(()) => Ok(Some(u128::from_be_bytes(buf))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Writes one run, partition by partition.
struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    bounds: Vec<u64>,
}

impl RunWriter {
    fn new(root: &SpillRoot) -> io::Result<RunWriter> {
        let path = root.fresh_file("run")?;
        let out = BufWriter::with_capacity(64 * 1024, File::create(&path)?);
        let mut bounds = Vec::with_capacity(PARTS + 1);
        bounds.push(0);
        Ok(RunWriter { path, out, bounds })
    }

    /// Writes the next partition from sorted cids.
    fn part(&mut self, cids: impl Iterator<Item = u128>) -> io::Result<()> {
        let mut end = self.bounds.last().copied().unwrap_or(0);
        for cid in cids {
            self.out.write_all(&cid.to_be_bytes())?;
            end += 1;
        }
        self.bounds.push(end);
        Ok(())
    }

    fn finish(mut self) -> io::Result<Run> {
        self.out.flush()?;
        Ok(Run { path: self.path, bounds: self.bounds })
    }
}

/// The cids of a draft's committed uploads, as sorted runs.
#[derive(Default)]
pub struct DraftIndex {
    runs: Vec<Run>,
}

impl DraftIndex {
    /// Cids held.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.runs.iter().map(Run::total).sum()
    }

    /// Adds a committed upload's new cids, then merges the newest runs while the last is at
    /// least half the size of the one before (so sizes at least double down the list).
    pub fn add(&mut self, root: &SpillRoot, fresh: NewCids) -> io::Result<()> {
        self.runs.push(fresh.0);
        while let [.., older, newer] = self.runs.as_slice() {
            if newer.total() * 2 < older.total() {
                break;
            }
            let merged = merge(root, older, newer)?;
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(merged);
        }
        Ok(())
    }
}

/// Merges two runs with no cid in common.
fn merge(root: &SpillRoot, a: &Run, b: &Run) -> io::Result<Run> {
    let mut out = RunWriter::new(root)?;
    for p in 0..PARTS {
        let (mut left, mut right) = (a.reader(p)?, b.reader(p)?);
        let (mut l, mut r) = (left.next()?, right.next()?);
        let mut merged = Vec::with_capacity((a.part(p).1 + b.part(p).1) as usize);
        loop {
            match (l, r) {
                (Some(x), Some(y)) if x <= y => {
                    merged.push(x);
                    l = left.next()?;
                }
                (_, Some(y)) => {
                    merged.push(y);
                    r = right.next()?;
                }
                (Some(x), None) => {
                    merged.push(x);
                    l = left.next()?;
                }
                (None, None) => break,
            }
        }
        out.part(merged.into_iter())?;
    }
    out.finish()
}

/// An upload's cids that neither it (earlier) nor the draft held: a run to add to the draft's
/// index once the upload is committed.
pub struct NewCids(Run);

/// The ordinals of an upload found to be duplicates: a bit each.
pub struct DuplicateMarks {
    bits: Vec<u64>,
    count: u64,
}

impl DuplicateMarks {
    fn new(ordinals: u32) -> DuplicateMarks {
        DuplicateMarks { bits: vec![0; (ordinals as usize).div_ceil(64)], count: 0 }
    }

    fn mark(&mut self, ordinal: u32) {
        self.bits[ordinal as usize / 64] |= 1 << (ordinal % 64);
        self.count += 1;
    }

    /// True if the recipient of `ordinal` is a duplicate.
    pub fn contains(&self, ordinal: u32) -> bool {
        let i = ordinal as usize;
        self.bits.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Duplicates marked.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first ordinal marked.
    pub fn first(&self) -> Option<u32> {
        let (i, w) = self.bits.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some((i * 64) as u32 + w.trailing_zeros())
    }
}

/// What [`settle`] found.
pub struct Settled {
    /// The upload's duplicates.
    pub duplicates: DuplicateMarks,
    /// Recipients that are new to the draft.
    pub new: u64,
    /// The new cids, for the draft's index.
    pub new_cids: NewCids,
}

/// Finds the duplicates of `spill`: later occurrences within it, and cids `index` holds.
/// Blocking: file I/O and a sort of one partition at a time.
pub fn settle(spill: Spill, index: &DraftIndex) -> io::Result<Settled> {
    let mut duplicates = DuplicateMarks::new(spill.written);
    let mut out = RunWriter::new(&spill.root)?;
    let mut parts = spill.partitions()?;
    let mut first = Vec::new();
    for p in 0..PARTS {
        parts.read(p, &mut first)?;
        // By cid, then ordinal (the field order).
        first.sort_unstable();
        // Of equal cids, the first (lowest ordinal) stays.
        first.dedup_by(|later, earlier| {
            let same = (later.cid_high, later.cid_low) == (earlier.cid_high, earlier.cid_low);
            if same {
                duplicates.mark(later.ordinal);
            }
            same
        });
        for run in &index.runs {
            run.keep_absent(p, &mut first, &mut |ord| duplicates.mark(ord))?;
        }
        out.part(first.iter().map(Entry::cid))?;
    }
    let run = out.finish()?;
    Ok(Settled { duplicates, new: run.total(), new_cids: NewCids(run) })
}

/// Builds a draft's index from its committed cids (16 bytes each, back to back), fed a page at
/// a time.
pub struct IndexBuilder {
    spill: Spill,
}

impl IndexBuilder {
    /// An empty index under `root`.
    pub fn new(root: &Arc<SpillRoot>) -> IndexBuilder {
        IndexBuilder { spill: Spill::new(root) }
    }

    /// Adds a page of cids.
    pub fn feed(&mut self, cids: &[u8]) -> io::Result<()> {
        for c in cids.chunks_exact(CID) {
            let mut cid = [0u8; CID];
            cid.copy_from_slice(c);
            self.spill.push(&cid)?;
        }
        Ok(())
    }

    /// The index (blocking: sorts the partitions).
    pub fn finish(self) -> io::Result<DraftIndex> {
        let root = Arc::clone(&self.spill.root);
        let settled = settle(self.spill, &DraftIndex::default())?;
        let mut index = DraftIndex::default();
        index.add(&root, settled.new_cids)?;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A spill root in a directory removed when the test ends.
    fn root() -> (tempfile::TempDir, Arc<SpillRoot>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = Arc::new(SpillRoot::new(dir.path().join("spill")));
        (dir, root)
    }

    fn cid(n: u64) -> [u8; 16] {
        u128::from(n).to_be_bytes() // sequential ids: the shape that would pile into one bucket
    }

    /// Settles one upload of `ids` against `index` and adds it; answers the duplicate flags.
    fn upload(root: &Arc<SpillRoot>, index: &mut DraftIndex, ids: &[u64]) -> Vec<bool> {
        let mut spill = Spill::new(root);
        for (i, n) in ids.iter().enumerate() {
            assert_eq!(spill.push(&cid(*n)).unwrap(), i as u32);
        }
        let settled = settle(spill, index).unwrap();
        let flags: Vec<bool> = (0..ids.len() as u32).map(|o| settled.duplicates.contains(o)).collect();
        assert_eq!(settled.duplicates.count(), flags.iter().filter(|d| **d).count() as u64);
        assert_eq!(settled.new + settled.duplicates.count(), ids.len() as u64);
        index.add(root, settled.new_cids).unwrap();
        flags
    }

    /// The reference: a cid is a duplicate if the draft or this upload (earlier) held it.
    fn expected(held: &mut HashSet<u64>, ids: &[u64]) -> Vec<bool> {
        ids.iter().map(|n| !held.insert(*n)).collect()
    }

    #[test]
    fn uploads_of_any_size_find_exactly_the_later_occurrences() {
        let (_dir, root) = root();
        let mut index = DraftIndex::default();
        let mut held = HashSet::new();
        let mut rng = fastrand::Rng::with_seed(15);
        // Large then small uploads: both the read-through and the binary-search lookups run,
        // and the runs are merged along the way.
        // The first spills to disk (over HELD_MAX), the others stay in memory.
        for size in [150_000usize, 5_000, 3, 40_000, 1, 700, 100, 10_000] {
            let ids: Vec<u64> = (0..size).map(|_| rng.u64(0..200_000)).collect();
            assert_eq!(upload(&root, &mut index, &ids), expected(&mut held, &ids), "upload of {size}");
            assert_eq!(index.len(), held.len() as u64);
            assert!(index.runs.len() <= 8, "runs are merged: {}", index.runs.len());
        }
    }

    #[test]
    fn an_index_built_from_the_store_finds_what_it_holds() {
        let (_dir, root) = root();
        let mut builder = IndexBuilder::new(&root);
        let committed: Vec<u8> = (0..5000u64).flat_map(cid).collect();
        builder.feed(&committed[..16 * 2000]).unwrap();
        builder.feed(&committed[16 * 2000..]).unwrap();
        let mut index = builder.finish().unwrap();
        assert_eq!(index.len(), 5000);
        let flags = upload(&root, &mut index, &[4999, 5000, 5000, 1]);
        assert_eq!(flags, [true, false, true, true]);
    }

    #[test]
    fn sequential_ids_spread_over_all_partitions() {
        let (_dir, root) = root();
        let mut per_part = [0u32; PARTS];
        for n in 0..64_000u64 {
            per_part[root.part_of(u128::from(n))] += 1;
        }
        // 1000 a partition on average; a random spread keeps every one well within ±20%.
        assert!(per_part.iter().all(|c| (800..1200).contains(c)), "{per_part:?}");
    }

    #[test]
    fn files_go_with_their_owners_and_abandoned_directories_with_the_next_process() {
        let (_dir, root) = root();
        let mut spill = Spill::new(&root);
        for n in 0..=HELD_MAX as u64 {
            spill.push(&cid(n)).unwrap();
        }
        let own = root.own_dir().unwrap().path.clone();
        assert_eq!(fs::read_dir(&own).unwrap().count(), 1, "a spill past HELD_MAX is on disk");
        drop(spill);
        assert_eq!(fs::read_dir(&own).unwrap().count(), 0, "a dropped spill leaves nothing");

        // A directory whose process stopped (nobody holds its lock) and one without a lock.
        let stopped = root.parent().join("1-stopped");
        fs::create_dir_all(stopped.join("upload-0")).unwrap();
        File::create(root.parent().join("1-stopped.lock")).unwrap();
        fs::create_dir_all(root.parent().join("2-unlocked")).unwrap();
        let next = SpillRoot::new(root.parent());
        let next_own = next.own_dir().unwrap().path.clone();
        assert!(!stopped.exists() && !root.parent().join("1-stopped.lock").exists());
        assert!(!root.parent().join("2-unlocked").exists());
        assert!(own.exists(), "a running process's directory stays");
        assert!(next_own.exists());
        drop(next);
        assert!(!next_own.exists() && !next_own.with_extension("lock").exists(), "a process cleans up after itself");
    }
}
