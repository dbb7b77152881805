//! The Getui RestAPI v2 client: signing in, keeping the token fresh, following the 301 host
//! list, and one typed method per endpoint.
//!
//! Every method returns `Result<_, GetuiError>`; the error's [`AnswerClass`] tells the
//! dispatcher what to do. Inside, a call re-authenticates and replays once on 10001 and
//! switches host and replays once on 301, as the official SDKs do.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde::Serialize;

use super::error::{AnswerClass, GetuiError};
use crate::clock::now_ms_u64;
pub use crate::config::GetuiSettings;
use crate::metrics::CallObserver;

use crate::upstream::http::{build_client, ClientBuildError, HttpClient};
use crate::upstream::http::{exchange, read_lock, write_lock};
use crate::upstream::{CodeLabel, ProviderError};
use crate::wire::getui::auth::{sign, Token};
use crate::wire::getui::compact::{CidStatuses, CompactListCidPush};
use crate::wire::getui::{
    AllPush, AuthData, AuthRequest, BatchPush, DataEnvelope, HostListData, ListCidPush, ListMessage, RawEnvelope,
    ReportData, ScheduleTaskInfo, SingleAliasPush, SingleCidPush, SuccessData, TagPush, TaskCidStatus, TaskIdData,
};

/// Per-cid delivery status reported by a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidStatus {
    /// Delivered through the online Getui channel.
    SuccessedOnline,
    /// Stored offline (or handed to a vendor channel).
    SuccessedOffline,
    /// Not sent: the user was inactive for 90 days.
    SuccessedIgnore,
    /// A status string this client does not know.
    Other(String),
}

impl CidStatus {
    /// Reads the wire string.
    pub fn parse(s: &str) -> Self {
        match s {
            "successed_online" => CidStatus::SuccessedOnline,
            "successed_offline" => CidStatus::SuccessedOffline,
            "successed_ignore" => CidStatus::SuccessedIgnore,
            other => CidStatus::Other(other.to_owned()),
        }
    }
}

/// The per-cid results of a single, batch or list push (empty when sent with `is_async`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushOutcome {
    /// taskid → cid → status, as answered.
    pub tasks: TaskCidStatus,
}

impl PushOutcome {
    /// Every (taskid, cid, status) triple.
    pub fn statuses(&self) -> impl Iterator<Item = (&str, &str, CidStatus)> {
        self.tasks.iter().flat_map(|(task, cids)| {
            cids.iter().map(move |(cid, st)| (task.as_str(), cid.as_str(), CidStatus::parse(st)))
        })
    }

    /// The status of one cid, if the answer named it.
    pub fn status_of(&self, cid: &str) -> Option<CidStatus> {
        self.tasks.values().find_map(|m| m.get(cid)).map(|s| CidStatus::parse(s))
    }

    /// One result per message of `batch`, in the order the messages were added (the seed's
    /// batch semantics; the v2 answer itself is a map keyed by taskid, in no useful order).
    pub fn in_order<'b>(&self, batch: &'b BatchPush<'_>) -> Vec<MessageResult<'b>> {
        // One pass over the answer, then one lookup per message: a 200-message batch answers
        // with 200 one-cid tasks, so searching them per message would be quadratic.
        let by_cid: std::collections::HashMap<&str, &str> =
            self.tasks.values().flat_map(|m| m.iter().map(|(c, s)| (c.as_str(), s.as_str()))).collect();
        batch
            .msg_list
            .iter()
            .map(|m| {
                let cid = m.audience.cid.first().map_or("", |c| c.as_ref());
                let status = by_cid.get(cid).map(|s| CidStatus::parse(s));
                MessageResult { request_id: m.request_id.as_ref(), cid, status }
            })
            .collect()
    }
}

/// The result of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageResult<'b> {
    /// The message's request_id.
    pub request_id: &'b str,
    /// Its recipient.
    pub cid: &'b str,
    /// Its status; `None` when the answer left it out (an invalid cid).
    pub status: Option<CidStatus>,
}

/// A Getui app's client. Cheap to clone; clones share the pool and the token.
#[derive(Clone)]
pub struct GetuiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    settings: GetuiSettings,
    /// `<host base>/<appId>`; replaced when the upstream answers 301.
    base: RwLock<Arc<str>>,
    token: RwLock<Option<Token>>,
    /// Single-flight for `/auth`: one renewal at a time, the others wait and reuse it.
    renewing: tokio::sync::Mutex<()>,
    observer: Option<Arc<dyn CallObserver>>,
}

/// An answer after envelope parsing: the success data or a redirect.
enum Answer<T> {
    Data(T),
    Redirect(HostListData),
}

impl GetuiClient {
    /// Builds the client and its connection pool. No network traffic happens here.
    pub fn new(settings: GetuiSettings) -> Result<Self, ClientBuildError> {
        Self::with_observer(settings, None)
    }

    /// Like [`GetuiClient::new`], reporting every exchange to `observer`.
    pub fn with_observer(
        settings: GetuiSettings,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, ClientBuildError> {
        let http = build_client(&settings.pool)?;
        let base = app_base(&settings.base_url, &settings.app_id);
        Ok(GetuiClient {
            inner: Arc::new(Inner {
                http,
                base: RwLock::new(base),
                token: RwLock::new(None),
                renewing: tokio::sync::Mutex::new(()),
                observer,
                settings,
            }),
        })
    }

    /// The base URL calls currently go to (changes after a 301).
    pub fn current_base(&self) -> Arc<str> {
        read_lock(&self.inner.base).clone()
    }

    /// Signs in and caches the token; returns its expiry (ms epoch). Other calls do this by
    /// themselves when needed; call it to check credentials.
    pub async fn authenticate(&self) -> Result<u64, GetuiError> {
        let _single_flight = self.inner.renewing.lock().await;
        let token = self.fetch_token().await?;
        Ok(token.expires_ms)
    }

    /// `DELETE /auth/{token}`: invalidates the cached token on the upstream.
    pub async fn revoke_token(&self) -> Result<(), GetuiError> {
        let token = write_lock(&self.inner.token).take();
        let Some(token) = token else { return Ok(()) };
        let path = format!("/auth/{}", token.value);
        self.exchange::<()>("DELETE /auth", Method::DELETE, &path, None, Some(&token.value))
            .await
            .and_then(|a| self.expect_data("DELETE /auth", a))
            .map(|_| ())
    }

    /// `POST /push/single/cid` (exactly one cid).
    pub async fn push_single_cid(&self, push: &SingleCidPush<'_>) -> Result<PushOutcome, GetuiError> {
        const EP: &str = "POST /push/single/cid";
        if push.audience.cid.len() != 1 {
            return Err(invalid(EP, format!("needs exactly 1 cid, got {}", push.audience.cid.len())));
        }
        self.post::<Option<TaskCidStatus>>(EP, "/push/single/cid", push).await.map(outcome)
    }

    /// `POST /push/single/alias` (exactly one alias).
    pub async fn push_single_alias(&self, push: &SingleAliasPush<'_>) -> Result<PushOutcome, GetuiError> {
        const EP: &str = "POST /push/single/alias";
        if push.audience.alias.len() != 1 {
            return Err(invalid(EP, format!("needs exactly 1 alias, got {}", push.audience.alias.len())));
        }
        self.post::<Option<TaskCidStatus>>(EP, "/push/single/alias", push).await.map(outcome)
    }

    /// `POST /push/single/batch/cid`: at most 200 messages, each with its own request_id.
    pub async fn push_single_batch_cid(&self, batch: &BatchPush<'_>) -> Result<PushOutcome, GetuiError> {
        check_batch(batch)?;
        self.post::<Option<TaskCidStatus>>(BATCH_EP, "/push/single/batch/cid", batch).await.map(outcome)
    }

    /// `POST /push/single/batch/cid` of a finished body written message by message (a
    /// [`crate::wire::getui::compact::BatchBody`]) holding `messages` messages, with the
    /// answer's statuses read straight into raw cids (what the dispatcher's batch path uses).
    pub async fn push_single_batch_json(&self, body: Bytes, messages: usize) -> Result<CidStatuses, GetuiError> {
        let max = crate::wire::getui::MAX_BATCH_MESSAGES;
        if messages == 0 || messages > max {
            return Err(invalid(BATCH_EP, format!("msg_list must hold 1..={max} messages, got {messages}")));
        }
        self.call::<Option<CidStatuses>>(BATCH_EP, Method::POST, "/push/single/batch/cid", Some(body))
            .await
            .map(Option::unwrap_or_default)
    }

    /// `POST /push/list/message`: creates a list task's content; returns its taskid.
    pub async fn create_list_message(&self, msg: &ListMessage<'_>) -> Result<String, GetuiError> {
        self.post::<TaskIdData>("POST /push/list/message", "/push/list/message", msg).await.map(|d| d.taskid)
    }

    /// `POST /push/list/cid`: sends a list task to at most 1000 cids. Takes no request_id.
    pub async fn push_list_cid(&self, push: &ListCidPush<'_>) -> Result<PushOutcome, GetuiError> {
        const EP: &str = "POST /push/list/cid";
        let n = push.audience.cid.len();
        if n == 0 || n > crate::wire::getui::MAX_LIST_CIDS {
            return Err(invalid(EP, format!("cid must hold 1..={} ids, got {n}", crate::wire::getui::MAX_LIST_CIDS)));
        }
        self.post::<Option<TaskCidStatus>>(EP, "/push/list/cid", push).await.map(outcome)
    }

    /// `POST /push/list/cid` with the cids as raw bytes: the body is written straight from them
    /// and the answer's statuses read straight into them (what the dispatcher's list path uses).
    pub async fn push_list_cids(&self, taskid: &str, cids: &[[u8; 16]]) -> Result<CidStatuses, GetuiError> {
        const EP: &str = "POST /push/list/cid";
        let n = cids.len();
        if n == 0 || n > crate::wire::getui::MAX_LIST_CIDS {
            return Err(invalid(EP, format!("cid must hold 1..={} ids, got {n}", crate::wire::getui::MAX_LIST_CIDS)));
        }
        let push = CompactListCidPush { cids, taskid, is_async: false };
        let body = push.to_json().map_err(|e| invalid(EP, e.to_string()))?;
        self.call::<Option<CidStatuses>>(EP, Method::POST, "/push/list/cid", Some(Bytes::from(body)))
            .await
            .map(Option::unwrap_or_default)
    }

    /// `POST /push/all`: the whole app; returns the taskid.
    pub async fn push_all(&self, push: &AllPush<'_>) -> Result<String, GetuiError> {
        self.post::<TaskIdData>("POST /push/all", "/push/all", push).await.map(|d| d.taskid)
    }

    /// `POST /push/tag`: devices matching the conditions; returns the taskid.
    pub async fn push_tag(&self, push: &TagPush<'_>) -> Result<String, GetuiError> {
        self.post::<TaskIdData>("POST /push/tag", "/push/tag", push).await.map(|d| d.taskid)
    }

    /// `DELETE /task/{taskid}`: stops a list or app task still being pushed.
    pub async fn stop_task(&self, taskid: &str) -> Result<(), GetuiError> {
        self.call::<()>("DELETE /task", Method::DELETE, &format!("/task/{}", path_segment(taskid)), None).await
    }

    /// `GET /task/schedule/{taskid}`: a scheduled task's times and result.
    pub async fn query_schedule(&self, taskid: &str) -> Result<ScheduleTaskInfo, GetuiError> {
        const EP: &str = "GET /task/schedule";
        let path = format!("/task/schedule/{}", path_segment(taskid));
        let mut map: std::collections::BTreeMap<String, ScheduleTaskInfo> =
            self.call(EP, Method::GET, &path, None).await?;
        map.remove(taskid)
            .ok_or_else(|| GetuiError::Decode { endpoint: EP, reason: format!("no entry for task {taskid}") })
    }

    /// `DELETE /task/schedule/{taskid}`: deletes a scheduled task that is more than a minute away.
    pub async fn delete_schedule(&self, taskid: &str) -> Result<(), GetuiError> {
        let path = format!("/task/schedule/{}", path_segment(taskid));
        self.call::<()>("DELETE /task/schedule", Method::DELETE, &path, None).await
    }

    /// `GET /report/push/task/{taskid}`: delivery counters of a list or app task.
    pub async fn report_task(&self, taskid: &str) -> Result<ReportData, GetuiError> {
        let path = format!("/report/push/task/{}", path_segment(taskid));
        self.call("GET /report/push/task", Method::GET, &path, None).await
    }

    /// `GET /report/push/task_group/{group}`: delivery counters of a task group.
    pub async fn report_group(&self, group: &str) -> Result<ReportData, GetuiError> {
        let path = format!("/report/push/task_group/{}", path_segment(group));
        self.call("GET /report/push/task_group", Method::GET, &path, None).await
    }

    async fn post<T: SuccessData>(
        &self,
        endpoint: &'static str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, GetuiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| invalid(endpoint, e.to_string()))?;
        self.call(endpoint, Method::POST, path, Some(Bytes::from(bytes))).await
    }

    /// One logical call: token, exchange, and at most one re-auth and one host switch.
    async fn call<T: SuccessData>(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<T, GetuiError> {
        let mut reauthed = false;
        let mut redirected = false;
        loop {
            let token = self.valid_token().await?;
            let answer = self.exchange(endpoint, method.clone(), path, body.clone(), Some(&token.value)).await;
            match answer {
                Ok(Answer::Data(data)) => return Ok(data),
                Ok(Answer::Redirect(hosts)) if !redirected => {
                    redirected = true;
                    self.switch_host(endpoint, &hosts)?;
                }
                Ok(Answer::Redirect(_)) => {
                    return Err(GetuiError::Api { endpoint, code: 301, msg: "redirected twice".into() })
                }
                Err(e) if e.class() == AnswerClass::ReAuth && !reauthed => {
                    reauthed = true;
                    self.renew_token(Some(&token)).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn expect_data<T>(&self, endpoint: &'static str, answer: Answer<T>) -> Result<T, GetuiError> {
        match answer {
            Answer::Data(d) => Ok(d),
            Answer::Redirect(_) => Err(GetuiError::Api { endpoint, code: 301, msg: "unexpected redirect".into() }),
        }
    }

    /// A token good for at least the refresh margin, renewing it if needed.
    async fn valid_token(&self) -> Result<Token, GetuiError> {
        let margin = millis(self.inner.settings.token_refresh_margin);
        if let Some(t) = read_lock(&self.inner.token).as_ref() {
            if !t.needs_refresh(now_ms_u64(), margin) {
                return Ok(t.clone());
            }
        }
        self.renew_token(None).await
    }

    /// Renews the token unless another task already did. `rejected` is the token the upstream
    /// just refused (10001), which must not be reused even if it looks fresh.
    async fn renew_token(&self, rejected: Option<&Token>) -> Result<Token, GetuiError> {
        let _single_flight = self.inner.renewing.lock().await;
        let margin = millis(self.inner.settings.token_refresh_margin);
        if let Some(t) = read_lock(&self.inner.token).as_ref() {
            let refused = rejected.is_some_and(|r| r.value == t.value);
            if !refused && !t.needs_refresh(now_ms_u64(), margin) {
                return Ok(t.clone());
            }
        }
        self.fetch_token().await
    }

    /// Always asks the upstream for a new token and caches it.
    async fn fetch_token(&self) -> Result<Token, GetuiError> {
        let token = self.request_token().await?;
        *write_lock(&self.inner.token) = Some(token.clone());
        Ok(token)
    }

    async fn request_token(&self) -> Result<Token, GetuiError> {
        const EP: &str = "POST /auth";
        let s = &self.inner.settings;
        let issued = now_ms_u64();
        let timestamp = issued.to_string();
        let req = AuthRequest {
            sign: sign(&s.app_key, &timestamp, s.master_secret.expose()).into(),
            timestamp,
            appkey: s.app_key.as_str().into(),
        };
        let body = serde_json::to_vec(&req).map_err(|e| invalid(EP, e.to_string()))?;
        let mut redirected = false;
        loop {
            match self.exchange::<AuthData>(EP, Method::POST, "/auth", Some(Bytes::from(body.clone())), None).await? {
                Answer::Data(data) => {
                    let expires_ms = data.expire_time.parse::<u64>().map_err(|_| GetuiError::Decode {
                        endpoint: EP,
                        reason: format!("expire_time {:?} is not a millisecond epoch", data.expire_time),
                    })?;
                    return Ok(Token { value: data.token.into(), issued_ms: issued, expires_ms });
                }
                Answer::Redirect(hosts) if !redirected => {
                    redirected = true;
                    self.switch_host(EP, &hosts)?;
                }
                Answer::Redirect(_) => {
                    return Err(GetuiError::Api { endpoint: EP, code: 301, msg: "redirected twice".into() })
                }
            }
        }
    }

    fn switch_host(&self, endpoint: &'static str, hosts: &HostListData) -> Result<(), GetuiError> {
        let current = self.current_base();
        let next = hosts
            .host_list
            .iter()
            .flat_map(|g| g.domain_list.iter())
            .map(|d| app_base(d, &self.inner.settings.app_id))
            .find(|b| *b != current)
            .ok_or_else(|| GetuiError::Api { endpoint, code: 301, msg: "301 without a usable host".into() })?;
        tracing::info!(from = %current, to = %next, "Getui asked to switch host");
        *write_lock(&self.inner.base) = next;
        Ok(())
    }

    /// One HTTP exchange and envelope parse, reported to the observer.
    async fn exchange<T: SuccessData>(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        token: Option<&str>,
    ) -> Result<Answer<T>, GetuiError> {
        let started = Instant::now();
        let result = self.exchange_inner(endpoint, method, path, body, token).await;
        if let Some(obs) = &self.inner.observer {
            let code = match &result {
                Ok(Answer::Data(_)) => CodeLabel::SUCCESS,
                Ok(Answer::Redirect(_)) => CodeLabel::Vendor(301),
                Err(e) => e.code_label(),
            };
            obs.observe(endpoint, code, started.elapsed());
        }
        result
    }

    async fn exchange_inner<T: SuccessData>(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        token: Option<&str>,
    ) -> Result<Answer<T>, GetuiError> {
        let url = format!("{}{}", self.current_base(), path);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json;charset=utf-8")
            .header("user-agent", concat!("campaignd/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = token {
            req = req.header("token", t);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| invalid(endpoint, format!("bad request URL {url}: {e}")))?;
        let timeout = self.inner.settings.request_timeout;
        let (status, bytes) = exchange(&self.inner.http, req, timeout).await.map_err(|e| GetuiError::Transport {
            endpoint,
            reason: e.reason,
            request_sent: e.request_sent,
        })?;
        parse_answer(endpoint, status, &bytes)
    }
}

/// Turns an HTTP status and body into data, a redirect or a classified error.
fn parse_answer<T: SuccessData>(endpoint: &'static str, status: u16, body: &[u8]) -> Result<Answer<T>, GetuiError> {
    if let Some(data) = T::read_success(body) {
        return Ok(Answer::Data(data));
    }
    if let Ok(DataEnvelope { code: 0, data: Some(data) }) = serde_json::from_slice(body) {
        return Ok(Answer::Data(data));
    }
    let env: RawEnvelope = match serde_json::from_slice(body) {
        Ok(env) => env,
        Err(_) if status != 200 => return Err(GetuiError::Http { endpoint, status }),
        Err(e) => return Err(GetuiError::Decode { endpoint, reason: e.to_string() }),
    };
    let data = env.data.map(|d| d.get()).unwrap_or("null");
    let decode = |reason: serde_json::Error| GetuiError::Decode { endpoint, reason: reason.to_string() };
    match env.code {
        0 => serde_json::from_str(data).map(Answer::Data).map_err(decode),
        301 => serde_json::from_str(data).map(Answer::Redirect).map_err(decode),
        code => Err(GetuiError::Api { endpoint, code, msg: env.msg.into_owned() }),
    }
}

/// The fuzzing entry (`fuzz/fuzz_targets/upstream_answers.rs`): reads an upstream answer
/// (`status`, `body`) as the client reads the answer of one endpoint, picked by `endpoint`, and
/// does with it what the client and the dispatcher do next: expiry of a token, host switch of a
/// 301, per-cid statuses of a push, and the error's class, result and metric label. No I/O.
/// A hostile or broken Getui must get an error here, never a panic.
pub fn decode_answer_for_fuzzing(endpoint: u8, status: u16, body: &[u8]) {
    fn judge<T>(r: Result<Answer<T>, GetuiError>, then: impl FnOnce(T)) {
        match r {
            Ok(Answer::Data(d)) => then(d),
            Ok(Answer::Redirect(hosts)) => {
                let bases: Vec<Arc<str>> = hosts
                    .host_list
                    .iter()
                    .flat_map(|g| g.domain_list.iter())
                    .map(|d| app_base(d, crate::dev::DEV_APP_ID))
                    .collect();
                std::hint::black_box(bases);
            }
            Err(e) => {
                std::hint::black_box((e.class(), e.result(), e.code_label(), e.failed_at(), e.maybe_delivered()));
                std::hint::black_box((e.suggested_backoff(), e.to_string()));
            }
        }
    }
    const EP: &str = "fuzz";
    match endpoint % 6 {
        0 => judge(parse_answer::<AuthData>(EP, status, body), |d| {
            std::hint::black_box(d.expire_time.parse::<u64>().ok());
        }),
        1 => judge(parse_answer::<Option<TaskCidStatus>>(EP, status, body), |d| {
            let o = outcome(d);
            std::hint::black_box(o.statuses().count());
            std::hint::black_box(o.status_of("0123456789abcdef0123456789abcdef"));
            // The answer scanner must accept nothing serde_json reads otherwise.
            if let Some(fast) = crate::wire::getui::answer_scan::read_success_statuses(body) {
                let slow = serde_json::from_slice::<DataEnvelope<Option<CidStatuses>>>(body);
                let slow = slow.ok().filter(|e| e.code == 0).and_then(|e| e.data).map(Option::unwrap_or_default);
                assert_eq!(Some(fast), slow, "the scanner and serde_json read the answer differently");
            }
            // The compact reading of the same answer must give every cid the same status.
            if let Ok(Answer::Data(compact)) = parse_answer::<Option<CidStatuses>>(EP, status, body) {
                let compact = compact.unwrap_or_default();
                for (_, cid, _) in o.statuses() {
                    if let Some(raw) = crate::wire::getui::compact::parse_cid_hex(cid.as_bytes()) {
                        let word = compact.get(&raw).map(|(_, w)| w.as_str().to_owned());
                        let plain = o.tasks.values().find_map(|m| m.get(cid)).cloned();
                        assert_eq!(word, plain, "the compact and the map readings disagree on {cid}");
                    }
                }
            }
        }),
        2 => judge(parse_answer::<TaskIdData>(EP, status, body), |d| {
            std::hint::black_box(path_segment(&d.taskid));
        }),
        3 => judge(parse_answer::<std::collections::BTreeMap<String, ScheduleTaskInfo>>(EP, status, body), |d| {
            std::hint::black_box(d.len());
        }),
        4 => judge(parse_answer::<ReportData>(EP, status, body), |d| {
            std::hint::black_box(d.len());
        }),
        _ => judge(parse_answer::<()>(EP, status, body), |()| {}),
    }
}

const BATCH_EP: &str = "POST /push/single/batch/cid";

fn check_batch(batch: &BatchPush<'_>) -> Result<(), GetuiError> {
    let n = batch.msg_list.len();
    let max = crate::wire::getui::MAX_BATCH_MESSAGES;
    if n == 0 || n > max {
        return Err(invalid(BATCH_EP, format!("msg_list must hold 1..={max} messages, got {n}")));
    }
    Ok(())
}

fn outcome(tasks: Option<TaskCidStatus>) -> PushOutcome {
    PushOutcome { tasks: tasks.unwrap_or_default() }
}

fn invalid(endpoint: &'static str, reason: String) -> GetuiError {
    GetuiError::Invalid { endpoint, reason }
}

fn app_base(host_base: &str, app_id: &str) -> Arc<str> {
    format!("{}/{}", host_base.trim_end_matches('/'), path_segment(app_id)).into()
}

/// Percent-encodes what cannot stand in a path segment (group names may hold Chinese).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_by_code() {
        let ok: Answer<TaskIdData> = parse_answer("x", 200, br#"{"code":0,"msg":"","data":{"taskid":"t1"}}"#).unwrap();
        assert!(matches!(ok, Answer::Data(d) if d.taskid == "t1"));
        let err = parse_answer::<TaskIdData>("x", 401, br#"{"code":10001,"msg":"token expired"}"#).err().unwrap();
        assert_eq!(err.class(), AnswerClass::ReAuth);
        let err = parse_answer::<TaskIdData>("x", 502, b"<html>bad gateway</html>").err().unwrap();
        assert!(matches!(err, GetuiError::Http { status: 502, .. }));
        assert_eq!(err.class(), AnswerClass::Retryable);
        let redirect: Answer<()> = parse_answer(
            "x",
            200,
            br#"{"code":301,"msg":"","data":{"host_list":[{"domain_list":["https://b.example/v2/"]}]}}"#,
        )
        .unwrap();
        assert!(matches!(redirect, Answer::Redirect(h) if h.host_list[0].domain_list[0] == "https://b.example/v2/"));
    }

    #[test]
    fn answers_the_one_pass_read_does_not_take_are_read_as_before() {
        // Code 0 with the data first, or with no data or null data where `T` allows it.
        let late: Answer<TaskIdData> = parse_answer("x", 200, br#"{"data":{"taskid":"t2"},"code":0}"#).unwrap();
        assert!(matches!(late, Answer::Data(d) if d.taskid == "t2"));
        for body in [&br#"{"code":0,"msg":"","data":null}"#[..], br#"{"code":0}"#] {
            let none: Answer<Option<CidStatuses>> = parse_answer("x", 200, body).unwrap();
            assert!(matches!(none, Answer::Data(None)));
        }
        // Code 0 whose data has the wrong shape stays a decode error, not another code.
        let err = parse_answer::<TaskIdData>("x", 200, br#"{"code":0,"data":{"taskid":7}}"#).err().unwrap();
        assert!(matches!(err, GetuiError::Decode { .. }), "{err:?}");
        // An error code whose data happens to parse as `T` is still that error.
        let err = parse_answer::<Option<TaskIdData>>("x", 200, br#"{"code":20001,"msg":"bad","data":{"taskid":"t"}}"#)
            .err()
            .unwrap();
        assert!(matches!(err, GetuiError::Api { code: 20001, .. }), "{err:?}");
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("spring-ab_1"), "spring-ab_1");
        assert_eq!(path_segment("春季"), "%E6%98%A5%E5%AD%A3");
        assert_eq!(path_segment("a/b"), "a%2Fb");
        assert_eq!(&*app_base("https://h/v2/", "app"), "https://h/v2/app");
    }

    #[test]
    fn the_fuzzing_entry_reads_every_endpoint_and_hostile_bodies() {
        let bodies: [&[u8]; 5] = [
            br#"{"code":0,"msg":"","data":{"expire_time":"x","token":"t"}}"#,
            br#"{"code":301,"msg":"","data":{"host_list":[{"domain_list":["h"]}]}}"#,
            br#"{"code":0,"msg":"","data":{"t":{"c":"successed_online"}}}"#,
            br#"{"code":-1,"msg":"\ud800"}"#,
            b"\xff\x00",
        ];
        for endpoint in 0..6 {
            for body in bodies {
                decode_answer_for_fuzzing(endpoint, 200, body);
                decode_answer_for_fuzzing(endpoint, 0, body);
            }
        }
    }
}
