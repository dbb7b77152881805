//! The HTTP control API: routing, bearer-token authentication, and the mapping of every
//! failure to one JSON error shape. Handlers live in one file per resource.
//!
//! The API only talks to the store (and wakes the dispatcher); it never calls an upstream.

mod bindings;
mod campaigns;
mod console;
pub mod dedup;
pub mod error;
mod legacy;
pub mod openapi;
mod sms_callbacks;
mod suppressions;
mod upload;
mod wecom;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use legacy::{LegacyApp, LegacyIngress};

use crate::config::Channel;
use crate::domain::sms::AppSmsFacts;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::serve::{json_response, text_response, HandlerResult};
use crate::store::Store;
use crate::wecom::callback::CallbackAgent;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Recipients per stored chunk (capped at Getui's 1000 per list call).
    pub chunk_size: usize,
    /// Longest daemon-held schedule, ms ahead.
    pub schedule_horizon_ms: i64,
    /// Most recipients one campaign may hold (`dispatch.max_recipients`).
    pub max_recipients: u64,
}

impl ApiSettings {
    /// Most lines one streamed body (an upload, a binding import) may hold, blank, duplicate
    /// and refused lines included: twice `dispatch.max_recipients`, and a thousand more. A body
    /// streamed forever is cut there instead of running for good.
    pub fn max_stream_lines(&self) -> u64 {
        self.max_recipients.saturating_mul(2).saturating_add(1000)
    }
}

/// What the handlers share.
pub struct ApiState {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// SHA-256 of each accepted bearer token (compared in constant time).
    token_hashes: Vec<[u8; 32]>,
    /// Configured apps and their channels.
    apps: HashMap<String, Channel>,
    /// WeCom callback agents by app name.
    agents: HashMap<String, CallbackAgent>,
    /// SMS gateways of the apps that have one, for validating `settings.sms_fallback` (and
    /// the apps whose delivery reports `/sms/{app}/status` takes).
    sms: HashMap<String, AppSmsFacts>,
    /// Getui apps' AppId and MasterSecret by app name, for verifying receipt lines.
    receipt_secrets: HashMap<String, (String, Secret)>,
    wake_dispatcher: Arc<Notify>,
    settings: ApiSettings,
    uploads: upload::Uploads,
    rates: Mutex<HashMap<u64, campaigns::RateWindow>>,
    /// Deadline for reading a whole JSON or XML body.
    body_timeout: Duration,
    /// Cancelled when the daemon shuts down ([`ApiState::follow_shutdown`]): long requests
    /// (uploads) give up then.
    shutdown: CancellationToken,
    /// Seals phone numbers of cid↔phone bindings; `None`: bindings are refused (503).
    seal_key: Option<crate::seal::SealKey>,
    /// The legacy Getui SDK ingress; `None` answers its paths 404.
    legacy: Option<LegacyIngress>,
}

/// Default of [`ApiState::with_body_timeout`] (`server.body_timeout_ms`).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl ApiState {
    /// The API over `store`, accepting `tokens`, for the configured `apps` (name → channel)
    /// and WeCom callback `agents`.
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        tokens: &[Secret],
        apps: HashMap<String, Channel>,
        wake_dispatcher: Arc<Notify>,
        settings: ApiSettings,
        agents: Vec<CallbackAgent>,
    ) -> ApiState {
        let chunk_size = settings.chunk_size.clamp(1, crate::wire::getui::MAX_LIST_CIDS);
        ApiState {
            store,
            metrics,
            token_hashes: tokens.iter().map(|t| Sha256::digest(t.expose().as_bytes()).into()).collect(),
            apps,
            agents: agents.into_iter().map(|a| (a.app.clone(), a)).collect(),
            sms: HashMap::new(),
            receipt_secrets: HashMap::new(),
            wake_dispatcher,
            settings: ApiSettings { chunk_size, ..settings },
            uploads: upload::Uploads::new(std::env::temp_dir().join("campaignd-upload-spill")),
            rates: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            seal_key: None,
            legacy: None,
        }
    }

    /// Writes upload spills and duplicate indexes under `dir` (the daemon uses a directory
    /// beside its store; the default is one under the system's temporary directory).
    pub fn with_upload_spill_dir(mut self, dir: std::path::PathBuf) -> ApiState {
        self.uploads = upload::Uploads::new(dir);
        self
    }

    /// Serves the legacy Getui SDK protocol at `/apiex.htm` and `/serviceex`.
    pub fn with_legacy(mut self, legacy: LegacyIngress) -> ApiState {
        self.legacy = Some(legacy);
        self
    }

    /// Sets the apps' SMS gateways (`Config::sms_facts`); without them every
    /// `settings.sms_fallback` is refused.
    pub fn with_sms(mut self, sms: HashMap<String, AppSmsFacts>) -> ApiState {
        self.sms = sms;
        self
    }

    /// Sets each Getui app's AppId and MasterSecret (app name → `(app_id, master_secret)`), with
    /// which `/getui/{app}/receipts` verifies receipt lines; an app missing here answers 404.
    pub fn with_receipt_secrets(mut self, secrets: HashMap<String, (String, Secret)>) -> ApiState {
        self.receipt_secrets = secrets;
        self
    }

    /// Sets the deadline for reading a whole JSON or XML request body.
    pub fn with_body_timeout(mut self, timeout: Duration) -> ApiState {
        self.body_timeout = timeout;
        self
    }

    /// Sets the key that seals bound phone numbers (`store.seal_key_env`).
    pub fn with_seal_key(mut self, key: Option<crate::seal::SealKey>) -> ApiState {
        self.seal_key = key;
        self
    }

    /// Runs the API's background work until `daemon` is cancelled, and ties long requests to
    /// it: then an upload in progress is refused and discarded instead of holding the daemon up.
    pub fn follow_shutdown(self: &Arc<Self>, daemon: CancellationToken) {
        let own = self.shutdown.clone();
        let stopping = daemon.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            own.cancel();
        });
        self.spawn_upload_filter_sweeper(daemon);
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        self.token_hashes.iter().fold(false, |ok, h| ok | bool::from(h.ct_eq(&presented)))
    }
}

/// Which paths a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Everything, on one listener (no `server.callback_listen`).
    All,
    /// `/v1`, `/metrics` and the probes, without the vendor callbacks.
    Control,
    /// The vendor callbacks (WeCom's, Getui's receipts, Tencent's SMS status reports), the
    /// legacy SDK ingress (it faces the SDKs' hosts, like the callbacks) and `/healthz` only.
    Callback,
}

/// Serves one request on a listener that serves everything.
pub async fn handle(state: Arc<ApiState>, req: Request<Incoming>, peer: SocketAddr) -> HandlerResult {
    handle_on(Face::All, state, req, peer).await
}

/// Serves one request on a listener of the given face.
pub async fn handle_on(face: Face, state: Arc<ApiState>, req: Request<Incoming>, _peer: SocketAddr) -> HandlerResult {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let result = if serves(face, &path) {
        route(&state, method, &path, req).await
    } else {
        Err(ApiError::not_found(format!("no such path on this listener: {path}")))
    };
    Ok(result.unwrap_or_else(ApiError::into_response))
}

/// Whether a listener of `face` answers `path` (the rest get 404, as if it did not exist).
fn serves(face: Face, path: &str) -> bool {
    let callback = matches!(
        path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice(),
        ["wecom", _, "callback"] | ["getui", _, "receipts"] | ["sms", _, "status"] | ["apiex.htm"] | ["serviceex"]
    );
    match face {
        Face::All => true,
        Face::Control => !callback,
        Face::Callback => callback || path == "/healthz",
    }
}

/// Why a whole body could not be read.
enum BodyError {
    /// Over the size limit, or the connection failed.
    Unreadable,
    /// Not complete within the body deadline.
    TimedOut(Duration),
}

/// Reads a whole body of at most `max` bytes within the state's body deadline.
async fn read_whole_body(state: &ApiState, body: Incoming, max: usize) -> Result<Bytes, BodyError> {
    let read = Limited::new(body, max).collect();
    match tokio::time::timeout(state.body_timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Err(_) => Err(BodyError::TimedOut(state.body_timeout)),
    }
}

async fn route(
    state: &Arc<ApiState>,
    method: Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => return Ok(text_response(200, "ok\n")),
        (&Method::GET, ["readyz"]) => return ready(state).await,
        (&Method::GET, ["metrics"]) => {
            state.count_upload_filters();
            let mut resp = text_response(200, state.metrics.render());
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(resp);
        }
        (_, ["wecom", agent, "callback"]) => return wecom::callback(state, agent, req).await,
        (&Method::POST, ["getui", app, "receipts"]) => return sms_callbacks::receipts(state, app, req).await,
        (&Method::POST, ["sms", app, "status"]) => return sms_callbacks::status_reports(state, app, req).await,
        (&Method::POST, ["apiex.htm"] | ["serviceex"]) => return legacy::handle(state, req).await,
        (_, ["getui", _, "receipts"] | ["sms", _, "status"] | ["apiex.htm"] | ["serviceex"]) => {
            let mut resp = ApiError::method_not_allowed().into_response();
            resp.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static("POST"));
            return Ok(resp);
        }
        // The console's files are public, like the document: the pages ask for the token.
        (_, ["console", ..]) => return Ok(console::serve(&method, path, req.headers())),
        // The API's description is public: a client needs it before it has a token.
        (&Method::GET, ["v1", "openapi.json"]) => return Ok(openapi::serve()),
        (_, ["v1", ..]) if !state.authorized(&req) => return Err(ApiError::unauthorized()),
        _ => {}
    }
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "campaigns"]) => campaigns::create(state, req).await,
        (&Method::GET, ["v1", "campaigns"]) => campaigns::list(state, req.uri().query()).await,
        (&Method::GET, ["v1", "campaigns", id]) => campaigns::show(state, parse_id(id)?).await,
        (&Method::DELETE, ["v1", "campaigns", id]) => campaigns::delete(state, parse_id(id)?).await,
        (&Method::POST, ["v1", "campaigns", id, "recipients"]) => upload::upload(state, parse_id(id)?, req).await,
        (&Method::POST, ["v1", "campaigns", id, action @ ("start" | "pause" | "resume" | "cancel")]) => {
            campaigns::act(state, parse_id(id)?, action).await
        }
        (&Method::POST, ["v1", "campaigns", id, "sms", "stop"]) => sms_callbacks::stop(state, parse_id(id)?).await,
        (&Method::GET, ["v1", "campaigns", id, "report"]) => campaigns::report(state, parse_id(id)?).await,
        (&Method::GET, ["v1", "groups", group, "report"]) => campaigns::group_report(state, group).await,
        (&Method::PUT, ["v1", "apps", app, "cid-pn"]) => bindings::bind(state, app, req).await,
        (&Method::DELETE, ["v1", "apps", app, "cid-pn"]) => bindings::unbind(state, app, req).await,
        (&Method::GET, ["v1", "apps", app, "cid-pn"]) => bindings::query(state, app, req.uri().query()).await,
        (&Method::POST, ["v1", "apps", app, "cid-pn", "import"]) => bindings::import(state, app, req).await,
        (&Method::GET, ["v1", "apps", app, "suppressions"]) => suppressions::list(state, app, req.uri().query()).await,
        (&Method::GET, ["v1", "apps", app, "suppressions", user]) => suppressions::show(state, app, user).await,
        (&Method::PUT, ["v1", "apps", app, "suppressions", user]) => suppressions::add(state, app, user).await,
        (&Method::DELETE, ["v1", "apps", app, "suppressions", user]) => suppressions::remove(state, app, user).await,
        // Every other method on a known path is a 405 naming the methods it takes (RFC 9110
        // wants `Allow`); `campaigns, ..` covers `sms/stop` too. A path no operation has is a 404.
        (
            _,
            ["v1", "openapi.json"]
            | ["v1", "campaigns", ..]
            | ["v1", "groups", ..]
            | ["v1", "apps", _, "suppressions", ..]
            | ["v1", "apps", _, "cid-pn", ..],
        ) => match openapi::allowed_methods(path) {
            Some(allow) => {
                let mut resp = ApiError::method_not_allowed().into_response();
                resp.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static(allow));
                Ok(resp)
            }
            None => Err(ApiError::not_found(format!("no such path: {path}"))),
        },
        _ => Err(ApiError::not_found(format!("no such path: {path}"))),
    }
}

/// Ready when the store says it is usable (NATS connected and answering, within a couple of
/// seconds) and answers a read: one lookup of a campaign id that is never given out (ids
/// start at 1), so the answer takes the same time however many campaigns the store holds.
/// Not ready: 503 `{"ready": false, "error": ...}`, naming the problem.
async fn ready(state: &ApiState) -> Result<Response<Full<Bytes>>, ApiError> {
    if let Err(e) = state.store.health().await {
        return json(503, &serde_json::json!({"ready": false, "error": e.to_string()}));
    }
    state.store.get(0).await.map_err(ApiError::internal)?;
    json(200, &serde_json::json!({"ready": true, "store_identity": state.store.identity().to_string()}))
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| ApiError::not_found(format!("{s:?} is not a campaign id")))
}

/// Encodes a view as a 200 (or `status`) JSON answer.
fn json<T: serde::Serialize>(status: u16, v: &T) -> Result<Response<Full<Bytes>>, ApiError> {
    serde_json::to_vec(v).map(|b| json_response(status, b)).map_err(ApiError::internal)
}
