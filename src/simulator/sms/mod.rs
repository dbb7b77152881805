//! The simulated Tencent Cloud SMS gateway (SendSms, API 2021-01-11), served by `campaignd
//! simulate` on the simulators' port: `POST /` with the action in `X-TC-Action`, as upstream.
//!
//! It follows `shared/reference/getui-legacy-and-sms.md` §3.1 ("A faithful local simulator").
//! Every answer is HTTP 200 with `Content-Type: application/json`, a request-level failure in
//! `Response.Error` and per-number results in `Response.SendStatusSet`. Checks, in order:
//!
//! 1. `X-TC-Action` must be `SendSms` and `X-TC-Version` `2021-01-11` (`InvalidAction`
//!    otherwise; the code for a wrong version is a choice, the reference does not say).
//! 2. `X-TC-Timestamp` within 300 s of the simulator's clock (`AuthFailure.SignatureExpire`).
//! 3. `Authorization`: the SecretId must be the configured one (`AuthFailure.SecretIdNotFound`)
//!    and TC3-HMAC-SHA256 recomputed over the received body, `Content-Type` and `Host` with
//!    the configured SecretKey must match (`AuthFailure.SignatureFailure`, also for a header
//!    that does not parse).
//! 4. The body (`InvalidParameter`), at most 200 numbers (`LimitExceeded.PhoneNumberCountLimit`),
//!    the SmsSdkAppId (`InvalidParameterValue.SdkAppIdNotExist`), the SignName
//!    (`FailedOperation.SignatureIncorrectOrUnapproved`), the TemplateId
//!    (`FailedOperation.TemplateIncorrectOrUnapproved`), the parameter count
//!    (`InvalidParameterValue.TemplateParameterFormatError`), a `SessionContext` under 512 bytes.
//! 5. Marketing texts outside the window (08:00–22:00 Beijing by default) are refused whole
//!    (`FailedOperation.MarketingSendTimeConstraint`).
//! 6. Per number: a number that does not normalise (`InvalidParameterValue.IncorrectPhoneNumber`),
//!    the same text to the same number within 30 s (`LimitExceeded.PhoneNumberThirtySecondLimit`),
//!    more than the daily cap per number and Beijing day (`LimitExceeded.PhoneNumberDailyLimit`);
//!    refused numbers have `Fee` 0. Accepted ones get a `SerialNo`, `Fee` = segments of the
//!    rendered text with its `【signature】` (70, then 67 per segment), land in the ledger and,
//!    when a callback URL is configured, get a status report after a delay (`FAIL` for a
//!    configurable share of numbers, decided by the number).
//!
//! The simulator's Beijing clock (window, calendar day, report times) can be shifted by an
//! offset, set in the configuration or at run time with `POST /_sim/sms/clock`
//! `{"offset_secs": N}`; the signature's 300 s check always uses the real clock.
//!
//! The simulators' fault profile applies here too (latency, 5xx and dropped connections, some
//! after the texts were accepted), since the gateway has no idempotency key and a caller must
//! live with "maybe sent".
//!
//! Introspection: `GET /_sim/sms/ledger` and `GET /_sim/sms/ledger/{phone}`.

mod ledger;
mod reports;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::faults::{gateway_timeout, service_unavailable, Fault, FaultDraws, FaultProfile};
use super::ledger::lock;
use crate::dev::{DEV_SMS_SDK_APP_ID, DEV_SMS_SECRET_ID, DEV_SMS_SECRET_KEY, DEV_SMS_SIGN_NAME, DEV_SMS_TEMPLATES};
use crate::domain::ids::mix64;
use crate::serve::{json_response, text_response, DropConnection, HandlerResult};
use crate::wire::tencent_sms::codes;
use crate::wire::tencent_sms::sign::{parse_authorization, sign, SigningInput};
use crate::wire::tencent_sms::template::{char_count, render, segments, with_signature, RenderError};
use crate::wire::tencent_sms::{
    normalize_phone, ApiError, SendSms, SendSmsAnswer, SendSmsResponse, SendStatus, SendWindow, ACTION_SEND_SMS,
    API_VERSION, BEIJING_OFFSET_SECS, MAX_NUMBERS_PER_CALL, MAX_TIMESTAMP_SKEW_SECS, SERVICE,
    SESSION_CONTEXT_LIMIT_BYTES,
};
pub use ledger::{PhoneTexts, SmsLedger, SmsLedgerSummary};
pub use reports::{fails as report_fails, ReportSettings};

/// Largest request body read (200 numbers and a few parameters are a few KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest rendered text accepted, signature included (a choice; the reference gives none).
const MAX_TEXT_CHARS: usize = 500;
/// Most (number, text) pairs remembered for the 30-second rule before old ones are pruned.
const MAX_RECENT: usize = 1_000_000;

/// How the simulated gateway behaves.
#[derive(Debug, Clone)]
pub struct SmsSimConfig {
    /// The SecretId it knows.
    pub secret_id: String,
    /// The SecretKey it verifies signatures with.
    pub secret_key: String,
    /// The one SmsSdkAppId it knows.
    pub sdk_app_id: String,
    /// Approved signature contents.
    pub sign_names: Vec<String>,
    /// Approved templates: id and text with `{1}`… placeholders.
    pub templates: Vec<(String, String)>,
    /// The marketing window every template is subject to; `None` sends at any hour.
    pub marketing_window: Option<SendWindow>,
    /// Same number and same text at most once within this (Tencent: 30 s); zero turns it off.
    pub same_text_interval: Duration,
    /// Texts per number and Beijing day (Tencent's current default: 2); `None`: no cap.
    pub daily_limit_per_number: Option<u32>,
    /// Shift of the simulator's Beijing clock, seconds (for window and day tests).
    pub clock_offset_secs: i64,
    /// Status reports.
    pub reports: ReportSettings,
}

impl Default for SmsSimConfig {
    fn default() -> Self {
        SmsSimConfig {
            secret_id: DEV_SMS_SECRET_ID.into(),
            secret_key: DEV_SMS_SECRET_KEY.into(),
            sdk_app_id: DEV_SMS_SDK_APP_ID.into(),
            sign_names: vec![DEV_SMS_SIGN_NAME.into()],
            templates: DEV_SMS_TEMPLATES.iter().map(|(id, t)| ((*id).to_owned(), (*t).to_owned())).collect(),
            marketing_window: Some(SendWindow::default()),
            same_text_interval: Duration::from_secs(30),
            daily_limit_per_number: Some(2),
            clock_offset_secs: 0,
            reports: ReportSettings::default(),
        }
    }
}

/// True for the requests the SMS simulator serves: its control paths, and `POST /` (the
/// Tencent Cloud API posts every action to the root).
pub(crate) fn owns(method: &Method, path: &str) -> bool {
    path.starts_with("/_sim/sms") || (path == "/" && method == Method::POST)
}

/// Per-number memory: when each (number, text) was last accepted, and texts per number today.
#[derive(Default)]
struct Frequency {
    recent: HashMap<(String, String), Instant>,
    /// Number → (Beijing day number, texts that day).
    daily: HashMap<String, (i64, u32)>,
}

/// State of the simulated gateway.
pub struct SmsSim {
    cfg: SmsSimConfig,
    ledger: Arc<SmsLedger>,
    frequency: Mutex<Frequency>,
    clock_offset: AtomicI64,
    serial: AtomicU64,
    queue: reports::ReportQueue,
    receiver: Mutex<Option<tokio::sync::mpsc::Receiver<reports::Queued>>>,
    /// Faults injected around `POST /` (the simulators' shared profile).
    faults: FaultDraws,
}

/// Why a request was refused whole.
struct Refusal(&'static str, String);

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal(code, message.into())
}

impl SmsSim {
    /// A fresh gateway with an empty ledger and no faults.
    #[cfg(test)]
    pub(crate) fn new(cfg: SmsSimConfig) -> Self {
        Self::with_faults(cfg, FaultProfile::clean(), 0)
    }

    /// A fresh gateway misbehaving as `faults` says: its latency, dropped connections and 5xx,
    /// before or after the texts were accepted (so a caller meets "maybe sent"). Its
    /// rate-limit bursts and short tokens are Getui's and are not applied here.
    pub(crate) fn with_faults(cfg: SmsSimConfig, faults: FaultProfile, fault_seed: u64) -> Self {
        let (queue, receiver) = reports::ReportQueue::new(&cfg.reports);
        SmsSim {
            faults: FaultDraws::new(faults, fault_seed),
            clock_offset: AtomicI64::new(cfg.clock_offset_secs),
            cfg,
            ledger: Arc::new(SmsLedger::default()),
            frequency: Mutex::new(Frequency::default()),
            serial: AtomicU64::new(0),
            queue,
            receiver: Mutex::new(receiver),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> Arc<SmsLedger> {
        self.ledger.clone()
    }

    /// Starts posting status reports (when a callback URL is configured) until `shutdown`.
    pub fn start_reports(&self, shutdown: CancellationToken) {
        let (Some(url), Some(rx)) = (self.cfg.reports.url.clone(), lock(&self.receiver).take()) else { return };
        let ledger = self.ledger.clone();
        tokio::spawn(reports::post_reports(url, rx, shutdown, move |ok, lost| ledger.record_reports(ok, lost)));
    }

    /// The simulator's Beijing-clock reading: real Unix seconds plus the offset.
    fn shifted_now(&self) -> i64 {
        crate::clock::now_s().saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// Serves one request it [`owns`].
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> HandlerResult {
        let path = req.uri().path().to_owned();
        if let Some(rest) = path.strip_prefix("/_sim/sms") {
            let method = req.method().clone();
            let body = Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await.map(|c| c.to_bytes());
            return Ok(self.introspect(&method, rest, &body.unwrap_or_default()));
        }
        let fault = self.faults.next().await;
        match fault {
            Fault::DropBefore => return Err(DropConnection),
            Fault::ErrorBefore => return Ok(service_unavailable()),
            _ => {}
        }
        let headers = req.headers().clone();
        let answer = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
            Ok(body) => self.answer(&headers, &body.to_bytes()),
            Err(_) => self.refused(refuse(codes::INVALID_PARAMETER, "the request body is too large")),
        };
        match fault {
            Fault::DropAfter => Err(DropConnection),
            Fault::ErrorAfter => Ok(gateway_timeout()),
            _ => Ok(json_response(200, serde_json::to_vec(&answer).unwrap_or_default())),
        }
    }

    fn introspect(&self, method: &Method, rest: &str, body: &[u8]) -> Response<Full<Bytes>> {
        match (method, rest) {
            (&Method::GET, "/ledger") => json(&self.ledger.summary()),
            (&Method::GET, r) if r.starts_with("/ledger/") => {
                let raw = crate::percent::decode(&r["/ledger/".len()..]);
                let phone = normalize_phone(&raw).unwrap_or(raw);
                json(&self.ledger.texts_of(&phone))
            }
            (&Method::POST, "/clock") => {
                let offset = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("offset_secs").and_then(serde_json::Value::as_i64));
                match offset {
                    Some(secs) => {
                        self.clock_offset.store(secs, Ordering::Relaxed);
                        json(&serde_json::json!({ "offset_secs": secs }))
                    }
                    None => text_response(400, "send {\"offset_secs\": N}"),
                }
            }
            (_, "/ledger" | "/clock") => text_response(405, "method not allowed"),
            _ => text_response(404, "not found"),
        }
    }

    fn refused(&self, Refusal(code, message): Refusal) -> SendSmsAnswer {
        self.ledger.record_call_refused();
        SendSmsAnswer {
            response: SendSmsResponse {
                error: Some(ApiError { code: code.into(), message }),
                request_id: self.request_id(),
                ..SendSmsResponse::default()
            },
        }
    }

    /// A UUID-shaped id, as Tencent's, distinct per answer.
    fn request_id(&self) -> String {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (mix64(n ^ 0x5245_5155_4553_5431), mix64(n.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// Checks and answers one call; synchronous, so no lock spans an await.
    fn answer(&self, headers: &HeaderMap, body: &[u8]) -> SendSmsAnswer {
        let checked = self.check_call(headers, body).and_then(|req| self.check_request(req));
        match checked {
            Ok((req, text, fee)) => {
                let statuses = self.deliver(&req, &text, fee);
                SendSmsAnswer {
                    response: SendSmsResponse { send_status_set: statuses, error: None, request_id: self.request_id() },
                }
            }
            Err(refusal) => self.refused(refusal),
        }
    }

    /// Action, version, timestamp and signature; then the body.
    fn check_call(&self, headers: &HeaderMap, body: &[u8]) -> Result<SendSms, Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let action = header("x-tc-action");
        if action != ACTION_SEND_SMS {
            return Err(refuse(codes::INVALID_ACTION, format!("action {action:?} is not served")));
        }
        if header("x-tc-version") != API_VERSION {
            return Err(refuse(
                codes::INVALID_ACTION,
                format!("action SendSms has no version {:?}", header("x-tc-version")),
            ));
        }
        let Ok(timestamp) = header("x-tc-timestamp").trim().parse::<i64>() else {
            return Err(refuse(codes::SIGNATURE_FAILURE, "X-TC-Timestamp is missing or not a number"));
        };
        if (crate::clock::now_s() - timestamp).abs() > MAX_TIMESTAMP_SKEW_SECS {
            return Err(refuse(codes::SIGNATURE_EXPIRE, "the signature expired: the timestamp is more than 300 s off"));
        }
        let Some(auth) = parse_authorization(header("authorization")) else {
            return Err(refuse(codes::SIGNATURE_FAILURE, "the Authorization header is not TC3-HMAC-SHA256"));
        };
        if auth.secret_id != self.cfg.secret_id {
            return Err(refuse(codes::SECRET_ID_NOT_FOUND, "the SecretId is not known"));
        }
        let input = SigningInput {
            host: header("host"),
            content_type: header("content-type"),
            timestamp,
            service: SERVICE,
            body,
        };
        let expected = sign(&self.cfg.secret_key, &input);
        let matches = expected.is_some_and(|e| {
            auth.service == SERVICE
                && auth.signed_headers == crate::wire::tencent_sms::sign::SIGNED_HEADERS
                && e.credential_scope.starts_with(&auth.date)
                && bool::from(e.signature.as_bytes().ct_eq(auth.signature.as_bytes()))
        });
        if !matches {
            return Err(refuse(codes::SIGNATURE_FAILURE, "the request signature does not match"));
        }
        serde_json::from_slice::<SendSms>(body)
            .map_err(|e| refuse(codes::INVALID_PARAMETER, format!("the body is not a SendSms request: {e}")))
    }

    /// The request's own fields; answers the rendered text (signature included) and its fee.
    fn check_request(&self, req: SendSms) -> Result<(SendSms, String, u32), Refusal> {
        let n = req.phone_number_set.len();
        if n == 0 {
            return Err(refuse(codes::INVALID_PARAMETER, "PhoneNumberSet is empty"));
        }
        if n > MAX_NUMBERS_PER_CALL {
            return Err(refuse(codes::PHONE_NUMBER_COUNT_LIMIT, format!("{n} numbers, at most 200 per call")));
        }
        if req.sms_sdk_app_id != self.cfg.sdk_app_id {
            return Err(refuse(codes::SDK_APP_ID_NOT_EXIST, "SmsSdkAppId does not exist"));
        }
        if !self.cfg.sign_names.contains(&req.sign_name) {
            return Err(refuse(codes::SIGNATURE_INCORRECT_OR_UNAPPROVED, "the signature is not approved"));
        }
        let Some((_, template)) = self.cfg.templates.iter().find(|(id, _)| *id == req.template_id) else {
            return Err(refuse(codes::TEMPLATE_INCORRECT_OR_UNAPPROVED, "the template is not approved"));
        };
        if req.session_context.as_ref().is_some_and(|c| c.len() >= SESSION_CONTEXT_LIMIT_BYTES) {
            return Err(refuse(codes::INVALID_PARAMETER, "SessionContext must be shorter than 512 bytes"));
        }
        let body = match render(template, &req.template_param_set) {
            Ok(body) => body,
            Err(RenderError::ParamCount { expected, given }) => {
                return Err(refuse(
                    codes::TEMPLATE_PARAMETER_FORMAT_ERROR,
                    format!("the template takes {expected} parameters, {given} given"),
                ))
            }
            Err(RenderError::Template(e)) => {
                return Err(refuse(codes::TEMPLATE_INCORRECT_OR_UNAPPROVED, e.to_string()))
            }
        };
        let text = with_signature(&req.sign_name, &body);
        let chars = char_count(&text);
        if chars > MAX_TEXT_CHARS {
            return Err(refuse(codes::CONTENT_LENGTH_LIMIT, format!("{chars} characters, at most {MAX_TEXT_CHARS}")));
        }
        if let Some(window) = self.cfg.marketing_window {
            if !window.contains(self.shifted_now()) {
                return Err(refuse(codes::MARKETING_SEND_TIME_CONSTRAINT, "marketing texts only go out 08:00-22:00"));
            }
        }
        Ok((req, text, segments(chars)))
    }

    /// Per-number checks, the ledger and the reports.
    fn deliver(&self, req: &SendSms, text: &str, fee: u32) -> Vec<SendStatus> {
        let now = Instant::now();
        let shifted = self.shifted_now();
        let day = (shifted + BEIJING_OFFSET_SECS).div_euclid(86_400);
        let received = beijing_time_text(shifted);
        let context = req.session_context.clone().unwrap_or_default();
        let mut freq = lock(&self.frequency);
        if freq.recent.len() >= MAX_RECENT {
            let interval = self.cfg.same_text_interval;
            freq.recent.retain(|_, at| now.saturating_duration_since(*at) < interval);
        }
        let mut out = Vec::with_capacity(req.phone_number_set.len());
        for raw in &req.phone_number_set {
            let Some(phone) = normalize_phone(raw) else {
                out.push(self.number_refused(raw, &context, codes::INCORRECT_PHONE_NUMBER, "not a valid number"));
                continue;
            };
            let key = (phone.clone(), text.to_owned());
            let interval = self.cfg.same_text_interval;
            if freq.recent.get(&key).is_some_and(|at| now.saturating_duration_since(*at) < interval) {
                out.push(self.number_refused(
                    &phone,
                    &context,
                    codes::PHONE_NUMBER_THIRTY_SECOND_LIMIT,
                    "same text within 30 s",
                ));
                continue;
            }
            let today = freq.daily.get(&phone).filter(|(d, _)| *d == day).map_or(0, |(_, n)| *n);
            if self.cfg.daily_limit_per_number.is_some_and(|cap| today >= cap) {
                out.push(self.number_refused(
                    &phone,
                    &context,
                    codes::PHONE_NUMBER_DAILY_LIMIT,
                    "daily limit of this number",
                ));
                continue;
            }
            if !interval.is_zero() {
                freq.recent.insert(key, now);
            }
            freq.daily.insert(phone.clone(), (day, today + 1));
            let serial_no = format!("2433:{:020}", self.serial.fetch_add(1, Ordering::Relaxed));
            self.ledger.record_text(&phone, &req.template_id, text, fee);
            let report = reports::report_for(&phone, &serial_no, &received, &self.cfg.reports);
            if !self.queue.push(now + self.cfg.reports.delay, report) {
                self.ledger.record_reports(0, 1);
            }
            out.push(SendStatus {
                serial_no,
                iso_code: iso_code(&phone).into(),
                phone_number: phone,
                fee,
                session_context: context.clone(),
                code: codes::OK.into(),
                message: "send success".into(),
            });
        }
        out
    }

    fn number_refused(&self, phone: &str, context: &str, code: &str, message: &str) -> SendStatus {
        self.ledger.record_number_refused(code);
        SendStatus {
            phone_number: phone.to_owned(),
            session_context: context.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
            iso_code: iso_code(phone).into(),
            ..SendStatus::default()
        }
    }
}

fn iso_code(phone: &str) -> &'static str {
    if phone.starts_with("+86") {
        "CN"
    } else {
        ""
    }
}

/// `YYYY-MM-DD HH:MM:SS` in Beijing time, as the status report writes it.
fn beijing_time_text(unix_s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_s.saturating_add(BEIJING_OFFSET_SECS))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A 200 JSON answer of an introspection path.
fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    json_response(200, serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tencent_sms::sign::authorization;

    const HOST: &str = "127.0.0.1:8781";

    /// Headers of a correctly signed call over `body`.
    fn signed_headers(body: &[u8], secret_key: &str) -> HeaderMap {
        let timestamp = crate::clock::now_s();
        let input = SigningInput { host: HOST, content_type: "application/json", timestamp, service: SERVICE, body };
        let signed = sign(secret_key, &input).unwrap();
        let mut h = HeaderMap::new();
        let mut put = |k: &'static str, v: String| {
            h.insert(k, v.parse().unwrap());
        };
        put("authorization", authorization(DEV_SMS_SECRET_ID, &signed));
        put("content-type", "application/json".into());
        put("host", HOST.into());
        put("x-tc-action", ACTION_SEND_SMS.into());
        put("x-tc-version", API_VERSION.into());
        put("x-tc-timestamp", timestamp.to_string());
        h
    }

    fn sim() -> SmsSim {
        SmsSim::new(SmsSimConfig { marketing_window: None, ..SmsSimConfig::default() })
    }

    fn request(template: &str, params: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "PhoneNumberSet": ["+8613800000000"], "SmsSdkAppId": DEV_SMS_SDK_APP_ID, "SignName": DEV_SMS_SIGN_NAME,
            "TemplateId": template, "TemplateParamSet": params,
        })
    }

    fn code_of(sim: &SmsSim, headers: &HeaderMap, body: &[u8]) -> String {
        let answer = sim.answer(headers, body);
        match answer.response.error {
            Some(e) => e.code,
            None => answer.response.send_status_set[0].code.clone(),
        }
    }

    fn code_for(sim: &SmsSim, body: &serde_json::Value) -> String {
        let bytes = serde_json::to_vec(body).unwrap();
        code_of(sim, &signed_headers(&bytes, DEV_SMS_SECRET_KEY), &bytes)
    }

    #[test]
    fn bad_input_gets_tencent_error_codes_not_a_panic() {
        let sim = sim();
        assert_eq!(code_of(&sim, &HeaderMap::new(), b""), codes::INVALID_ACTION);
        let garbage = b"\xff not json";
        assert_eq!(code_of(&sim, &signed_headers(garbage, DEV_SMS_SECRET_KEY), garbage), codes::INVALID_PARAMETER);
        let mut tampered = signed_headers(b"{}", DEV_SMS_SECRET_KEY);
        assert_eq!(code_of(&sim, &tampered, b"{ }"), codes::SIGNATURE_FAILURE, "another body");
        tampered.insert("authorization", "TC3-HMAC-SHA256 nonsense".parse().unwrap());
        assert_eq!(code_of(&sim, &tampered, b"{}"), codes::SIGNATURE_FAILURE);
        tampered.insert("x-tc-timestamp", "soon".parse().unwrap());
        assert_eq!(code_of(&sim, &tampered, b"{}"), codes::SIGNATURE_FAILURE);
        let body = serde_json::to_vec(&request("1234567", &["a", "1"])).unwrap();
        assert_eq!(code_of(&sim, &signed_headers(&body, "wrong"), &body), codes::SIGNATURE_FAILURE);
        let mut other_id = signed_headers(&body, DEV_SMS_SECRET_KEY);
        let auth = other_id["authorization"].to_str().unwrap().replace(DEV_SMS_SECRET_ID, "AKIDother");
        other_id.insert("authorization", auth.parse().unwrap());
        assert_eq!(code_of(&sim, &other_id, &body), codes::SECRET_ID_NOT_FOUND);
        let mut other_action = signed_headers(&body, DEV_SMS_SECRET_KEY);
        other_action.insert("x-tc-action", "PullSmsSendStatus".parse().unwrap());
        assert_eq!(code_of(&sim, &other_action, &body), codes::INVALID_ACTION);
    }

    #[test]
    fn request_fields_are_checked_in_order() {
        let sim = sim();
        assert_eq!(code_for(&sim, &request("1234567", &["张三", "12"])), codes::OK);
        assert_eq!(code_for(&sim, &request("9999999", &["张三", "12"])), codes::TEMPLATE_INCORRECT_OR_UNAPPROVED);
        assert_eq!(code_for(&sim, &request("1234567", &["张三"])), codes::TEMPLATE_PARAMETER_FORMAT_ERROR);
        let mut r = request("1234567", &["张三", "12"]);
        r["SignName"] = "someone".into();
        assert_eq!(code_for(&sim, &r), codes::SIGNATURE_INCORRECT_OR_UNAPPROVED);
        r["SmsSdkAppId"] = "1400000000".into();
        assert_eq!(code_for(&sim, &r), codes::SDK_APP_ID_NOT_EXIST);
        let mut long = request("1234567", &["张三", &"长".repeat(600)]);
        assert_eq!(code_for(&sim, &long), codes::CONTENT_LENGTH_LIMIT);
        long["TemplateParamSet"] = serde_json::json!(["张三", "长".repeat(100)]);
        let bytes = serde_json::to_vec(&long).unwrap();
        let answer = sim.answer(&signed_headers(&bytes, DEV_SMS_SECRET_KEY), &bytes);
        // 【campaignd】 (11) + 尊敬的张三，你的余额还剩 (11) + 100 + 元，请尽快充值。 (8) = 130: two segments.
        assert_eq!(answer.response.send_status_set[0].fee, 2);
        r = request("1234567", &["a", "1"]);
        r["PhoneNumberSet"] = serde_json::json!([]);
        assert_eq!(code_for(&sim, &r), codes::INVALID_PARAMETER);
        r["PhoneNumberSet"] = serde_json::json!(["not a phone"]);
        assert_eq!(code_for(&sim, &r), codes::INCORRECT_PHONE_NUMBER);
    }

    #[test]
    fn beijing_report_times() {
        assert_eq!(beijing_time_text(1_764_547_200), "2025-12-01 08:00:00");
        let sim = sim();
        let (a, b) = (sim.request_id(), sim.request_id());
        assert!(a != b && a.len() == 36 && a.split('-').map(str::len).eq([8, 4, 4, 4, 12]), "{a}");
    }
}
