//! [`Store`] on an embedded sled database: reads straight from the trees, writes through the
//! single writer thread of [`super::writer`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::bindings::{parse_cid_bytes, plan_binds, split_cid_value, BindKey};
use super::chunk_trees::ChunkTrees;
use super::codec::{chunk_key, decode, parse_chunk_key, Chunks, StoredCids};
use super::deliveries::Deliveries;
use super::sled_texting::TextingTrees;
use super::writer::{CensusCell, Command, LiveMap, Reply, Trees, Writer};
use super::{
    Ack, CampaignPage, CampaignRecord, Change, Chunk, CidPage, PageQuery, Progress, Store, StoreError, StoreFuture,
    Suppression, UploadCommit,
};
use super::{BindOutcome, LeaseOutcome, PhoneBinding, StoredBinding};
use super::{ReceiptKey, TextingEntry};
use crate::domain::texting::SmsTally;
use crate::domain::{CampaignSpec, CampaignState, CompactCid, StoreIdentity};

/// Where and how to open the store.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Directory of the database (created if missing).
    pub path: PathBuf,
    /// sled's page cache; its default of 1 GiB is far more than a queue needs.
    pub cache_bytes: u64,
}

/// Capacity of the writer's command channel: enough to keep it busy, small enough to push back.
const COMMAND_QUEUE: usize = 1024;

/// The sled-backed store.
pub struct SledStore {
    trees: Trees,
    tx: crossbeam_channel::Sender<Command>,
    live: LiveMap,
    census: CensusCell,
    /// Campaign records decoded by readers since open (the cost the scheduler must keep flat).
    reads: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// `app \0 lowercased user` → [`Suppression`]. Written directly (human rates, disjoint from
    /// the writer's trees) and flushed before the write is reported done.
    suppressed: sled::Tree,
    identity: StoreIdentity,
    /// cid↔phone bindings: `app \0 c cid16` → `pn_md5 ‖ sealed number` and
    /// `app \0 p pn_md5` → cid16 (the reverse index). Written outside the writer thread, one
    /// atomic batch per call under `bind_lock` (so calls of one app do not interleave), and
    /// flushed before the call is answered.
    bindings: sled::Tree,
    bind_lock: Arc<Mutex<()>>,
    /// WeCom callback deliveries already handled (bounded; see [`super::DeliveryWindow`]).
    deliveries: Deliveries,
    /// Idempotency keys (`Store::claim`): key → campaign id (8 bytes, big-endian).
    claims: sled::Tree,
}

/// The campaign id of a claim's value.
fn claim_id(v: &[u8]) -> Result<u64, StoreError> {
    let id: [u8; 8] = v.try_into().map_err(|_| StoreError::Codec("a claim is not a campaign id".into()))?;
    Ok(u64::from_be_bytes(id))
}

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// How long to wait for another process (or a store closed a moment ago) to let go of the
/// database's file lock, e.g. while systemd restarts the daemon.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether sled refused to open because another handle holds the database's file lock. sled
/// 0.34 reports it as an `Other` I/O error with a message of its own (config.rs), not as
/// `WouldBlock`, so the message is what tells.
fn is_lock_conflict(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().starts_with("could not acquire lock")
        }
        _ => false,
    }
}

/// Blocks for up to [`LOCK_WAIT`]: call it off the async workers.
fn open_db(settings: &StoreSettings) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(&settings.path)
            .cache_capacity(settings.cache_bytes)
            .flush_every_ms(Some(500))
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_conflict(&e) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if is_lock_conflict(&e) => {
                return Err(StoreError::Db(format!(
                    "{} is in use by another campaignd (one daemon per store directory)",
                    settings.path.display()
                )))
            }
            Err(e) => {
                return Err(StoreError::Db(format!(
                    "cannot open the store at {}: {e}; if it was damaged by a crash, move the directory aside \
                     and re-upload the unfinished campaigns",
                    settings.path.display()
                )))
            }
        }
    }
}

/// Key of the store's identity in the `meta` tree.
const IDENTITY_KEY: &[u8] = b"identity";
/// A copy of the identity beside the database, for `check-config` and people: sled's lock
/// keeps other processes out of the database while the daemon runs.
pub const IDENTITY_FILE: &str = "campaignd-store-identity";

/// Reads the store's identity, or makes one for a new store (or one written before stores had
/// an identity), durably, before any campaign can be sent.
fn load_identity(meta: &sled::Tree, dir: &std::path::Path) -> Result<StoreIdentity, StoreError> {
    let identity = match meta.get(IDENTITY_KEY).map_err(db_err)? {
        Some(b) => StoreIdentity::from_bytes(&b)
            .ok_or_else(|| StoreError::Codec(format!("the store identity is {} bytes, not 6", b.len())))?,
        None => {
            let fresh = StoreIdentity::random()
                .map_err(|e| StoreError::Db(format!("no random source for the store identity: {e}")))?;
            meta.insert(IDENTITY_KEY, fresh.as_bytes().as_slice()).map_err(db_err)?;
            meta.flush().map_err(db_err)?;
            tracing::info!(identity = %fresh, "new store identity");
            fresh
        }
    };
    let shown = dir.join(IDENTITY_FILE);
    if read_identity_file(dir) != Some(identity) {
        std::fs::write(&shown, format!("{identity}\n"))
            .map_err(|e| StoreError::Db(format!("cannot write {}: {e}", shown.display())))?;
    }
    Ok(identity)
}

/// The identity shown beside the store in `dir`, if there is one.
pub fn read_identity_file(dir: &std::path::Path) -> Option<StoreIdentity> {
    StoreIdentity::parse(&std::fs::read_to_string(dir.join(IDENTITY_FILE)).ok()?)
}

impl SledStore {
    /// Opens (or creates) the store, repairs what a crash left half-done, and starts the writer.
    pub fn open(settings: &StoreSettings) -> Result<Arc<SledStore>, StoreError> {
        let db = open_db(settings)?;
        let open = |name: &str| db.open_tree(name).map_err(db_err);
        let suppressed = open("suppressed")?;
        let bindings = open("bindings")?;
        let claims = open("claims")?;
        let identity = load_identity(&open("meta")?, &settings.path)?;
        let deliveries = Deliveries::open(&db)?;
        let trees = Trees {
            campaigns: open("campaigns")?,
            chunks: ChunkTrees::load(&db)?,
            done: open("done")?,
            inflight: open("inflight")?,
            active: open("active")?,
            finished: open("finished")?,
            texting: TextingTrees::open(&db)?,
            db,
        };
        let live: LiveMap = Arc::new(RwLock::new(HashMap::new()));
        let census: CensusCell = Arc::new(RwLock::new([0; 7]));
        let writer = Writer::recover(trees.clone(), live.clone(), census.clone())?;
        let (tx, rx) = crossbeam_channel::bounded(COMMAND_QUEUE);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Db(format!("cannot start the store writer: {e}")))?;
        let reads = Arc::new(AtomicU64::new(0));
        Ok(Arc::new(SledStore {
            trees,
            tx,
            live,
            census,
            reads,
            writer: Mutex::new(Some(handle)),
            suppressed,
            identity,
            bindings,
            bind_lock: Arc::new(Mutex::new(())),
            deliveries,
            claims,
        }))
    }

    /// Campaign records read back since the store opened, by every reader: tests and benches
    /// use it to check that a pass costs what the active campaigns cost, not the history.
    pub fn campaign_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// WeCom callback deliveries remembered now (for tests of the window's bound).
    pub fn remembered_deliveries(&self) -> usize {
        self.deliveries.len()
    }

    /// Flushes, stops the writer thread and waits for it.
    pub async fn close(&self) -> Result<(), StoreError> {
        let result = self.send(|reply| Command::Shutdown { reply }).await;
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        result
    }

    /// Runs a read of the trees on the blocking pool.
    fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Trees) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let trees = self.trees.clone();
        blocking(move || work(&trees))
    }

    /// Hands a command to the writer without blocking the async worker: when the queue is
    /// full it yields and tries again.
    fn send<T: Send + 'static>(&self, make: impl FnOnce(Reply<T>) -> Command + Send) -> StoreFuture<'_, T> {
        let (reply, rx) = oneshot::channel();
        let mut cmd = make(reply);
        Box::pin(async move {
            loop {
                match self.tx.try_send(cmd) {
                    Ok(()) => break,
                    Err(crossbeam_channel::TrySendError::Full(c)) => {
                        cmd = c;
                        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
                }
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

/// Most records one page of the campaign list examines, whatever its filter: a page may come
/// back short (even empty) with a cursor, so no request walks the whole history.
const PAGE_SCAN_MAX: usize = 5_000;

fn note_read(reads: &AtomicU64) {
    reads.fetch_add(1, Ordering::Relaxed);
}

fn read_record(campaigns: &sled::Tree, id: &[u8], reads: &AtomicU64) -> Result<Option<CampaignRecord>, StoreError> {
    note_read(reads);
    campaigns.get(id).map_err(db_err)?.map(|v| decode(&v)).transpose()
}

/// Non-final campaigns, through the active index.
fn read_active(trees: &Trees, reads: &AtomicU64) -> Result<Vec<CampaignRecord>, StoreError> {
    let mut out = Vec::new();
    for key in trees.active.iter().keys() {
        // A record removed between the two reads is simply skipped.
        if let Some(rec) = read_record(&trees.campaigns, &key.map_err(db_err)?, reads)? {
            out.push(rec);
        }
    }
    Ok(out)
}

/// One page of campaigns: waiting states through the active index, others by id.
fn read_page(trees: &Trees, q: &PageQuery, reads: &AtomicU64) -> Result<CampaignPage, StoreError> {
    let from = q.after.saturating_add(1).to_be_bytes();
    let via_index = q.state.is_some_and(|s| !s.is_final());
    let tree = if via_index { &trees.active } else { &trees.campaigns };
    let mut campaigns = Vec::new();
    let mut last = None;
    let mut keys = tree.range(from..).keys();
    for key in keys.by_ref().take(PAGE_SCAN_MAX) {
        let key = key.map_err(db_err)?;
        let Some(rec) = read_record(&trees.campaigns, &key, reads)? else { continue };
        last = Some(rec.id);
        if q.state.is_none_or(|s| s == rec.state) {
            campaigns.push(rec);
            if campaigns.len() >= q.limit {
                break;
            }
        }
    }
    let more = keys.next().is_some();
    Ok(CampaignPage { campaigns, next_after: last.filter(|_| more) })
}

impl Store for SledStore {
    fn identity(&self) -> StoreIdentity {
        self.identity
    }

    fn active_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        let reads = self.reads.clone();
        self.read(move |t| read_active(t, &reads))
    }

    fn campaigns_page(&self, query: PageQuery) -> StoreFuture<'_, CampaignPage> {
        let reads = self.reads.clone();
        self.read(move |t| read_page(t, &query, &reads))
    }

    fn census(&self) -> StoreFuture<'_, Vec<(CampaignState, u64)>> {
        let counts = *self.census.read().unwrap_or_else(|p| p.into_inner());
        Box::pin(async move { Ok(CampaignState::ALL.into_iter().zip(counts).collect()) })
    }

    fn expire_finished(&self, before_ms: i64, max: usize) -> StoreFuture<'_, usize> {
        self.send(move |reply| Command::Expire { before_ms, max, reply })
    }

    fn create(&self, spec: CampaignSpec, now_ms: i64) -> StoreFuture<'_, CampaignRecord> {
        self.send(move |reply| Command::Create { spec: Box::new(spec), now_ms, reply })
    }

    fn change(&self, id: u64, change: Change) -> StoreFuture<'_, CampaignRecord> {
        self.send(move |reply| Command::Change { id, change, reply })
    }

    fn delete(&self, id: u64) -> StoreFuture<'_, ()> {
        self.send(move |reply| Command::Delete { id, reply })
    }

    fn stage_chunk(&self, id: u64, seq: u64, chunk: Chunk) -> StoreFuture<'_, ()> {
        self.send(move |reply| Command::Stage { id, seq, chunk, reply })
    }

    fn commit_upload(&self, id: u64, commit: UploadCommit) -> StoreFuture<'_, CampaignRecord> {
        self.send(move |reply| Command::Commit { id, commit, reply })
    }

    fn staged_chunk(&self, id: u64, seq: u64) -> StoreFuture<'_, Option<Chunk>> {
        self.read(move |t| staged_chunk(t, id, seq))
    }

    fn discard_upload(&self, id: u64, first_seq: u64, chunks: u64) -> StoreFuture<'_, ()> {
        self.send(move |reply| Command::Discard { id, first_seq, chunks, reply })
    }

    fn mark_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, ()> {
        self.send(move |reply| Command::Inflight { id, seq, reply })
    }

    /// Read on the caller's thread: the in-flight tree holds a mark per chunk being sent (a
    /// few per shard), so it stays in sled's cache and the lookup never waits for the disk,
    /// while a hop to the blocking pool cost more than the lookup, once per chunk.
    fn chunk_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, bool> {
        let marked = self.trees.inflight.contains_key(chunk_key(id, seq)).map_err(db_err);
        Box::pin(async move { marked })
    }

    /// One process owns a sled store, and its runner hands each chunk to one shard at a
    /// time: there is nobody to share with.
    fn lease_chunk(&self, _id: u64, _seq: u64, _holder: &str, _ttl_ms: u64) -> StoreFuture<'_, LeaseOutcome> {
        Box::pin(async { Ok(LeaseOutcome::Taken) })
    }

    fn release_chunk(&self, _id: u64, _seq: u64, _holder: &str) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn ack(&self, ack: Ack) -> StoreFuture<'_, ()> {
        self.send(move |reply| Command::Ack { ack, reply })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        self.send(|reply| Command::Flush { reply })
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<CampaignRecord>> {
        let reads = self.reads.clone();
        self.read(move |t| read_record(&t.campaigns, &id.to_be_bytes(), &reads))
    }

    fn list(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        let reads = self.reads.clone();
        self.read(move |t| {
            let values = t.campaigns.iter().values();
            values.map(|v| decode(&v.map_err(db_err)?).inspect(|_| note_read(&reads))).collect()
        })
    }

    fn pending_chunks(&self, id: u64, from_seq: u64, max: usize) -> StoreFuture<'_, Vec<(u64, Chunk)>> {
        self.read(move |t| pending_chunks(t, id, from_seq, max))
    }

    fn committed_cids(&self, id: u64, from_seq: u64, max_bytes: usize) -> StoreFuture<'_, CidPage> {
        self.read(move |t| read_cid_page(t, id, from_seq, max_bytes))
    }

    fn inflight_chunks(&self, id: u64) -> StoreFuture<'_, Vec<u64>> {
        self.read(move |t| {
            t.inflight
                .scan_prefix(id.to_be_bytes())
                .keys()
                .map(|k| {
                    let k = k.map_err(db_err)?;
                    parse_chunk_key(&k).map(|(_, s)| s).ok_or_else(|| StoreError::Codec("bad inflight key".into()))
                })
                .collect()
        })
    }

    fn progress(&self, id: u64) -> StoreFuture<'_, Progress> {
        // Held in memory by the writer: no disk, so no blocking thread either.
        let p = self.live.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned().unwrap_or_default();
        Box::pin(std::future::ready(Ok(p)))
    }

    fn queued_chunk_messages(&self) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async { Ok(None) })
    }

    fn size_on_disk(&self) -> StoreFuture<'_, u64> {
        // sled walks its files for this.
        self.read(|t| t.db.size_on_disk().map_err(db_err))
    }

    fn set_suppression(&self, app: &str, user: &str, entry: Option<Suppression>) -> StoreFuture<'_, bool> {
        let key = suppression_key(app, user);
        let adding = entry.is_some();
        let tree = self.suppressed.clone();
        blocking(move || {
            let before = match entry {
                Some(e) => tree.insert(key, super::codec::encode_named(&e)?).map_err(db_err)?,
                None => tree.remove(key).map_err(db_err)?,
            };
            tree.flush().map_err(db_err)?;
            Ok(before.is_some() != adding)
        })
    }

    fn suppression(&self, app: &str, user: &str) -> StoreFuture<'_, Option<Suppression>> {
        let key = suppression_key(app, user);
        let tree = self.suppressed.clone();
        blocking(move || tree.get(key).map_err(db_err)?.map(|v| decode(&v)).transpose())
    }

    fn suppressed_among(&self, app: &str, users: Vec<String>) -> StoreFuture<'_, Vec<bool>> {
        let app = app.to_owned();
        let tree = self.suppressed.clone();
        blocking(move || users.iter().map(|u| tree.contains_key(suppression_key(&app, u)).map_err(db_err)).collect())
    }

    fn suppressions(&self, app: &str, after: &str, limit: usize) -> StoreFuture<'_, Vec<(String, Suppression)>> {
        let (app, after) = (app.to_owned(), after.to_lowercase());
        let tree = self.suppressed.clone();
        blocking(move || {
            let prefix = format!("{app}\0");
            let mut out = Vec::new();
            for item in tree.range(suppression_key(&app, &after)..).take(limit + 1) {
                let (k, v) = item.map_err(db_err)?;
                let Some(user) = k.strip_prefix(prefix.as_bytes()) else { break };
                let user = String::from_utf8_lossy(user).into_owned();
                if user > after && out.len() < limit {
                    out.push((user, decode(&v)?));
                }
            }
            Ok(out)
        })
    }

    fn first_delivery(&self, key: &str, now_ms: i64, window: super::DeliveryWindow) -> StoreFuture<'_, bool> {
        let (deliveries, key) = (self.deliveries.clone(), key.to_owned());
        Box::pin(async move {
            let noted = deliveries.clone();
            let first = tokio::task::spawn_blocking(move || noted.first(&key, now_ms, window))
                .await
                .map_err(|e| StoreError::Db(format!("delivery record task failed: {e}")))??;
            if first {
                deliveries.flush().await?;
            }
            Ok(first)
        })
    }

    fn delivery_noted(&self, key: &str) -> StoreFuture<'_, bool> {
        let (deliveries, key) = (self.deliveries.clone(), key.to_owned());
        blocking(move || deliveries.contains(&key))
    }

    fn bind_phones(&self, app: &str, pairs: Vec<PhoneBinding>) -> StoreFuture<'_, Vec<BindOutcome>> {
        let (app, tree, lock) = (app.to_owned(), self.bindings.clone(), self.bind_lock.clone());
        blocking(move || {
            let _one_call_at_a_time = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (writes, outcomes) =
                plan_binds(&pairs, |k| Ok(tree.get(binding_key(&app, k)).map_err(db_err)?.map(|v| v.to_vec())))?;
            if !writes.is_empty() {
                let mut batch = sled::Batch::default();
                for (k, v) in writes {
                    match v {
                        Some(v) => batch.insert(binding_key(&app, &k), v),
                        None => batch.remove(binding_key(&app, &k)),
                    }
                }
                tree.apply_batch(batch).map_err(db_err)?;
                tree.flush().map_err(db_err)?;
            }
            Ok(outcomes)
        })
    }

    fn unbind_phones(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<bool>> {
        let (app, tree, lock) = (app.to_owned(), self.bindings.clone(), self.bind_lock.clone());
        blocking(move || {
            let _one_call_at_a_time = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut batch = sled::Batch::default();
            let mut gone = std::collections::HashSet::new();
            let mut out = Vec::with_capacity(cids.len());
            for cid in cids {
                let key = binding_key(&app, &BindKey::Cid(cid));
                match tree.get(&key).map_err(db_err)? {
                    Some(v) if gone.insert(cid) => {
                        let (md5, _) = split_cid_value(&v)?;
                        batch.remove(key);
                        batch.remove(binding_key(&app, &BindKey::Pn(md5.to_owned())));
                        out.push(true);
                    }
                    _ => out.push(false),
                }
            }
            if !gone.is_empty() {
                tree.apply_batch(batch).map_err(db_err)?;
                tree.flush().map_err(db_err)?;
            }
            Ok(out)
        })
    }

    fn bindings_of(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<Option<StoredBinding>>> {
        let (app, tree) = (app.to_owned(), self.bindings.clone());
        blocking(move || {
            cids.iter()
                .map(|cid| match tree.get(binding_key(&app, &BindKey::Cid(*cid))).map_err(db_err)? {
                    Some(v) => split_cid_value(&v).map(|(md5, sealed)| Some((md5.to_owned(), sealed.to_vec()))),
                    None => Ok(None),
                })
                .collect()
        })
    }

    fn binding_of_pn(&self, app: &str, pn_md5: &str) -> StoreFuture<'_, Option<(CompactCid, Vec<u8>)>> {
        let (app, tree, key) = (app.to_owned(), self.bindings.clone(), BindKey::Pn(pn_md5.to_owned()));
        blocking(move || {
            let Some(owner) = tree.get(binding_key(&app, &key)).map_err(db_err)? else { return Ok(None) };
            let owner = parse_cid_bytes(&owner)?;
            match tree.get(binding_key(&app, &BindKey::Cid(owner))).map_err(db_err)? {
                Some(v) => Ok(Some((owner, split_cid_value(&v)?.1.to_vec()))),
                None => Ok(None),
            }
        })
    }

    fn claim(&self, key: &str, id: u64) -> StoreFuture<'_, u64> {
        let (tree, key) = (self.claims.clone(), key.as_bytes().to_vec());
        blocking(move || {
            let winner =
                match tree.compare_and_swap(&key, None::<&[u8]>, Some(&id.to_be_bytes()[..])).map_err(db_err)? {
                    Ok(()) => id,
                    Err(taken) => taken.current.as_deref().map_or(Ok(id), claim_id)?,
                };
            tree.flush().map_err(db_err)?;
            Ok(winner)
        })
    }

    fn claimed(&self, key: &str) -> StoreFuture<'_, Option<u64>> {
        let (tree, key) = (self.claims.clone(), key.as_bytes().to_vec());
        blocking(move || tree.get(key).map_err(db_err)?.as_deref().map(claim_id).transpose())
    }

    fn texting_stage(&self, entry: TextingEntry) -> StoreFuture<'_, bool> {
        self.texting_work(move |t| t.stage(&entry))
    }

    fn texting_due(&self, now_ms: i64, max: usize) -> StoreFuture<'_, Vec<TextingEntry>> {
        self.texting_work(move |t| t.due(now_ms, max))
    }

    fn texting_save(&self, entry: TextingEntry) -> StoreFuture<'_, u64> {
        self.texting_work(move |t| t.save(&entry))
    }

    fn texting_finish(&self, entry: TextingEntry, tally: SmsTally) -> StoreFuture<'_, ()> {
        self.send(|reply| Command::TextingFinish { entry, tally, reply })
    }

    fn note_sms_serials(&self, app: &str, campaign: u64, sids: Vec<String>) -> StoreFuture<'_, ()> {
        let app = app.to_owned();
        self.texting_work(move |t| t.note_serials(&app, campaign, &sids))
    }

    fn take_sms_serial(&self, app: &str, sid: &str) -> StoreFuture<'_, Option<u64>> {
        let (app, sid) = (app.to_owned(), sid.to_owned());
        self.texting_work(move |t| t.take_serial(&app, &sid))
    }

    fn note_receipts(&self, app: &str, marks: Vec<(ReceiptKey, u8)>) -> StoreFuture<'_, Vec<u8>> {
        let app = app.to_owned();
        self.texting_work(move |t| t.note_receipts(&app, &marks))
    }

    fn receipt_marks(&self, app: &str, keys: Vec<ReceiptKey>) -> StoreFuture<'_, Vec<u8>> {
        let app = app.to_owned();
        self.texting_work(move |t| t.receipt_marks(&app, &keys))
    }

    fn heartbeat(&self, _member: &str, _now_ms: i64) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(1) })
    }
}

impl SledStore {
    /// Runs work on the SMS fallback trees on the blocking pool.
    fn texting_work<T: Send + 'static>(
        &self,
        work: impl FnOnce(&TextingTrees) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let trees = self.trees.texting.clone();
        blocking(move || work(&trees))
    }
}

/// A binding record's key: `app \0`, then `c` and the cid's 16 bytes or `p` and the pn md5.
fn binding_key(app: &str, key: &BindKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + 34);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    match key {
        BindKey::Cid(cid) => {
            k.push(b'c');
            k.extend_from_slice(&cid.0);
        }
        BindKey::Pn(md5) => {
            k.push(b'p');
            k.extend_from_slice(md5.as_bytes());
        }
    }
    k
}

/// Runs sled work on tokio's blocking pool: a read may wait for the disk, and an async worker
/// must never wait for anything.
fn blocking<'a, T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> StoreFuture<'a, T> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work).await.map_err(|e| StoreError::Db(format!("a store read failed: {e}")))?
    })
}

fn get_record(t: &Trees, id: u64) -> Result<Option<CampaignRecord>, StoreError> {
    t.campaigns.get(id.to_be_bytes()).map_err(db_err)?.map(|v| decode(&v)).transpose()
}

/// Runs `read` on the record of campaign `id` and the trees holding its chunks in the span
/// `span` gives for that record. The fold drops a segment once all its chunks were sent; a
/// read that failed because one of its segments went meanwhile runs again, with the record
/// read again, at most three times.
fn read_chunks<T>(
    t: &Trees,
    id: u64,
    span: impl Fn(&CampaignRecord) -> (u64, u64),
    read: impl Fn(&CampaignRecord, Vec<sled::Tree>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tries = 0;
    loop {
        let rec = get_record(t, id)?.ok_or(StoreError::NotFound(id))?;
        let (from, to) = span(&rec);
        let segments = t.chunks.segments(id, from, to);
        let held = segments.len();
        tries += 1;
        match read(&rec, segments) {
            Err(_) if tries < 3 && t.chunks.segments(id, from, to).len() < held => continue,
            result => return result,
        }
    }
}

/// The stored entries of chunks `from..to` of campaign `id`, in order across `segments`.
fn entries(
    segments: Vec<sled::Tree>,
    id: u64,
    from: u64,
    to: u64,
) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
    segments.into_iter().flat_map(move |tree| tree.range(chunk_key(id, from)..chunk_key(id, to)))
}

fn pending_chunks(t: &Trees, id: u64, from_seq: u64, max: usize) -> Result<Vec<(u64, Chunk)>, StoreError> {
    let span = |rec: &CampaignRecord| (from_seq.max(rec.folded), rec.chunk_count);
    read_chunks(t, id, span, |rec, segments| {
        let (from, to) = span(rec);
        let mut out = Vec::with_capacity(max.min(64));
        for item in Chunks::new(entries(segments, id, from, to)) {
            if out.len() == max {
                break;
            }
            let (seq, v) = item?;
            // Acknowledged but not folded yet: sent, and kept until its segment goes.
            if t.done.contains_key(chunk_key(id, seq)).map_err(db_err)? {
                continue;
            }
            out.push((seq, decode(&v)?));
        }
        // A fold removes tombstones after saving the record, so a chunk whose tombstone was
        // gone when looked at is below the folded count read now.
        if let Some(folded) = get_record(t, id)?.map(|r| r.folded).filter(|&f| f > from) {
            out.retain(|(seq, _)| *seq >= folded);
        }
        Ok(out)
    })
}

/// Chunk `seq` of `id` if it is staged (at or past the committed count).
fn staged_chunk(t: &Trees, id: u64, seq: u64) -> Result<Option<Chunk>, StoreError> {
    read_chunks(
        t,
        id,
        |rec| (seq.max(rec.chunk_count), seq + 1),
        |rec, segments| {
            if seq < rec.chunk_count {
                return Ok(None);
            }
            match Chunks::new(entries(segments, id, seq, seq + 1)).next() {
                Some(item) => Ok(Some(decode(&item?.1)?)),
                None => Ok(None),
            }
        },
    )
}

/// Reads committed chunks of `id` from `from_seq` until `max_bytes` of stored values (at least
/// one chunk), keeping only their cids: a page costs about `max_bytes` of memory however large
/// the campaign or its variables.
fn read_cid_page(trees: &Trees, id: u64, from_seq: u64, max_bytes: usize) -> Result<CidPage, StoreError> {
    read_chunks(
        trees,
        id,
        |rec| (from_seq, rec.chunk_count),
        |rec, segments| {
            let mut page = CidPage::default();
            let mut read = 0usize;
            for item in Chunks::new(entries(segments, id, from_seq, rec.chunk_count)) {
                let (seq, v) = item?;
                if read >= max_bytes {
                    page.next = Some(seq);
                    break;
                }
                read += v.len();
                page.cids.extend_from_slice(&decode::<StoredCids>(&v)?.cids);
            }
            Ok(page)
        },
    )
}

fn suppression_key(app: &str, user: &str) -> Vec<u8> {
    format!("{app}\0{}", user.to_lowercase()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, CampaignState, Counts, ResultName};
    use crate::store::{CampaignPage, PageQuery};

    use crate::domain::campaign::sample_spec as spec;

    fn chunk(n: u8) -> Chunk {
        Chunk { cids: (0..n).flat_map(|i| [i; 16]).collect(), ..Chunk::default() }
    }

    fn open(dir: &std::path::Path) -> Arc<SledStore> {
        SledStore::open(&StoreSettings { path: dir.to_path_buf(), cache_bytes: 8 << 20 }).unwrap()
    }

    fn online(n: u64) -> Counts {
        let mut c = Counts::default();
        c.add(ResultName::SuccessedOnline, n);
        c
    }

    /// A campaign of `chunks` committed chunks of `size` recipients each, started at `at_ms`.
    async fn running(store: &SledStore, chunks: u64, size: u8, at_ms: i64) -> CampaignRecord {
        let rec = store.create(spec(), 1).await.unwrap();
        for seq in 0..chunks {
            store.stage_chunk(rec.id, seq, chunk(size)).await.unwrap();
        }
        let recipients = chunks * u64::from(size);
        let commit = UploadCommit { first_seq: 0, chunks, recipients, duplicates: 0, rejected: 0 };
        store.commit_upload(rec.id, commit).await.unwrap();
        store.change(rec.id, Change::Act(Action::Start, at_ms)).await.unwrap()
    }

    #[tokio::test]
    async fn callback_deliveries_are_noted_once_durably_and_within_a_bounded_window() {
        use crate::store::DeliveryWindow;
        let dir = tempfile::tempdir().unwrap();
        let window = DeliveryWindow { max_entries: 10, max_age_ms: 60_000 };
        let store = open(dir.path());
        assert!(store.first_delivery("staff:msg:li:1", 1_000, window).await.unwrap());
        assert!(!store.first_delivery("staff:msg:li:1", 2_000, window).await.unwrap(), "a retry");
        store.close().await.unwrap();
        drop(store);
        let store = open(dir.path());
        assert!(!store.first_delivery("staff:msg:li:1", 3_000, window).await.unwrap(), "a retry after a restart");
        assert!(store.delivery_noted("staff:msg:li:1").await.unwrap());
        assert!(!store.delivery_noted("staff:msg:li:2").await.unwrap());
        // The count bound: the oldest go first and the record never exceeds it.
        for i in 0..50 {
            assert!(store.first_delivery(&format!("k{i}"), 5_000 + i, window).await.unwrap());
            assert!(store.remembered_deliveries() <= 10);
        }
        assert_eq!(store.remembered_deliveries(), 10);
        assert!(!store.first_delivery("k49", 6_000, window).await.unwrap(), "the newest are kept");
        assert!(store.first_delivery("k0", 6_000, window).await.unwrap(), "the oldest were dropped");
        // The age bound: everything older than the window goes.
        assert!(store.first_delivery("late", 6_000 + 60_001, window).await.unwrap());
        assert_eq!(store.remembered_deliveries(), 1);
        assert!(store.first_delivery("k49", 6_000 + 60_002, window).await.unwrap());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn suppressions_are_per_app_case_insensitive_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let entry = |reason: &str| Some(Suppression { reason: reason.into(), since_ms: 7 });
        assert!(store.set_suppression("staff", "LiLei", entry("unsubscribe")).await.unwrap());
        assert!(!store.set_suppression("staff", "lilei", entry("keyword")).await.unwrap(), "already on the list");
        assert!(store.set_suppression("staff", "hanmei", entry("api")).await.unwrap());
        assert!(store.set_suppression("other", "zed", entry("api")).await.unwrap());
        assert_eq!(store.suppression("staff", "LILEI").await.unwrap().unwrap().reason, "keyword");
        assert_eq!(store.suppression("other", "lilei").await.unwrap(), None);
        let users = |after: &'static str, n| {
            let page = store.suppressions("staff", after, n);
            async move { page.await.unwrap().into_iter().map(|(u, _)| u).collect::<Vec<_>>() }
        };
        assert_eq!(users("", 10).await, ["hanmei", "lilei"]);
        assert_eq!(users("hanmei", 10).await, ["lilei"]);
        assert_eq!(users("", 1).await, ["hanmei"]);
        let among = store.suppressed_among("staff", vec!["HANMEI".into(), "nobody".into(), "lilei".into()]);
        assert_eq!(among.await.unwrap(), [true, false, true], "one answer per user, in order");
        assert!(store.set_suppression("staff", "HanMei", None).await.unwrap());
        assert!(!store.set_suppression("staff", "hanmei", None).await.unwrap());
        store.close().await.unwrap();
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.suppressions("staff", "", 10).await.unwrap().len(), 1, "survives a reopen");
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn upload_commit_ack_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let rec = store.create(spec(), 1).await.unwrap();
        store.stage_chunk(rec.id, 0, chunk(3)).await.unwrap();
        store.stage_chunk(rec.id, 1, chunk(2)).await.unwrap();
        // Staged chunks are invisible until committed.
        assert!(store.pending_chunks(rec.id, 0, 10).await.unwrap().is_empty());
        let commit = UploadCommit { first_seq: 0, chunks: 2, recipients: 5, duplicates: 1, rejected: 0 };
        store.commit_upload(rec.id, commit).await.unwrap();
        assert_eq!(store.pending_chunks(rec.id, 0, 10).await.unwrap().len(), 2);
        store.change(rec.id, Change::Act(Action::Start, 2)).await.unwrap();
        // Out of order: chunk 1 first, then 0.
        store.ack(Ack { campaign: rec.id, seq: 1, counts: online(2) }).await.unwrap();
        assert_eq!(store.get(rec.id).await.unwrap().unwrap().folded, 0);
        assert_eq!(store.progress(rec.id).await.unwrap().counts.total(), 2);
        store.ack(Ack { campaign: rec.id, seq: 0, counts: online(3) }).await.unwrap();
        let done = store.get(rec.id).await.unwrap().unwrap();
        assert_eq!((done.state, done.folded, done.counts.total()), (CampaignState::Completed, 2, 5));
        assert!(store.pending_chunks(rec.id, 0, 10).await.unwrap().is_empty());
        // A repeated acknowledgement changes nothing.
        store.ack(Ack { campaign: rec.id, seq: 0, counts: online(3) }).await.unwrap();
        assert_eq!(store.progress(rec.id).await.unwrap().counts.total(), 5);
        store.close().await.unwrap();
    }

    /// The API reads a campaign's record, then its progress: whenever the record says
    /// completed, progress must hold every acknowledged count. A reader thread polls both as
    /// fast as it can while the last acknowledgement completes each of many campaigns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_campaign_read_as_completed_has_the_counts_of_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for round in 0..200 {
            let rec = running(&store, 1, 3, 1).await;
            let (trees, live, reads) = (store.trees.clone(), store.live.clone(), store.reads.clone());
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let reader = std::thread::spawn(move || loop {
                let rec = read_record(&trees.campaigns, &rec.id.to_be_bytes(), &reads).unwrap().unwrap();
                let counted = live.read().unwrap().get(&rec.id).map_or(0, |p| p.counts.total());
                if rec.state == CampaignState::Completed {
                    return Some(counted);
                }
                if std::time::Instant::now() > until {
                    return None;
                }
            });
            store.ack(Ack { campaign: rec.id, seq: 0, counts: online(3) }).await.unwrap();
            let counted = reader.join().unwrap().unwrap_or_else(|| panic!("round {round}: never completed"));
            assert_eq!(counted, 3, "round {round}: seen completed before its counts");
        }
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn state_survives_reopen_and_staged_chunks_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let a = store.create(spec(), 1).await.unwrap();
            store.stage_chunk(a.id, 0, chunk(2)).await.unwrap();
            store
                .commit_upload(
                    a.id,
                    UploadCommit { first_seq: 0, chunks: 1, recipients: 2, duplicates: 0, rejected: 0 },
                )
                .await
                .unwrap();
            store.stage_chunk(a.id, 1, chunk(2)).await.unwrap(); // never committed
            store.close().await.unwrap();
            a.id
        };
        let store = open(dir.path());
        let rec = store.get(id).await.unwrap().unwrap();
        assert_eq!((rec.chunk_count, rec.recipients), (1, 2));
        assert_eq!(store.committed_cids(id, 0, 1 << 20).await.unwrap(), CidPage { cids: chunk(2).cids, next: None });
        assert!(store.trees.chunks.get(id, 1).unwrap().get(chunk_key(id, 1)).unwrap().is_none());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn committed_cids_come_in_bounded_pages_without_their_variables() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let rec = store.create(spec(), 1).await.unwrap();
        let with_vars = |n: u8| {
            let mut c = chunk(n);
            c.vars = (0..n).map(|i| vec![("name".to_owned(), "x".repeat(1000 + usize::from(i)))]).collect();
            c
        };
        for seq in 0..10 {
            store.stage_chunk(rec.id, seq, with_vars(4)).await.unwrap();
        }
        let commit = UploadCommit { first_seq: 0, chunks: 10, recipients: 40, duplicates: 0, rejected: 0 };
        store.commit_upload(rec.id, commit).await.unwrap();
        store.stage_chunk(rec.id, 10, with_vars(4)).await.unwrap(); // staged, not committed
        let (mut pages, mut cids, mut next) = (0, Vec::new(), Some(0));
        while let Some(from) = next {
            let page = store.committed_cids(rec.id, from, 8_000).await.unwrap();
            assert!(page.cids.len() <= 2 * 4 * 16, "a page stops once it passes its byte budget");
            cids.extend_from_slice(&page.cids);
            next = page.next;
            pages += 1;
            assert!(pages <= 10, "the pages end");
        }
        assert_eq!(pages, 5);
        assert_eq!(cids, (0..10).flat_map(|_| chunk(4).cids).collect::<Vec<u8>>(), "every committed cid, in order");
        assert_eq!(store.committed_cids(rec.id, 10, 8_000).await.unwrap(), CidPage::default());
        assert!(matches!(store.committed_cids(999, 0, 8_000).await, Err(StoreError::NotFound(999))));
        store.close().await.unwrap();
    }

    /// Staging over a seq clears every part of what was there, whether an earlier stage, a
    /// partial discard or a crashed upload (before the reopen) left it; staging past all of
    /// them writes without looking.
    #[tokio::test]
    async fn restaging_clears_every_earlier_part_whoever_left_it() {
        use super::super::codec::{chunk_entries, encode_compact};
        let heavy = |n: u8| {
            let mut c = chunk(n);
            c.vars = (0..n).map(|i| vec![("a".to_owned(), format!("{i:04}").repeat(900))]).collect();
            c
        };
        let commit =
            |first_seq, chunks, recipients| UploadCommit { first_seq, chunks, recipients, duplicates: 0, rejected: 0 };
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let id = store.create(spec(), 1).await.unwrap().id;
            for seq in 0..3 {
                store.stage_chunk(id, seq, heavy(12)).await.unwrap();
            }
            store.discard_upload(id, 1, 1).await.unwrap(); // chunk 2 stays
            store.stage_chunk(id, 2, heavy(2)).await.unwrap();
            store.stage_chunk(id, 1, heavy(3)).await.unwrap();
            store.commit_upload(id, commit(0, 3, 17)).await.unwrap();
            for seq in 3..5 {
                store.stage_chunk(id, seq, heavy(12)).await.unwrap(); // never committed
            }
            store.close().await.unwrap();
            id
        };
        let store = open(dir.path());
        store.stage_chunk(id, 3, chunk(2)).await.unwrap();
        store.stage_chunk(id, 4, heavy(1)).await.unwrap();
        store.commit_upload(id, commit(3, 2, 3)).await.unwrap();
        let want = vec![(0, heavy(12)), (1, heavy(3)), (2, heavy(2)), (3, chunk(2)), (4, heavy(1))];
        assert_eq!(store.pending_chunks(id, 0, 10).await.unwrap(), want);
        // A stale part after a shorter value would still decode; count the keys instead.
        let parts = |(seq, c): &(u64, Chunk)| chunk_entries(id, *seq, &encode_compact(c).unwrap()).len();
        let tree = store.trees.chunks.get(id, 0).unwrap();
        assert_eq!(tree.len(), want.iter().map(parts).sum::<usize>(), "no part of an earlier value is left");
        store.close().await.unwrap();
    }

    /// A chunk longer than a part is stored in parts (no sled value over PART_BYTES), and reads,
    /// pages, acknowledgements and discards treat it as one chunk; a long chunk stored whole, as
    /// the previous version did, reads back the same.
    #[tokio::test]
    async fn long_chunks_are_stored_in_parts_and_read_back_whole() {
        use super::super::codec::{encode_compact, PART_BYTES};
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let rec = store.create(spec(), 1).await.unwrap();
        let heavy = |n: u8| {
            let mut c = chunk(n);
            c.vars = (0..n).map(|i| vec![("a".to_owned(), format!("{i:04}").repeat(900))]).collect();
            c
        };
        store.stage_chunk(rec.id, 0, heavy(12)).await.unwrap();
        let tree = store.trees.chunks.get(rec.id, 0).unwrap();
        let values: Vec<usize> = tree.iter().values().map(|v| v.unwrap().len()).collect();
        assert!(values.len() > 5 && values.iter().all(|&n| n <= PART_BYTES), "{values:?}");
        // Chunk 1 as the previous version stored it: one value, however long.
        tree.insert(chunk_key(rec.id, 1), encode_compact(&heavy(5)).unwrap()).unwrap();
        store.stage_chunk(rec.id, 2, chunk(3)).await.unwrap();
        // A re-staged chunk replaces every part of what was there.
        store.stage_chunk(rec.id, 3, heavy(12)).await.unwrap();
        store.stage_chunk(rec.id, 3, heavy(2)).await.unwrap();
        store.stage_chunk(rec.id, 4, heavy(7)).await.unwrap();
        let commit = UploadCommit { first_seq: 0, chunks: 5, recipients: 29, duplicates: 0, rejected: 0 };
        store.commit_upload(rec.id, commit).await.unwrap();

        let read = store.pending_chunks(rec.id, 0, 10).await.unwrap();
        assert_eq!(read, vec![(0, heavy(12)), (1, heavy(5)), (2, chunk(3)), (3, heavy(2)), (4, heavy(7))]);
        assert_eq!(store.pending_chunks(rec.id, 1, 2).await.unwrap(), vec![(1, heavy(5)), (2, chunk(3))]);
        let page = store.committed_cids(rec.id, 0, 1).await.unwrap();
        assert_eq!(page, CidPage { cids: chunk(12).cids, next: Some(1) }, "one chunk, all its parts");
        let all = store.committed_cids(rec.id, 1, 1 << 20).await.unwrap();
        assert_eq!(all.cids, [chunk(5).cids, chunk(3).cids, chunk(2).cids, chunk(7).cids].concat());

        store.change(rec.id, Change::Act(Action::Start, 2)).await.unwrap();
        let stored = tree.len();
        for seq in [0, 1, 3, 4] {
            store.ack(Ack { campaign: rec.id, seq, counts: online(1) }).await.unwrap();
        }
        assert_eq!(store.pending_chunks(rec.id, 0, 10).await.unwrap(), vec![(2, chunk(3))]);
        assert_eq!(store.pending_chunks(rec.id, 3, 10).await.unwrap(), vec![], "3 and 4 were sent");
        assert_eq!(tree.len(), stored, "sent chunks stay until the campaign ends");
        store.ack(Ack { campaign: rec.id, seq: 2, counts: online(1) }).await.unwrap();
        assert_eq!(store.get(rec.id).await.unwrap().unwrap().state, CampaignState::Completed);
        assert!(store.trees.chunks.get(rec.id, 0).is_none(), "a completed campaign's chunks are gone");
        assert!(tree.get(chunk_key(rec.id, 2)).is_err(), "and a reader still holding the tree finds none");

        // A discarded upload leaves no part behind either.
        let other = store.create(spec(), 1).await.unwrap();
        store.stage_chunk(other.id, 0, heavy(12)).await.unwrap();
        store.discard_upload(other.id, 0, 1).await.unwrap();
        assert_eq!(store.trees.chunks.get(other.id, 0).unwrap().len(), 0);
        store.close().await.unwrap();
    }

    /// Chunks are kept in segments of consecutive sequences, and a segment goes as soon as the
    /// fold passes its end; reads cross segments as if they were one tree.
    #[tokio::test]
    async fn a_segment_goes_once_folded_past_and_reads_cross_segments() {
        use super::super::chunk_trees::SEGMENT_CHUNKS as S;
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let rec = running(&store, 2 * S + 10, 1, 1).await;
            let read = store.pending_chunks(rec.id, S - 2, 4).await.unwrap();
            assert_eq!(read.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [S - 2, S - 1, S, S + 1]);
            for seq in (0..S + 3).filter(|&seq| seq != 5) {
                store.ack(Ack { campaign: rec.id, seq, counts: online(1) }).await.unwrap();
            }
            assert!(store.trees.chunks.get(rec.id, 0).is_some(), "chunk 5 is not sent: segment 0 stays");
            store.ack(Ack { campaign: rec.id, seq: 5, counts: online(1) }).await.unwrap();
            assert!(store.trees.chunks.get(rec.id, 0).is_none(), "folded past: segment 0 went");
            assert_eq!(store.trees.chunks.segments(rec.id, 0, 3 * S).len(), 2);
            store.close().await.unwrap();
            rec.id
        };
        let store = open(dir.path());
        let left = store.pending_chunks(id, 0, 3 * S as usize).await.unwrap();
        assert_eq!(left.len() as u64, S + 10 - 3);
        assert_eq!(left.first().map(|(seq, _)| *seq), Some(S + 3));
        assert_eq!(store.get(id).await.unwrap().unwrap().counts.total(), S + 3);
        store.close().await.unwrap();
    }

    /// Segments dropped across several reopens leave a store that sled reopens whole: every
    /// chunk is acknowledged once, the campaign completes and no chunk tree is left.
    #[tokio::test]
    async fn segments_dropped_across_reopens_leave_a_sound_store() {
        use super::super::chunk_trees::SEGMENT_CHUNKS as S;
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let id = running(&store, 6 * S + 3, 1, 1).await.id;
            store.close().await.unwrap();
            id
        };
        let mut sent = 0;
        while sent < 6 * S + 3 {
            let store = open(dir.path());
            let batch = store.pending_chunks(id, 0, (S + 7) as usize).await.unwrap();
            assert_eq!(batch.first().map(|(seq, _)| *seq), Some(sent), "pending resumes where it stopped");
            for (seq, _) in batch {
                store.ack(Ack { campaign: id, seq, counts: online(1) }).await.unwrap();
                sent += 1;
            }
            store.close().await.unwrap();
        }
        let store = open(dir.path());
        let rec = store.get(id).await.unwrap().unwrap();
        assert_eq!((rec.state, rec.counts.total()), (CampaignState::Completed, 6 * S + 3));
        assert!(store.trees.db.tree_names().iter().all(|n| !n.starts_with(b"chunks")));
        store.close().await.unwrap();
    }

    /// A store of the earlier layout kept every campaign's chunks in one tree: opening it moves
    /// them to their campaign's tree, and the campaign reads on where it was.
    #[tokio::test]
    async fn chunks_of_the_single_tree_layout_move_to_their_campaigns_tree_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = open(dir.path());
            let rec = running(&store, 3, 2, 1).await;
            store.ack(Ack { campaign: rec.id, seq: 1, counts: online(2) }).await.unwrap();
            // As that layout left it: the sent chunk removed, the others in the one tree.
            let legacy = store.trees.db.open_tree("chunks").unwrap();
            for entry in store.trees.chunks.get(rec.id, 0).unwrap().iter() {
                let (k, v) = entry.unwrap();
                if parse_chunk_key(&k).map(|(_, seq)| seq) != Some(1) {
                    legacy.insert(k, v).unwrap();
                }
            }
            store.trees.chunks.drop_campaign(rec.id).unwrap();
            store.close().await.unwrap();
            rec.id
        };
        let store = open(dir.path());
        assert!(!store.trees.db.tree_names().iter().any(|n| n.as_ref() == b"chunks"), "the old tree is gone");
        assert_eq!(store.pending_chunks(id, 0, 10).await.unwrap(), vec![(0, chunk(2)), (2, chunk(2))]);
        store.close().await.unwrap();
    }

    /// A campaign's chunks go when it completes or is cancelled (a failed one keeps them), and
    /// a crash after the drop but before the completed record was saved completes it on open.
    #[tokio::test]
    async fn chunks_go_with_the_campaign_and_a_crash_between_drop_and_record_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let (cancelled, crashed) = {
            let store = open(dir.path());
            let cancelled = running(&store, 2, 2, 1).await.id;
            store.change(cancelled, Change::Act(Action::Cancel, 2)).await.unwrap();
            assert!(store.trees.chunks.get(cancelled, 0).is_none());
            let crashed = running(&store, 2, 2, 1).await.id;
            store.ack(Ack { campaign: crashed, seq: 0, counts: online(2) }).await.unwrap();
            // The last acknowledgement's tombstone and the drop, behind the writer's back.
            store
                .trees
                .done
                .insert(chunk_key(crashed, 1), super::super::codec::encode_compact(&online(2)).unwrap())
                .unwrap();
            store.trees.chunks.drop_campaign(crashed).unwrap();
            assert_eq!(store.get(crashed).await.unwrap().unwrap().state, CampaignState::Running);
            store.close().await.unwrap();
            (cancelled, crashed)
        };
        let store = open(dir.path());
        let rec = store.get(crashed).await.unwrap().unwrap();
        assert_eq!((rec.state, rec.folded, rec.counts.total()), (CampaignState::Completed, 2, 4));
        assert_eq!(store.pending_chunks(crashed, 0, 10).await.unwrap(), vec![]);
        assert_eq!(store.get(cancelled).await.unwrap().unwrap().state, CampaignState::Cancelled);
        assert!(store.trees.db.tree_names().iter().all(|n| !n.starts_with(b"chunks")), "no chunk tree is left");
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn an_upstream_held_schedule_waits_in_scheduled_until_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mut held = spec();
        held.mode = crate::domain::Mode::App;
        held.settings.upstream_schedule = true;
        held.settings.schedule_at_ms = Some(10_000);
        let rec = store.create(held, 1).await.unwrap();
        let rec = store.change(rec.id, Change::Act(Action::Start, 2)).await.unwrap();
        assert_eq!(rec.state, CampaignState::Running, "pushed at once with schedule_time");
        let rec = store.change(rec.id, Change::SetAppTask("RASA-1".into(), 3)).await.unwrap();
        assert_eq!((rec.state, rec.app_taskid.as_deref()), (CampaignState::Scheduled, Some("RASA-1")));
        let rec = store.change(rec.id, Change::Begin(10_001)).await.unwrap();
        let rec = store.change(rec.id, Change::SetAppTask("RASA-1".into(), 10_002)).await.unwrap();
        assert_eq!(rec.state, CampaignState::Completed, "the time came: Getui sent it");
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn illegal_transitions_and_deletes_are_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let rec = store.create(spec(), 1).await.unwrap();
        let err = store.change(rec.id, Change::Act(Action::Start, 2)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { state: CampaignState::Draft, .. }), "{err}");
        let err = store.change(rec.id, Change::Act(Action::Pause, 2)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
        store.change(rec.id, Change::Act(Action::Cancel, 3)).await.unwrap();
        assert!(matches!(store.delete(rec.id).await.unwrap_err(), StoreError::Conflict { .. }));
        let other = store.create(spec(), 1).await.unwrap();
        store.delete(other.id).await.unwrap();
        assert!(store.get(other.id).await.unwrap().is_none());
        store.close().await.unwrap();
    }

    /// Ids of `store`'s active campaigns.
    async fn active_ids(store: &SledStore) -> Vec<u64> {
        store.active_campaigns().await.unwrap().iter().map(|r| r.id).collect()
    }

    async fn census_of(store: &SledStore, state: CampaignState) -> u64 {
        store.census().await.unwrap().into_iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| n)
    }

    /// Three drafts; the second is started, the third cancelled.
    async fn three(store: &SledStore) -> [u64; 3] {
        let mut ids = [0; 3];
        for id in &mut ids {
            let rec = store.create(spec(), 1).await.unwrap();
            store.stage_chunk(rec.id, 0, chunk(2)).await.unwrap();
            let commit = UploadCommit { first_seq: 0, chunks: 1, recipients: 2, duplicates: 0, rejected: 0 };
            store.commit_upload(rec.id, commit).await.unwrap();
            *id = rec.id;
        }
        store.change(ids[1], Change::Act(Action::Start, 2)).await.unwrap();
        store.change(ids[2], Change::Act(Action::Cancel, 3)).await.unwrap();
        ids
    }

    #[tokio::test]
    async fn the_active_index_follows_every_state_change_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let [a, b, c] = three(&store).await;
        assert_eq!(active_ids(&store).await, [a, b]);
        assert_eq!(census_of(&store, CampaignState::Cancelled).await, 1);
        store.ack(Ack { campaign: b, seq: 0, counts: online(2) }).await.unwrap();
        assert_eq!(active_ids(&store).await, [a], "completed by its last acknowledgement");
        store.delete(a).await.unwrap();
        assert!(active_ids(&store).await.is_empty());
        let census: Vec<u64> = store.census().await.unwrap().into_iter().map(|(_, n)| n).collect();
        assert_eq!(census, [0, 0, 0, 0, 1, 1, 0], "draft … completed, cancelled, failed");
        let reads = store.campaign_reads();
        store.active_campaigns().await.unwrap();
        assert_eq!(store.campaign_reads(), reads, "no finished record is read");
        assert!(store.get(c).await.unwrap().is_some());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_store_without_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, _] = {
            let store = open(dir.path());
            let ids = three(&store).await;
            store.close().await.unwrap();
            ids
        };
        {
            // The previous version's layout: no index trees at all. `open_db` waits for the
            // closed store's background flusher to let go of the file lock.
            let settings = StoreSettings { path: dir.path().to_path_buf(), cache_bytes: 8 << 20 };
            let db = open_db(&settings).unwrap();
            db.drop_tree("active").unwrap();
            db.drop_tree("finished").unwrap();
            db.flush().unwrap();
        }
        let store = open(dir.path());
        assert_eq!(active_ids(&store).await, [a, b]);
        assert_eq!(census_of(&store, CampaignState::Running).await, 1);
        assert_eq!(store.expire_finished(i64::MAX, 10).await.unwrap(), 1, "the cancelled one is in the finish index");
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_and_filter_by_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let [a, b, c] = three(&store).await;
        let page = |state, after, limit| store.campaigns_page(PageQuery { state, after, limit });
        let ids = |p: &CampaignPage| p.campaigns.iter().map(|r| r.id).collect::<Vec<_>>();
        let first = page(None, 0, 2).await.unwrap();
        assert_eq!((ids(&first), first.next_after), (vec![a, b], Some(b)));
        let rest = page(None, b, 2).await.unwrap();
        assert_eq!((ids(&rest), rest.next_after), (vec![c], None));
        assert_eq!(ids(&page(Some(CampaignState::Running), 0, 10).await.unwrap()), [b]);
        assert_eq!(ids(&page(Some(CampaignState::Cancelled), 0, 10).await.unwrap()), [c]);
        assert!(page(Some(CampaignState::Draft), a, 10).await.unwrap().campaigns.is_empty());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn expiry_removes_only_campaigns_finished_before_the_cutoff_with_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mut ids = Vec::new();
        for finished in [100, 200, 300] {
            let rec = running(&store, 2, 3, 50).await;
            // Chunk 1 acknowledged out of order: its tombstone waits for chunk 0.
            store.ack(Ack { campaign: rec.id, seq: 1, counts: online(3) }).await.unwrap();
            store.mark_inflight(rec.id, 0).await.unwrap();
            store.change(rec.id, Change::Fail("no".into(), finished)).await.unwrap();
            ids.push(rec.id);
        }
        let draft = store.create(spec(), 1).await.unwrap().id;
        assert_eq!(store.expire_finished(250, 1).await.unwrap(), 1, "at most `max` per call");
        assert_eq!(store.expire_finished(250, 10).await.unwrap(), 1);
        assert_eq!(store.expire_finished(250, 10).await.unwrap(), 0);
        for gone in &ids[..2] {
            assert!(store.get(*gone).await.unwrap().is_none());
            let prefix = gone.to_be_bytes();
            for tree in [&store.trees.done, &store.trees.inflight] {
                assert_eq!(tree.scan_prefix(prefix).count(), 0, "nothing of campaign {gone} is left");
            }
            assert!(store.trees.chunks.get(*gone, 0).is_none(), "campaign {gone}'s chunks are gone");
            assert_eq!(store.progress(*gone).await.unwrap(), Progress::default());
        }
        let kept = store.get(ids[2]).await.unwrap().unwrap();
        assert_eq!(kept.state, CampaignState::Failed);
        assert!(store.trees.chunks.get(ids[2], 0).is_some(), "a failed campaign keeps its unsent chunks");
        assert_eq!(store.progress(ids[2]).await.unwrap().counts.total(), 3, "a retained campaign keeps its report");
        assert_eq!(active_ids(&store).await, [draft]);
        assert_eq!(census_of(&store, CampaignState::Failed).await, 1);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn the_identity_is_drawn_once_kept_across_reopens_and_shown_beside_the_store() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = open(a.path());
        let identity = store.identity();
        let rec = store.create(spec(), 0).await.unwrap();
        assert!(
            matches!(rec.request_key(identity), crate::domain::RequestKey::Keyed { store, .. } if store == identity)
        );
        store.close().await.unwrap();
        drop(store);
        assert_eq!(read_identity_file(a.path()), Some(identity));
        let again = open(a.path());
        assert_eq!(again.identity(), identity);
        let other = open(b.path());
        assert_ne!(other.identity(), identity);
    }

    /// A store written before stores had an identity: campaign records without a salt and no
    /// `meta` tree. It opens, gets an identity, and its campaigns keep their old request ids.
    #[tokio::test]
    async fn a_store_from_before_identities_opens_and_keeps_its_request_ids() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            let rec = store.create(spec(), 0).await.unwrap();
            store.close().await.unwrap();
            drop(store);
            let db = sled::open(dir.path()).unwrap();
            // The record as the previous version wrote it: no `request_salt` key at all.
            let mut fields = serde_json::to_value(&rec).unwrap();
            fields.as_object_mut().unwrap().remove("request_salt");
            let old = super::super::codec::encode_named(&fields).unwrap();
            db.open_tree("campaigns").unwrap().insert(rec.id.to_be_bytes(), old).unwrap();
            db.drop_tree("meta").unwrap();
            db.flush().unwrap();
            std::fs::remove_file(dir.path().join(IDENTITY_FILE)).unwrap();
        }
        let store = open(dir.path());
        let rec = store.list().await.unwrap().remove(0);
        assert_eq!(rec.request_key(store.identity()), crate::domain::RequestKey::Legacy { campaign: rec.id });
        assert_eq!(read_identity_file(dir.path()), Some(store.identity()));
        let new = store.create(spec(), 0).await.unwrap();
        assert!(matches!(new.request_key(store.identity()), crate::domain::RequestKey::Keyed { .. }));
    }
}
