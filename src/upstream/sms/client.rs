//! The Tencent Cloud SMS client: `SendSms` over the pooled HTTP client, each request signed
//! with TC3-HMAC-SHA256 at the current time, every exchange told to a [`CallObserver`].
//!
//! There is no token to keep: the signature is the credential, made fresh per request (the
//! gateway refuses a timestamp more than five minutes off). The gateway has no idempotency
//! key, so a call whose answer was lost may have texted its numbers:
//! [`ProviderError::maybe_delivered`] says so and the caller decides. Source:
//! `shared/reference/getui-legacy-and-sms.md` §3.1.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use super::error::{SmsError, SEND_SMS};
pub use crate::config::TencentSmsSettings;
use crate::metrics::CallObserver;
use crate::upstream::http::{build_client, exchange, ClientBuildError, HttpClient};
use crate::upstream::{CodeLabel, ProviderError};
use crate::wire::tencent_sms::sign::{authorization, sign, SigningInput};
use crate::wire::tencent_sms::{
    SendSms, SendSmsAnswer, SendStatus, ACTION_SEND_SMS, API_VERSION, CONTENT_TYPE, MAX_NUMBERS_PER_CALL, SERVICE,
    SESSION_CONTEXT_LIMIT_BYTES,
};

/// One Tencent Cloud SMS application's client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct TencentSmsClient {
    inner: Arc<Inner>,
    observer: Option<Arc<dyn CallObserver>>,
}

struct Inner {
    http: HttpClient,
    settings: TencentSmsSettings,
    /// `https://host[:port]/`, where every action is posted.
    url: hyper::Uri,
    /// The `Host` header, signed.
    host: String,
}

impl std::fmt::Debug for TencentSmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("TencentSmsClient")
            .field("base_url", &s.base_url)
            .field("secret_id", &s.secret_id)
            .field("sdk_app_id", &s.sdk_app_id)
            .finish_non_exhaustive()
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SmsClientBuildError {
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] ClientBuildError),
    /// The base URL has no host.
    #[error("base URL {0:?} is not an http(s) URL with a host")]
    BaseUrl(String),
}

impl TencentSmsClient {
    /// Builds the client and its connection pool. No network traffic happens here.
    pub fn new(settings: TencentSmsSettings) -> Result<Self, SmsClientBuildError> {
        let bad = || SmsClientBuildError::BaseUrl(settings.base_url.clone());
        let base: hyper::Uri = settings.base_url.parse().map_err(|_| bad())?;
        let (scheme, authority) = match (base.scheme_str(), base.authority()) {
            (Some(s @ ("http" | "https")), Some(a)) => (s.to_owned(), a.as_str().to_owned()),
            _ => return Err(bad()),
        };
        // The action is in a header and the canonical URI is always "/": any path of the
        // base URL is not used.
        let url = format!("{scheme}://{authority}/").parse().map_err(|_| bad())?;
        let http = build_client(&settings.pool)?;
        let inner = Inner { http, url, host: authority, settings };
        Ok(TencentSmsClient { inner: Arc::new(inner), observer: None })
    }

    /// Reports every exchange to `observer` (endpoint [`SEND_SMS`]).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The `SmsSdkAppId` this client's settings name, for building requests.
    pub fn sdk_app_id(&self) -> &str {
        &self.inner.settings.sdk_app_id
    }

    /// Sends one `SendSms` call: the same template and parameters to 1..=200 numbers.
    ///
    /// `Ok` holds one status per number as the gateway answered it (see
    /// [`number_outcome`](super::number_outcome) to classify each); `Err` means the call as a
    /// whole failed. A request breaking a documented limit is refused here, unsent.
    pub async fn send_sms(&self, request: &SendSms) -> Result<Vec<SendStatus>, SmsError> {
        let started = Instant::now();
        let result = self.send_unobserved(request).await;
        if let Some(observer) = &self.observer {
            let code = result.as_ref().map_or_else(ProviderError::code_label, |_| CodeLabel::SUCCESS);
            observer.observe(SEND_SMS, code, started.elapsed());
        }
        result
    }

    async fn send_unobserved(&self, request: &SendSms) -> Result<Vec<SendStatus>, SmsError> {
        check_request(request)?;
        let body = serde_json::to_vec(request).map_err(|e| SmsError::Invalid { reason: e.to_string() })?;
        statuses_of(self.post(ACTION_SEND_SMS, body, crate::clock::now_s()).await?)
    }

    /// Signs and posts one action's JSON body at Unix second `timestamp`.
    async fn post(&self, action: &'static str, body: Vec<u8>, timestamp: i64) -> Result<SendSmsAnswer, SmsError> {
        let inner = &self.inner;
        let input =
            SigningInput { host: &inner.host, content_type: CONTENT_TYPE, timestamp, service: SERVICE, body: &body };
        let signed = sign(inner.settings.secret_key.expose(), &input).ok_or_else(|| SmsError::Invalid {
            reason: format!("the clock reads {timestamp}, outside the calendar"),
        })?;
        let req = Request::post(inner.url.clone())
            .header("authorization", authorization(&inner.settings.secret_id, &signed))
            .header("content-type", CONTENT_TYPE)
            .header("host", inner.host.as_str())
            .header("x-tc-action", action)
            .header("x-tc-version", API_VERSION)
            .header("x-tc-timestamp", timestamp.to_string())
            .header("x-tc-region", inner.settings.region.as_str())
            .header("user-agent", concat!("campaignd/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SmsError::Invalid { reason: format!("the request cannot be built: {e}") })?;
        let (status, bytes) = exchange(&inner.http, req, inner.settings.request_timeout)
            .await
            .map_err(|e| SmsError::Transport { reason: e.reason, request_sent: e.request_sent })?;
        parse_answer(status, &bytes)
    }
}

/// The official SDK reads `Response` only from a 200 answer; anything else without that JSON
/// is an HTTP error.
fn parse_answer(status: u16, body: &[u8]) -> Result<SendSmsAnswer, SmsError> {
    match (status, serde_json::from_slice::<SendSmsAnswer>(body)) {
        (200, Ok(answer)) => Ok(answer),
        (200, Err(e)) => Err(SmsError::Decode { reason: e.to_string() }),
        (_, Ok(answer)) if answer.response.error.is_some() => Ok(answer),
        (status, _) => Err(SmsError::Http { status }),
    }
}

/// A `SendSms` answer's per-number statuses, or the error it carries.
fn statuses_of(answer: SendSmsAnswer) -> Result<Vec<SendStatus>, SmsError> {
    let response = answer.response;
    if let Some(error) = response.error {
        return Err(SmsError::Api { code: error.code, message: error.message, request_id: response.request_id });
    }
    if response.send_status_set.is_empty() {
        return Err(SmsError::Decode { reason: "neither SendStatusSet nor Error in the answer".into() });
    }
    Ok(response.send_status_set)
}

/// The fuzzing entry (`fuzz/fuzz_targets/receipts_sms.rs`): reads a `SendSms` answer
/// (`status`, `body`) as [`TencentSmsClient::send_sms`] does and classifies what it says: each
/// number's outcome, or the error's class, result and metric label. No I/O. A hostile or broken
/// gateway must get an error, never a panic.
pub fn decode_answer_for_fuzzing(status: u16, body: &[u8]) {
    let judged = parse_answer(status, body).and_then(statuses_of);
    match judged {
        Ok(statuses) => {
            for s in &statuses {
                std::hint::black_box((s.is_ok(), super::number_outcome(s), super::error::code_label_for(&s.code)));
            }
        }
        Err(e) => {
            std::hint::black_box((e.class(), e.result(), e.code_label(), e.failed_at(), e.maybe_delivered()));
            std::hint::black_box((e.code_class(), e.to_string()));
        }
    }
}

/// Refuses what the gateway would refuse whole, so such a request is never sent.
fn check_request(request: &SendSms) -> Result<(), SmsError> {
    let n = request.phone_number_set.len();
    let invalid = |reason: String| Err(SmsError::Invalid { reason });
    if n == 0 || n > MAX_NUMBERS_PER_CALL {
        return invalid(format!("PhoneNumberSet must hold 1..={MAX_NUMBERS_PER_CALL} numbers, got {n}"));
    }
    if request.sms_sdk_app_id.is_empty() || request.template_id.is_empty() {
        return invalid("SmsSdkAppId and TemplateId are required".into());
    }
    if request.session_context.as_ref().is_some_and(|c| c.len() >= SESSION_CONTEXT_LIMIT_BYTES) {
        return invalid(format!("SessionContext must be shorter than {SESSION_CONTEXT_LIMIT_BYTES} bytes"));
    }
    Ok(())
}

/// Settings of a client for unit tests elsewhere in the crate: made-up credentials, a 1 s
/// timeout, sending to `base_url`.
#[cfg(test)]
pub(crate) fn test_settings(base_url: &str) -> TencentSmsSettings {
    TencentSmsSettings {
        base_url: base_url.into(),
        secret_id: "AKIDexample".into(),
        secret_key: crate::secret::Secret::new("very-secret-key"),
        sdk_app_id: "1400006666".into(),
        region: "ap-guangzhou".into(),
        request_timeout: std::time::Duration::from_secs(1),
        pool: crate::config::PoolSettings::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base_url: &str) -> TencentSmsSettings {
        test_settings(base_url)
    }

    #[test]
    fn requests_over_the_limits_are_refused_unsent() {
        let mut req = SendSms {
            phone_number_set: (0..=MAX_NUMBERS_PER_CALL).map(|i| format!("+86138{i:08}")).collect(),
            sms_sdk_app_id: "1400006666".into(),
            sign_name: "s".into(),
            template_id: "1".into(),
            ..SendSms::default()
        };
        assert!(check_request(&req).unwrap_err().to_string().contains("got 201"));
        req.phone_number_set.truncate(MAX_NUMBERS_PER_CALL);
        assert!(check_request(&req).is_ok());
        req.session_context = Some("x".repeat(SESSION_CONTEXT_LIMIT_BYTES));
        assert!(check_request(&req).is_err());
        req.session_context = None;
        req.phone_number_set.clear();
        assert!(check_request(&req).is_err());
    }

    #[test]
    fn answers_are_read_as_the_sdk_reads_them() {
        assert!(matches!(parse_answer(502, b"<html>"), Err(SmsError::Http { status: 502 })));
        assert!(matches!(parse_answer(200, b"<html>"), Err(SmsError::Decode { .. })));
        let e = br#"{"Response":{"Error":{"Code":"InternalError","Message":"m"},"RequestId":"r"}}"#;
        assert!(parse_answer(200, e).unwrap().response.error.is_some());
        assert!(matches!(parse_answer(404, br#"{"Response":{"RequestId":"r"}}"#), Err(SmsError::Http { status: 404 })));
    }

    #[test]
    fn the_secret_does_not_print_and_the_url_is_checked() {
        let client = TencentSmsClient::new(settings("http://127.0.0.1:1/ignored/path")).unwrap();
        let shown = format!("{client:?} {:?}", client.inner.settings);
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert_eq!(
            (client.inner.host.as_str(), client.inner.url.to_string().as_str()),
            ("127.0.0.1:1", "http://127.0.0.1:1/")
        );
        assert!(TencentSmsClient::new(settings("not a url")).is_err());
        assert!(TencentSmsClient::new(settings("ftp://x/")).is_err());
    }

    #[test]
    fn the_fuzzing_entry_reads_hostile_answers() {
        let bodies: [&[u8]; 4] = [
            br#"{"Response":{"SendStatusSet":[{"Code":"Ok","Fee":4294967295},{"Code":""}],"RequestId":"r"}}"#,
            br#"{"Response":{"Error":{"Code":"LimitExceeded.PhoneNumberDailyLimit"},"RequestId":"r"}}"#,
            br#"{"Response":{}}"#,
            b"[",
        ];
        for body in bodies {
            decode_answer_for_fuzzing(200, body);
            decode_answer_for_fuzzing(500, body);
        }
    }
}
