//! The simulated Getui RestAPI v2: request routing, tokens and the answer envelope.
//!
//! Handlers are synchronous: a request is parsed, checked and answered without awaiting while
//! any lock is held; only the injected latency is awaited, before anything else happens.

pub mod population;
pub mod push;
pub mod receipts;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Serialize;

use super::faults::{gateway_timeout, service_unavailable, Fault};
use super::ledger::{lock, Ledger};
use super::limits::FixedWindow;
use super::SimConfig;
use crate::clock::now_ms_u64;
use crate::domain::ids::mix64;
use crate::percent;
use crate::serve::{json_response, DropConnection, HandlerResult};
use crate::wire::getui::auth::sign;
use crate::wire::getui::{AuthData, AuthRequest, Envelope, HostGroup, HostListData};
use tasks::Tasks;

/// Largest request body the simulator reads (a full batch with big payloads is under 1 MiB).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest accepted clock skew of an `/auth` timestamp (the real value is not documented).
const AUTH_SKEW_MS: u64 = 10 * 60 * 1000;

/// A finished answer: HTTP status and JSON body.
pub(super) struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    /// A success envelope with `data`.
    pub(super) fn ok<T: Serialize>(data: Option<T>) -> Reply {
        Reply::envelope(0, "", data)
    }

    /// An error envelope; the HTTP status follows the code family, as the v2 code table says.
    pub(super) fn err(code: i64, msg: &str) -> Reply {
        Reply::envelope::<()>(code, msg, None)
    }

    fn envelope<T: Serialize>(code: i64, msg: &str, data: Option<T>) -> Reply {
        let body = serde_json::to_vec(&Envelope { code, msg, data }).unwrap_or_default();
        Reply { status: http_status_for(code), body }
    }
}

/// HTTP status for a business code: 401 for the auth family, 400 for parameters, 403 for
/// quotas and permissions.
fn http_status_for(code: i64) -> u16 {
    match code {
        10001..=10005 => 401,
        20001..=29999 => 400,
        30000..=39999 => 403,
        404 => 404,
        405 => 405,
        _ => 200,
    }
}

/// One fixed window per documented limit.
struct Windows {
    auth_minute: FixedWindow,
    auth_day: FixedWindow,
    app_minute: FixedWindow,
    app_day: FixedWindow,
    list_cids_day: FixedWindow,
    list_calls_minute: FixedWindow,
    calls_minute: FixedWindow,
}

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// State of the simulated Getui app.
pub struct GetuiSim {
    cfg: SimConfig,
    ledger: Arc<Ledger>,
    tokens: Mutex<HashMap<String, u64>>,
    /// Hashes (128-bit) of every request_id seen, sharded.
    seen_request_ids: Vec<Mutex<HashSet<[u8; 16]>>>,
    tasks: Tasks,
    windows: Windows,
    draws: AtomicU64,
    started: Instant,
    /// The last body each endpoint received, for `/_sim/last/{endpoint}` (tests check the wire).
    last_bodies: Mutex<HashMap<String, Bytes>>,
    /// The receipt callback (消息回执) of delivered messages.
    receipts: Arc<receipts::Receipts>,
}

impl GetuiSim {
    pub(super) fn new(cfg: SimConfig) -> Self {
        let l = &cfg.limits;
        let windows = Windows {
            auth_minute: FixedWindow::new(l.auth_per_minute, MINUTE),
            auth_day: FixedWindow::new(l.auth_per_day, DAY),
            app_minute: FixedWindow::new(l.app_push_per_minute, MINUTE),
            app_day: FixedWindow::new(l.app_push_per_day, DAY),
            list_cids_day: FixedWindow::new(l.list_cids_per_day, DAY),
            list_calls_minute: FixedWindow::new(l.list_calls_per_minute, MINUTE),
            calls_minute: FixedWindow::new(l.calls_per_minute, MINUTE),
        };
        GetuiSim {
            ledger: Arc::new(Ledger::default()),
            tokens: Mutex::new(HashMap::new()),
            seen_request_ids: (0..16).map(|_| Mutex::new(HashSet::new())).collect(),
            tasks: Tasks::default(),
            windows,
            draws: AtomicU64::new(0),
            started: Instant::now(),
            last_bodies: Mutex::new(HashMap::new()),
            receipts: Arc::new(receipts::Receipts::new(cfg.receipts.clone(), &cfg.app_id, &cfg.master_secret)),
            cfg,
        }
    }

    pub(super) fn ledger(&self) -> Arc<Ledger> {
        self.ledger.clone()
    }

    /// The receipt poster's counters.
    pub(super) fn receipt_stats(&self) -> receipts::ReceiptStats {
        self.receipts.stats()
    }

    /// Starts posting receipts (when a receipt URL is configured) until `shutdown`.
    pub(super) fn start_receipts(&self, shutdown: tokio_util::sync::CancellationToken) {
        self.receipts.start(shutdown);
    }

    /// Serves one HTTP request, injecting the profile's faults around it.
    pub(super) async fn handle(&self, req: Request<Incoming>) -> HandlerResult {
        let path = req.uri().path().to_owned();
        self.fire_due(now_ms_u64());
        if let Some(rest) = path.strip_prefix("/_sim/") {
            return Ok(self.introspect(rest));
        }
        let profile = &self.cfg.profile;
        let mut rng = self.rng();
        let delay = profile.draw_latency(&mut rng);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let fault = profile.draw_fault(&mut rng);
        match fault {
            Fault::DropBefore => return Err(DropConnection),
            Fault::ErrorBefore => return Ok(service_unavailable()),
            _ => {}
        }
        let method = req.method().clone();
        let token = req.headers().get("token").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Ok(to_response(Reply::err(20001, "body size over limit"))),
        };
        if let Some(endpoint) = path.strip_prefix("/v2/").and_then(|p| p.split_once('/')).map(|(_, e)| e) {
            lock(&self.last_bodies).insert(endpoint.to_owned(), body.clone());
        }
        let reply = self.route(&method, &path, token.as_deref(), &body);
        match fault {
            Fault::DropAfter => Err(DropConnection),
            Fault::ErrorAfter => Ok(gateway_timeout()),
            _ => Ok(to_response(reply)),
        }
    }

    fn route(&self, method: &Method, path: &str, token: Option<&str>, body: &Bytes) -> Reply {
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Reply::err(404, "url is not found");
        };
        let (app_id, api_path) = rest.split_once('/').unwrap_or((rest, ""));
        if app_id != self.cfg.app_id {
            return Reply::err(404, "url is not found");
        }
        if let Some(host) = &self.cfg.redirect_to {
            return redirect(host);
        }
        let now = now_ms_u64();
        match (method, api_path) {
            (&Method::POST, "auth") => return self.auth(body, now),
            (&Method::DELETE, p) if p.starts_with("auth/") => return self.revoke(&p["auth/".len()..]),
            _ => {}
        }
        if let Err(reply) = self.check_token(token, now) {
            return reply;
        }
        if !self.windows.calls_minute.try_take(now, 1) {
            return Reply::err(10005, "request frequency over limit");
        }
        self.business(method, api_path, body, now)
    }

    fn business(&self, method: &Method, api_path: &str, body: &Bytes, now: u64) -> Reply {
        let segments: Vec<&str> = api_path.split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["push", ..]) => self.push(api_path, body, now),
            (&Method::DELETE, ["task", taskid]) => self.tasks.stop(taskid),
            (&Method::GET, ["task", "schedule", taskid]) => self.tasks.schedule_info(taskid, now),
            (&Method::DELETE, ["task", "schedule", taskid]) => self.tasks.delete_schedule(taskid, now),
            (&Method::GET, ["report", "push", "task", ids]) => self.tasks.report_tasks(ids),
            (&Method::GET, ["report", "push", "task_group", group]) => self.tasks.report_group(&percent::decode(group)),
            (_, ["push", ..] | ["task", ..] | ["report", ..]) => Reply::err(405, "method is not supported"),
            _ => Reply::err(404, "url is not found"),
        }
    }

    fn push(&self, api_path: &str, body: &Bytes, now: u64) -> Reply {
        let since = self.started.elapsed();
        if self.cfg.profile.in_rate_limit_burst(since) {
            return match api_path {
                "push/list/cid" => Reply::err(30015, "list push frequency over limit"),
                _ => Reply::err(10005, "request frequency over limit"),
            };
        }
        match api_path {
            "push/single/cid" => self.single_cid(body),
            "push/single/alias" => self.single_alias(body),
            "push/single/batch/cid" => self.batch_cid(body),
            "push/list/message" => self.list_message(body, now),
            "push/list/cid" => self.list_cid(body, now),
            "push/all" => self.app_push(body, now, push::AppKind::All),
            "push/tag" => self.app_push(body, now, push::AppKind::Tag),
            _ => Reply::err(404, "url is not found"),
        }
    }

    fn auth(&self, body: &Bytes, now: u64) -> Reply {
        let req: AuthRequest = match parse_json(body) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        if req.appkey != self.cfg.app_key {
            return Reply::err(20001, "appkey is invalid");
        }
        let Ok(ts) = req.timestamp.parse::<u64>() else {
            return Reply::err(20001, "timestamp is invalid");
        };
        if ts.abs_diff(now) > AUTH_SKEW_MS {
            return Reply::err(20001, "timestamp is invalid");
        }
        if req.sign != sign(&self.cfg.app_key, &req.timestamp, &self.cfg.master_secret) {
            return Reply::err(20001, "sign is invalid");
        }
        if !self.windows.auth_minute.try_take(now, 1) {
            return Reply::err(10003, "auth frequency over limit");
        }
        if !self.windows.auth_day.try_take(now, 1) {
            self.windows.auth_minute.give_back(now, 1);
            return Reply::err(10003, "auth daily count over limit");
        }
        let ttl = self.cfg.profile.token_ttl.unwrap_or(self.cfg.token_ttl);
        let expires = now + u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 2);
        let mut rng = self.rng();
        let token = format!("{:016x}{:016x}{:016x}", rng.u64(..), rng.u64(..), rng.u64(..));
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, exp| *exp > now);
        tokens.insert(token.clone(), expires);
        Reply::ok(Some(AuthData { expire_time: expires.to_string(), token }))
    }

    fn revoke(&self, token: &str) -> Reply {
        lock(&self.tokens).remove(token);
        Reply::ok::<()>(None)
    }

    fn check_token(&self, token: Option<&str>, now: u64) -> Result<(), Reply> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(Reply::err(10001, "token can not be empty"));
        };
        match lock(&self.tokens).get(token) {
            Some(exp) if *exp > now => Ok(()),
            Some(_) => Err(Reply::err(10001, "token is expired")),
            None => Err(Reply::err(10001, "token is invalid")),
        }
    }

    /// True the first time `request_id` is seen; later pushes with it are dropped.
    fn first_sighting(&self, request_id: &str) -> bool {
        let key = hash128(request_id);
        let shard = usize::from(key[0]) % self.seen_request_ids.len();
        lock(&self.seen_request_ids[shard]).insert(key)
    }

    fn rng(&self) -> fastrand::Rng {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        fastrand::Rng::with_seed(mix64(self.cfg.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
    }

    /// `/_sim/...`: the ledger, the per-second timeline, `expire-tokens`, which forgets every
    /// issued token as if the upstream had rotated them (tests of the 10001 path), the receipt
    /// counters and one device's receipt facts.
    fn introspect(&self, rest: &str) -> Response<Full<Bytes>> {
        let json = |v: Result<Vec<u8>, serde_json::Error>| json_response(200, v.unwrap_or_default());
        match rest {
            "expire-tokens" => {
                lock(&self.tokens).clear();
                json(Ok(b"{\"expired\":true}".to_vec()))
            }
            "ledger" => json(serde_json::to_vec(&self.ledger.summary())),
            "timeline" => json(serde_json::to_vec(&serde_json::json!({ "per_second": self.ledger.timeline() }))),
            "devices" => json(serde_json::to_vec(&self.devices_view())),
            "receipts" => json(serde_json::to_vec(&self.receipts.stats())),
            _ if rest.starts_with("device/") => self.device_view(&rest["device/".len()..]),
            _ if rest.starts_with("last/") => match lock(&self.last_bodies).get(&rest["last/".len()..]) {
                Some(body) => json_response(200, body.to_vec()),
                None => json_response(404, br#"{"error":"that endpoint has not been called"}"#.to_vec()),
            },
            _ => match rest.strip_prefix("ledger/").map(crate::domain::CompactCid::parse) {
                Some(Some(cid)) => json(serde_json::to_vec(&serde_json::json!({
                    "cid": cid.to_string(), "deliveries": self.ledger.count(&cid)
                }))),
                Some(None) => json_response(400, br#"{"error":"a cid is 32 lowercase hex digits"}"#.to_vec()),
                None => json_response(404, br#"{"error":"unknown simulator path"}"#.to_vec()),
            },
        }
    }
}

impl GetuiSim {
    /// `/_sim/devices`: the population with each device's deliveries so far.
    fn devices_view(&self) -> Vec<serde_json::Value> {
        population::devices()
            .iter()
            .map(|(cid, d)| {
                let mut v = serde_json::to_value(d).unwrap_or_default();
                v["deliveries"] = self.ledger.count(cid).into();
                v
            })
            .collect()
    }

    /// `/_sim/device/{cid}`: the status a plain push gets (no Wi-Fi-only, offline storage on)
    /// and the receipt facts of the device. `returns_after_ms` applies whenever a message to
    /// it is `successed_offline` (a Wi-Fi-only one to an online device off Wi-Fi too).
    fn device_view(&self, cid: &str) -> Response<Full<Bytes>> {
        let Some(cid) = crate::domain::CompactCid::parse(cid) else {
            return json_response(400, br#"{"error":"a cid is 32 lowercase hex digits"}"#.to_vec());
        };
        let cfg = &self.cfg.receipts;
        let returns_after_ms = receipts::returns_after(&cid, cfg).map(|d| d.as_millis() as u64);
        let view = serde_json::json!({
            "cid": cid.to_string(),
            "status": self.status_of(&cid),
            "returns_after_ms": returns_after_ms,
            "clicks": receipts::clicks(&cid, cfg),
        });
        json_response(200, serde_json::to_vec(&view).unwrap_or_default())
    }
}

fn redirect(host: &str) -> Reply {
    let data = HostListData {
        host_list: vec![HostGroup { domain_list: vec![host.to_owned()], priority_gap: Some(30) }],
        domain_hash: Some(format!("{:x}", mix64(host.len() as u64))),
    };
    Reply::envelope(301, "domain is wrong for this appId", Some(data))
}

/// Parses a body; invalid JSON is code 1 and a well-formed body of the wrong shape is 20001,
/// as the v2 code table describes.
pub(super) fn parse_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Reply::err(20001, &format!("param type error: {e}")),
        _ => Reply::err(1, "body is not valid JSON"),
    })
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    json_response(reply.status, reply.body)
}

/// 128 bits of two keyed SipHashes: collisions among millions of request_ids are negligible.
fn hash128(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, salt) in [0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344].into_iter().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        s.hash(&mut h);
        out[i * 8..i * 8 + 8].copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_families_follow_the_code_table() {
        assert_eq!(http_status_for(0), 200);
        assert_eq!(http_status_for(301), 200);
        assert_eq!(http_status_for(10001), 401);
        assert_eq!(http_status_for(20001), 400);
        assert_eq!(http_status_for(22001), 400);
        assert_eq!(http_status_for(30015), 403);
    }

    #[test]
    fn json_errors_are_code_1_or_20001() {
        let bad: Result<AuthRequest, Reply> = parse_json(b"{not json");
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&bad.err().unwrap().body).unwrap()["code"], 1);
        let wrong: Result<AuthRequest, Reply> = parse_json(br#"{"sign":1,"timestamp":"1","appkey":"k"}"#);
        let r = wrong.err().unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["code"], 20001);
    }
}
