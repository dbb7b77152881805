//! The simulated WeCom (企业微信) server: `gettoken`, `message/send`, and a player that plays
//! the WeCom side of callbacks against campaignd.
//!
//! It shares the Getui simulator's listener: paths under `/cgi-bin/` and `/_sim/wecom` come
//! here. Behaviour follows `shared/reference/wecom.md` §4 where it is documented; where it is
//! not, these are the choices made:
//!
//! - Business errors are HTTP 200 with `{"errcode", "errmsg"}`, as upstream. Unknown paths are
//!   HTTP 404 and wrong methods 405, without a WeCom body.
//! - `gettoken`: missing corpid 41002, wrong corpid 40013, missing secret 41004, wrong secret
//!   40001. While a token is valid the same token is returned, with its remaining lifetime.
//! - `message/send` checks in this order: token (41001 missing, 40014 unknown, 42001 expired),
//!   the per-minute call window (45009), the concurrency limit (45033), JSON (47001),
//!   agentid (41011 missing, 40056 wrong), touser (82001 empty, 40058 over 1000 ids or
//!   `@all`, which is not modelled), msgtype (40008; only text, textcard, news and markdown
//!   are modelled), content (44004 empty, 45002 too large, 45008 more than 8 articles, 40058
//!   other missing fields), then recipients.
//! - A member id starting with `left-` (any case) is outside the app's visible range: it comes
//!   back lower-cased in `invaliduser`; if every recipient is such, the answer is 81013 and
//!   nothing is delivered. `invaliduser` is an empty string when nobody was skipped.
//! - Rate windows open at their first call and last a minute (not calendar minutes), so a
//!   test filling a tiny window never straddles a boundary. Each cgi has its own window with
//!   the same limit, as the per-API quota is counted per cgi.
//! - `enable_duplicate_check`: a member who received the same content (the body without its
//!   recipients and the two check fields) from a send with the check on, within the new
//!   send's `duplicate_check_interval` (default 1800 s, at most 4 hours), is not delivered
//!   to again; the ledger counts a dropped repeat instead. The answer is errcode 0, with the
//!   earlier msgid when every member was a repeat. Sends without the check are neither
//!   checked nor remembered. At most [`MAX_DEDUP_ENTRIES`] deliveries are remembered.
//! - Not modelled: departments and tags, the per-member 30/min drop, licenses, media types.
//!
//! Introspection: `GET /_sim/wecom/ledger`, `GET /_sim/wecom/ledger/{userid}`,
//! `GET /_sim/wecom/in-flight` (sends under way, the count `max_concurrent_sends` limits, so a
//! test can wait until a slow send has begun instead of sleeping), and `POST /_sim/wecom/expire-tokens`, which turns every issued token into an expired one (so
//! the next send answers 42001) and makes `gettoken` issue a new token.

mod ledger;
mod player;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Map, Value};

use super::faults::{gateway_timeout, service_unavailable, Fault, FaultDraws, FaultProfile};
use super::ledger::lock;
use crate::dev::{
    DEV_WECOM_AES_KEY, DEV_WECOM_AGENT_ID, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_CORP_ID, DEV_WECOM_SECRET,
};
use crate::percent;
use crate::serve::{json_response, text_response, DropConnection, HandlerResult};
use crate::wire::wecom::{
    AppMessage, MAX_CONTENT_BYTES, MAX_DUPLICATE_CHECK_SECS, MAX_NEWS_ARTICLES, MAX_TEXTCARD_DESCRIPTION_BYTES,
    MAX_TEXTCARD_TITLE_BYTES, MAX_USERS_PER_SEND,
};
use ledger::WecomLedger;
pub use ledger::WecomLedgerSummary;
pub use player::{CallbackAnswer, CallbackPlayer, Delivery, Inbound, PlayerError, Signing};

/// Largest request body read (1000 ids of 64 bytes plus a 2 KiB message is far below this).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most (content, member) deliveries remembered for the duplicate check (about 60 MB).
pub const MAX_DEDUP_ENTRIES: usize = 1_000_000;
/// Most tokens remembered; older expired ones are forgotten (and then answer 40014).
const MAX_TOKENS: usize = 4096;
const MINUTE: Duration = Duration::from_secs(60);

/// How the simulated WeCom application behaves.
#[derive(Debug, Clone)]
pub struct WecomSimConfig {
    /// CorpID expected by `gettoken`.
    pub corp_id: String,
    /// The application's AgentId expected by `message/send`.
    pub agent_id: i64,
    /// The application's Secret expected by `gettoken`.
    pub secret: String,
    /// How long an issued token lives (upstream: 7200 s). Whole seconds; at least 1 s is used.
    pub token_ttl: Duration,
    /// Calls per minute per cgi before 45009 (`None`: unlimited). Upstream: 10 000.
    pub calls_per_minute: Option<u64>,
    /// Concurrent `message/send` calls before 45033 (`None`: unlimited).
    pub max_concurrent_sends: Option<u32>,
    /// Time a send takes inside the simulator, so that concurrency limits can be reached.
    pub send_latency: Duration,
}

impl Default for WecomSimConfig {
    fn default() -> Self {
        WecomSimConfig {
            corp_id: DEV_WECOM_CORP_ID.into(),
            agent_id: DEV_WECOM_AGENT_ID,
            secret: DEV_WECOM_SECRET.into(),
            token_ttl: Duration::from_secs(7200),
            calls_per_minute: Some(10_000),
            max_concurrent_sends: None,
            send_latency: Duration::ZERO,
        }
    }
}

/// True for the paths the WeCom simulator serves.
pub(crate) fn owns(path: &str) -> bool {
    path.starts_with("/cgi-bin/") || path.starts_with("/_sim/wecom")
}

/// A rate window that opens at its first hit and lasts `len`.
struct Window {
    limit: Option<u64>,
    len: Duration,
    state: Mutex<Option<(Instant, u64)>>,
}

impl Window {
    fn new(limit: Option<u64>, len: Duration) -> Self {
        Window { limit, len, state: Mutex::new(None) }
    }

    fn try_take(&self, now: Instant) -> bool {
        let Some(limit) = self.limit else { return true };
        let mut st = lock(&self.state);
        match st.as_mut() {
            Some((start, hits)) if now < *start + self.len => {
                if *hits >= limit {
                    return false;
                }
                *hits += 1;
                true
            }
            _ => {
                *st = Some((now, 1));
                limit >= 1
            }
        }
    }
}

/// Issued tokens and their expiry; `current` is handed out again while valid.
#[derive(Default)]
struct TokenBook {
    issued: HashMap<String, Instant>,
    current: Option<String>,
}

/// A `message/send` slot; dropping it frees the slot.
struct Slot<'a>(&'a AtomicU32);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A business answer: `errcode`, `errmsg` and extra fields.
type Answer = Value;

fn err(code: i64, msg: &str) -> Answer {
    json!({ "errcode": code, "errmsg": msg })
}

/// State of the simulated WeCom application.
pub struct WecomSim {
    cfg: WecomSimConfig,
    ledger: Arc<WecomLedger>,
    tokens: Mutex<TokenBook>,
    gettoken_window: Window,
    send_window: Window,
    in_flight: AtomicU32,
    /// Hash of (content, member) → when it was delivered and the msgid of that send.
    dedup: Mutex<HashMap<[u8; 16], (Instant, u64)>>,
    msg_seq: AtomicU64,
    /// Faults injected around `/cgi-bin/` calls (the Getui simulator's profile).
    faults: FaultDraws,
}

impl WecomSim {
    /// A fresh application with no tokens and an empty ledger.
    #[cfg(test)]
    pub(crate) fn new(cfg: WecomSimConfig) -> Self {
        Self::with_faults(cfg, FaultProfile::clean(), 0)
    }

    /// A fresh application misbehaving as `faults` says: its latency, dropped connections and
    /// 5xx, before or after the call takes effect. Its rate-limit bursts and short tokens
    /// are Getui's and are not applied here.
    pub(crate) fn with_faults(cfg: WecomSimConfig, faults: FaultProfile, fault_seed: u64) -> Self {
        WecomSim {
            faults: FaultDraws::new(faults, fault_seed),
            ledger: Arc::new(WecomLedger::default()),
            tokens: Mutex::new(TokenBook::default()),
            gettoken_window: Window::new(cfg.calls_per_minute, MINUTE),
            send_window: Window::new(cfg.calls_per_minute, MINUTE),
            in_flight: AtomicU32::new(0),
            dedup: Mutex::new(HashMap::new()),
            msg_seq: AtomicU64::new(0),
            cfg,
        }
    }

    /// Serves one request under `/cgi-bin/` or `/_sim/wecom`.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> HandlerResult {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let method = req.method().clone();
        if let Some(rest) = path.strip_prefix("/_sim/wecom") {
            return Ok(self.introspect(&method, rest));
        }
        let fault = self.faults.next().await;
        match fault {
            Fault::DropBefore => return Err(DropConnection),
            Fault::ErrorBefore => return Ok(service_unavailable()),
            _ => {}
        }
        let answer = self.route(req, &method, &path, &query).await;
        match fault {
            Fault::DropAfter => Err(DropConnection),
            Fault::ErrorAfter => Ok(gateway_timeout()),
            _ => Ok(answer),
        }
    }

    async fn route(&self, req: Request<Incoming>, method: &Method, path: &str, query: &str) -> Response<Full<Bytes>> {
        match (method, path) {
            (&Method::GET, "/cgi-bin/gettoken") => to_response(self.gettoken(query)),
            (&Method::POST, "/cgi-bin/message/send") => {
                let body = Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await.map(|c| c.to_bytes());
                let answer = match body {
                    Ok(body) => self.send(query, &body).await,
                    Err(_) => err(45002, "request body too large"),
                };
                self.count_send(&answer);
                to_response(answer)
            }
            (_, "/cgi-bin/gettoken" | "/cgi-bin/message/send") => text_response(405, "method not allowed"),
            _ => text_response(404, "not found"),
        }
    }

    fn count_send(&self, answer: &Answer) {
        if answer["errcode"].as_i64() != Some(0) {
            self.ledger.record_refused();
        }
    }

    fn gettoken(&self, query: &str) -> Answer {
        let answer = self.gettoken_checked(query);
        if answer["errcode"].as_i64() != Some(0) {
            self.ledger.record_gettoken(false);
        }
        answer
    }

    fn gettoken_checked(&self, query: &str) -> Answer {
        let corpid = query_param(query, "corpid").unwrap_or_default();
        let secret = query_param(query, "corpsecret").unwrap_or_default();
        if corpid.is_empty() {
            return err(41002, "corpid missing");
        }
        if corpid != self.cfg.corp_id {
            return err(40013, "invalid corpid");
        }
        if secret.is_empty() {
            return err(41004, "corpsecret missing");
        }
        if secret != self.cfg.secret {
            return err(40001, "invalid credential, secret is wrong");
        }
        let now = Instant::now();
        if !self.gettoken_window.try_take(now) {
            return err(45009, "api freq out of limit");
        }
        let (token, remaining, new) = self.current_or_new_token(now);
        self.ledger.record_gettoken(new);
        json!({ "errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": remaining })
    }

    /// The token still valid, or a new one; with its remaining whole seconds.
    fn current_or_new_token(&self, now: Instant) -> (String, u64, bool) {
        let mut book = lock(&self.tokens);
        let current = book.current.as_ref().and_then(|t| book.issued.get(t).map(|exp| (t.clone(), *exp)));
        if let Some((token, expires)) = current.filter(|(_, exp)| *exp > now) {
            let left = expires.saturating_duration_since(now);
            return (token, left.as_secs() + u64::from(left.subsec_nanos() > 0), false);
        }
        let ttl_secs = self.cfg.token_ttl.as_secs().max(1);
        let token = new_token();
        // Expired tokens are kept for one more lifetime so that they answer 42001, then forgotten.
        let keep = Duration::from_secs(ttl_secs);
        book.issued.retain(|_, exp| *exp + keep > now);
        if book.issued.len() >= MAX_TOKENS {
            book.issued.retain(|_, exp| *exp > now);
        }
        book.issued.insert(token.clone(), now + Duration::from_secs(ttl_secs));
        book.current = Some(token.clone());
        (token, ttl_secs, true)
    }

    fn check_token(&self, query: &str, now: Instant) -> Result<(), Answer> {
        let Some(token) = query_param(query, "access_token").filter(|t| !t.is_empty()) else {
            return Err(err(41001, "access_token missing"));
        };
        match lock(&self.tokens).issued.get(&token) {
            Some(exp) if *exp > now => Ok(()),
            Some(_) => Err(err(42001, "access_token expired")),
            None => Err(err(40014, "invalid access_token")),
        }
    }

    async fn send(&self, query: &str, body: &Bytes) -> Answer {
        let now = Instant::now();
        if let Err(answer) = self.check_token(query, now) {
            return answer;
        }
        if !self.send_window.try_take(now) {
            return err(45009, "api freq out of limit");
        }
        let Some(_slot) = self.enter() else {
            return err(45033, "api concurrent out of limit");
        };
        if !self.cfg.send_latency.is_zero() {
            tokio::time::sleep(self.cfg.send_latency).await;
        }
        self.deliver(body)
    }

    /// Takes a concurrency slot, or `None` when all are busy.
    fn enter(&self) -> Option<Slot<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.in_flight);
        match self.cfg.max_concurrent_sends {
            Some(max) if before >= max => None,
            _ => Some(slot),
        }
    }

    /// Checks the body and records the delivery; synchronous, so no lock spans an await.
    fn deliver(&self, body: &[u8]) -> Answer {
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
            return err(47001, "data format error: body is not a JSON object");
        };
        let users = match self.check_request(&obj) {
            Ok(users) => users,
            Err(answer) => return answer,
        };
        let (invalid, valid): (Vec<String>, Vec<String>) =
            users.iter().map(|u| u.to_lowercase()).partition(|u| u.starts_with("left-"));
        let invaliduser = invalid.join("|");
        if valid.is_empty() {
            self.ledger.add_invalid(invalid.len());
            return json!({ "errcode": 81013, "errmsg": "user & party & tag all invalid", "invaliduser": invaliduser });
        }
        let screened = self.screen_repeats(&obj, valid, Instant::now());
        self.ledger.record_call(screened.fresh.iter().map(String::as_str), invalid.len());
        self.ledger.add_dropped_repeats(screened.repeats);
        let msgid = screened.msgid;
        json!({ "errcode": 0, "errmsg": "ok", "invaliduser": invaliduser, "msgid": msgid })
    }

    /// Everything but the recipients' visibility; returns the member ids.
    fn check_request<'a>(&self, obj: &'a Map<String, Value>) -> Result<Vec<&'a str>, Answer> {
        let agentid = match obj.get("agentid") {
            None | Some(Value::Null) => return Err(err(41011, "missing agentid")),
            Some(v) => v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())),
        };
        if agentid != Some(self.cfg.agent_id) {
            return Err(err(40056, "invalid agentid"));
        }
        let touser = obj.get("touser").and_then(Value::as_str).unwrap_or("");
        let users: Vec<&str> = touser.split('|').map(str::trim).filter(|u| !u.is_empty()).collect();
        if users.is_empty() {
            return Err(err(82001, "all recipients are empty"));
        }
        if users.len() > MAX_USERS_PER_SEND {
            return Err(err(40058, "invalid parameter: touser names more than 1000 members"));
        }
        if users.iter().any(|u| u.eq_ignore_ascii_case("@all")) {
            return Err(err(40058, "invalid parameter: @all is not modelled by the simulator"));
        }
        check_message(obj)?;
        Ok(users)
    }

    /// Applies the duplicate check to the lower-cased `members` of one accepted send: those
    /// that got the same content within the interval are repeats, not delivered again. The
    /// msgid is new unless every member was a repeat (then the earlier send's).
    fn screen_repeats(&self, obj: &Map<String, Value>, members: Vec<String>, now: Instant) -> Screened {
        let new_id = self.msg_seq.fetch_add(1, Ordering::Relaxed);
        if obj.get("enable_duplicate_check").and_then(Value::as_u64) != Some(1) {
            return Screened { fresh: members, repeats: 0, msgid: msgid_text(new_id) };
        }
        let secs = obj.get("duplicate_check_interval").and_then(Value::as_u64).unwrap_or(1800);
        let interval = Duration::from_secs(secs.clamp(1, u64::from(MAX_DUPLICATE_CHECK_SECS)));
        let content = content_key(obj);
        let mut seen = lock(&self.dedup);
        if seen.len() >= MAX_DEDUP_ENTRIES {
            let longest = Duration::from_secs(u64::from(MAX_DUPLICATE_CHECK_SECS));
            seen.retain(|_, (first, _)| now < *first + longest);
        }
        let (mut fresh, mut repeats, mut earlier) = (Vec::with_capacity(members.len()), 0, None);
        for member in members {
            let key = ledger::key128(&format!("{content:032x}{member}"));
            match seen.get(&key) {
                Some((first, id)) if now < *first + interval => {
                    repeats += 1;
                    earlier.get_or_insert(*id);
                }
                _ => {
                    if seen.len() < MAX_DEDUP_ENTRIES {
                        seen.insert(key, (now, new_id));
                    }
                    fresh.push(member);
                }
            }
        }
        let shown = if fresh.is_empty() { earlier.unwrap_or(new_id) } else { new_id };
        Screened { fresh, repeats, msgid: msgid_text(shown) }
    }

    /// `/_sim/wecom...`: the ledger, one member's count, the sends in flight, and
    /// `expire-tokens`.
    fn introspect(&self, method: &Method, rest: &str) -> Response<Full<Bytes>> {
        let json = |v: Value| json_response(200, v.to_string().into_bytes());
        match (method, rest) {
            (&Method::POST, "/expire-tokens") => json(json!({ "expired": self.expire_tokens() })),
            (&Method::GET, "/in-flight") => json(json!({ "in_flight": self.in_flight.load(Ordering::Acquire) })),
            (&Method::GET, "/ledger") => json(serde_json::to_value(self.ledger.summary()).unwrap_or_default()),
            (&Method::GET, r) if r.starts_with("/ledger/") => {
                let user = percent::decode(&r["/ledger/".len()..]).to_lowercase();
                json(json!({ "userid": user, "deliveries": self.ledger.count(&user) }))
            }
            _ => json_response(404, br#"{"error":"unknown simulator path"}"#.to_vec()),
        }
    }

    /// Makes every issued token expired now; returns how many there were.
    fn expire_tokens(&self) -> usize {
        let now = Instant::now();
        let mut book = lock(&self.tokens);
        book.current = None;
        for exp in book.issued.values_mut() {
            *exp = (*exp).min(now);
        }
        book.issued.len()
    }
}

/// One send after the duplicate check.
struct Screened {
    /// Members to deliver to.
    fresh: Vec<String>,
    /// Members the check kept from a second delivery.
    repeats: usize,
    /// The answer's msgid.
    msgid: String,
}

fn msgid_text(n: u64) -> String {
    format!("sim{n:016x}")
}

/// What "the same content" means to the duplicate check: the body without its recipients and
/// without the check's own two fields, as 128 bits.
fn content_key(obj: &Map<String, Value>) -> u128 {
    let mut content = obj.clone();
    for field in ["touser", "toparty", "totag", "enable_duplicate_check", "duplicate_check_interval"] {
        content.remove(field);
    }
    // serde_json's map is ordered by key, so equal contents serialize equally.
    u128::from_be_bytes(ledger::key128(&Value::Object(content).to_string()))
}

/// The message part of a send: msgtype and the documented limits, with upstream's codes.
fn check_message(obj: &Map<String, Value>) -> Result<(), Answer> {
    let msgtype = obj.get("msgtype").and_then(Value::as_str).unwrap_or("");
    if !matches!(msgtype, "text" | "markdown" | "textcard" | "news") {
        return Err(err(40008, "invalid message type"));
    }
    if matches!(msgtype, "text" | "markdown") {
        let content = obj.get(msgtype).and_then(|b| b.get("content")).and_then(Value::as_str).unwrap_or("");
        if content.is_empty() {
            return Err(err(44004, "empty content"));
        }
    }
    // The tag parser ignores the other fields of the body.
    let message = serde_json::from_value::<AppMessage>(Value::Object(obj.clone()))
        .map_err(|e| err(40058, &format!("invalid parameter: {e}")))?;
    check_limits(&message)
}

fn check_limits(message: &AppMessage) -> Result<(), Answer> {
    let too_large = || Err(err(45002, "content size out of limit"));
    match message {
        AppMessage::Text { content } | AppMessage::Markdown { content } if content.len() > MAX_CONTENT_BYTES => {
            too_large()
        }
        AppMessage::TextCard { title, description, url, .. } => {
            if title.is_empty() || description.is_empty() || url.is_empty() {
                return Err(err(40058, "invalid parameter: textcard needs title, description and url"));
            }
            if title.len() > MAX_TEXTCARD_TITLE_BYTES || description.len() > MAX_TEXTCARD_DESCRIPTION_BYTES {
                return too_large();
            }
            Ok(())
        }
        AppMessage::News { articles } => {
            if articles.is_empty() || articles.len() > MAX_NEWS_ARTICLES {
                return Err(err(45008, "article count out of limit"));
            }
            if articles.iter().any(|a| a.title.is_empty() || a.url.is_empty()) {
                return Err(err(40058, "invalid parameter: every article needs a title and a url"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn to_response(answer: Answer) -> Response<Full<Bytes>> {
    json_response(200, answer.to_string().into_bytes())
}

/// A token-like random string (upstream tokens are long opaque strings).
fn new_token() -> String {
    let mut rng = fastrand::Rng::new();
    (0..64).map(|_| rng.alphanumeric()).collect()
}

/// The percent-decoded value of `name` in a query string. `+` stays `+`: WeCom's clients
/// percent-encode, and base64 values must not turn `+` into a space.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| percent::decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> WecomSim {
        WecomSim::new(WecomSimConfig::default())
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn code(a: &Answer) -> i64 {
        a["errcode"].as_i64().unwrap_or(i64::MIN)
    }

    #[test]
    fn dev_key_is_a_valid_encoding_aes_key() {
        assert_eq!(DEV_WECOM_AES_KEY.len(), 43);
        assert!(DEV_WECOM_AES_KEY.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(crate::wecom::MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, DEV_WECOM_CORP_ID).is_ok());
    }

    #[test]
    fn gettoken_checks_credentials_and_reuses_the_token() {
        let s = sim();
        let q = |c: &str, k: &str| format!("corpid={c}&corpsecret={}", crate::wire::wecom::query_escape(k));
        assert_eq!(code(&s.gettoken("")), 41002);
        assert_eq!(code(&s.gettoken(&q("wwother", DEV_WECOM_SECRET))), 40013);
        assert_eq!(code(&s.gettoken(&format!("corpid={DEV_WECOM_CORP_ID}"))), 41004);
        assert_eq!(code(&s.gettoken(&q(DEV_WECOM_CORP_ID, "nope"))), 40001);
        let a = s.gettoken(&q(DEV_WECOM_CORP_ID, DEV_WECOM_SECRET));
        let b = s.gettoken(&q(DEV_WECOM_CORP_ID, DEV_WECOM_SECRET));
        assert_eq!((code(&a), a["expires_in"].as_u64()), (0, Some(7200)));
        assert_eq!(a["access_token"], b["access_token"]);
        let token = a["access_token"].as_str().unwrap().to_owned();
        let now = Instant::now();
        assert!(s.check_token(&format!("access_token={token}"), now).is_ok());
        assert_eq!(code(&s.check_token("", now).unwrap_err()), 41001);
        assert_eq!(code(&s.check_token("access_token=unknown", now).unwrap_err()), 40014);
        s.expire_tokens();
        assert_eq!(code(&s.check_token(&format!("access_token={token}"), Instant::now()).unwrap_err()), 42001);
        let c = s.gettoken(&q(DEV_WECOM_CORP_ID, DEV_WECOM_SECRET));
        assert_ne!(c["access_token"], a["access_token"]);
        let summary = s.ledger.summary();
        assert_eq!((summary.gettoken_calls, summary.tokens_issued), (7, 2));
    }

    #[test]
    fn send_bodies_get_the_documented_codes() {
        let s = sim();
        let ok = |extra: Value| {
            let mut v = json!({"touser": "a|left-B", "agentid": DEV_WECOM_AGENT_ID, "msgtype": "text", "text": {"content": "hi"}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            s.deliver(&body(v))
        };
        let a = ok(json!({}));
        assert_eq!((code(&a), a["invaliduser"].as_str()), (0, Some("left-b")));
        assert_eq!(code(&s.deliver(b"{")), 47001);
        assert_eq!(code(&ok(json!({"agentid": 7}))), 40056);
        assert_eq!(code(&ok(json!({"agentid": null}))), 41011);
        assert_eq!(code(&ok(json!({"touser": ""}))), 82001);
        let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert_eq!(code(&ok(json!({"touser": many.join("|")}))), 40058);
        assert_eq!(code(&ok(json!({"msgtype": "image"}))), 40008);
        assert_eq!(code(&ok(json!({"text": {"content": ""}}))), 44004);
        assert_eq!(code(&ok(json!({"text": {"content": "x".repeat(2049)}}))), 45002);
        let article = json!({"title": "t", "url": "u"});
        let nine: Vec<Value> = (0..9).map(|_| article.clone()).collect();
        assert_eq!(code(&ok(json!({"msgtype": "news", "news": {"articles": nine}}))), 45008);
        let all_left = ok(json!({"touser": "left-1|LEFT-2"}));
        assert_eq!((code(&all_left), all_left["invaliduser"].as_str()), (81013, Some("left-1|left-2")));
        let summary = s.ledger.summary();
        assert_eq!((summary.calls, summary.deliveries, summary.invalid_recipients), (1, 1, 3));
    }

    #[test]
    fn duplicate_check_answers_alike_and_delivers_once() {
        let s = sim();
        let v = json!({"touser": "a", "agentid": DEV_WECOM_AGENT_ID, "msgtype": "markdown",
            "markdown": {"content": "**x**"}, "enable_duplicate_check": 1, "duplicate_check_interval": 600});
        let first = s.deliver(&body(v.clone()));
        let again = s.deliver(&body(v));
        assert_eq!((code(&first), code(&again)), (0, 0));
        assert_eq!(first["msgid"], again["msgid"]);
        let summary = s.ledger.summary();
        assert_eq!((summary.calls, summary.deliveries, summary.dropped_repeats), (2, 1, 1));
    }

    #[test]
    fn duplicate_check_is_per_member_and_content_within_the_interval() {
        let s = sim();
        let send = |users: &str, content: &str, check: u8| {
            let v = json!({"touser": users, "agentid": DEV_WECOM_AGENT_ID, "msgtype": "text",
                "text": {"content": content}, "enable_duplicate_check": check, "duplicate_check_interval": 60});
            let Value::Object(obj) = v else { unreachable!() };
            obj
        };
        let t0 = Instant::now();
        let members = |list: &[&str]| list.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        let first = s.screen_repeats(&send("a|b", "hi", 1), members(&["a", "b"]), t0);
        assert_eq!((first.fresh.len(), first.repeats), (2, 0));
        // A retry split differently still reaches only the member who has not had it.
        let again = s.screen_repeats(&send("b|c", "hi", 1), members(&["b", "c"]), t0 + Duration::from_secs(30));
        assert_eq!((again.fresh, again.repeats), (members(&["c"]), 1));
        let all_repeats = s.screen_repeats(&send("a", "hi", 1), members(&["a"]), t0 + Duration::from_secs(31));
        assert_eq!((all_repeats.fresh.len(), all_repeats.msgid), (0, first.msgid.clone()));
        // Other content, the check off, or the interval over: delivered again.
        assert_eq!(s.screen_repeats(&send("a", "other", 1), members(&["a"]), t0).repeats, 0);
        assert_eq!(s.screen_repeats(&send("a", "hi", 0), members(&["a"]), t0).repeats, 0);
        let late = s.screen_repeats(&send("a", "hi", 1), members(&["a"]), t0 + Duration::from_secs(61));
        assert_eq!((late.fresh.len(), late.repeats), (1, 0));
    }

    #[test]
    fn windows_open_at_the_first_hit() {
        let w = Window::new(Some(2), MINUTE);
        let t0 = Instant::now();
        assert!(w.try_take(t0) && w.try_take(t0 + Duration::from_secs(59)));
        assert!(!w.try_take(t0 + Duration::from_secs(59)));
        assert!(w.try_take(t0 + MINUTE));
        assert!(!Window::new(Some(0), MINUTE).try_take(t0));
    }

    #[test]
    fn query_params_are_percent_decoded_without_plus_to_space() {
        assert_eq!(query_param("a=1&echostr=x%2By%2F%3D&b=+", "echostr").as_deref(), Some("x+y/="));
        assert_eq!(query_param("a=1&b=+", "b").as_deref(), Some("+"));
        assert_eq!(query_param("a=1", "c"), None);
        assert!(owns("/cgi-bin/gettoken") && owns("/_sim/wecom/ledger") && !owns("/_sim/ledger") && !owns("/v2/x"));
    }
}
