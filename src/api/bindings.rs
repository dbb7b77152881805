//! `/v1/apps/{app}/cid-pn`: cid↔phone bindings for SMS fallback (issue 13), in the legacy
//! API's shape (`bind_cid_pn`, `unbind_cid_pn`, `query_cid_pn`), plus a streamed bulk import.
//!
//! Numbers are sealed here, before the store sees them (`seal::aad(&[app, cid])` ties each to
//! its record), and opened only to be masked. No number reaches a log, a metric, an error
//! message or an answer unmasked: refusal reasons come from `domain::sms`, which never quotes
//! one, and JSON errors of a line are replaced by a fixed text (serde quotes the value).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::de::{Deserializer, MapAccess, Visitor};

use super::{json, read_whole_body, ApiError, ApiState, BodyError};
use crate::config::Channel;
use crate::domain::phone::PhoneNumber;
use crate::domain::sms::{check_bind_pair, check_call_size, check_cid, BindCode, BindRefusal};
use crate::domain::CompactCid;
use crate::percent;
use crate::protocol::{BindAnswerView, BindImportView, BindRet, RejectedLine};
use crate::seal::{aad, SealKey};
use crate::store::PhoneBinding;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Largest body of a bind or unbind call (50 pairs take about 4 KiB).
const MAX_CALL_BODY: usize = 64 * 1024;
/// Longest import line, in bytes.
const MAX_IMPORT_LINE: usize = 1024;
/// Pairs handed to the store at once during an import: memory stays at one batch.
pub const IMPORT_BATCH: usize = 2000;
/// How many refused import lines an answer lists (all are counted).
const REPORTED_BAD_LINES: usize = 20;

/// The app must be a configured Getui app (cids are Getui's) and a seal key configured.
pub(super) fn checked<'s>(state: &'s ApiState, app: &str) -> Result<&'s SealKey, ApiError> {
    match state.apps.get(app) {
        Some(Channel::Getui) => {}
        Some(_) => {
            return Err(ApiError::not_found(format!(
                "{app} is not a Getui app; cid-phone bindings belong to Getui apps, whose cids they bind"
            )))
        }
        None => return Err(ApiError::not_found(format!("no app named {app:?}"))),
    }
    state.seal_key.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "no seal key is configured, so phone numbers cannot be stored: set store.seal_key_env (or, for \
             development, store.dev_seal_key)",
        )
    })
}

/// The canonical 32-digit form of a cid (what the seal's associated data names).
pub(super) fn cid_text(cid: &CompactCid) -> String {
    let mut buf = [0u8; 32];
    cid.encode(&mut buf).to_owned()
}

fn sealed_pair(key: &SealKey, app: &str, cid: CompactCid, phone: &PhoneNumber) -> PhoneBinding {
    let sealed = key.seal(phone.e164().as_bytes(), &aad(&[app, &cid_text(&cid)]));
    PhoneBinding { cid, sealed, pn_md5: phone.pn_md5() }
}

fn refused(cid: &str, r: BindRefusal) -> BindRet {
    BindRet { cid: cid.to_owned(), code: r.code.code(), pn: None, reason: Some(r.reason) }
}

fn ok(cid: &str) -> BindRet {
    BindRet { cid: cid.to_owned(), code: BindCode::Ok.code(), pn: None, reason: None }
}

fn store_failed(cid: &str) -> BindRet {
    refused(cid, BindRefusal { code: BindCode::Other, reason: "the store failed; try again".into() })
}

fn answer(batch_ret: Vec<BindRet>) -> Answer {
    json(200, &BindAnswerView { result: "0".into(), batch_ret })
}

async fn body_json(state: &ApiState, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    read_whole_body(state, req.into_body(), MAX_CALL_BODY).await.map_err(|e| match e {
        BodyError::Unreadable => ApiError::too_large(format!("the body is unreadable or over {MAX_CALL_BODY} bytes")),
        BodyError::TimedOut(d) => ApiError::body_timeout(d),
    })
}

/// A JSON object's members in the order written (serde_json's map would sort them).
struct OrderedPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object {cid: phone}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedPairs, A::Error> {
                let mut out = Vec::new();
                // The body's size limit bounds how many there can be.
                while let Some(kv) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(kv);
                }
                Ok(OrderedPairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A phone given as a JSON string (or a bare number); anything else reads as empty (code 6).
fn phone_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `PUT /v1/apps/{app}/cid-pn` with `{cid: phone, ...}` (≤ 50 pairs).
pub(super) async fn bind(state: &Arc<ApiState>, app: &str, req: Request<Incoming>) -> Answer {
    let key = checked(state, app)?.clone();
    let body = body_json(state, req).await?;
    // serde's message may quote a value (a number): say what is wrong without it.
    let pairs: OrderedPairs = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("cidpnlist", "the body must be a JSON object of cid → phone number strings"))?;
    check_call_size(pairs.0.len()).map_err(|e| ApiError::invalid("cidpnlist", e.to_string()))?;
    let mut rets = Vec::with_capacity(pairs.0.len());
    let mut valid = Vec::new();
    for (i, (cid, phone)) in pairs.0.iter().enumerate() {
        match check_bind_pair(cid, &phone_text(phone)) {
            Err(r) => rets.push(refused(cid, r)),
            Ok((c, p)) => {
                valid.push((i, sealed_pair(&key, app, c, &p)));
                rets.push(ok(cid));
            }
        }
    }
    if !valid.is_empty() {
        let (at, bindings): (Vec<usize>, Vec<PhoneBinding>) = valid.into_iter().unzip();
        if let Err(e) = state.store.bind_phones(app, bindings).await {
            tracing::error!(app, error = %e, "cannot store cid-phone bindings");
            for i in at {
                rets[i] = store_failed(&rets[i].cid);
            }
        }
    }
    answer(rets)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CidList {
    cids: Vec<String>,
}

/// Checks a list of cids: the answers of the bad ones, and the good ones with their places.
pub(super) fn judge_cids(cids: &[String]) -> (Vec<BindRet>, Vec<(usize, CompactCid)>) {
    let mut rets = Vec::with_capacity(cids.len());
    let mut valid = Vec::new();
    for (i, cid) in cids.iter().enumerate() {
        match check_cid(cid) {
            Err(r) => rets.push(refused(cid, r)),
            Ok(c) => {
                valid.push((i, c));
                rets.push(ok(cid));
            }
        }
    }
    (rets, valid)
}

fn not_bound(cid: &str) -> BindRet {
    refused(cid, BindRefusal { code: BindCode::NotBound, reason: "no phone number is bound to this cid".into() })
}

/// `DELETE /v1/apps/{app}/cid-pn` with `{"cids": [...]}` (≤ 50).
pub(super) async fn unbind(state: &Arc<ApiState>, app: &str, req: Request<Incoming>) -> Answer {
    checked(state, app)?;
    let body = body_json(state, req).await?;
    // serde's message may quote a value, which could be a number: a fixed text instead.
    let list: CidList = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("cids", "the body must be {\"cids\": [cid strings]}, at most 50"))?;
    check_call_size(list.cids.len()).map_err(|e| ApiError::invalid("cids", e.to_string()))?;
    let (mut rets, valid) = judge_cids(&list.cids);
    if !valid.is_empty() {
        let (at, cids): (Vec<usize>, Vec<CompactCid>) = valid.into_iter().unzip();
        match state.store.unbind_phones(app, cids).await {
            Ok(done) => {
                for (i, was_bound) in at.into_iter().zip(done) {
                    if !was_bound {
                        rets[i] = not_bound(&rets[i].cid);
                    }
                }
            }
            Err(e) => {
                tracing::error!(app, error = %e, "cannot remove cid-phone bindings");
                for i in at {
                    rets[i] = store_failed(&rets[i].cid);
                }
            }
        }
    }
    answer(rets)
}

/// `GET /v1/apps/{app}/cid-pn?cids=a,b` (≤ 50): the masked number of each, or 7.
pub(super) async fn query(state: &Arc<ApiState>, app: &str, query: Option<&str>) -> Answer {
    let key = checked(state, app)?;
    let cids: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| *k == "cids")
        .flat_map(|(_, v)| percent::decode(v).split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    if cids.is_empty() {
        return Err(ApiError::invalid("cids", "give the cids to look up: ?cids=cid1,cid2 (at most 50)"));
    }
    check_call_size(cids.len()).map_err(|e| ApiError::invalid("cids", e.to_string()))?;
    let (mut rets, valid) = judge_cids(&cids);
    if !valid.is_empty() {
        let (at, compact): (Vec<usize>, Vec<CompactCid>) = valid.into_iter().unzip();
        match state.store.phones_of(app, compact.clone()).await {
            Ok(found) => {
                for ((i, cid), sealed) in at.into_iter().zip(compact).zip(found) {
                    rets[i] = match sealed {
                        None => not_bound(&rets[i].cid),
                        // Bound through the legacy SDK, which sends md5(phone) only.
                        Some(sealed) if sealed.is_empty() => BindRet {
                            reason: Some("bound by md5 only (legacy SDK): no number to text".into()),
                            ..ok(&rets[i].cid)
                        },
                        Some(sealed) => match open_masked(key, app, &cid, &sealed) {
                            Some(masked) => BindRet { pn: Some(masked), ..ok(&rets[i].cid) },
                            None => refused(
                                &rets[i].cid,
                                BindRefusal {
                                    code: BindCode::Other,
                                    reason: "the stored number does not open with the configured seal key".into(),
                                },
                            ),
                        },
                    };
                }
            }
            Err(e) => {
                tracing::error!(app, error = %e, "cannot read cid-phone bindings");
                for i in at {
                    rets[i] = store_failed(&rets[i].cid);
                }
            }
        }
    }
    answer(rets)
}

/// Opens a sealed number and masks it; `None` when it does not open (another key).
fn open_masked(key: &SealKey, app: &str, cid: &CompactCid, sealed: &[u8]) -> Option<String> {
    let plain = key.open(sealed, &aad(&[app, &cid_text(cid)])).ok()?;
    let text = String::from_utf8(plain).ok()?;
    PhoneNumber::parse(&text).ok().map(|p| p.masked())
}

#[derive(Clone, Copy)]
enum ImportFormat {
    Ndjson,
    Csv,
}

/// One NDJSON import line.
#[derive(serde::Deserialize)]
struct ImportLine {
    cid: String,
    phone: serde_json::Value,
}

/// `POST /v1/apps/{app}/cid-pn/import`: NDJSON `{"cid","phone"}` or CSV `cid,phone` lines,
/// any number, bound in batches of [`IMPORT_BATCH`]. A bad line is counted and reported with
/// its number; the rest are bound. Batches already bound stay bound if the body breaks off
/// (binding is idempotent: send the file again).
pub(super) async fn import(state: &Arc<ApiState>, app: &str, req: Request<Incoming>) -> Answer {
    let key = checked(state, app)?.clone();
    let ct = req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = match ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "application/x-ndjson" | "application/ndjson" => ImportFormat::Ndjson,
        "text/csv" | "text/plain" => ImportFormat::Csv,
        _ => {
            return Err(ApiError::media_type(format!(
                "content-type {ct:?} is not accepted: send application/x-ndjson ({{\"cid\":..,\"phone\":..}} a line) \
                 or text/csv (cid,phone a line)"
            )))
        }
    };
    let mut job = Import { state, app, key, format, batch: Vec::with_capacity(IMPORT_BATCH), view: empty_view() };
    let outcome = job.read(req.into_body()).await;
    let outcome = match outcome {
        Ok(()) => job.flush().await,
        Err(e) => Err(e),
    };
    let v = &job.view;
    tracing::info!(app, lines = v.lines, bound = v.bound, replaced = v.replaced, bad = v.bad_lines, "binding import");
    outcome?;
    json(200, &job.view)
}

fn empty_view() -> BindImportView {
    BindImportView { lines: 0, bound: 0, replaced: 0, bad_lines: 0, first_bad: Vec::new() }
}

struct Import<'a> {
    state: &'a ApiState,
    app: &'a str,
    key: SealKey,
    format: ImportFormat,
    batch: Vec<PhoneBinding>,
    view: BindImportView,
}

impl Import<'_> {
    fn kept(&self) -> String {
        format!(
            "the {} lines before it are kept ({} bound); binding is idempotent, so send the file again",
            self.view.lines, self.view.bound
        )
    }

    async fn read(&mut self, mut body: Incoming) -> Result<(), ApiError> {
        let mut carry: Vec<u8> = Vec::with_capacity(MAX_IMPORT_LINE);
        // Inside an overlong line: drop bytes until its end.
        let mut overlong = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => {
                    return Err(ApiError::unavailable(format!("the daemon is shutting down: the import stopped at line {}; {}", self.view.lines, self.kept())));
                }
                next = body.frame() => next,
            };
            let Some(frame) = next else { break };
            let frame = frame.map_err(|e| {
                ApiError::bad_body(format!(
                    "the import was cut off after line {}: {e}; {}",
                    self.view.lines,
                    self.kept()
                ))
            })?;
            let Ok(data) = frame.into_data() else { continue };
            let mut rest: &[u8] = &data;
            while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                let (head, tail) = rest.split_at(nl);
                if overlong {
                    overlong = false;
                    self.too_long().await?;
                } else {
                    carry.extend_from_slice(head);
                    let line = std::mem::take(&mut carry);
                    self.line(&line).await?;
                    carry = line;
                    carry.clear();
                }
                rest = &tail[1..];
            }
            if !overlong {
                carry.extend_from_slice(rest);
                if carry.len() > MAX_IMPORT_LINE {
                    overlong = true;
                    carry.clear();
                }
            }
        }
        if overlong {
            self.too_long().await?;
        } else if !carry.is_empty() {
            // A last line without its \n is taken as it is.
            let line = std::mem::take(&mut carry);
            self.line(&line).await?;
        }
        Ok(())
    }

    async fn too_long(&mut self) -> Result<(), ApiError> {
        self.view.lines += 1;
        self.bad(format!("longer than {MAX_IMPORT_LINE} bytes"));
        Ok(())
    }

    fn bad(&mut self, reason: String) {
        self.view.bad_lines += 1;
        if self.view.first_bad.len() < REPORTED_BAD_LINES {
            self.view.first_bad.push(RejectedLine { line: self.view.lines, reason });
        }
    }

    async fn line(&mut self, raw: &[u8]) -> Result<(), ApiError> {
        self.view.lines += 1;
        let cap = self.state.settings.max_stream_lines();
        if self.view.lines > cap {
            self.view.lines -= 1;
            self.flush().await?;
            return Err(ApiError::too_large(format!(
                "an import takes at most {cap} lines (twice dispatch.max_recipients); {}: send the rest in another call",
                self.kept()
            )));
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            self.bad("not UTF-8".into());
            return Ok(());
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let (cid, phone) = match self.format {
            ImportFormat::Ndjson => match serde_json::from_str::<ImportLine>(text) {
                Ok(l) => (l.cid, phone_text(&l.phone)),
                Err(_) => {
                    self.bad("not a JSON object with string fields cid and phone".into());
                    return Ok(());
                }
            },
            ImportFormat::Csv => match text.split_once(',') {
                Some((c, p)) => {
                    let (c, p) = (c.trim().trim_matches('"'), p.trim().trim_matches('"'));
                    if self.view.lines == 1 && c.eq_ignore_ascii_case("cid") {
                        return Ok(()); // a header line
                    }
                    (c.to_owned(), p.to_owned())
                }
                None => {
                    self.bad("not cid,phone".into());
                    return Ok(());
                }
            },
        };
        match check_bind_pair(&cid, &phone) {
            Err(r) => self.bad(format!("code {}: {}", r.code.code(), r.reason)),
            Ok((c, p)) => {
                let pair = sealed_pair(&self.key, self.app, c, &p);
                self.batch.push(pair);
                if self.batch.len() >= IMPORT_BATCH {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ApiError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        let outcomes = self.state.store.bind_phones(self.app, batch).await.map_err(|e| {
            tracing::error!(app = self.app, error = %e, "cannot store imported bindings");
            ApiError::unavailable(format!("the store failed at line {}; {}", self.view.lines, self.kept()))
        })?;
        self.view.bound += n;
        self.view.replaced += outcomes.iter().filter(|o| o.displaced.is_some()).count() as u64;
        Ok(())
    }
}
