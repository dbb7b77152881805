//! SMS fallback at the HTTP edge (issue 13): the two vendor callbacks that tell campaignd what
//! became of a message, and the campaign's `sms/stop`.
//!
//! - `POST /getui/{app}/receipts`: Getui's receipt callback (消息回执), one signed JSON line per
//!   event. Verified lines are counted in `receipts_total{app,kind}` and their arrival, shown
//!   and click bits noted per (taskid, cid), which the texting reads to skip reached
//!   recipients; refused lines are counted as `kind="refused_<why>"` and listed in the answer.
//! - `POST /sms/{app}/status`: Tencent Cloud SMS delivery reports (a JSON array). Each report's
//!   serial number names the campaign it counts for, once: `sms_delivered` or
//!   `sms_failed:<carrier code>`, and `sms_total{app,result}`.
//! - `POST /v1/campaigns/{id}/sms/stop`: the seed's stop_sms; texts not yet sent are skipped.
//!
//! Neither vendor signs with a bearer token, so the callbacks sit outside `/v1` (and on the
//! callback listener when there is one). Reports carry phone numbers: none is read into
//! anything logged or answered.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Serialize;

use super::{json, read_whole_body, ApiError, ApiState, BodyError};
use crate::domain::texting::{receipt_bits, SmsTally};
use crate::domain::CompactCid;
use crate::store::{Change, ReceiptKey};
use crate::wire::getui::receipt::{self, ParsedBody, ReceiptLimits};
use crate::wire::tencent_sms::{StatusReport, StatusReportAnswer, REPORT_SUCCESS};

type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Largest receipt body. Getui batches lines; 4 MiB holds some 15,000 of them.
const MAX_RECEIPT_BYTES: usize = 4 << 20;
/// Most non-blank lines of a receipt body (far more than 4 MiB of real lines can hold).
const MAX_RECEIPT_LINES: usize = 100_000;
/// Largest status-report body (a report is about 250 bytes).
const MAX_STATUS_BYTES: usize = 4 << 20;
/// How many refused lines a receipt answer lists (all are counted).
const REPORTED_ERRORS: usize = 20;
/// Longest carrier code kept as an `sms_failed` key: the gateway's text goes into the campaign
/// record and the report, so it is bounded.
const MAX_FAIL_CODE_CHARS: usize = 64;

/// The answer to a receipt body.
#[derive(Debug, Serialize)]
struct ReceiptAnswer {
    /// Lines verified and recorded.
    accepted: usize,
    /// Lines refused.
    refused: usize,
    /// The first refused lines and why.
    errors: Vec<LineRefusal>,
}

#[derive(Debug, Serialize)]
struct LineRefusal {
    /// 1-based line number in the body.
    line: usize,
    error: String,
}

/// `POST /getui/{app}/receipts`.
pub(super) async fn receipts(state: &Arc<ApiState>, app: &str, req: Request<Incoming>) -> Answer {
    if !state.receipt_secrets.contains_key(app) {
        return Err(ApiError::not_found(format!("no Getui app named {app:?} takes receipts here")));
    }
    let body = read_whole_body(state, req.into_body(), MAX_RECEIPT_BYTES).await.map_err(|e| match e {
        BodyError::TimedOut(deadline) => ApiError::body_timeout(deadline),
        BodyError::Unreadable => ApiError::too_large(format!("a receipt body is at most {MAX_RECEIPT_BYTES} bytes")),
    })?;
    take_receipts(state, app, &body).await
}

/// Verifies a receipt body of `app`, notes the verified lines' bits in one store call, counts
/// every line, and answers what was taken: 400 when every line was refused, so a sender with a
/// wrong secret or AppId notices.
async fn take_receipts(state: &ApiState, app: &str, body: &[u8]) -> Answer {
    let Some((app_id, secret)) = state.receipt_secrets.get(app) else {
        return Err(ApiError::not_found(format!("no Getui app named {app:?} takes receipts here")));
    };
    let limits = ReceiptLimits { max_body_bytes: MAX_RECEIPT_BYTES, max_lines: MAX_RECEIPT_LINES };
    let parsed =
        receipt::parse_body(body, app_id, secret.expose(), limits).map_err(|e| ApiError::too_large(e.to_string()))?;
    let judged = judge(&parsed);
    if !judged.marks.is_empty() {
        state.store.note_receipts(app, judged.marks.into_iter().collect()).await.map_err(ApiError::internal)?;
    }
    // Counted once the marks are durable: a failed write is answered 500 and counts nothing.
    for kind in &judged.kinds {
        state.metrics.receipts_total.with_label_values(&[app, kind]).inc();
    }
    let refused = judged.errors.len();
    let errors =
        judged.errors.into_iter().take(REPORTED_ERRORS).map(|(line, error)| LineRefusal { line, error }).collect();
    let answer = ReceiptAnswer { accepted: judged.accepted, refused, errors };
    if answer.accepted == 0 && refused > 0 {
        tracing::warn!(app, refused, "every receipt line was refused; check the app's AppId and MasterSecret");
        return json(400, &answer);
    }
    json(200, &answer)
}

/// What a parsed receipt body amounts to.
#[derive(Default)]
struct Judged {
    /// Lines verified with a valid cid.
    accepted: usize,
    /// The bits to add per (taskid, cid): lines of one key are merged, lines proving nothing
    /// (custom actions, failure codes) write nothing.
    marks: HashMap<ReceiptKey, u8>,
    /// The metric kind of every line, accepted or refused.
    kinds: Vec<String>,
    /// Refused lines: number and why.
    errors: Vec<(usize, String)>,
}

fn judge(parsed: &ParsedBody) -> Judged {
    let mut out = Judged::default();
    for line in &parsed.lines {
        let verified = match &line.result {
            Ok(l) => l,
            Err(e) => {
                refuse(&mut out, line.line_no, e.label(), e.to_string());
                continue;
            }
        };
        // The store keys receipts by the compact cid; a line naming anything else cannot be
        // about a recipient campaignd sent to.
        let Some(cid) = CompactCid::parse(&verified.cid.trim().to_ascii_lowercase()) else {
            refuse(&mut out, line.line_no, "bad_cid", "cid is not a Getui cid (32 hex digits)".into());
            continue;
        };
        out.accepted += 1;
        out.kinds.push(verified.kind().as_str().to_owned());
        let bits = receipt_bits::of(verified);
        if bits != 0 {
            *out.marks.entry(ReceiptKey { taskid: verified.taskid.clone(), cid }).or_insert(0) |= bits;
        }
    }
    out
}

fn refuse(out: &mut Judged, line: usize, label: &'static str, error: String) {
    out.kinds.push(format!("refused_{label}"));
    out.errors.push((line, error));
}

/// `POST /sms/{app}/status`.
pub(super) async fn status_reports(state: &Arc<ApiState>, app: &str, req: Request<Incoming>) -> Answer {
    if !state.sms.contains_key(app) {
        return Err(ApiError::not_found(format!("no app named {app:?} has an SMS gateway ([apps.{app}.sms])")));
    }
    let body = read_whole_body(state, req.into_body(), MAX_STATUS_BYTES).await.map_err(|e| match e {
        BodyError::TimedOut(deadline) => ApiError::body_timeout(deadline),
        BodyError::Unreadable => {
            ApiError::too_large(format!("a status-report body is at most {MAX_STATUS_BYTES} bytes"))
        }
    })?;
    take_status_reports(state, app, &body).await
}

/// Applies a status-report body of `app`: each serial number known to the store counts once
/// for its campaign; unknown and repeated ones are ignored. Tencent gets its fixed answer
/// either way: an unknown serial is nothing it could fix by sending again.
async fn take_status_reports(state: &ApiState, app: &str, body: &[u8]) -> Answer {
    let reports = parse_reports(body)?;
    let mut tallies: HashMap<u64, SmsTally> = HashMap::new();
    let mut unknown = 0usize;
    for report in &reports {
        let Some(campaign) = state.store.take_sms_serial(app, &report.sid).await.map_err(ApiError::internal)? else {
            unknown += 1;
            continue;
        };
        let result = add_report(tallies.entry(campaign).or_default(), report);
        state.metrics.sms_total.with_label_values(&[app, result]).inc();
    }
    for (campaign, tally) in tallies {
        match state.store.change(campaign, Change::AddSms(tally)).await {
            Ok(_) => {}
            // Retention removed the campaign since it texted: nothing left to count into.
            Err(crate::store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    if unknown > 0 {
        tracing::info!(
            app,
            reports = reports.len(),
            unknown,
            "SMS status reports with unknown or repeated serials ignored"
        );
    }
    json(200, &StatusReportAnswer::ok())
}

/// Adds one report to its campaign's tally; answers the `sms_total` result.
fn add_report(tally: &mut SmsTally, report: &StatusReport) -> &'static str {
    if report.report_status.trim() == REPORT_SUCCESS {
        tally.delivered += 1;
        return "delivered";
    }
    let code: String = report.errmsg.trim().chars().take(MAX_FAIL_CODE_CHARS).collect();
    tally.fail(if code.is_empty() { "FAIL" } else { &code }, 1);
    "failed"
}

/// Reads a body as a JSON array of status reports. Errors name the item and field, never a
/// value: a value may be a phone number.
fn parse_reports(body: &[u8]) -> Result<Vec<StatusReport>, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let reports: Vec<StatusReport> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path == "." => {
                ApiError::invalid("body", "must be a JSON array of status reports")
            }
            serde_json::error::Category::Data => {
                let what = inner.to_string();
                let what = if what.starts_with("missing field") { strip_position(&what) } else { "wrong type".into() };
                ApiError::invalid(path, format!("not a status report: {what}"))
            }
            _ => ApiError::bad_body("the body is not valid JSON: expected a JSON array of status reports"),
        }
    })?;
    de.end().map_err(|_| ApiError::bad_body("the body has bytes after its JSON array"))?;
    Ok(reports)
}

fn strip_position(s: &str) -> String {
    s.find(" at line ").map_or(s, |i| &s[..i]).to_owned()
}

/// `POST /v1/campaigns/{id}/sms/stop`: 409 when the campaign has no `sms_fallback`.
pub(super) async fn stop(state: &Arc<ApiState>, id: u64) -> Answer {
    let rec = state.store.change(id, Change::StopSms).await?;
    // The texting may be waiting for its next due time: let it see the stop now.
    state.wake_dispatcher.notify_one();
    tracing::info!(campaign = id, "SMS fallback stopped");
    json(200, &super::campaigns::view(state, &rec).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    use crate::api::ApiSettings;
    use crate::config::Channel;
    use crate::dev::{DEV_APP_ID, DEV_MASTER_SECRET};
    use crate::domain::campaign::sample_spec;
    use crate::domain::sms::AppSmsFacts;
    use crate::metrics::Metrics;
    use crate::secret::Secret;
    use crate::store::{SledStore, Store, StoreSettings};
    use crate::wire::getui::receipt::ReceiptLine;

    /// The API of app `main` (Getui, with the development secrets and an SMS gateway) over a
    /// fresh store.
    fn fixture() -> (tempfile::TempDir, Arc<dyn Store>, ApiState) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let settings = StoreSettings { path: dir.path().to_path_buf(), cache_bytes: 8 << 20 };
        let store: Arc<dyn Store> = SledStore::open(&settings).expect("a store");
        let state = ApiState::new(
            store.clone(),
            Arc::new(Metrics::new()),
            &[],
            HashMap::from([("main".to_owned(), Channel::Getui)]),
            Arc::new(tokio::sync::Notify::new()),
            ApiSettings { chunk_size: 1000, schedule_horizon_ms: 86_400_000, max_recipients: 1_000_000 },
            Vec::new(),
        )
        .with_receipt_secrets(HashMap::from([(
            "main".to_owned(),
            (DEV_APP_ID.to_owned(), Secret::new(DEV_MASTER_SECRET)),
        )]))
        .with_sms(HashMap::from([("main".to_owned(), AppSmsFacts::new("campaignd", [("1", "{1}")]))]));
        (dir, store, state)
    }

    fn cid(n: u8) -> String {
        format!("{:032x}", 0xc1d0_0000_u128 + u128::from(n))
    }

    fn line(cid: &str, action: &str, secret: &str) -> String {
        let l = ReceiptLine::signed(DEV_APP_ID, cid, "RASL_task1", "msg-1", action, 1_700_000_000_000, secret);
        serde_json::to_string(&l).expect("a line")
    }

    async fn answer(a: Answer) -> (u16, serde_json::Value) {
        let resp = a.unwrap_or_else(ApiError::into_response);
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("a body").to_bytes();
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    fn counted(state: &ApiState, kind: &str) -> u64 {
        state.metrics.receipts_total.with_label_values(&["main", kind]).get()
    }

    #[tokio::test]
    async fn verified_receipts_are_noted_per_task_and_cid_and_every_line_is_counted() {
        let (_dir, store, state) = fixture();
        let body = [
            line(&cid(1), "0", DEV_MASTER_SECRET),
            line(&cid(2), "10010", DEV_MASTER_SECRET),
            line(&cid(3), "90001", DEV_MASTER_SECRET),
            line(&cid(4), "0", "not-the-secret"),
            line("not-a-cid", "0", DEV_MASTER_SECRET),
        ]
        .join("\n");
        let (status, v) = answer(take_receipts(&state, "main", body.as_bytes()).await).await;
        assert_eq!((status, &v["accepted"], &v["refused"]), (200, &3.into(), &2.into()), "{v}");
        assert_eq!(v["errors"][0]["line"], 4);
        assert_eq!(v["errors"][0]["error"], "bad sign");
        assert_eq!(v["errors"][1]["line"], 5);
        let keys: Vec<ReceiptKey> = (1..=3)
            .map(|n| ReceiptKey { taskid: "RASL_task1".into(), cid: CompactCid::parse(&cid(n)).expect("a cid") })
            .collect();
        let marks = store.receipt_marks("main", keys.clone()).await.expect("marks");
        assert_eq!(marks, [receipt_bits::ARRIVED, receipt_bits::CLICKED, 0], "a custom action proves nothing");
        for (kind, n) in
            [("arrival", 1), ("clicked", 1), ("custom", 1), ("refused_bad_sign", 1), ("refused_bad_cid", 1)]
        {
            assert_eq!(counted(&state, kind), n, "{kind}");
        }
        // Getui may post a line twice: it is taken again and changes nothing.
        let (status, _) = answer(take_receipts(&state, "main", body.as_bytes()).await).await;
        assert_eq!(status, 200);
        assert_eq!(store.receipt_marks("main", keys).await.expect("marks")[..2], [1, 4]);
    }

    #[tokio::test]
    async fn a_body_of_refused_lines_is_a_400_and_an_empty_one_a_200() {
        let (_dir, _store, state) = fixture();
        let body = format!("{}\n{{not json\n", line(&cid(1), "0", "wrong"));
        let (status, v) = answer(take_receipts(&state, "main", body.as_bytes()).await).await;
        assert_eq!((status, &v["accepted"], &v["refused"]), (400, &0.into(), &2.into()), "{v}");
        assert_eq!(counted(&state, "refused_bad_json"), 1);
        let (status, v) = answer(take_receipts(&state, "main", b"\n").await).await;
        assert_eq!((status, v), (200, serde_json::json!({"accepted": 0, "refused": 0, "errors": []})));
        let (status, _) = answer(take_receipts(&state, "other", b"").await).await;
        assert_eq!(status, 404);
    }

    fn report(sid: &str, status: &str, errmsg: &str) -> serde_json::Value {
        serde_json::json!({"user_receive_time": "2026-12-01 10:00:00", "nationcode": "86", "mobile": "13800000000",
            "report_status": status, "errmsg": errmsg, "description": "", "sid": sid})
    }

    #[tokio::test]
    async fn status_reports_count_once_for_the_campaign_of_their_serial() {
        let (_dir, store, state) = fixture();
        let rec = store.create(sample_spec(), 1).await.expect("a campaign");
        let sids = vec!["sid-1".to_owned(), "sid-2".to_owned()];
        store.note_sms_serials("main", rec.id, sids).await.expect("serials noted");
        let body = serde_json::to_vec(&[
            report("sid-1", "SUCCESS", "DELIVRD"),
            report("sid-2", "FAIL", "MK:0001"),
            report("sid-unknown", "SUCCESS", "DELIVRD"),
        ])
        .expect("a body");
        for _ in 0..2 {
            let (status, v) = answer(take_status_reports(&state, "main", &body).await).await;
            assert_eq!((status, v), (200, serde_json::json!({"result": 0, "errmsg": "OK"})));
        }
        let sms = store.get(rec.id).await.expect("read").expect("the campaign").sms;
        assert_eq!((sms.delivered, sms.failed.get("MK:0001")), (1, Some(&1)), "a repeated report counts once");
        let total = |result: &str| state.metrics.sms_total.with_label_values(&["main", result]).get();
        assert_eq!((total("delivered"), total("failed")), (1, 1));
    }

    #[tokio::test]
    async fn a_bad_status_body_is_refused_naming_the_problem_but_no_number() {
        let (_dir, _store, state) = fixture();
        let mut no_sid = report("s", "SUCCESS", "DELIVRD");
        no_sid.as_object_mut().expect("an object").remove("sid");
        let mut numeric = report("s", "SUCCESS", "DELIVRD");
        numeric["mobile"] = 13_800_000_000u64.into();
        let cases = [
            (serde_json::json!({"sid": "s"}).to_string(), "body"),
            (serde_json::json!([no_sid]).to_string(), "[0]"),
            (serde_json::json!([numeric]).to_string(), "[0].mobile"),
        ];
        for (body, field) in cases {
            let (status, v) = answer(take_status_reports(&state, "main", body.as_bytes()).await).await;
            assert_eq!((status, v["error"]["field"].as_str()), (400, Some(field)), "{v}");
            assert!(!v.to_string().contains("13800000000"), "{v}");
        }
        let (status, v) = answer(take_status_reports(&state, "main", b"[{").await).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_request")));
    }
}
