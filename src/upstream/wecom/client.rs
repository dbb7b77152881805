//! The WeCom application-message client: one access token per app, kept fresh, and
//! `message/send` to member ids.
//!
//! The token is fetched with `gettoken` and cached until shortly before `expires_in` runs out;
//! concurrent senders share one fetch. When WeCom says the token is bad (42001, 40014, or
//! 40001 from a send) the token is dropped, a fresh one fetched and the call replayed once,
//! as the official SDKs do. Secrets and tokens travel in query strings, so URLs are never put
//! into logs or error messages.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde::de::DeserializeOwned;

use super::error::{WecomError, GETTOKEN, MESSAGE_SEND};
pub use crate::config::WecomSettings;
use crate::metrics::CallObserver;

use crate::upstream::http::{build_client, ClientBuildError, HttpClient};
use crate::upstream::http::{exchange, read_lock, write_lock};
use crate::upstream::{AnswerClass, CodeLabel, ProviderError};
use crate::wire::wecom::{
    query_escape, AppMessage, SendAnswer, SendRequest, TokenAnswer, MAX_DUPLICATE_CHECK_SECS, MAX_USERS_PER_SEND,
};

/// Renew a token this long before WeCom says it expires (capped at half its lifetime, so a
/// short-lived test token is not renewed on every call).
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// `errcode` of a send whose recipients were all invalid; nothing was sent, and nothing will be.
const ALL_RECIPIENTS_INVALID: i64 = 81013;

/// What a successful send reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// The caller's ids (as the caller spelled them) that WeCom skipped: outside the app's
    /// visible range, unknown, or without a license. Everyone else received the message.
    pub invalid_users: Vec<String>,
    /// WeCom's id for recalling the message; absent when nobody received it.
    pub msgid: Option<String>,
}

/// A WeCom application's client. Cheap to clone; clones share the pool and the token.
#[derive(Clone)]
pub struct WecomClient {
    inner: Arc<Inner>,
    /// `duplicate_check_interval` in seconds when the upstream duplicate check is on.
    duplicate_check: Option<u32>,
    /// Told of every `gettoken` exchange (sends are observed by the caller, per attempt).
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for WecomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("WecomClient")
            .field("base_url", &s.base_url)
            .field("corp_id", &s.corp_id)
            .field("agent_id", &s.agent_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: HttpClient,
    settings: WecomSettings,
    token: RwLock<Option<CachedToken>>,
    /// Single-flight for `gettoken`: one fetch at a time, the others wait and reuse it.
    renewing: tokio::sync::Mutex<()>,
}

/// A token and when to stop using it (monotonic clock: wall-clock jumps do not matter).
#[derive(Clone)]
struct CachedToken {
    value: Arc<str>,
    refresh_at: Instant,
}

impl CachedToken {
    fn new(value: String, expires_in: Duration, fetched: Instant) -> Self {
        let margin = TOKEN_REFRESH_MARGIN.min(expires_in / 2);
        CachedToken { value: value.into(), refresh_at: fetched + (expires_in - margin) }
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

impl WecomClient {
    /// Builds the client and its connection pool. No network traffic happens here.
    pub fn new(settings: WecomSettings) -> Result<Self, ClientBuildError> {
        let http = build_client(&settings.pool)?;
        let inner = Inner { http, settings, token: RwLock::new(None), renewing: tokio::sync::Mutex::new(()) };
        Ok(WecomClient { inner: Arc::new(inner), duplicate_check: None, observer: None })
    }

    /// Turns on WeCom's duplicate check: an identical send within `interval` (at most four
    /// hours) is answered but not delivered again. This makes retrying a send whose answer
    /// was lost safe, at the price of also dropping a deliberate identical re-send.
    pub fn with_duplicate_check(mut self, interval: Duration) -> Self {
        let secs = u32::try_from(interval.as_secs()).unwrap_or(u32::MAX).clamp(1, MAX_DUPLICATE_CHECK_SECS);
        self.duplicate_check = Some(secs);
        self
    }

    /// Reports every `gettoken` exchange to `observer` under its own endpoint label, so a
    /// failing sign-in is told apart from failing sends.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How long WeCom drops an identical send after the first, when the duplicate check is on.
    pub fn duplicate_check_window(&self) -> Option<Duration> {
        self.duplicate_check.map(|secs| Duration::from_secs(u64::from(secs)))
    }

    /// Fetches a fresh token now, to check the credentials at start-up; sends do this by
    /// themselves when needed.
    pub async fn authenticate(&self) -> Result<(), WecomError> {
        let _single_flight = self.inner.renewing.lock().await;
        self.fetch_token().await.map(|_| ())
    }

    /// Sends `message` to 1..=1000 member ids.
    ///
    /// Members WeCom skipped come back in [`SendOutcome::invalid_users`]; when it skipped all
    /// of them (81013) that is still `Ok`, since nothing about the request itself was wrong.
    /// The message is validated first and ids that would change the audience (empty, holding
    /// `|`, or `@all`) are refused, so a bad request is never sent.
    pub async fn send(&self, message: &AppMessage, users: &[&str]) -> Result<SendOutcome, WecomError> {
        check_users(users)?;
        message.validate().map_err(invalid)?;
        let (enable, interval) = match self.duplicate_check {
            Some(secs) => (1, secs),
            None => (0, 1800),
        };
        let request = SendRequest {
            touser: users.join("|"),
            agentid: self.inner.settings.agent_id,
            message: message.clone(),
            enable_duplicate_check: enable,
            duplicate_check_interval: interval,
        };
        let body = Bytes::from(serde_json::to_vec(&request).map_err(|e| invalid(e.to_string()))?);
        match self.send_with_token(body).await {
            Ok(answer) => Ok(outcome(users, &answer)),
            Err(WecomError::Api { code: ALL_RECIPIENTS_INVALID, .. }) => {
                Ok(SendOutcome { invalid_users: users.iter().map(|u| (*u).to_owned()).collect(), msgid: None })
            }
            Err(e) => Err(e),
        }
    }

    /// One logical send: token, exchange, and at most one fresh token and replay.
    async fn send_with_token(&self, body: Bytes) -> Result<SendAnswer, WecomError> {
        let mut reauthed = false;
        loop {
            let token = self.valid_token().await?;
            let query = format!("access_token={}", query_escape(&token.value));
            let answer = self.exchange::<SendAnswer>(MESSAGE_SEND, Method::POST, "/message/send", &query, body.clone());
            match answer.await.and_then(|a| check_errcode(MESSAGE_SEND, a.errcode, &a.errmsg).map(|()| a)) {
                Err(e) if e.class() == AnswerClass::ReAuth && !reauthed => {
                    reauthed = true;
                    tracing::info!(code = %e.code_label(), "WeCom refused the access token; fetching a new one");
                    self.renew_token(Some(&token)).await?;
                }
                other => return other,
            }
        }
    }

    /// A token good for now, fetching one if needed.
    async fn valid_token(&self) -> Result<CachedToken, WecomError> {
        if let Some(t) = read_lock(&self.inner.token).as_ref() {
            if t.is_fresh(Instant::now()) {
                return Ok(t.clone());
            }
        }
        self.renew_token(None).await
    }

    /// Fetches a token unless another task already did while this one waited. `rejected` is
    /// the token WeCom just refused, which must not be reused even if it looks fresh.
    async fn renew_token(&self, rejected: Option<&CachedToken>) -> Result<CachedToken, WecomError> {
        let _single_flight = self.inner.renewing.lock().await;
        if let Some(t) = read_lock(&self.inner.token).as_ref() {
            let refused = rejected.is_some_and(|r| r.value == t.value);
            if !refused && t.is_fresh(Instant::now()) {
                return Ok(t.clone());
            }
        }
        self.fetch_token().await
    }

    /// Always asks WeCom for a token and caches it. The cache is cleared first so that a
    /// failed fetch never leaves a refused token behind.
    async fn fetch_token(&self) -> Result<CachedToken, WecomError> {
        let started = Instant::now();
        let result = self.fetch_token_unobserved().await;
        if let Some(observer) = &self.observer {
            let code = result.as_ref().map_or_else(ProviderError::code_label, |_| CodeLabel::SUCCESS);
            observer.observe(GETTOKEN, code, started.elapsed());
        }
        result
    }

    async fn fetch_token_unobserved(&self) -> Result<CachedToken, WecomError> {
        *write_lock(&self.inner.token) = None;
        let s = &self.inner.settings;
        let query = format!("corpid={}&corpsecret={}", query_escape(&s.corp_id), query_escape(s.secret.expose()));
        let fetched = Instant::now();
        let answer: TokenAnswer = self.exchange(GETTOKEN, Method::GET, "/gettoken", &query, Bytes::new()).await?;
        check_errcode(GETTOKEN, answer.errcode, &answer.errmsg)?;
        if answer.access_token.is_empty() || answer.expires_in == 0 {
            return Err(WecomError::Decode {
                endpoint: GETTOKEN,
                reason: "answer holds no token or no lifetime".into(),
            });
        }
        // Bounded: a nonsensical lifetime must not keep a token cached for years.
        let expires_in = Duration::from_secs(answer.expires_in.min(86_400));
        let token = CachedToken::new(answer.access_token, expires_in, fetched);
        *write_lock(&self.inner.token) = Some(token.clone());
        Ok(token)
    }

    /// One HTTP exchange and JSON parse. `query` may hold secrets: it goes into the request
    /// only, never into an error or a log line.
    async fn exchange<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        query: &str,
        body: Bytes,
    ) -> Result<T, WecomError> {
        let url = format!("{}{}?{}", self.inner.settings.base_url.trim_end_matches('/'), path, query);
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json;charset=utf-8")
            .header("user-agent", concat!("campaignd/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|_| invalid_at(endpoint, "the base URL is not a valid URL".into()))?;
        let timeout = self.inner.settings.request_timeout;
        let (status, bytes) = exchange(&self.inner.http, req, timeout).await.map_err(|e| WecomError::Transport {
            endpoint,
            reason: e.reason,
            request_sent: e.request_sent,
        })?;
        parse_answer(endpoint, status, &bytes)
    }
}

/// Parses a JSON answer; a body that is not JSON is an HTTP error unless the status was 200.
fn parse_answer<T: DeserializeOwned>(endpoint: &'static str, status: u16, body: &[u8]) -> Result<T, WecomError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(_) if status != 200 => Err(WecomError::Http { endpoint, status }),
        Err(e) => Err(WecomError::Decode { endpoint, reason: e.to_string() }),
    }
}

fn check_errcode(endpoint: &'static str, code: i64, msg: &str) -> Result<(), WecomError> {
    match code {
        0 => Ok(()),
        code => Err(WecomError::Api { endpoint, code, msg: msg.to_owned() }),
    }
}

/// Refuses recipient lists WeCom would refuse, or that would reach people nobody named.
fn check_users(users: &[&str]) -> Result<(), WecomError> {
    let n = users.len();
    if n == 0 || n > MAX_USERS_PER_SEND {
        return Err(invalid(format!("touser must name 1..={MAX_USERS_PER_SEND} members, got {n}")));
    }
    if let Some(bad) = users.iter().find(|u| u.trim().is_empty() || u.contains('|') || u.eq_ignore_ascii_case("@all")) {
        return Err(invalid(format!("member id {bad:?} is empty, holds '|' or is @all")));
    }
    Ok(())
}

/// Maps the answer's skipped ids back to the caller's spelling; WeCom lower-cases them.
fn outcome(users: &[&str], answer: &SendAnswer) -> SendOutcome {
    let skipped: HashSet<String> = [&answer.invaliduser, &answer.unlicenseduser]
        .into_iter()
        .flatten()
        .flat_map(|list| list.split('|'))
        .filter(|id| !id.is_empty())
        .map(str::to_lowercase)
        .collect();
    let invalid_users = users.iter().filter(|u| skipped.contains(&u.to_lowercase())).map(|u| (*u).to_owned()).collect();
    SendOutcome { invalid_users, msgid: answer.msgid.clone().filter(|m| !m.is_empty()) }
}

/// The fuzzing entry (`fuzz/fuzz_targets/upstream_answers.rs`): reads an upstream answer
/// (`status`, `body`) as the client reads the answer of `gettoken` (even `endpoint`) or
/// `message/send` (odd), and does with it what the client does next: the token's checks and
/// lifetime, the errcode, the skipped members mapped back to `users`, and the error's class,
/// result and metric label. No I/O. A hostile or broken WeCom must get an error, never a panic.
pub fn decode_answer_for_fuzzing(endpoint: u8, status: u16, body: &[u8], users: &[&str]) {
    let judged = if endpoint.is_multiple_of(2) {
        parse_answer::<TokenAnswer>(GETTOKEN, status, body).and_then(|a| {
            check_errcode(GETTOKEN, a.errcode, &a.errmsg)?;
            if a.access_token.is_empty() || a.expires_in == 0 {
                return Err(WecomError::Decode { endpoint: GETTOKEN, reason: "no token".into() });
            }
            let token = CachedToken::new(a.access_token, Duration::from_secs(a.expires_in.min(86_400)), Instant::now());
            std::hint::black_box(token.is_fresh(Instant::now()));
            Ok(())
        })
    } else {
        parse_answer::<SendAnswer>(MESSAGE_SEND, status, body)
            .and_then(|a| check_errcode(MESSAGE_SEND, a.errcode, &a.errmsg).map(|()| a))
            .map(|a| {
                std::hint::black_box(outcome(users, &a));
            })
    };
    if let Err(e) = judged {
        std::hint::black_box((e.class(), e.result(), e.code_label(), e.failed_at(), e.maybe_delivered()));
        std::hint::black_box(e.to_string());
    }
}

fn invalid(reason: String) -> WecomError {
    invalid_at(MESSAGE_SEND, reason)
}

fn invalid_at(endpoint: &'static str, reason: String) -> WecomError {
    WecomError::Invalid { endpoint, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolSettings;
    use crate::secret::Secret;

    #[test]
    fn skipped_ids_match_case_insensitively_in_the_callers_spelling() {
        let answer = SendAnswer {
            invaliduser: Some("left-bob|carol".into()),
            unlicenseduser: Some("dave".into()),
            msgid: Some("m1".into()),
            ..SendAnswer::default()
        };
        let out = outcome(&["Alice", "LEFT-Bob", "Carol", "Dave", "erin"], &answer);
        assert_eq!(out.invalid_users, vec!["LEFT-Bob", "Carol", "Dave"]);
        assert_eq!(out.msgid.as_deref(), Some("m1"));
        let none = outcome(&["a"], &SendAnswer { invaliduser: Some(String::new()), ..SendAnswer::default() });
        assert_eq!(none, SendOutcome::default());
    }

    #[test]
    fn recipient_lists_are_bounded_and_cannot_widen_the_audience() {
        assert!(check_users(&["a", "b"]).is_ok());
        let many: Vec<String> = (0..=MAX_USERS_PER_SEND).map(|i| format!("u{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_users(&refs[..MAX_USERS_PER_SEND]).is_ok());
        let e = check_users(&refs).unwrap_err();
        assert!(e.to_string().contains("got 1001"), "{e}");
        assert_eq!(e.class(), AnswerClass::Permanent);
        assert!(check_users(&[]).is_err());
        for bad in ["", "a|b", "@ALL"] {
            assert!(check_users(&["ok", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_margin_is_capped_by_lifetime() {
        let t0 = Instant::now();
        let long = CachedToken::new("t".into(), Duration::from_secs(7200), t0);
        assert!(long.is_fresh(t0 + Duration::from_secs(6899)));
        assert!(!long.is_fresh(t0 + Duration::from_secs(6900)));
        let short = CachedToken::new("t".into(), Duration::from_secs(10), t0);
        assert!(short.is_fresh(t0 + Duration::from_secs(4)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn answers_without_json_are_http_errors() {
        let e = parse_answer::<SendAnswer>(MESSAGE_SEND, 502, b"<html>").unwrap_err();
        assert!(matches!(e, WecomError::Http { status: 502, .. }));
        let e = parse_answer::<SendAnswer>(MESSAGE_SEND, 200, b"<html>").unwrap_err();
        assert!(matches!(e, WecomError::Decode { .. }));
        let ok: SendAnswer = parse_answer(MESSAGE_SEND, 200, br#"{"errcode":0,"errmsg":"ok"}"#).unwrap();
        assert_eq!(ok.errcode, 0);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let settings = WecomSettings {
            base_url: "http://127.0.0.1:1/cgi-bin".into(),
            corp_id: "wwcorp".into(),
            agent_id: 1,
            secret: Secret::new("very-secret-value"),
            request_timeout: Duration::from_secs(1),
            pool: PoolSettings::default(),
        };
        assert!(!format!("{settings:?}").contains("very-secret-value"));
        let client = WecomClient::new(settings).unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("wwcorp") && !shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn the_fuzzing_entry_reads_both_endpoints_and_hostile_bodies() {
        let bodies: [&[u8]; 4] = [
            br#"{"errcode":0,"access_token":"t","expires_in":18446744073709551615}"#,
            br#"{"errcode":0,"invaliduser":"||LILEI|","unlicenseduser":"|","msgid":""}"#,
            br#"{"errcode":42001}"#,
            b"not json",
        ];
        for endpoint in 0..2 {
            for body in bodies {
                decode_answer_for_fuzzing(endpoint, 200, body, &["LiLei", "x"]);
                decode_answer_for_fuzzing(endpoint, 502, body, &[]);
            }
        }
    }
}
