//! `POST /v1/campaigns/{id}/recipients`: a streamed upload of millions of lines.
//!
//! The body is read frame by frame and cut into lines; recipients go into chunks that are
//! staged in the store as they fill and committed in one step at the end. A bad line is refused
//! on its own (reported with its number); a broken body (not UTF-8, a line too long, no final
//! line end, a dropped connection) refuses the whole upload and the staged chunks are removed,
//! so nothing of it is kept. So does the daemon's shutdown, so a long upload never holds up a
//! stop. Duplicates are dropped by a per-campaign [`FingerprintSet`] (about 8 bytes a
//! recipient), kept between uploads only while the draft is in use and rebuilt from the store,
//! page by page, when it is needed again.
//!
//! What an upload holds in memory is bounded whatever its size: one chunk (staged early once
//! its variables pass [`CHUNK_VARS_BYTES`]), one line, and the filter.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{json, ApiError, ApiState};
use crate::domain::fingerprints::FingerprintSet;
use crate::domain::recipient::{parse_ndjson_line, parse_text_line, parse_user_line, Recipient};
use crate::domain::CompactCid;
use crate::domain::{CampaignState, Mode};
use crate::protocol::{RejectedLine, UploadView};
use crate::store::{CampaignRecord, Chunk, UploadCommit};
use crate::wire::getui::MAX_BATCH_MESSAGES;

/// Longest accepted line, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// How many refused lines an answer lists (all are counted).
const REPORTED_REJECTS: usize = 20;
/// A chunk is staged once its recipients' variables take this many bytes, even if it holds
/// fewer recipients than a full chunk, so the upload's own memory stays small. (How the store
/// keeps long chunk values out of sled's blobs is its own business: it stores them in parts.)
pub const CHUNK_VARS_BYTES: usize = 48 * 1024;
/// How long a draft's duplicate filter stays in memory after its last upload.
const FILTER_IDLE: Duration = Duration::from_secs(300);
/// Most filters kept between uploads (each is 1.5 MB or more); the least recently used go first.
const MAX_KEPT_FILTERS: usize = 16;
/// How often idle filters are looked for.
const FILTER_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Stored bytes read per page while rebuilding a filter.
const REBUILD_PAGE_BYTES: usize = 1 << 20;

type Fingerprints = FingerprintSet;

/// Uploads in progress and the duplicate filters of draft campaigns.
#[derive(Default)]
pub(super) struct Uploads {
    /// Campaigns with an upload in progress, and when it began.
    busy: Mutex<HashMap<u64, Instant>>,
    /// Filters of draft campaigns between uploads. An upload takes its campaign's filter out
    /// and puts it back only if it commits: a failed upload's additions vanish with it, and the
    /// filter is rebuilt from the committed chunks next time. Idle ones are dropped
    /// ([`FILTER_IDLE`], [`MAX_KEPT_FILTERS`]) and rebuilt the same way.
    seen: Mutex<HashMap<u64, KeptFilter>>,
}

/// A filter between uploads, and when it was last put back.
struct KeptFilter {
    filter: Fingerprints,
    last_used: Instant,
}

impl Uploads {
    pub(super) fn in_progress(&self, id: u64) -> bool {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id)
    }

    /// Drops a campaign's filter once it can take no more uploads.
    pub(super) fn forget(&self, id: u64) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Takes a campaign's kept filter, if it is in memory.
    fn take(&self, id: u64) -> Option<Fingerprints> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id).map(|k| k.filter)
    }

    /// Keeps a committed upload's filter for the next upload to the same draft.
    fn keep(&self, id: u64, filter: Fingerprints, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(id, KeptFilter { filter, last_used: now });
        evict(&mut seen, now);
    }

    /// Drops the filters idle for too long, and the oldest beyond the cap.
    fn sweep(&self, now: Instant) {
        evict(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()), now);
    }

    /// Filters in memory: kept between uploads or held by an upload in progress.
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
    recipients: Vec<Recipient>,
) -> Result<UploadView, ApiError> {
    let id = rec.id;
    let _busy = state
        .uploads
        .begin(id)
        .map_err(|_| ApiError::conflict(rec.state, format!("an upload to campaign {id} is already in progress")))?;
    let seen = take_filter(state, id, rec.chunk_count).await.map_err(|b| match b {
        Broken::Stopping => stopping_error(id),
        Broken::Body(e) | Broken::Store(e) => e,
    })?;
    let chunk_size = if rec.spec.mode == Mode::BatchSingle {
        state.settings.chunk_size.min(MAX_BATCH_MESSAGES)
    } else {
        state.settings.chunk_size
    };
    let mut job = Job::new(state, id, rec.chunk_count, chunk_size, rec.spec.mode == Mode::BatchSingle, seen);
    job.room = state.settings.max_recipients.saturating_sub(rec.recipients);
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
    let broken = match outcome {
        Ok(view) => return Ok(view),
        Err(broken) => broken,
    };
    if let Err(d) = state.store.discard_upload(id, job.first_seq, job.staged).await {
        tracing::error!(campaign = id, error = %d, "cannot remove the chunks of a refused upload");
    }
    Err(match broken {
        Broken::Body(e) | Broken::Store(e) => e,
        Broken::Stopping => stopping_error(id),
    })
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
    let seen = match take_filter(state, id, rec.chunk_count).await {
        Ok(seen) => seen,
        Err(Broken::Stopping) => return Err(stopping_error(id)),
        Err(Broken::Body(e) | Broken::Store(e)) => return Err(e),
    };
    let chunk_size = if rec.spec.mode == Mode::BatchSingle {
        state.settings.chunk_size.min(MAX_BATCH_MESSAGES)
    } else {
        state.settings.chunk_size
    };
    let mut job = Job::new(state, id, rec.chunk_count, chunk_size, rec.spec.mode == Mode::BatchSingle, seen);
    job.members = rec.spec.channel == crate::domain::Channel::Wecom;
    job.room = state.settings.max_recipients.saturating_sub(rec.recipients);
    let outcome = job.read(req.into_body(), format).await;
    let outcome = match outcome {
        Ok(()) => job.finish().await,
        Err(b) => Err(b),
    };
    match outcome {
        Ok(view) => json(200, &view),
        Err(broken) => {
            if let Err(d) = state.store.discard_upload(id, job.first_seq, job.staged).await {
                tracing::error!(campaign = id, error = %d, "cannot remove the chunks of a refused upload");
            }
            match broken {
                Broken::Body(e) | Broken::Store(e) => Err(e),
                Broken::Stopping => {
                    tracing::warn!(campaign = id, lines = job.line, "upload stopped by the daemon's shutdown");
                    Err(stopping_error(id))
                }
            }
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

/// Takes the campaign's duplicate filter, rebuilding it from the store when it is not in memory
/// (after a restart, a failed upload or a long idle time). The committed cids are read a page
/// at a time, so the rebuild holds one page however large the campaign.
async fn take_filter(state: &ApiState, id: u64, committed: u64) -> Result<Fingerprints, Broken> {
    if let Some(f) = state.uploads.take(id) {
        return Ok(f);
    }
    let mut set = Fingerprints::default();
    let mut next = (committed > 0).then_some(0);
    while let Some(from) = next {
        if state.shutdown.is_cancelled() {
            return Err(Broken::Stopping);
        }
        let page =
            state.store.committed_cids(id, from, REBUILD_PAGE_BYTES).await.map_err(|e| Broken::Store(e.into()))?;
        for cid in page.cids.chunks_exact(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(cid);
            set.insert(&CompactCid(b));
        }
        next = page.next;
    }
    Ok(set)
}

/// One upload's running state.
struct Job<'a> {
    state: &'a ApiState,
    id: u64,
    first_seq: u64,
    staged: u64,
    chunk_size: usize,
    keep_vars: bool,
    /// WeCom campaign: lines are member ids.
    members: bool,
    chunk: Chunk,
    /// Bytes of variables in `chunk`.
    chunk_vars_bytes: usize,
    /// Recipients the campaign may still take under `dispatch.max_recipients`.
    room: u64,
    seen: Fingerprints,
    line: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    first_rejected: Vec<RejectedLine>,
}

impl<'a> Job<'a> {
    fn new(
        state: &'a ApiState,
        id: u64,
        first_seq: u64,
        chunk_size: usize,
        keep_vars: bool,
        seen: Fingerprints,
    ) -> Self {
        Job {
            state,
            id,
            first_seq,
            staged: 0,
            chunk_size,
            keep_vars,
            members: false,
            chunk: Chunk::default(),
            chunk_vars_bytes: 0,
            room: u64::MAX,
            seen,
            line: 0,
            accepted: 0,
            duplicates: 0,
            rejected: 0,
            first_rejected: Vec::new(),
        }
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
            while let Some(nl) = memchr(b'\n', rest) {
                let (head, tail) = rest.split_at(nl);
                if carry.is_empty() {
                    self.take_line(head, format).await?;
                } else {
                    carry.extend_from_slice(head);
                    let line = std::mem::take(&mut carry);
                    self.take_line(&line, format).await?;
                    carry = line;
                    carry.clear();
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

    async fn take_line(&mut self, raw: &[u8], format: Format) -> Result<(), Broken> {
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
        let text = std::str::from_utf8(raw).map_err(|_| {
            Broken::Body(ApiError::bad_body(format!("line {} is not UTF-8; upload UTF-8 text", self.line)))
        })?;
        if text.trim().is_empty() {
            return Ok(());
        }
        let parsed = match (format, self.members) {
            (Format::Text, true) => parse_user_line(text),
            (Format::Ndjson, true) => Err("WeCom campaigns take plain text: one member id a line".into()),
            (Format::Text, false) => parse_text_line(text),
            (Format::Ndjson, false) => parse_ndjson_line(text),
        };
        match parsed {
            Ok(r) => self.add(r).await,
            Err(reason) => {
                self.rejected += 1;
                if self.first_rejected.len() < REPORTED_REJECTS {
                    self.first_rejected.push(RejectedLine { line: self.line, reason });
                }
                Ok(())
            }
        }
    }

    async fn add(&mut self, r: Recipient) -> Result<(), Broken> {
        if !self.seen.insert(&r.cid) {
            self.duplicates += 1;
            return Ok(());
        }
        if self.accepted >= self.room {
            return Err(self.over_cap()); // the whole upload goes, and its filter with it
        }
        self.accepted += 1;
        self.chunk.cids.extend_from_slice(&r.cid.0);
        if self.keep_vars {
            self.chunk_vars_bytes += r.vars.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
            self.chunk.vars.push(r.vars);
        }
        if let Some(user) = r.user {
            self.chunk.users.push(user);
        }
        if self.chunk.len() >= self.chunk_size || self.chunk_vars_bytes >= CHUNK_VARS_BYTES {
            self.stage().await?;
        }
        Ok(())
    }

    fn over_cap(&self) -> Broken {
        let max = self.state.settings.max_recipients;
        Broken::Body(ApiError::too_large(format!(
            "line {} would take campaign {} past dispatch.max_recipients = {max} recipients; nothing of this \
             upload was kept: split the list over several campaigns",
            self.line, self.id
        )))
    }

    async fn stage(&mut self) -> Result<(), Broken> {
        let chunk = std::mem::take(&mut self.chunk);
        self.chunk_vars_bytes = 0;
        self.chunk.cids.reserve(self.chunk_size * 16);
        let seq = self.first_seq + self.staged;
        self.staged += 1; // counted before the write so a failure discards it too
        self.state.store.stage_chunk(self.id, seq, chunk).await.map_err(|e| Broken::Store(e.into()))
    }

    async fn finish(&mut self) -> Result<UploadView, Broken> {
        if !self.chunk.is_empty() {
            self.stage().await?;
        }
        let commit = UploadCommit {
            first_seq: self.first_seq,
            chunks: self.staged,
            recipients: self.accepted,
            duplicates: self.duplicates,
            rejected: self.rejected,
        };
        let rec = self.state.store.commit_upload(self.id, commit).await.map_err(|e| Broken::Store(e.into()))?;
        let seen = std::mem::take(&mut self.seen);
        self.state.uploads.keep(self.id, seen, Instant::now());
        tracing::info!(
            campaign = self.id,
            accepted = self.accepted,
            duplicates = self.duplicates,
            rejected = self.rejected,
            "upload committed"
        );
        Ok(UploadView {
            accepted: self.accepted,
            duplicates: self.duplicates,
            rejected: self.rejected,
            first_rejected: std::mem::take(&mut self.first_rejected),
            campaign_total: rec.recipients,
        })
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(n: u8) -> Fingerprints {
        let mut f = Fingerprints::default();
        f.insert(&CompactCid([n; 16]));
        f
    }

    #[test]
    fn idle_filters_are_dropped_and_their_number_is_capped() {
        let uploads = Uploads::default();
        let start = Instant::now();
        for id in 0..(MAX_KEPT_FILTERS as u64 + 4) {
            uploads.keep(id, filter_of(id as u8), start + Duration::from_secs(id));
        }
        assert_eq!(uploads.filters_in_memory(), MAX_KEPT_FILTERS, "the least recently used go beyond the cap");
        assert!(uploads.take(0).is_none() && uploads.take(3).is_none(), "the oldest went first");
        let newest = MAX_KEPT_FILTERS as u64 + 3;
        let kept = uploads.take(newest).expect("the newest is kept");
        assert!(kept.contains(&CompactCid([newest as u8; 16])));
        uploads.keep(newest, kept, start + Duration::from_secs(newest));

        uploads.sweep(start + FILTER_IDLE + Duration::from_secs(newest - 1));
        assert_eq!(uploads.filters_in_memory(), 1, "only the one used within FILTER_IDLE stays");
        uploads.sweep(start + FILTER_IDLE + Duration::from_secs(newest));
        assert_eq!(uploads.filters_in_memory(), 0);
    }

    #[test]
    fn uploads_in_progress_count_as_filters_in_memory() {
        let uploads = Uploads::default();
        let busy = uploads.begin(7).expect("not busy yet");
        assert_eq!(uploads.filters_in_memory(), 1);
        drop(busy);
        assert_eq!(uploads.filters_in_memory(), 0);
    }
}
