//! The store's single writer thread.
//!
//! Every write goes through here, fed over a bounded crossbeam channel, so writes to one
//! campaign never race and no sled call sits on an async worker. Commands that arrive together
//! are applied together and made durable by one flush (group commit); only then are their
//! callers answered. sled writes every flush through a thread pool that wakes all its threads,
//! so two kinds of command do not ask for a flush of their own:
//! - a staged chunk counts for nothing until its upload's commit, whose flush makes it durable
//!   with it;
//! - an acknowledgement becomes durable with the next flush: the next list chunk's in-flight
//!   mark (which must be durable before its call leaves), a state change, the 16th
//!   acknowledgement, or 50 ms at the latest. A crash before then leaves the chunk as a crash
//!   between the call and its acknowledgement leaves it: a list chunk marked in flight, settled
//!   by the replay policy; a batch_single chunk pending, its messages sent again under the same
//!   request ids, which Getui drops as repeats. An acknowledgement that finishes its campaign
//!   is flushed before it is answered, so a campaign seen completed stays completed.
//!
//! No sled batch or transaction is used: they take a process-wide lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use tokio::sync::oneshot;

use super::chunk_trees::ChunkTrees;
use super::codec::{chunk_entries, chunk_key, decode, encode_compact, encode_named, parse_chunk_key};
use super::rules;
use super::sled_texting::TextingTrees;
use super::texting::{due_key, texting_key};
use super::TextingEntry;
use super::{Ack, CampaignRecord, Change, Chunk, Progress, StoreError, UploadCommit};
use crate::clock::now_ms;
use crate::domain::texting::SmsTally;
use crate::domain::{CampaignSpec, CampaignState, Counts};

/// Most commands applied under one flush.
const GROUP_COMMIT_MAX: usize = 512;
/// Staged chunk bytes written without a flush before one is made anyway. Staged chunks need no
/// flush of their own (the commit makes them durable), but sled keeps what it has not written
/// out in memory: without this bound a fast upload piles up half a second of chunks (sled's
/// own flush interval), which was the peak memory of a 10M-recipient run.
const STAGED_UNFLUSHED_MAX: usize = 2 << 20;

/// Acknowledgements applied without a flush before one is made anyway, and the longest one
/// waits for it. They bound what a crash can undo: the chunks re-sent after it (list chunks
/// counted in `replayed`, batch_single messages dropped by Getui as repeats of their request
/// ids), while a flush serves 16 chunks' acknowledgements instead of one.
const ACKS_UNFLUSHED_MAX: usize = 16;
const ACK_FLUSH_DELAY: Duration = Duration::from_millis(50);

/// A write request and where to send its answer.
pub(super) enum Command {
    Create { spec: Box<CampaignSpec>, now_ms: i64, reply: Reply<CampaignRecord> },
    Change { id: u64, change: Change, reply: Reply<CampaignRecord> },
    Delete { id: u64, reply: Reply<()> },
    Stage { id: u64, seq: u64, chunk: Chunk, reply: Reply<()> },
    Commit { id: u64, commit: UploadCommit, reply: Reply<CampaignRecord> },
    Discard { id: u64, first_seq: u64, chunks: u64, reply: Reply<()> },
    Inflight { id: u64, seq: u64, reply: Reply<()> },
    Ack { ack: Ack, reply: Reply<()> },
    Flush { reply: Reply<()> },
    Shutdown { reply: Reply<()> },
    Expire { before_ms: i64, max: usize, reply: Reply<usize> },
    TextingFinish { entry: TextingEntry, tally: SmsTally, reply: Reply<()> },
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// The sled trees, one per concern.
#[derive(Clone)]
pub(super) struct Trees {
    pub db: sled::Db,
    pub campaigns: sled::Tree,
    /// Each campaign's chunks, in trees of consecutive chunks (see `chunk_trees`).
    pub chunks: ChunkTrees,
    pub done: sled::Tree,
    pub inflight: sled::Tree,
    /// Index of campaigns not in a final state: id → nothing. Kept by [`Writer::save`].
    pub active: sled::Tree,
    /// Index of finished campaigns by finish time: `finished_ms ‖ id` → nothing.
    pub finished: sled::Tree,
    /// SMS fallback's texting states, receipts and serial numbers.
    pub texting: TextingTrees,
}

/// Live progress shared with readers.
pub(super) type LiveMap = Arc<RwLock<HashMap<u64, Progress>>>;

/// Campaigns per state (indexed like [`CampaignState::ALL`]), shared with readers.
pub(super) type CensusCell = Arc<RwLock<[u64; 7]>>;

fn state_slot(state: CampaignState) -> usize {
    CampaignState::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

pub(super) struct Writer {
    trees: Trees,
    records: HashMap<u64, CampaignRecord>,
    /// Acknowledged chunks not yet folded, per campaign: seq → counts.
    unfolded: HashMap<u64, BTreeMap<u64, Counts>>,
    acked: HashMap<u64, u64>,
    live: LiveMap,
    census: CensusCell,
    /// Per draft, a seq from which on the store holds no chunk, so staging there has no
    /// earlier value to clear first. Known for drafts recovered or created by this writer.
    clear_from: HashMap<u64, u64>,
    /// Bytes of staged chunks written since the last flush.
    staged_unflushed: usize,
    /// Acknowledgements applied since the last flush.
    acks_unflushed: usize,
    /// When the oldest of them must be flushed at the latest.
    acks_flush_due: Option<Instant>,
}

/// A reply to send once the batch is durable.
type Pending = Box<dyn FnOnce(Option<&StoreError>) + Send>;

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

impl Writer {
    /// Loads every campaign and repairs what a crash may have left half-done.
    pub(super) fn recover(trees: Trees, live: LiveMap, census: CensusCell) -> Result<Writer, StoreError> {
        let mut w = Writer {
            trees,
            records: HashMap::new(),
            unfolded: HashMap::new(),
            acked: HashMap::new(),
            live,
            census,
            clear_from: HashMap::new(),
            staged_unflushed: 0,
            acks_unflushed: 0,
            acks_flush_due: None,
        };
        for item in w.trees.campaigns.iter() {
            let (_, v) = item.map_err(db_err)?;
            let rec: CampaignRecord = decode(&v)?;
            w.records.insert(rec.id, rec);
        }
        w.reindex()?;
        let moved = w.trees.chunks.migrate_legacy()?;
        if moved > 0 {
            tracing::info!(keys = moved, "chunks moved to one tree per campaign");
        }
        let ids: Vec<u64> = w.records.keys().copied().collect();
        for id in ids {
            w.recover_campaign(id)?;
        }
        w.drop_spent_chunk_trees()?;
        w.trees.db.flush().map_err(db_err)?;
        Ok(w)
    }

    /// Makes the state indexes and the census agree with the records. A store written before
    /// the indexes existed has none, and a crash may have split a record from its index entry;
    /// both are repaired here, once per open.
    fn reindex(&mut self) -> Result<(), StoreError> {
        let mut census = [0u64; 7];
        let mut active = HashSet::new();
        let mut finished = HashSet::new();
        for rec in self.records.values() {
            census[state_slot(rec.state)] += 1;
            if rec.state.is_final() {
                finished.insert(finished_key(rec).to_vec());
            } else {
                active.insert(rec.id.to_be_bytes().to_vec());
            }
        }
        reconcile(&self.trees.active, &active)?;
        reconcile(&self.trees.finished, &finished)?;
        *self.census.write().unwrap_or_else(|p| p.into_inner()) = census;
        Ok(())
    }

    fn recover_campaign(&mut self, id: u64) -> Result<(), StoreError> {
        let Some(rec) = self.records.get(&id).cloned() else {
            return Ok(());
        };
        let prefix = id.to_be_bytes();
        for item in self.trees.done.scan_prefix(prefix) {
            let (k, v) = item.map_err(db_err)?;
            let Some((_, seq)) = parse_chunk_key(&k) else {
                continue;
            };
            if seq < rec.folded {
                self.trees.done.remove(k).map_err(db_err)?;
                continue;
            }
            self.unfolded.entry(id).or_default().insert(seq, decode(&v)?);
            *self.acked.entry(id).or_insert(0) += 1;
        }
        if rec.state == CampaignState::Draft {
            // Chunks of an upload that never committed.
            self.remove_chunks_from(id, rec.chunk_count)?;
            self.clear_from.insert(id, rec.chunk_count);
        }
        *self.acked.entry(id).or_insert(0) += rec.folded;
        self.fold(id)?;
        Ok(())
    }

    /// Drops the chunk trees that nothing will read again (a crash came between a fold and
    /// its drop): those of campaigns that completed, were cancelled or are gone, and the
    /// segments a campaign has folded past.
    fn drop_spent_chunk_trees(&mut self) -> Result<(), StoreError> {
        for id in self.trees.chunks.ids() {
            match self.records.get(&id) {
                Some(rec) if !chunks_spent(rec.state) => self.trees.chunks.drop_below(id, rec.folded)?,
                _ => self.trees.chunks.drop_campaign(id)?,
            }
        }
        Ok(())
    }

    /// Serves commands until Shutdown or until every sender is gone.
    pub(super) fn run(mut self, rx: crossbeam_channel::Receiver<Command>) {
        loop {
            let first = match self.acks_flush_due {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(due) => rx.recv_deadline(due),
            };
            let stop = match first {
                Ok(first) => self.write_batch(gather(&rx, first)),
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_acks();
                    false
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush_acks();
                    true
                }
            };
            if stop {
                break;
            }
        }
    }

    /// Applies a batch, flushes it if any command asks for that (see the module's comment),
    /// and answers its commands. True when it held a Shutdown.
    fn write_batch(&mut self, batch: Vec<Command>) -> bool {
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        let mut touched = HashSet::new();
        let mut stop = false;
        let mut durable = batch.iter().any(asks_for_flush);
        for cmd in batch {
            stop |= matches!(cmd, Command::Shutdown { .. });
            if matches!(cmd, Command::Ack { .. }) {
                self.acks_unflushed += 1;
                self.acks_flush_due.get_or_insert_with(|| Instant::now() + ACK_FLUSH_DELAY);
            }
            pending.push(self.apply(cmd, &mut touched));
        }
        durable |= self.staged_unflushed >= STAGED_UNFLUSHED_MAX
            || self.acks_unflushed >= ACKS_UNFLUSHED_MAX
            || self.acks_flush_due.is_some_and(|due| due <= Instant::now());
        let mut failure = None;
        for id in touched {
            match self.fold(id) {
                Ok(state_changed) => durable |= state_changed,
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none() && durable {
            failure = self.flush().err();
        }
        if let Some(e) = &failure {
            tracing::error!(error = %e, "store write failed");
        }
        for p in pending {
            p(failure.as_ref());
        }
        stop
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.staged_unflushed = 0;
        self.acks_unflushed = 0;
        self.acks_flush_due = None;
        self.trees.db.flush().map(|_| ()).map_err(db_err)
    }

    /// Makes the acknowledgements already answered durable; a failure can only be logged, and
    /// leaves their chunks marked in flight or pending, to be sent again after a restart.
    fn flush_acks(&mut self) {
        if self.acks_unflushed > 0 {
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "cannot flush acknowledgements; their chunks go again after a restart");
            }
        }
    }

    fn apply(&mut self, cmd: Command, touched: &mut HashSet<u64>) -> Pending {
        match cmd {
            Command::Create { spec, now_ms, reply } => later(reply, self.create(*spec, now_ms)),
            Command::Change { id, change, reply } => later(reply, self.change(id, change)),
            Command::Delete { id, reply } => later(reply, self.delete(id)),
            Command::Stage { id, seq, chunk, reply } => later(reply, self.stage(id, seq, &chunk)),
            Command::Commit { id, commit, reply } => later(reply, self.commit(id, commit)),
            Command::Discard { id, first_seq, chunks, reply } => later(reply, self.discard(id, first_seq, chunks)),
            Command::Inflight { id, seq, reply } => {
                let r = self.trees.inflight.insert(chunk_key(id, seq), &[]).map(|_| ()).map_err(db_err);
                later(reply, r)
            }
            Command::Ack { ack, reply } => {
                touched.insert(ack.campaign);
                later(reply, self.ack(ack))
            }
            Command::Flush { reply } | Command::Shutdown { reply } => later(reply, Ok(())),
            Command::Expire { before_ms, max, reply } => later(reply, self.expire(before_ms, max)),
            Command::TextingFinish { entry, tally, reply } => later(reply, self.finish_texting(&entry, tally)),
        }
    }

    /// Retention: compacts, then removes, up to `max` campaigns that finished before
    /// `before_ms`, oldest first. Each step is idempotent, so a crash midway is finished by the
    /// next pass: chunks and tombstones go first, then the record, then its index entry.
    fn expire(&mut self, before_ms: i64, max: usize) -> Result<usize, StoreError> {
        let end = finished_index_key(before_ms, 0);
        let keys: Vec<sled::IVec> =
            self.trees.finished.range(..end).keys().take(max).collect::<Result<_, _>>().map_err(db_err)?;
        for key in &keys {
            let Some(id) = key.get(8..16).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes) else {
                self.trees.finished.remove(key).map_err(db_err)?;
                continue;
            };
            self.trees.chunks.drop_campaign(id)?;
            self.clear_from.remove(&id);
            for tree in [self.trees.done.clone(), self.trees.inflight.clone()] {
                self.remove_range(&tree, id, 0)?;
            }
            self.trees.campaigns.remove(id.to_be_bytes()).map_err(db_err)?;
            if let Some(rec) = self.records.remove(&id) {
                self.count(Some(rec.state), None);
            }
            self.unfolded.remove(&id);
            self.acked.remove(&id);
            self.live.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
            self.trees.finished.remove(key).map_err(db_err)?;
        }
        Ok(keys.len())
    }

    /// Removes a finished texting state and adds its tally to the campaign, in one group
    /// commit. A campaign deleted meanwhile only loses the state.
    fn finish_texting(&mut self, entry: &TextingEntry, tally: SmsTally) -> Result<(), StoreError> {
        let t = &self.trees.texting;
        t.texting.remove(texting_key(entry.campaign, entry.seq)).map_err(db_err)?;
        t.due.remove(due_key(entry.due_ms, entry.campaign, entry.seq)).map_err(db_err)?;
        if self.records.contains_key(&entry.campaign) {
            self.change(entry.campaign, Change::AddSms(tally))?;
        }
        Ok(())
    }

    /// Moves one campaign between states in the census (`None`: created or removed).
    fn count(&self, from: Option<CampaignState>, to: Option<CampaignState>) {
        let mut census = self.census.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = from {
            census[state_slot(s)] = census[state_slot(s)].saturating_sub(1);
        }
        if let Some(s) = to {
            census[state_slot(s)] += 1;
        }
    }

    fn create(&mut self, spec: CampaignSpec, now_ms: i64) -> Result<CampaignRecord, StoreError> {
        let id = self.trees.db.generate_id().map_err(db_err)? + 1;
        let rec = rules::new_record(id, spec, now_ms)?;
        self.save(&rec)?;
        self.clear_from.insert(id, 0);
        self.publish(&rec);
        Ok(rec)
    }

    fn record(&self, id: u64) -> Result<CampaignRecord, StoreError> {
        self.records.get(&id).cloned().ok_or(StoreError::NotFound(id))
    }

    fn save(&mut self, rec: &CampaignRecord) -> Result<(), StoreError> {
        self.trees.campaigns.insert(rec.id.to_be_bytes(), encode_named(rec)?).map_err(db_err)?;
        let before = self.records.get(&rec.id).map(|r| r.state);
        if before != Some(rec.state) {
            self.index(rec)?;
            self.count(before, Some(rec.state));
        }
        self.records.insert(rec.id, rec.clone());
        Ok(())
    }

    /// Keeps the active and finished indexes in step with a record whose state changed.
    fn index(&self, rec: &CampaignRecord) -> Result<(), StoreError> {
        let id = rec.id.to_be_bytes();
        if rec.state.is_final() {
            self.trees.finished.insert(finished_key(rec), &[]).map_err(db_err)?;
            self.trees.active.remove(id).map_err(db_err)?;
        } else {
            self.trees.active.insert(id, &[]).map_err(db_err)?;
        }
        Ok(())
    }

    fn change(&mut self, id: u64, change: Change) -> Result<CampaignRecord, StoreError> {
        let mut rec = self.record(id)?;
        let before = rec.state;
        if rules::apply_change(&mut rec, change)? {
            // Cancelled: nothing of it is in flight any more.
            self.remove_range(&self.trees.inflight.clone(), rec.id, 0)?;
        }
        if rec.state != before && chunks_spent(rec.state) {
            self.trees.chunks.drop_campaign(rec.id)?;
        }
        self.save(&rec)?;
        Ok(rec)
    }

    fn delete(&mut self, id: u64) -> Result<(), StoreError> {
        let rec = self.record(id)?;
        rules::check_delete(&rec)?;
        self.trees.chunks.drop_campaign(id)?;
        self.clear_from.remove(&id);
        for tree in [self.trees.done.clone(), self.trees.inflight.clone()] {
            self.remove_range(&tree, id, 0)?;
        }
        self.trees.campaigns.remove(id.to_be_bytes()).map_err(db_err)?;
        self.trees.active.remove(id.to_be_bytes()).map_err(db_err)?;
        self.records.remove(&id);
        self.count(Some(rec.state), None);
        self.unfolded.remove(&id);
        self.acked.remove(&id);
        self.live.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
        Ok(())
    }

    fn stage(&mut self, id: u64, seq: u64, chunk: &Chunk) -> Result<(), StoreError> {
        let rec = self.records.get(&id).ok_or(StoreError::NotFound(id))?;
        if seq < rec.chunk_count {
            return Err(StoreError::Conflict { state: rec.state, message: "chunk already committed".into() });
        }
        // Nothing of an earlier value for this seq may remain between or after the new parts.
        let clear_from = self.clear_from.get(&id).copied().unwrap_or(u64::MAX);
        if seq < clear_from {
            self.remove_chunk(id, seq)?;
        }
        self.clear_from.entry(id).and_modify(|c| *c = (*c).max(seq + 1));
        let value = encode_compact(chunk)?;
        self.staged_unflushed += value.len();
        let tree = self.trees.chunks.get_or_create(id, seq)?;
        for (key, piece) in chunk_entries(id, seq, &value) {
            tree.insert(key, piece).map_err(db_err)?;
        }
        Ok(())
    }

    fn commit(&mut self, id: u64, c: UploadCommit) -> Result<CampaignRecord, StoreError> {
        let mut rec = self.record(id)?;
        if let Err(refused) = rules::apply_commit(&mut rec, c) {
            self.discard(id, c.first_seq, c.chunks)?;
            return Err(refused);
        }
        self.save(&rec)?;
        Ok(rec)
    }

    fn discard(&mut self, id: u64, first_seq: u64, chunks: u64) -> Result<(), StoreError> {
        let committed = self.records.get(&id).map_or(0, |r| r.chunk_count);
        let from = first_seq.max(committed);
        for seq in from..first_seq + chunks {
            self.remove_chunk(id, seq)?;
        }
        if let Some(clear) = self.clear_from.get_mut(&id).filter(|c| first_seq + chunks >= **c) {
            *clear = (*clear).min(from);
        }
        Ok(())
    }

    fn ack(&mut self, ack: Ack) -> Result<(), StoreError> {
        let key = chunk_key(ack.campaign, ack.seq);
        let folded = self.records.get(&ack.campaign).map(|r| r.folded).ok_or(StoreError::NotFound(ack.campaign))?;
        let seen = ack.seq < folded || self.unfolded.get(&ack.campaign).is_some_and(|m| m.contains_key(&ack.seq));
        if seen {
            return Ok(()); // a late duplicate acknowledgement
        }
        // The chunk stays in its tree until the fold has passed the tree's last chunk: the
        // tombstone (and, once folded, the record) tells readers it was sent.
        self.trees.done.insert(key, encode_compact(&ack.counts)?).map_err(db_err)?;
        self.trees.inflight.remove(key).map_err(db_err)?;
        self.unfolded.entry(ack.campaign).or_default().insert(ack.seq, ack.counts);
        *self.acked.entry(ack.campaign).or_insert(0) += 1;
        Ok(())
    }

    /// Folds the contiguous run of acknowledged chunks into the campaign's counters, deletes
    /// their tombstones, completes the campaign when nothing is left, and publishes progress.
    /// True when the campaign's state changed (it completed).
    fn fold(&mut self, id: u64) -> Result<bool, StoreError> {
        let Some(mut rec) = self.records.get(&id).cloned() else {
            return Ok(false);
        };
        let (before, state_before) = (rec.folded, rec.state);
        let changed = rules::fold(&mut rec, self.unfolded.entry(id).or_default(), now_ms());
        // Sent chunks go a segment at a time, before the record says they were folded: a
        // crash between leaves their tombstones, which the next open folds again.
        if rec.state != state_before && chunks_spent(rec.state) {
            self.trees.chunks.drop_campaign(id)?;
        } else if rec.folded > before {
            self.trees.chunks.drop_below(id, rec.folded)?;
        }
        // Progress before the record: readers take the record, then progress, so one that
        // sees the campaign completed must find the last chunk's counts already there.
        self.publish(&rec);
        if changed {
            self.save(&rec)?;
            for seq in before..rec.folded {
                self.trees.done.remove(chunk_key(id, seq)).map_err(db_err)?;
            }
        }
        Ok(rec.state != state_before)
    }

    /// Makes `rec`'s counts and its unfolded acknowledgements what readers see as progress.
    fn publish(&self, rec: &CampaignRecord) {
        let id = rec.id;
        let mut counts = rec.counts.clone();
        for c in self.unfolded.get(&id).into_iter().flat_map(|m| m.values()) {
            counts.merge(c);
        }
        let acked_chunks = self.acked.get(&id).copied().unwrap_or(0);
        self.live.write().unwrap_or_else(|p| p.into_inner()).insert(id, Progress { counts, acked_chunks });
    }

    /// Removes every key of campaign `id` with sequence ≥ `from_seq` in `tree` (chunk parts
    /// included).
    fn remove_range(&self, tree: &sled::Tree, id: u64, from_seq: u64) -> Result<(), StoreError> {
        let prefix = id.to_be_bytes();
        let keys: Vec<sled::IVec> = tree
            .range(chunk_key(id, from_seq)..)
            .keys()
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        for k in keys {
            tree.remove(k).map_err(db_err)?;
        }
        Ok(())
    }

    /// Removes chunk `seq` of campaign `id`, whole or in parts.
    fn remove_chunk(&self, id: u64, seq: u64) -> Result<(), StoreError> {
        let Some(tree) = self.trees.chunks.get(id, seq) else {
            return Ok(());
        };
        let keys: Vec<sled::IVec> =
            tree.scan_prefix(chunk_key(id, seq)).keys().collect::<Result<_, _>>().map_err(db_err)?;
        for k in keys {
            tree.remove(k).map_err(db_err)?;
        }
        Ok(())
    }

    /// Removes the chunks of campaign `id` from `from_seq` on (staged, never committed).
    fn remove_chunks_from(&self, id: u64, from_seq: u64) -> Result<(), StoreError> {
        for tree in self.trees.chunks.segments(id, from_seq, u64::MAX) {
            self.remove_range(&tree, id, from_seq)?;
        }
        Ok(())
    }
}

/// Whether a campaign in `state` will never read its chunks again: it completed (all sent)
/// or was cancelled. A failed campaign keeps them, as the record of what was not sent.
fn chunks_spent(state: CampaignState) -> bool {
    matches!(state, CampaignState::Completed | CampaignState::Cancelled)
}

/// The finished-index key of a record in a final state (its finish time, else its creation).
fn finished_key(rec: &CampaignRecord) -> [u8; 16] {
    finished_index_key(rec.finished_ms.unwrap_or(rec.created_ms), rec.id)
}

/// `finished_ms ‖ id`, big-endian, so a range scan walks campaigns by finish time.
fn finished_index_key(finished_ms: i64, id: u64) -> [u8; 16] {
    chunk_key(finished_ms.max(0) as u64, id)
}

/// Makes `tree`'s keys exactly `wanted`.
fn reconcile(tree: &sled::Tree, wanted: &HashSet<Vec<u8>>) -> Result<(), StoreError> {
    for key in tree.iter().keys() {
        let key = key.map_err(db_err)?;
        if !wanted.contains(key.as_ref()) {
            tree.remove(key).map_err(db_err)?;
        }
    }
    for key in wanted {
        if !tree.contains_key(key).map_err(db_err)? {
            tree.insert(key.as_slice(), &[]).map_err(db_err)?;
        }
    }
    Ok(())
}

/// Wraps a result so it is sent after the batch's flush, or replaced by the flush's error.
/// `first` and whatever else is waiting, up to [`GROUP_COMMIT_MAX`] commands.
fn gather(rx: &crossbeam_channel::Receiver<Command>, first: Command) -> Vec<Command> {
    let mut batch = vec![first];
    while batch.len() < GROUP_COMMIT_MAX {
        match rx.try_recv() {
            Ok(c) => batch.push(c),
            Err(_) => break,
        }
    }
    batch
}

/// Whether a command's caller must wait for a flush (see the module's comment for the two
/// that need not).
fn asks_for_flush(cmd: &Command) -> bool {
    !matches!(cmd, Command::Stage { .. } | Command::Ack { .. })
}

fn later<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Pending {
    Box::new(move |flush_err: Option<&StoreError>| {
        let result = match (result, flush_err) {
            (Ok(_), Some(e)) => Err(StoreError::Db(e.to_string())),
            (r, _) => r,
        };
        let _ = reply.send(result);
    })
}
