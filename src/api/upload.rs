//! `POST /v1/campaigns/{id}/recipients`: a streamed upload of millions of lines.
//!
//! The body is read frame by frame and cut into lines; recipients go into chunks that are
//! staged in the store as they fill and committed in one step at the end. A bad line is refused
//! on its own (reported with its number); a broken body (not UTF-8, a line too long, no final
//! line end, a dropped connection) refuses the whole upload and the staged chunks are removed,
//! so nothing of it is kept. So does the daemon's shutdown, so a long upload never holds up a
//! stop. Duplicates are found when the body has ended, by [`dedup`](super::dedup): every staged
//! cid is spilled to disk as it comes, and the check sorts the spill a partition at a time
//! against the draft's index of committed cids. Chunks holding a duplicate are then rewritten
//! without it (repacked in place, so no chunk is left short by them) before the commit. The
//! index is kept between uploads while the draft is in use and rebuilt from the store, page by
//! page, when it is needed again.
//!
//! What an upload holds in memory is bounded whatever its size: one chunk (staged early once
//! its variables pass [`CHUNK_VARS_BYTES`]), one line, the spill's write buffers, and at its end
//! one partition of the spill and a bit per line.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::dedup::{self, DraftIndex, DuplicateMarks, IndexBuilder, Settled, Spill, SpillRoot};
use super::{json, ApiError, ApiState};
use crate::domain::recipient::{parse_ndjson_line, parse_text_line, parse_user_line, Recipient};
use crate::domain::{CampaignState, CompactCid, Mode};
use crate::protocol::{RejectedLine, UploadView};
use crate::store::{CampaignRecord, Chunk, StoreFuture, UploadCommit};
use crate::wire::getui::MAX_BATCH_MESSAGES;

/// Longest accepted line, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// How many refused lines an answer lists (all are counted).
const REPORTED_REJECTS: usize = 20;
/// A chunk is staged once its recipients' variables take this many bytes, even if it holds
/// fewer recipients than a full chunk, so the upload's own memory stays small. (How the store
/// keeps long chunk values out of sled's blobs is its own business: it stores them in parts.)
pub const CHUNK_VARS_BYTES: usize = 48 * 1024;
/// How long a draft's duplicate index is kept after its last upload.
const FILTER_IDLE: Duration = Duration::from_secs(300);
/// Most indexes kept between uploads (on disk: 16 bytes a recipient); the least recently used
/// go first.
const MAX_KEPT_FILTERS: usize = 16;
/// How often idle indexes are looked for.
const FILTER_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Stored bytes read per page while rebuilding an index.
const REBUILD_PAGE_BYTES: usize = 1 << 20;
/// Staged chunks an upload may have handed to the store without its answer yet. Waiting for
/// each answer before reading on cost a sleep and a wake-up of the upload's task per chunk
/// (about a sixth of an NDJSON upload's CPU); a few in flight let the store's writer work
/// while the next chunk is read.
const STAGES_AHEAD: usize = 4;

/// Uploads in progress and the duplicate indexes of draft campaigns.
pub(super) struct Uploads {
    /// Where spills and indexes are written.
    spill_root: Arc<SpillRoot>,
    /// Campaigns with an upload in progress, and when it began.
    busy: Mutex<HashMap<u64, Instant>>,
    /// Indexes of draft campaigns between uploads. An upload takes its campaign's index out
    /// and puts it back only if it commits: a failed upload's additions vanish with it, and the
    /// index is rebuilt from the committed chunks next time. Idle ones are dropped
    /// ([`FILTER_IDLE`], [`MAX_KEPT_FILTERS`]) and rebuilt the same way.
    seen: Mutex<HashMap<u64, KeptFilter>>,
}

/// An index between uploads, the draft it describes, and when it was last put back.
struct KeptFilter {
    filter: DraftIndex,
    draft: DraftVersion,
    last_used: Instant,
}

/// Which draft, as of which commit, an index describes: the campaign's creation time tells a
/// draft from another that reuses its id in a fresh or restored store, and the chunk and
/// recipient counts tell whether anyone (another daemon sharing the store) committed since.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct DraftVersion {
    created_ms: i64,
    chunk_count: u64,
    recipients: u64,
}

impl DraftVersion {
    fn of(rec: &CampaignRecord) -> DraftVersion {
        DraftVersion { created_ms: rec.created_ms, chunk_count: rec.chunk_count, recipients: rec.recipients }
    }
}

impl Uploads {
    /// Spills and indexes under `spill_dir`.
    pub(super) fn new(spill_dir: std::path::PathBuf) -> Uploads {
        Uploads { spill_root: Arc::new(SpillRoot::new(spill_dir)), busy: Mutex::default(), seen: Mutex::default() }
    }

    pub(super) fn in_progress(&self, id: u64) -> bool {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id)
    }

    /// Drops a campaign's filter once it can take no more uploads.
    pub(super) fn forget(&self, id: u64) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Takes a campaign's kept index if it describes `draft` as it is now.
    fn take(&self, id: u64, draft: DraftVersion) -> Option<DraftIndex> {
        let kept = self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)?;
        (kept.draft == draft).then_some(kept.filter)
    }

    /// Keeps a committed upload's index, describing `draft`, for the next upload to it.
    fn keep(&self, id: u64, filter: DraftIndex, draft: DraftVersion, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(id, KeptFilter { filter, draft, last_used: now });
        evict(&mut seen, now);
    }

    /// Drops the filters idle for too long, and the oldest beyond the cap.
    fn sweep(&self, now: Instant) {
        evict(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()), now);
    }

    /// Indexes held: kept between uploads or held by an upload in progress.
    fn filters_in_memory(&self) -> usize {
        let kept = self.seen.lock().unwrap_or_else(|p| p.into_inner()).len();
        kept + self.busy.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Marks `id` busy, or answers how long the upload already in progress has been running.
    ///
    /// The lock is released before a guard exists: the guard's drop takes the same lock, so
    /// building it while the lock is held (say with `then_some`, which evaluates its argument
    /// even when it returns `None`) would deadlock the worker thread on the spot.
    fn begin(&self, id: u64) -> Result<BusyGuard<'_>, Duration> {
        let running_for = {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            match busy.entry(id) {
                Entry::Occupied(started) => Some(started.get().elapsed()),
                Entry::Vacant(slot) => {
                    slot.insert(Instant::now());
                    None
                }
            }
        };
        match running_for {
            Some(d) => Err(d),
            None => Ok(BusyGuard { uploads: self, id }),
        }
    }
}

fn evict(seen: &mut HashMap<u64, KeptFilter>, now: Instant) {
    seen.retain(|_, k| now.saturating_duration_since(k.last_used) < FILTER_IDLE);
    while seen.len() > MAX_KEPT_FILTERS {
        let Some(oldest) = seen.iter().min_by_key(|(_, k)| k.last_used).map(|(id, _)| *id) else { break };
        seen.remove(&oldest);
    }
}

impl ApiState {
    /// Drops idle upload filters every [`FILTER_SWEEP_EVERY`] until `stop`, so a draft nobody
    /// uploads to any more does not hold its filter for good.
    pub(super) fn spawn_upload_filter_sweeper(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FILTER_SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        state.uploads.sweep(Instant::now());
                        state.count_upload_filters();
                    }
                }
            }
        });
    }

    pub(super) fn count_upload_filters(&self) {
        self.metrics.upload_filters.set(self.uploads.filters_in_memory() as i64);
    }
}

struct BusyGuard<'a> {
    uploads: &'a Uploads,
    id: u64,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.uploads.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

#[derive(Clone, Copy)]
enum Format {
    Text,
    Ndjson,
}

/// Why a whole upload is refused.
enum Broken {
    Body(ApiError),
    Store(ApiError),
    /// The daemon is shutting down.
    Stopping,
}

fn stopping_error(id: u64) -> ApiError {
    ApiError::unavailable(format!(
        "the daemon is shutting down: the upload to campaign {id} was stopped and nothing of it was kept; send the \
         whole list again once the daemon is back"
    ))
}

pub(super) async fn upload(
    state: &Arc<ApiState>,
    id: u64,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let format = format_of(&req)?;
    let rec = state
        .store
        .get(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    if rec.state != CampaignState::Draft {
        return Err(ApiError::conflict(
            rec.state,
            format!("recipients can only be uploaded to a draft campaign; this one is {}", rec.state.as_str()),
        ));
    }
    if rec.spec.mode == Mode::App {
        return Err(ApiError::conflict(
            rec.state,
            "app campaigns reach their audience through conditions and take no recipient list",
        ));
    }
    let busy = state.uploads.begin(id).map_err(|running_for| {
        ApiError::conflict(
            rec.state,
            format!(
                "an upload to campaign {id} is already in progress (started {} s ago); wait for its answer \
                 before sending the list again",
                running_for.as_secs()
            ),
        )
    })?;
    state.count_upload_filters();
    let outcome = upload_body(state, &rec, req, format).await;
    drop(busy);
    state.count_upload_filters();
    outcome
}

/// Adds recipients already parsed (the legacy ingress's targets) to draft `rec`, as an upload
/// of those lines would: duplicates dropped, staged and committed at once or not at all.
pub(super) async fn upload_recipients(
    state: &ApiState,
    rec: &CampaignRecord,
    recipients: Vec<Recipient<'static>>,
) -> Result<UploadView, ApiError> {
    let id = rec.id;
    let _busy = state
        .uploads
        .begin(id)
        .map_err(|_| ApiError::conflict(rec.state, format!("an upload to campaign {id} is already in progress")))?;
    let mut job = Job::start(state, rec).await.map_err(|b| b.into_error(id))?;
    let mut outcome = Ok(());
    for r in recipients {
        job.line += 1;
        outcome = job.add(r).await;
        if outcome.is_err() {
            break;
        }
    }
    let outcome = match outcome {
        Ok(()) => job.finish().await,
        Err(b) => Err(b),
    };
    match outcome {
        Ok(view) => Ok(view),
        Err(broken) => {
            job.discard().await;
            Err(broken.into_error(id))
        }
    }
}

impl Broken {
    fn into_error(self, id: u64) -> ApiError {
        match self {
            Broken::Body(e) | Broken::Store(e) => e,
            Broken::Stopping => stopping_error(id),
        }
    }
}

/// Reads, stages and commits the body of an upload to draft `rec`; on any refusal, removes
/// what was staged.
async fn upload_body(
    state: &Arc<ApiState>,
    rec: &CampaignRecord,
    req: Request<Incoming>,
    format: Format,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let id = rec.id;
    let mut job = Job::start(state, rec).await.map_err(|b| b.into_error(id))?;
    job.members = rec.spec.channel == crate::domain::Channel::Wecom;
    let outcome = job.read(req.into_body(), format).await;
    let outcome = match outcome {
        Ok(()) => job.finish().await,
        Err(b) => Err(b),
    };
    match outcome {
        Ok(view) => json(200, &view),
        Err(broken) => {
            job.discard().await;
            if matches!(broken, Broken::Stopping) {
                tracing::warn!(campaign = id, lines = job.line, "upload stopped by the daemon's shutdown");
            }
            Err(broken.into_error(id))
        }
    }
}

fn format_of(req: &Request<Incoming>) -> Result<Format, ApiError> {
    let ct = req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "text/plain" => Ok(Format::Text),
        "application/x-ndjson" | "application/ndjson" => Ok(Format::Ndjson),
        _ => Err(ApiError::media_type(format!(
            "content-type {ct:?} is not accepted: send text/plain (one cid a line) or application/x-ndjson"
        ))),
    }
}

/// The error of a spill or index file that could not be written or read.
fn spill_error(root: &SpillRoot, e: std::io::Error) -> Broken {
    Broken::Store(ApiError::unavailable(format!(
        "the upload's duplicate check could not use its files under {}: {e}; nothing of the upload was kept: \
         make room or fix the directory's permissions, then send the list again",
        root.parent().display()
    )))
}

/// Runs blocking spill work off the async workers.
async fn blocking<T: Send + 'static>(
    root: &SpillRoot,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, Broken> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(spill_error(root, e)),
        Err(e) => Err(Broken::Store(ApiError::internal(e))),
    }
}

/// Takes the draft's duplicate index, rebuilding it from the store when it is not kept or
/// describes the draft as it no longer is (after a restart, a failed upload, a long idle time,
/// another daemon's upload, or a fresh store reusing the id). The committed cids are read a page at a time into a spill, so the rebuild
/// holds one page however large the campaign.
async fn take_index(state: &ApiState, rec: &CampaignRecord) -> Result<DraftIndex, Broken> {
    let id = rec.id;
    if let Some(index) = state.uploads.take(id, DraftVersion::of(rec)) {
        return Ok(index);
    }
    let root = &state.uploads.spill_root;
    if rec.chunk_count == 0 {
        return Ok(DraftIndex::default());
    }
    let mut builder = IndexBuilder::new(root);
    let mut next = Some(0);
    while let Some(from) = next {
        if state.shutdown.is_cancelled() {
            return Err(Broken::Stopping);
        }
        let page =
            state.store.committed_cids(id, from, REBUILD_PAGE_BYTES).await.map_err(|e| Broken::Store(e.into()))?;
        builder.feed(&page.cids).map_err(|e| spill_error(root, e))?;
        next = page.next;
    }
    blocking(root, move || builder.finish()).await
}

/// A chunk being filled, and the rule that says when it is full.
struct ChunkFill {
    chunk: Chunk,
    size: usize,
}

impl ChunkFill {
    fn new(size: usize) -> ChunkFill {
        ChunkFill { chunk: Chunk::default(), size }
    }

    /// Adds a recipient: its cid, its variables when the campaign keeps them, its member id.
    fn push<'v>(&mut self, cid: &[u8], vars: Option<impl Iterator<Item = (&'v str, &'v str)>>, user: Option<String>) {
        self.chunk.cids.extend_from_slice(cid);
        if let Some(vars) = vars {
            self.chunk.vars.push(vars);
        }
        if let Some(user) = user {
            self.chunk.users.push(user);
        }
    }

    fn is_full(&self) -> bool {
        self.chunk.len() >= self.size || self.chunk.vars.text_bytes() >= CHUNK_VARS_BYTES
    }

    fn take(&mut self) -> Chunk {
        let mut next = Chunk { vars: self.chunk.vars.empty_like(), ..Chunk::default() };
        next.cids.reserve(self.size * 16);
        std::mem::replace(&mut self.chunk, next)
    }
}

/// One upload's running state.
struct Job<'a> {
    state: &'a ApiState,
    id: u64,
    first_seq: u64,
    /// Chunks staged (and to discard if the upload is refused).
    staged: u64,
    keep_vars: bool,
    /// WeCom campaigns: lines are member ids.
    members: bool,
    fill: ChunkFill,
    /// The ordinal of the first recipient of each staged chunk.
    chunk_starts: Vec<u32>,
    /// Recipients the campaign may still take under `dispatch.max_recipients`.
    room: u64,
    index: DraftIndex,
    spill: Option<Spill>,
    /// Stage writes handed to the store and not yet answered, oldest first; at most
    /// [`STAGES_AHEAD`].
    staging: VecDeque<StoreFuture<'a, ()>>,
    line: u64,
    duplicates: u64,
    rejected: u64,
    first_rejected: Vec<RejectedLine>,
}

impl<'a> Job<'a> {
    /// Begins an upload to draft `rec`.
    async fn start(state: &'a ApiState, rec: &CampaignRecord) -> Result<Job<'a>, Broken> {
        let index = take_index(state, rec).await?;
        let spill = Spill::new(&state.uploads.spill_root);
        let batch = rec.spec.mode == Mode::BatchSingle;
        let chunk_size =
            if batch { state.settings.chunk_size.min(MAX_BATCH_MESSAGES) } else { state.settings.chunk_size };
        Ok(Job {
            state,
            id: rec.id,
            first_seq: rec.chunk_count,
            staged: 0,
            keep_vars: batch,
            members: false,
            fill: ChunkFill::new(chunk_size),
            chunk_starts: Vec::new(),
            room: state.settings.max_recipients.saturating_sub(rec.recipients),
            index,
            spill: Some(spill),
            staging: VecDeque::new(),
            line: 0,
            duplicates: 0,
            rejected: 0,
            first_rejected: Vec::new(),
        })
    }

    /// Removes what a refused upload staged.
    async fn discard(&mut self) {
        // Writes already handed over finish first, so none lands after the removal.
        while let Some(write) = self.staging.pop_front() {
            let _ = write.await;
        }
        if let Err(d) = self.state.store.discard_upload(self.id, self.first_seq, self.staged).await {
            tracing::error!(campaign = self.id, error = %d, "cannot remove the chunks of a refused upload");
        }
    }

    fn root(&self) -> &'a SpillRoot {
        &self.state.uploads.spill_root
    }

    /// Reads the body to its end, cutting lines across frame boundaries.
    async fn read(&mut self, mut body: Incoming, format: Format) -> Result<(), Broken> {
        let mut carry: Vec<u8> = Vec::with_capacity(MAX_LINE_BYTES);
        loop {
            let next = tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => return Err(Broken::Stopping),
                next = body.frame() => next,
            };
            let Some(frame) = next else { break };
            let frame = frame.map_err(|e| {
                Broken::Body(ApiError::bad_body(format!("the upload was cut off after line {}: {e}", self.line)))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let mut rest: &[u8] = &data;
            while let Some(nl) = memchr::memchr(b'\n', rest) {
                let (head, tail) = rest.split_at(nl);
                let full = if carry.is_empty() {
                    self.take_line(head, format)?
                } else {
                    carry.extend_from_slice(head);
                    let full = self.take_line(&carry, format);
                    carry.clear();
                    full?
                };
                if full {
                    self.stage().await?;
                }
                rest = &tail[1..];
            }
            carry.extend_from_slice(rest);
            if carry.len() > MAX_LINE_BYTES {
                return Err(self.too_long());
            }
        }
        if !carry.is_empty() {
            return Err(Broken::Body(ApiError::bad_body(format!(
                "line {} has no line end: every line, the last one too, must end with \\n",
                self.line + 1
            ))));
        }
        Ok(())
    }

    fn too_long(&self) -> Broken {
        Broken::Body(ApiError::too_large(format!("line {} is longer than {MAX_LINE_BYTES} bytes", self.line + 1)))
    }

    /// Takes one line of the body; answers whether the chunk being filled is now full. Not
    /// async: only staging a full chunk waits, once in a chunk's worth of lines.
    fn take_line(&mut self, raw: &[u8], format: Format) -> Result<bool, Broken> {
        self.line += 1;
        let cap = self.state.settings.max_stream_lines();
        if self.line > cap {
            return Err(Broken::Body(ApiError::too_large(format!(
                "the upload has more than {cap} lines (twice dispatch.max_recipients, blank, duplicate and refused \
                 lines included); nothing of it was kept: remove the duplicates or split the list"
            ))));
        }
        if raw.len() > MAX_LINE_BYTES {
            self.line -= 1;
            return Err(self.too_long());
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let (Format::Text, false, Some(cid)) = (format, self.members, CompactCid::from_hex_bytes(raw)) {
            // The common line, a cid as Getui writes it, is read at once: hex digits are ASCII,
            // so the UTF-8 and blank checks below would have nothing to find.
            return self.push(Recipient { cid, vars: Vec::new(), user: None });
        }
        let text = std::str::from_utf8(raw).map_err(|_| {
            Broken::Body(ApiError::bad_body(format!("line {} is not UTF-8; upload UTF-8 text", self.line)))
        })?;
        if text.trim().is_empty() {
            return Ok(false);
        }
        let parsed = match (format, self.members) {
            (Format::Text, true) => parse_user_line(text),
            (Format::Ndjson, true) => Err("WeCom campaigns take plain text: one member id a line".into()),
            (Format::Text, false) => parse_text_line(text),
            (Format::Ndjson, false) => parse_ndjson_line(text),
        };
        match parsed {
            Ok(r) => self.push(r),
            Err(reason) => {
                self.rejected += 1;
                if self.first_rejected.len() < REPORTED_REJECTS {
                    self.first_rejected.push(RejectedLine { line: self.line, reason });
                }
                Ok(false)
            }
        }
    }

    /// Adds `r` and stages the chunk it fills.
    async fn add(&mut self, r: Recipient<'_>) -> Result<(), Broken> {
        if self.push(r)? {
            self.stage().await?;
        }
        Ok(())
    }

    /// Adds `r` to the chunk being filled and spills its cid (whether it is a duplicate is
    /// found at the end); answers whether the chunk is full.
    fn push(&mut self, r: Recipient<'_>) -> Result<bool, Broken> {
        let root = self.root();
        let spill = self.spill.as_mut().ok_or_else(|| Broken::Store(ApiError::internal("the upload has ended")))?;
        let ordinal = spill.push(&r.cid.0).map_err(|e| spill_error(root, e))?;
        if self.fill.chunk.is_empty() {
            self.chunk_starts.push(ordinal);
        }
        let vars = self.keep_vars.then(|| r.vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        self.fill.push(&r.cid.0, vars, r.user);
        Ok(self.fill.is_full())
    }

    fn over_cap(&self, new: u64) -> Broken {
        let max = self.state.settings.max_recipients;
        Broken::Body(ApiError::too_large(format!(
            "the upload's {new} new recipients would take campaign {} past dispatch.max_recipients = {max} \
             recipients (it has room for {}); nothing of this upload was kept: split the list over several \
             campaigns",
            self.id, self.room
        )))
    }

    /// Hands the filled chunk to the store; its answer is taken once [`STAGES_AHEAD`] newer
    /// ones are in flight, or at the end.
    async fn stage(&mut self) -> Result<(), Broken> {
        let chunk = self.fill.take();
        let seq = self.first_seq + self.staged;
        self.staged += 1; // counted before the write so a failure discards it too
        let mut write = self.state.store.stage_chunk(self.id, seq, chunk);
        // The first poll hands the chunk over (a store future does nothing until polled).
        if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            return done.map_err(|e| Broken::Store(e.into()));
        }
        self.staging.push_back(write);
        if self.staging.len() > STAGES_AHEAD {
            self.answer_oldest_stage().await?;
        }
        Ok(())
    }

    async fn answer_oldest_stage(&mut self) -> Result<(), Broken> {
        match self.staging.pop_front() {
            Some(write) => write.await.map_err(|e| Broken::Store(e.into())),
            None => Ok(()),
        }
    }

    async fn finish(&mut self) -> Result<UploadView, Broken> {
        if !self.fill.chunk.is_empty() {
            self.stage().await?;
        }
        while !self.staging.is_empty() {
            self.answer_oldest_stage().await?;
        }
        let spill = self.spill.take().ok_or_else(|| Broken::Store(ApiError::internal("the upload has ended")))?;
        let index = std::mem::take(&mut self.index);
        let (index, settled) = blocking(self.root(), move || dedup::settle(spill, &index).map(|s| (index, s))).await?;
        if settled.new > self.room {
            return Err(self.over_cap(settled.new));
        }
        self.duplicates = settled.duplicates.count();
        if let Some(first) = settled.duplicates.first() {
            self.drop_duplicates(&settled.duplicates, first).await?;
        }
        let commit = UploadCommit {
            first_seq: self.first_seq,
            chunks: self.staged,
            recipients: settled.new,
            duplicates: self.duplicates,
            rejected: self.rejected,
        };
        let rec = self.state.store.commit_upload(self.id, commit).await.map_err(|e| Broken::Store(e.into()))?;
        self.keep_index(index, settled, DraftVersion::of(&rec)).await;
        tracing::info!(
            campaign = self.id,
            accepted = commit.recipients,
            duplicates = self.duplicates,
            rejected = self.rejected,
            "upload committed"
        );
        Ok(UploadView {
            accepted: commit.recipients,
            duplicates: self.duplicates,
            rejected: self.rejected,
            first_rejected: std::mem::take(&mut self.first_rejected),
            campaign_total: rec.recipients,
        })
    }

    /// Adds the committed upload's cids to the draft's index and keeps it for the next upload.
    /// The upload is committed whatever happens here: an index that cannot be written is
    /// dropped, and rebuilt from the store next time.
    async fn keep_index(&mut self, mut index: DraftIndex, settled: Settled, draft: DraftVersion) {
        let root = Arc::clone(&self.state.uploads.spill_root);
        let added = blocking(&root.clone(), move || index.add(&root, settled.new_cids).map(|()| index)).await;
        match added {
            Ok(index) => self.state.uploads.keep(self.id, index, draft, Instant::now()),
            Err(_) => tracing::warn!(campaign = self.id, "the upload's duplicate index could not be kept"),
        }
    }

    /// Rewrites the staged chunks from the one holding ordinal `first` on without the
    /// duplicates, repacked with the staging rule. A repacked chunk is never written over a
    /// staged chunk not yet read: dropping recipients only lets each chunk end later in the
    /// upload, so the j-th chunk written always ends at or after the j-th chunk read.
    async fn drop_duplicates(&mut self, duplicates: &DuplicateMarks, first: u32) -> Result<(), Broken> {
        let from = self.chunk_starts.partition_point(|s| *s <= first).saturating_sub(1);
        let mut fill = ChunkFill::new(self.fill.size);
        let mut written = from as u64;
        for k in from..self.staged as usize {
            let seq = self.first_seq + k as u64;
            let staged = self.state.store.staged_chunk(self.id, seq).await.map_err(|e| Broken::Store(e.into()))?;
            let mut chunk = staged.ok_or_else(|| {
                Broken::Store(ApiError::internal(format!("staged chunk {seq} of campaign {} is missing", self.id)))
            })?;
            let start = self.chunk_starts[k];
            for i in 0..chunk.len() {
                if duplicates.contains(start + i as u32) {
                    continue;
                }
                let user = chunk.users.get_mut(i).map(std::mem::take);
                let vars = self.keep_vars.then(|| chunk.vars_of(i).iter());
                fill.push(&chunk.cids[i * 16..i * 16 + 16], vars, user);
                if fill.is_full() {
                    self.restage(written, fill.take()).await?;
                    written += 1;
                }
            }
        }
        if !fill.chunk.is_empty() {
            self.restage(written, fill.take()).await?;
            written += 1;
        }
        let (id, end) = (self.id, self.first_seq + self.staged);
        let tail = self.first_seq + written;
        self.state.store.discard_upload(id, tail, end - tail).await.map_err(|e| Broken::Store(e.into()))?;
        self.staged = written;
        Ok(())
    }

    async fn restage(&mut self, k: u64, chunk: Chunk) -> Result<(), Broken> {
        let seq = self.first_seq + k;
        self.state.store.stage_chunk(self.id, seq, chunk).await.map_err(|e| Broken::Store(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A draft created at time 0 holding `chunks` chunks.
    fn draft(chunks: u64) -> DraftVersion {
        DraftVersion { created_ms: 0, chunk_count: chunks, recipients: chunks * 1000 }
    }

    fn uploads() -> Uploads {
        Uploads::new(std::env::temp_dir().join(format!("campaignd-upload-test-{}", fastrand::u64(..))))
    }

    #[test]
    fn idle_indexes_are_dropped_and_their_number_is_capped() {
        let uploads = uploads();
        let start = Instant::now();
        for id in 0..(MAX_KEPT_FILTERS as u64 + 4) {
            uploads.keep(id, DraftIndex::default(), draft(id), start + Duration::from_secs(id));
        }
        assert_eq!(uploads.filters_in_memory(), MAX_KEPT_FILTERS, "the least recently used go beyond the cap");
        assert!(uploads.take(0, draft(0)).is_none() && uploads.take(3, draft(3)).is_none(), "the oldest went first");
        let newest = MAX_KEPT_FILTERS as u64 + 3;
        let kept = uploads.take(newest, draft(newest)).expect("the newest is kept");
        uploads.keep(newest, kept, draft(newest), start + Duration::from_secs(newest));

        uploads.sweep(start + FILTER_IDLE + Duration::from_secs(newest - 1));
        assert_eq!(uploads.filters_in_memory(), 1, "only the one used within FILTER_IDLE stays");
        uploads.sweep(start + FILTER_IDLE + Duration::from_secs(newest));
        assert_eq!(uploads.filters_in_memory(), 0);
    }

    #[test]
    fn an_index_of_another_chunk_count_is_not_taken() {
        let uploads = uploads();
        uploads.keep(7, DraftIndex::default(), draft(10), Instant::now());
        assert!(uploads.take(7, draft(11)).is_none(), "another daemon committed since: rebuild");
        assert_eq!(uploads.filters_in_memory(), 0, "the stale index is dropped");
    }

    #[test]
    fn an_index_of_another_draft_under_the_same_id_is_not_taken() {
        let uploads = uploads();
        uploads.keep(7, DraftIndex::default(), draft(10), Instant::now());
        let reused = DraftVersion { created_ms: 1, ..draft(10) }; // a fresh store's campaign 7
        assert!(uploads.take(7, reused).is_none());
        uploads.keep(7, DraftIndex::default(), draft(10), Instant::now());
        assert!(uploads.take(7, draft(10)).is_some(), "the same draft, unchanged, takes it");
    }

    use tempfile::TempDir;

    /// A store that answers the stage write of one `seq` with an error, late (after a second
    /// poll), and passes everything else to a real store.
    struct StageFailsAt {
        inner: Arc<dyn crate::store::Store>,
        seq: u64,
        stages: std::sync::atomic::AtomicU64,
    }

    mod delegation {
        use super::StageFailsAt;
        use crate::domain::texting::SmsTally;
        use crate::domain::{CampaignSpec, CampaignState, CompactCid, StoreIdentity};
        use crate::store::{
            Ack, BindOutcome, CampaignPage, CampaignRecord, Change, Chunk, CidPage, DeliveryWindow, LeaseOutcome,
            PageQuery, PhoneBinding, Progress, ReceiptKey, Store, StoreError, StoreFuture, StoredBinding, Suppression,
            TextingEntry, UploadCommit,
        };
        use std::sync::atomic::Ordering;

        macro_rules! delegate {
            ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
                $(fn $name(&self, $($arg: $ty),*) -> StoreFuture<'_, $out> { self.inner.$name($($arg),*) })*
            };
        }

        impl Store for StageFailsAt {
            fn identity(&self) -> StoreIdentity {
                self.inner.identity()
            }
            fn stage_chunk(&self, id: u64, seq: u64, chunk: Chunk) -> StoreFuture<'_, ()> {
                self.stages.fetch_add(1, Ordering::SeqCst);
                if seq != self.seq {
                    return self.inner.stage_chunk(id, seq, chunk);
                }
                Box::pin(async {
                    tokio::task::yield_now().await;
                    Err(StoreError::Db("disk full".into()))
                })
            }
            delegate! {
                create(spec: CampaignSpec, now_ms: i64) -> CampaignRecord;
                change(id: u64, change: Change) -> CampaignRecord;
                delete(id: u64) -> ();
                commit_upload(id: u64, commit: UploadCommit) -> CampaignRecord;
                staged_chunk(id: u64, seq: u64) -> Option<Chunk>;
                discard_upload(id: u64, first_seq: u64, chunks: u64) -> ();
                mark_inflight(id: u64, seq: u64) -> ();
                chunk_inflight(id: u64, seq: u64) -> bool;
                lease_chunk(id: u64, seq: u64, holder: &str, ttl_ms: u64) -> LeaseOutcome;
                release_chunk(id: u64, seq: u64, holder: &str) -> ();
                ack(ack: Ack) -> ();
                flush() -> ();
                get(id: u64) -> Option<CampaignRecord>;
                list() -> Vec<CampaignRecord>;
                active_campaigns() -> Vec<CampaignRecord>;
                campaigns_page(query: PageQuery) -> CampaignPage;
                census() -> Vec<(CampaignState, u64)>;
                expire_finished(before_ms: i64, max: usize) -> usize;
                pending_chunks(id: u64, from_seq: u64, max: usize) -> Vec<(u64, Chunk)>;
                committed_cids(id: u64, from_seq: u64, max_bytes: usize) -> CidPage;
                inflight_chunks(id: u64) -> Vec<u64>;
                progress(id: u64) -> Progress;
                size_on_disk() -> u64;
                queued_chunk_messages() -> Option<u64>;
                set_suppression(app: &str, user: &str, entry: Option<Suppression>) -> bool;
                suppression(app: &str, user: &str) -> Option<Suppression>;
                suppressed_among(app: &str, users: Vec<String>) -> Vec<bool>;
                suppressions(app: &str, after: &str, limit: usize) -> Vec<(String, Suppression)>;
                first_delivery(key: &str, now_ms: i64, window: DeliveryWindow) -> bool;
                delivery_noted(key: &str) -> bool;
                bind_phones(app: &str, pairs: Vec<PhoneBinding>) -> Vec<BindOutcome>;
                unbind_phones(app: &str, cids: Vec<CompactCid>) -> Vec<bool>;
                bindings_of(app: &str, cids: Vec<CompactCid>) -> Vec<Option<StoredBinding>>;
                binding_of_pn(app: &str, pn_md5: &str) -> Option<(CompactCid, Vec<u8>)>;
                claim(key: &str, id: u64) -> u64;
                claimed(key: &str) -> Option<u64>;
                texting_stage(entry: TextingEntry) -> bool;
                texting_due(now_ms: i64, max: usize) -> Vec<TextingEntry>;
                texting_save(entry: TextingEntry) -> u64;
                texting_finish(entry: TextingEntry, tally: SmsTally) -> ();
                note_sms_serials(app: &str, campaign: u64, sids: Vec<String>) -> ();
                take_sms_serial(app: &str, sid: &str) -> Option<u64>;
                note_receipts(app: &str, marks: Vec<(ReceiptKey, u8)>) -> Vec<u8>;
                receipt_marks(app: &str, keys: Vec<ReceiptKey>) -> Vec<u8>;
                heartbeat(member: &str, now_ms: i64) -> usize;
            }
        }
    }

    /// An upload of 50 chunks to a fresh draft whose stage write of chunk `failing` fails.
    async fn upload_failing_at(failing: u64) -> (Result<UploadView, ApiError>, u64, Arc<StageFailsAt>, u64, TempDir) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let settings = crate::store::StoreSettings { path: dir.path().join("store"), cache_bytes: 8 << 20 };
        let inner: Arc<dyn crate::store::Store> = crate::store::SledStore::open(&settings).expect("a store");
        let store = Arc::new(StageFailsAt { inner, seq: failing, stages: Default::default() });
        let state = ApiState::new(
            store.clone(),
            Arc::new(crate::metrics::Metrics::new()),
            &[],
            HashMap::from([("main".to_owned(), crate::domain::Channel::Getui)]),
            Arc::new(tokio::sync::Notify::new()),
            crate::api::ApiSettings { chunk_size: 100, schedule_horizon_ms: 86_400_000, max_recipients: 1_000_000 },
            Vec::new(),
        )
        .with_upload_spill_dir(dir.path().join("spill"));
        let rec = store.create(crate::domain::campaign::sample_spec(), 0).await.expect("a draft");
        let recipients: Vec<Recipient<'static>> = (0..5000u32)
            .map(|n| parse_text_line(&format!("{:032x}", 0xc1d0_0000_u128 + u128::from(n))).expect("a cid"))
            .collect();
        let answer = upload_recipients(&state, &rec, recipients).await;
        let stages = store.stages.load(std::sync::atomic::Ordering::SeqCst);
        (answer, rec.id, store, stages, dir)
    }

    #[tokio::test]
    async fn a_stage_write_that_fails_after_later_ones_were_handed_over_refuses_the_upload_whole() {
        for failing in [10, 49] {
            let (answer, id, store, stages, _dir) = upload_failing_at(failing).await;
            let err = answer.expect_err("the upload is refused");
            assert_eq!(err.status, 500, "{failing}: the store's failure is the daemon's: {err}");
            if failing == 10 {
                assert!(stages > 11, "later chunks were handed over before the failure was seen ({stages} writes)");
            }
            let rec = store.get(id).await.expect("read").expect("the draft");
            assert_eq!((rec.recipients, rec.chunk_count), (0, 0), "{failing}: nothing was committed");
            for seq in 0..50 {
                let left = store.staged_chunk(id, seq).await.expect("read");
                assert!(left.is_none(), "{failing}: staged chunk {seq} was discarded");
            }
        }
    }

    #[test]
    fn uploads_in_progress_count_as_filters_in_memory() {
        let uploads = uploads();
        let busy = uploads.begin(7).expect("not busy yet");
        assert_eq!(uploads.filters_in_memory(), 1);
        drop(busy);
        assert_eq!(uploads.filters_in_memory(), 0);
    }
}
