//! `POST /v1/campaigns/{id}/recipients`: a streamed upload of millions of lines.
//!
//! The body is read frame by frame and cut into lines; recipients go into chunks that are
//! staged in the store as they fill and committed in one step at the end. A bad line is refused
//! on its own (reported with its number); a broken body (not UTF-8, a line too long, no final
//! line end, a dropped connection) refuses the whole upload and the staged chunks are removed,
//! so nothing of it is kept. Duplicates are dropped by a per-campaign
//! [`FingerprintSet`] (about 8 bytes a recipient).

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
use crate::domain::{CampaignState, Mode};
use crate::protocol::{RejectedLine, UploadView};
use crate::store::{Chunk, UploadCommit};
use crate::upstream::getui::wire::MAX_BATCH_MESSAGES;

/// Longest accepted line, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// How many refused lines an answer lists (all are counted).
const REPORTED_REJECTS: usize = 20;

type Fingerprints = FingerprintSet;

/// Uploads in progress and the duplicate filters of draft campaigns.
#[derive(Default)]
pub(super) struct Uploads {
    /// Campaigns with an upload in progress, and when it began.
    busy: Mutex<HashMap<u64, Instant>>,
    /// Filters of draft campaigns between uploads. An upload takes its campaign's filter out
    /// and puts it back only if it commits: a failed upload's additions vanish with it, and the
    /// filter is rebuilt from the committed chunks next time.
    seen: Mutex<HashMap<u64, Fingerprints>>,
}

impl Uploads {
    pub(super) fn in_progress(&self, id: u64) -> bool {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id)
    }

    /// Drops a campaign's filter once it can take no more uploads.
    pub(super) fn forget(&self, id: u64) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
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
    let _busy = state.uploads.begin(id).map_err(|running_for| {
        ApiError::conflict(
            rec.state,
            format!(
                "an upload to campaign {id} is already in progress (started {} s ago); wait for its answer \
                 before sending the list again",
                running_for.as_secs()
            ),
        )
    })?;
    let seen = take_filter(state, id, rec.chunk_count).await?;
    let chunk_size = if rec.spec.mode == Mode::BatchSingle {
        state.settings.chunk_size.min(MAX_BATCH_MESSAGES)
    } else {
        state.settings.chunk_size
    };
    let mut job = Job::new(state, id, rec.chunk_count, chunk_size, rec.spec.mode == Mode::BatchSingle, seen);
    job.members = rec.spec.channel == "wecom";
    let outcome = job.read(req.into_body(), format).await;
    let outcome = match outcome {
        Ok(()) => job.finish().await,
        Err(b) => Err(b),
    };
    match outcome {
        Ok(view) => json(200, &view),
        Err(Broken::Body(e) | Broken::Store(e)) => {
            if let Err(d) = state.store.discard_upload(id, job.first_seq, job.staged).await {
                tracing::error!(campaign = id, error = %d, "cannot remove the chunks of a refused upload");
            }
            Err(e)
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
/// (after a restart or a failed upload).
async fn take_filter(state: &Arc<ApiState>, id: u64, committed: u64) -> Result<Fingerprints, ApiError> {
    if let Some(f) = state.uploads.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
        return Ok(f);
    }
    let mut set = Fingerprints::default();
    if committed > 0 {
        let chunks = state.store.committed_chunks(id).await?;
        for c in &chunks {
            for i in 0..c.len() {
                set.insert(&c.cid(i));
            }
        }
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
        while let Some(frame) = body.frame().await {
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
        self.accepted += 1;
        self.chunk.cids.extend_from_slice(&r.cid.0);
        if self.keep_vars {
            self.chunk.vars.push(r.vars);
        }
        if let Some(user) = r.user {
            self.chunk.users.push(user);
        }
        if self.chunk.len() >= self.chunk_size {
            self.stage().await?;
        }
        Ok(())
    }

    async fn stage(&mut self) -> Result<(), Broken> {
        let chunk = std::mem::take(&mut self.chunk);
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
        self.state.uploads.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(self.id, seen);
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
