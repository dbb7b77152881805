//! Durable state: campaigns, their recipient chunks, and what became of each chunk.
//!
//! [`Store`] is the interface the API and the dispatcher use; [`SledStore`] implements it on an
//! embedded sled database (the default), [`NatsStore`] on NATS JetStream streams and KV
//! buckets that several daemons can share (`store.backend = "nats"`). Every method is async
//! (the sled one runs its reads on the blocking pool and its writes on its writer thread).
//!
//! A **chunk** (≤ 1000 recipients) is the unit of upload, leasing, retry and acknowledgement.
//! Uploads stage chunks and commit them in one step, so a failed upload leaves nothing behind.
//! An acknowledgement leaves a small tombstone holding the chunk's result counts; tombstones
//! are folded, in chunk order, into the campaign's counters and then deleted. The sent chunks
//! go as the fold passes them (the sled store drops them a segment of 64 at a time, see
//! `chunk_trees`), so disk and memory stay flat however large the campaign.

pub(crate) mod bindings;
mod chunk_trees;
mod chunk_vars;
mod codec;
mod deliveries;
pub mod nats;
mod patient;
mod rules;
pub mod segment_buffers;
mod sled_store;
mod sled_texting;
mod texting;
#[cfg(test)]
mod v1_records;
mod writer;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::domain::texting::SmsTally;
use crate::domain::{Action, CampaignSpec, CampaignState, CompactCid, Counts, RequestKey, StoreIdentity};

pub use chunk_vars::{ChunkVars, RecipientVars};
pub use nats::{NatsSettings, NatsStore};
pub use patient::PatientStore;
pub use sled_store::{read_identity_file, SledStore, StoreSettings};
pub use texting::{ReceiptKey, TextingEntry};

/// Smallest allocation glibc's malloc serves from `mmap` (so `free` gives it straight back).
pub const MMAP_THRESHOLD_BYTES: usize = 256 * 1024;

/// Tunes glibc's malloc for a process that runs the store for long; call it once, before any
/// thread starts (the daemon does, first thing in `main`). Elsewhere than glibc it does nothing.
///
/// **The mmap threshold is pinned at [`MMAP_THRESHOLD_BYTES`].** sled writes through IO buffers
/// of one segment (512 KiB) each, allocated and freed for every segment written. glibc starts
/// with a 128 KiB threshold but raises it to the size of any mmapped block that is freed, so
/// after the first such buffer every later one comes from the heap, where small long-lived
/// allocations settle between and above the freed buffers and the heap can no longer shrink:
/// four uploads of heavy `vars` left 110–150 MB of free but unreturned heap (`malloc_trim(0)`
/// gave it back; `MALLOC_MMAP_THRESHOLD_=262144` prevented it). Setting the threshold
/// explicitly also turns that sliding adjustment off. (The daemon's allocator,
/// [`segment_buffers::SegmentBuffers`], keeps two freed IO buffers mapped for sled's next ones,
/// so sled's steady writing reuses mapped pages instead of faulting new ones in.)
///
/// **Arenas are capped at one per core** ([`malloc_arenas`]), unless `MALLOC_ARENA_MAX` or
/// `GLIBC_TUNABLES` already says how many. glibc gives each thread that meets a busy arena a
/// new one, up to eight per core, and each arena keeps its own free memory. The daemon has more
/// threads than cores (the async workers, the store's writer, sled's seven IO threads), though
/// no more of them run at once than there are cores. Capped, a 10M-recipient list campaign
/// peaked 3–4 MB lower (46, 46 and 48 MB against 49, 50 and 51, alternating in one sitting on
/// 2 cores), a 1M one as before (38 MB), at the same CPU per recipient.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning, under malloc's own lock. It refuses
        // (returns 0) only a threshold above 32 MiB.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) };
        debug_assert_eq!(ok, 1, "mallopt(M_MMAP_THRESHOLD) refused");
        if let Some(arenas) = malloc_arenas(
            std::env::var_os("MALLOC_ARENA_MAX").is_some(),
            std::env::var("GLIBC_TUNABLES").ok().as_deref(),
            std::thread::available_parallelism().map_or(1, usize::from),
        ) {
            // SAFETY: as above; any positive arena count is accepted.
            let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
            debug_assert_eq!(ok, 1, "mallopt(M_ARENA_MAX) refused");
        }
    }
}

/// The arena cap [`tune_malloc`] sets: one per core, at least two; none when the environment
/// already sets one (`MALLOC_ARENA_MAX`, or `arena_max` in `GLIBC_TUNABLES`), which glibc has
/// then applied itself.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn malloc_arenas(env_arena_max: bool, glibc_tunables: Option<&str>, cores: usize) -> Option<i32> {
    let tuned = glibc_tunables.is_some_and(|t| t.contains("glibc.malloc.arena_max"));
    (!env_arena_max && !tuned).then(|| i32::try_from(cores.max(2)).unwrap_or(i32::MAX))
}

/// A boxed future, so [`Store`] stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Everything the store can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (disk full, corruption).
    #[error("store failure: {0}")]
    Db(String),
    /// A stored value could not be read back.
    #[error("stored value unreadable: {0}")]
    Codec(String),
    /// No campaign with that id.
    #[error("no campaign {0}")]
    NotFound(u64),
    /// The campaign's state does not allow the change.
    #[error("{message}")]
    Conflict {
        /// The state the campaign is in.
        state: CampaignState,
        /// What was refused and why.
        message: String,
    },
    /// The store is shutting down.
    #[error("the store is shutting down")]
    Closed,
    /// The NATS servers of the shared backend cannot be reached (at start, or they were lost).
    #[error("NATS unavailable at {url}: {message}")]
    Unavailable {
        /// The seed URLs tried.
        url: String,
        /// What failed.
        message: String,
    },
}

/// A campaign and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// Campaign number (from sled's crash-safe id generator).
    pub id: u64,
    /// What was asked for.
    pub spec: CampaignSpec,
    /// Lifecycle state.
    pub state: CampaignState,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// When it first started sending.
    pub started_ms: Option<i64>,
    /// When it reached a final state.
    pub finished_ms: Option<i64>,
    /// Committed chunks (sequence numbers `0..chunk_count`).
    pub chunk_count: u64,
    /// Committed recipients.
    pub recipients: u64,
    /// Uploaded lines dropped as duplicates of earlier recipients.
    pub duplicates: u64,
    /// Uploaded lines refused as invalid.
    pub rejected: u64,
    /// Getui list task, once created.
    pub list_taskid: Option<String>,
    /// Getui app task, once created.
    pub app_taskid: Option<String>,
    /// Results of the chunks folded so far (chunks `0..folded`).
    pub counts: Counts,
    /// Chunks folded into `counts`.
    pub folded: u64,
    /// Recipients of list chunks sent again after a crash (possible duplicates).
    pub replayed: u64,
    /// Why the campaign failed, if it did.
    pub failure: Option<String>,
    /// App campaigns: Getui's own counts of the task, as last fetched.
    #[serde(default)]
    pub upstream_report: Option<UpstreamReport>,
    /// Cancelled upstream-held schedules: what became of Getui's scheduled task.
    #[serde(default)]
    pub withdrawal: Option<String>,
    /// 24 random bits drawn at creation and mixed into the campaign's request ids (see
    /// [`RequestKey`]). Absent in campaigns created before stores had an identity.
    #[serde(default)]
    pub request_salt: Option<u32>,
    /// SMS fallback: what became of the recipients on the second channel (chunks whose
    /// texting finished, plus the gateway's delivery reports). Left out when empty, so
    /// records of campaigns without it keep their earlier bytes.
    #[serde(default, skip_serializing_if = "SmsTally::is_empty")]
    pub sms: SmsTally,
    /// SMS fallback: `POST /v1/campaigns/{id}/sms/stop` was called; texts not yet sent are
    /// skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sms_stopped: bool,
}

impl CampaignRecord {
    /// What this campaign's request ids are made from, in the store `store`.
    pub fn request_key(&self, store: StoreIdentity) -> RequestKey {
        match self.request_salt {
            Some(salt) => RequestKey::Keyed { store, campaign: self.id, salt },
            None => RequestKey::Legacy { campaign: self.id },
        }
    }
}

/// Getui's counts of an app task (`/report/push/task`), which only the upstream knows: it
/// fans the push out itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamReport {
    /// Devices targeted.
    pub target: u64,
    /// Devices that received it.
    pub received: u64,
    /// Devices that displayed it.
    pub displayed: u64,
    /// Devices where it was tapped.
    pub clicked: u64,
    /// When it was fetched, ms since the epoch.
    pub fetched_ms: i64,
}

/// One chunk of recipients: 16-byte cids back to back, per-recipient variables when the
/// message uses them, and member ids for WeCom campaigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Chunk {
    /// `16 × n` bytes.
    #[serde(with = "serde_bytes")]
    pub cids: Vec<u8>,
    /// Empty, or one list of `(name, value)` per recipient.
    #[serde(default)]
    pub vars: ChunkVars,
    /// WeCom campaigns: the member ids; `cids` then holds their fingerprints (for the
    /// upload duplicate filter).
    #[serde(default)]
    pub users: Vec<String>,
}

impl Chunk {
    /// Recipients in the chunk.
    pub fn len(&self) -> usize {
        self.cids.len() / 16
    }

    /// True when the chunk holds nobody.
    pub fn is_empty(&self) -> bool {
        self.cids.len() < 16
    }

    /// The `i`-th cid.
    pub fn cid(&self, i: usize) -> crate::domain::CompactCid {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.cids[i * 16..i * 16 + 16]);
        crate::domain::CompactCid(b)
    }

    /// The `i`-th recipient's variables.
    pub fn vars_of(&self, i: usize) -> RecipientVars<'_> {
        self.vars.of(i)
    }
}

/// One page of [`Store::committed_cids`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidPage {
    /// 16-byte cids back to back, in chunk order.
    pub cids: Vec<u8>,
    /// Where the next page starts; `None` when this page reached the last committed chunk.
    pub next: Option<u64>,
}

/// A change to a campaign, applied by the store in order with every other write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A user action at time `now_ms`.
    Act(Action, i64),
    /// The scheduled time came: `scheduled → running`.
    Begin(i64),
    /// The list task was created.
    SetListTask(String),
    /// The app task was created; the campaign is complete (or, when Getui holds the schedule
    /// and the time is ahead, scheduled).
    SetAppTask(String, i64),
    /// Getui's counts of the app task.
    SetUpstreamReport(UpstreamReport),
    /// What happened to Getui's scheduled task after a cancel.
    SetWithdrawal(String),
    /// The campaign cannot run.
    Fail(String, i64),
    /// Recipients of list chunks about to be sent again after a crash.
    AddReplayed(u64),
    /// SMS fallback: texts not yet sent are cancelled (the seed's stop_sms).
    StopSms,
    /// SMS fallback: counts to add (the gateway's delivery reports).
    AddSms(SmsTally),
}

/// What an upload adds, committed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadCommit {
    /// First staged chunk (must equal the campaign's `chunk_count`).
    pub first_seq: u64,
    /// Staged chunks.
    pub chunks: u64,
    /// Recipients in them.
    pub recipients: u64,
    /// Lines dropped as duplicates.
    pub duplicates: u64,
    /// Lines refused.
    pub rejected: u64,
}

/// The results of one sent chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// Campaign.
    pub campaign: u64,
    /// Chunk.
    pub seq: u64,
    /// Recipients per result.
    pub counts: Counts,
}

/// Live progress of a campaign: folded counts plus acknowledged chunks not yet folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Recipients per result so far.
    pub counts: Counts,
    /// Chunks acknowledged so far.
    pub acked_chunks: u64,
}

/// Why and since when a user is on an app's suppression list (opted out of its campaigns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// `unsubscribe` (the WeCom event), `keyword` (an opt-out text) or `api`.
    pub reason: String,
    /// When, ms since the epoch.
    pub since_ms: i64,
}

/// Which campaigns one page of `GET /v1/campaigns` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Only campaigns in this state.
    pub state: Option<CampaignState>,
    /// Only campaigns with a greater id (0: from the first).
    pub after: u64,
    /// Most campaigns in the page.
    pub limit: usize,
}

/// One page of campaigns, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignPage {
    /// The campaigns.
    pub campaigns: Vec<CampaignRecord>,
    /// Pass as `after` for the next page; `None` when nothing follows.
    pub next_after: Option<u64>,
}

/// How many WeCom callback deliveries the store remembers for retry detection, and for how
/// long: the record never holds more than `max_entries`, nor entries older than `max_age_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryWindow {
    /// Most deliveries remembered; the oldest go first.
    pub max_entries: usize,
    /// Deliveries older than this are forgotten, ms.
    pub max_age_ms: i64,
}

/// One cid↔phone binding to write (issue 13). The store never sees the number: `sealed` is
/// `seal::SealKey::seal(e164, seal::aad(&[app, cid hex]))`, and `pn_md5` (the legacy API's
/// "pn", 32 lowercase hex digits) keys the reverse index that keeps the binding one-to-one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneBinding {
    /// The cid.
    pub cid: CompactCid,
    /// The sealed E.164 number.
    pub sealed: Vec<u8>,
    /// md5 of the number (`PhoneNumber::pn_md5`).
    pub pn_md5: String,
}

/// What one bind did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindOutcome {
    /// The cid the phone was bound to until now, unbound by this bind (the latest bind of a
    /// phone wins; that cid then answers 7).
    pub displaced: Option<CompactCid>,
    /// False when the pair was already bound so (nothing written).
    pub changed: bool,
}

/// What [`Store::lease_chunk`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Nobody held the chunk (or the caller already did): it is the caller's now.
    Taken,
    /// Another holder's lease had expired: it may have died mid-send. The chunk is the
    /// caller's now; if it is marked in flight, the replay policy decides.
    TakenOver,
    /// Another holder's lease is live: leave the chunk alone.
    Held,
    /// The chunk was acknowledged since the caller read it as pending (its holder finished
    /// it and freed the lease): nothing to send.
    Done,
}

/// A binding as stored: the phone's md5 and its sealed number (empty for a legacy md5-only
/// binding).
pub type StoredBinding = (String, Vec<u8>);

/// The durable store used by the API and the dispatcher.
pub trait Store: Send + Sync + 'static {
    /// The store's random identity, made when it was created (see [`StoreIdentity`]).
    fn identity(&self) -> StoreIdentity;
    /// Creates a draft campaign.
    fn create(&self, spec: CampaignSpec, now_ms: i64) -> StoreFuture<'_, CampaignRecord>;
    /// Applies a change, refusing those the state machine forbids.
    fn change(&self, id: u64, change: Change) -> StoreFuture<'_, CampaignRecord>;
    /// Deletes a draft or scheduled campaign and all it holds.
    fn delete(&self, id: u64) -> StoreFuture<'_, ()>;
    /// Writes a chunk of an upload in progress (invisible until committed).
    fn stage_chunk(&self, id: u64, seq: u64, chunk: Chunk) -> StoreFuture<'_, ()>;
    /// Makes staged chunks part of the campaign, durably.
    fn commit_upload(&self, id: u64, commit: UploadCommit) -> StoreFuture<'_, CampaignRecord>;
    /// A staged chunk of an upload in progress (`None` if nothing is staged at `seq`), read
    /// back when the upload's duplicates are taken out at its end.
    fn staged_chunk(&self, id: u64, seq: u64) -> StoreFuture<'_, Option<Chunk>>;
    /// Removes staged chunks of a failed upload.
    fn discard_upload(&self, id: u64, first_seq: u64, chunks: u64) -> StoreFuture<'_, ()>;
    /// Durably notes that a list chunk is about to be sent (for the replay policy).
    fn mark_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, ()>;
    /// Whether a chunk is marked in flight (maybe sent, never acknowledged).
    fn chunk_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, bool>;
    /// Leases a chunk to `holder` for `ttl_ms` (the ack wait), so that of several daemons
    /// sharing the store only one sends it at a time. Taking it again as the same holder
    /// renews the lease. A single-process store answers `Taken` always.
    fn lease_chunk(&self, id: u64, seq: u64, holder: &str, ttl_ms: u64) -> StoreFuture<'_, LeaseOutcome>;
    /// Gives a chunk's lease back if `holder` still has it (an acknowledgement releases it
    /// too).
    fn release_chunk(&self, id: u64, seq: u64, holder: &str) -> StoreFuture<'_, ()>;
    /// Records a sent chunk's results. A store may make them durable a little later than it
    /// answers (sled: within 16 acknowledgements or 50 ms); a crash before that leaves the chunk
    /// as a crash before the acknowledgement would (in flight, or pending), and an
    /// acknowledgement that completes its campaign is durable when answered.
    fn ack(&self, ack: Ack) -> StoreFuture<'_, ()>;
    /// Waits until every earlier write is on disk.
    fn flush(&self) -> StoreFuture<'_, ()>;
    /// A campaign, if it exists.
    fn get(&self, id: u64) -> StoreFuture<'_, Option<CampaignRecord>>;
    /// Every campaign, oldest first.
    fn list(&self) -> StoreFuture<'_, Vec<CampaignRecord>>;
    /// Campaigns not in a final state, oldest first, read through an index: the cost follows
    /// the active campaigns, not the history.
    fn active_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>>;
    /// One page of campaigns in id order; it examines a bounded number of records, so a page
    /// may be short while `next_after` still points further.
    fn campaigns_page(&self, query: PageQuery) -> StoreFuture<'_, CampaignPage>;
    /// How many campaigns are in each state, kept up to date as they change (no scan).
    fn census(&self) -> StoreFuture<'_, Vec<(CampaignState, u64)>>;
    /// Retention: removes up to `max` campaigns that finished before `before_ms` with all they
    /// hold (chunks and tombstones first, then the record); answers how many went.
    fn expire_finished(&self, before_ms: i64, max: usize) -> StoreFuture<'_, usize>;
    /// Up to `max` unacknowledged committed chunks with sequence ≥ `from_seq`, in order.
    fn pending_chunks(&self, id: u64, from_seq: u64, max: usize) -> StoreFuture<'_, Vec<(u64, Chunk)>>;
    /// The cids of a campaign's committed chunks from `from_seq` on, one bounded page at a time
    /// (for rebuilding the upload duplicate filter without loading the whole campaign).
    fn committed_cids(&self, id: u64, from_seq: u64, max_bytes: usize) -> StoreFuture<'_, CidPage>;
    /// List chunks marked in flight when the daemon last stopped.
    fn inflight_chunks(&self, id: u64) -> StoreFuture<'_, Vec<u64>>;
    /// Live progress of a campaign.
    fn progress(&self, id: u64) -> StoreFuture<'_, Progress>;
    /// Bytes the store takes on disk.
    fn size_on_disk(&self) -> StoreFuture<'_, u64>;
    /// The chunk messages the store itself counts as waiting, when it keeps such a count: on
    /// NATS, the messages in the JetStream chunk stream (what a consumer would report as
    /// pending); `None` on sled, whose backlog the dispatcher sums from the campaigns' progress.
    fn queued_chunk_messages(&self) -> StoreFuture<'_, Option<u64>>;
    /// Puts `user` on `app`'s suppression list (`Some`) or takes them off (`None`), durably.
    /// User ids compare case-insensitively, as WeCom's do. True when something changed.
    fn set_suppression(&self, app: &str, user: &str, entry: Option<Suppression>) -> StoreFuture<'_, bool>;
    /// Whether `user` is suppressed for `app`.
    fn suppression(&self, app: &str, user: &str) -> StoreFuture<'_, Option<Suppression>>;
    /// Which of `users` are suppressed for `app`, one answer per user in order: one call for a
    /// whole chunk of WeCom members rather than a lookup each.
    fn suppressed_among(&self, app: &str, users: Vec<String>) -> StoreFuture<'_, Vec<bool>>;
    /// Up to `limit` suppressed users of `app` after `after` (exclusive), in id order.
    fn suppressions(&self, app: &str, after: &str, limit: usize) -> StoreFuture<'_, Vec<(String, Suppression)>>;
    /// Durably notes the callback delivery `key` at `now_ms`: true the first time it is seen
    /// within `window` (a retry, even across a restart, gets false). Trims the record to the
    /// window on the way.
    fn first_delivery(&self, key: &str, now_ms: i64, window: DeliveryWindow) -> StoreFuture<'_, bool>;
    /// Whether the callback delivery `key` was noted (and is still within the window).
    fn delivery_noted(&self, key: &str) -> StoreFuture<'_, bool>;
    /// Binds each pair in order under `app`'s one-to-one rule, durably before answering: a
    /// phone bound to another cid moves to this one (named in [`BindOutcome::displaced`]); a
    /// cid bound to another phone frees it. Each pair is applied atomically (cid record and
    /// reverse index together); later pairs see earlier ones. Takes any number of pairs (the
    /// API gives ≤ 50, an import batches of a few thousand); the cost is a few key operations
    /// per pair.
    fn bind_phones(&self, app: &str, pairs: Vec<PhoneBinding>) -> StoreFuture<'_, Vec<BindOutcome>>;
    /// Unbinds each cid of `app`, durably; true for each that was bound.
    fn unbind_phones(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<bool>>;
    /// The binding of each cid of `app`, in order (`None`: not bound): the phone's md5 and its
    /// sealed number (empty for a legacy md5-only binding).
    fn bindings_of(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<Option<StoredBinding>>>;
    /// The sealed number bound to each cid of `app`, in order (`None`: not bound).
    fn phones_of(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<Option<Vec<u8>>>> {
        let found = self.bindings_of(app, cids);
        Box::pin(async move { Ok(found.await?.into_iter().map(|b| b.map(|(_, sealed)| sealed)).collect()) })
    }
    /// Which cid of `app` holds the phone whose md5 is `pn_md5` (lowercase hex), with its
    /// sealed number: how a legacy binding, which carries only the md5, finds a real number.
    fn binding_of_pn(&self, app: &str, pn_md5: &str) -> StoreFuture<'_, Option<(CompactCid, Vec<u8>)>>;
    /// Ties the idempotency key `key` (a legacy SDK request id, …) to campaign `id` unless it
    /// is tied already, durably; answers the campaign it is tied to. Of two daemons claiming
    /// one key at once, one wins and both get its campaign.
    fn claim(&self, key: &str, id: u64) -> StoreFuture<'_, u64>;
    /// The campaign `key` is tied to, if any.
    fn claimed(&self, key: &str) -> StoreFuture<'_, Option<u64>>;
    /// SMS fallback: durably keeps a chunk's texting state unless one is kept for that chunk
    /// already (a chunk sent again after a crash must not reset a texting under way). True
    /// when written.
    fn texting_stage(&self, entry: TextingEntry) -> StoreFuture<'_, bool>;
    /// Up to `max` texting states due at `now_ms`, earliest due first.
    fn texting_due(&self, now_ms: i64, max: usize) -> StoreFuture<'_, Vec<TextingEntry>>;
    /// Durably replaces a texting state, refusing (`Conflict`) when `entry.revision` is no
    /// longer the stored one (another daemon moved it on); answers the new revision.
    fn texting_save(&self, entry: TextingEntry) -> StoreFuture<'_, u64>;
    /// Removes a finished texting state and adds its tally to the campaign's `sms`.
    fn texting_finish(&self, entry: TextingEntry, tally: SmsTally) -> StoreFuture<'_, ()>;
    /// Notes which campaign the gateway's serial numbers `sids` belong to, for its delivery
    /// reports.
    fn note_sms_serials(&self, app: &str, campaign: u64, sids: Vec<String>) -> StoreFuture<'_, ()>;
    /// The campaign of a serial number, forgotten on the way: a report repeated by the gateway
    /// finds nothing the second time.
    fn take_sms_serial(&self, app: &str, sid: &str) -> StoreFuture<'_, Option<u64>>;
    /// Adds receipt kinds (bit sets, see `dispatch::texting`) to each (taskid, cid) of `app`,
    /// durably; answers the bits each held before.
    fn note_receipts(&self, app: &str, marks: Vec<(ReceiptKey, u8)>) -> StoreFuture<'_, Vec<u8>>;
    /// The receipt bits of each (taskid, cid) of `app` (0: none).
    fn receipt_marks(&self, app: &str, keys: Vec<ReceiptKey>) -> StoreFuture<'_, Vec<u8>>;
    /// Notes daemon `member` alive at `now_ms` and answers how many daemons were heard from
    /// recently, this one included: the group that shares speeds and call budgets (1 on sled,
    /// whose store belongs to one daemon).
    fn heartbeat(&self, member: &str, now_ms: i64) -> StoreFuture<'_, usize>;
    /// Whether the store can be used right now, answered quickly (a few seconds at most):
    /// `Unavailable` while the NATS connection is down or JetStream does not answer. An
    /// embedded store is always there, hence the default.
    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::malloc_arenas;

    #[test]
    fn malloc_arenas_are_one_per_core_unless_the_environment_says() {
        assert_eq!(malloc_arenas(false, None, 16), Some(16));
        assert_eq!(malloc_arenas(false, None, 1), Some(2), "at least two");
        assert_eq!(malloc_arenas(false, Some("glibc.malloc.tcache_count=0"), 4), Some(4));
        assert_eq!(malloc_arenas(true, None, 4), None, "MALLOC_ARENA_MAX is glibc's to apply");
        assert_eq!(malloc_arenas(false, Some("glibc.malloc.arena_max=8:glibc.malloc.tcache_count=0"), 4), None);
    }
}
