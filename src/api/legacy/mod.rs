//! `POST /apiex.htm` (and `/serviceex`): the legacy Getui server SDK's protocol (issue 14), so
//! code written against the seed documents runs unchanged with its `HOST` pointed here.
//!
//! One endpoint takes every call: a JSON body (gzip for list and batch calls, any or no
//! Content-Type) whose `action` says what to do. Each call becomes what a `/v1` client would
//! do — create a campaign, upload its recipients, start it — through the same validation,
//! store and dispatcher; the wire decoding is `wire::getui_legacy`, the mapping to the campaign
//! model `domain::legacy`. Answers are always HTTP 200 with a legacy `result` string, as the
//! SDKs expect (they read `result` from every answer).

mod auth;
mod cid_pn;
mod pushes;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::{read_whole_body, ApiError, ApiState, BodyError};
use crate::secret::Secret;
use crate::wire::getui_legacy::request::Envelope;
use crate::wire::getui_legacy::{inflate_gzip, LegacyError};

/// Largest request body as sent (a gzip list call of 1000 cids is a few KiB; a batch of 5000
/// messages a few MiB).
const MAX_BODY: usize = 8 << 20;
/// Largest body once inflated: a gzip bomb is refused when it passes this, before it fills
/// memory.
const MAX_INFLATED: usize = 32 << 20;

/// The actions answered after authentication (besides host discovery and `connect`).
const ACTIONS: [&str; 13] = [
    "pushMessageToSingleAction",
    "getContentIdAction",
    "pushMessageToListAction",
    "pushMessageToAppAction",
    "pushMessageToSingleBatchAction",
    "bind_cid_pn",
    "unbind_cid_pn",
    "query_cid_pn",
    "stop_sms",
    "getScheduleTaskAction",
    "delScheduleTaskAction",
    "stopTaskAction",
    "close",
];

/// How the ingress answers: from `[legacy]` and the Getui apps of the configuration.
pub struct LegacyIngress {
    /// `{public_url}/apiex.htm` is what host discovery answers.
    pub public_url: String,
    /// Lifetime of a `connect` token.
    pub token_ttl: Duration,
    /// Largest accepted clock difference of a `connect` timestamp.
    pub connect_skew: Duration,
    /// How long a single push waits for its send before answering.
    pub single_wait: Duration,
    /// Getui apps by AppKey.
    pub apps: HashMap<String, LegacyApp>,
}

/// One Getui app as the legacy SDK knows it.
pub struct LegacyApp {
    /// The app's name in the configuration.
    pub name: String,
    /// Its AppKey.
    pub app_key: String,
    /// Its AppId.
    pub app_id: String,
    /// Its MasterSecret: checks `connect` signs and signs the tokens.
    pub master_secret: Secret,
    /// The legacy variable names of each SMS template (`legacy_vars`), by template id.
    pub sms_vars: HashMap<String, Vec<String>>,
}

/// A call refused: the legacy result string and why.
#[derive(Debug)]
pub(super) struct Refusal {
    result: &'static str,
    msg: String,
}

impl Refusal {
    fn new(result: &'static str, msg: impl Into<String>) -> Refusal {
        Refusal { result, msg: msg.into() }
    }

    fn answer(&self) -> Value {
        json!({"result": self.result, "msg": self.msg})
    }
}

impl From<LegacyError> for Refusal {
    fn from(e: LegacyError) -> Refusal {
        Refusal { result: e.result(), msg: e.to_string() }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        let result = if e.status >= 500 { "OtherError" } else { "Error" };
        Refusal { result, msg: e.message }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        Refusal::from(ApiError::from(e))
    }
}

/// A call's body, read and inflated, with its envelope.
pub(super) struct Call {
    envelope: Envelope,
    body: Bytes,
}

impl Call {
    /// The body as the request type of its action.
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Refusal> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Refusal::new("Error", format!("bad {} body: {e}", self.action())))
    }

    fn action(&self) -> &str {
        &self.envelope.action
    }
}

/// Serves one call of the legacy protocol.
pub(super) async fn handle(state: &Arc<ApiState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let Some(ingress) = state.legacy.as_ref() else {
        return Err(ApiError::not_found("the legacy SDK ingress is not configured"));
    };
    let (label, answer) = match read_call(state, req).await {
        Ok(call) => (action_label(call.action()), answer(state, ingress, &call).await.unwrap_or_else(|r| r.answer())),
        Err(refusal) => ("other", refusal.answer()),
    };
    let result = answer.get("result").and_then(Value::as_str).unwrap_or("Error");
    state.metrics.legacy_requests_total.with_label_values(&[label, result_label(result)]).inc();
    Ok(reply(&answer))
}

/// The action as a metric label: one of the protocol's names, or `other`.
fn action_label(action: &str) -> &'static str {
    const DISCOVERY: [&str; 2] = ["getOSPushDomailUrlListAction", "connect"];
    DISCOVERY.into_iter().chain(ACTIONS).find(|a| *a == action).unwrap_or("other")
}

/// A result string as a metric label: every result the ingress answers is one of a fixed set,
/// but a label must never take a value from outside it.
fn result_label(result: &str) -> &'static str {
    const KNOWN: [&str; 27] = [
        "data_too_big",
        "TooFrequent",
        "TaskIdHasBeanCanceled",
        "ok",
        "success",
        "0",
        "sign_error",
        "action_error",
        "appkey_error",
        "AppidError",
        "AppidNoMatchAppKey",
        "Error",
        "OtherError",
        "TargetListIsNullOrSize0",
        "target overLimit",
        "OverLimit",
        "NullMsgCommon",
        "TaskIdHasBeenCanceled",
        "TokenMD5Error",
        "PushTotalNumOverLimit",
        "no_permission",
        "flow_exceeded",
        "SendError",
        "successed_unknown",
        "AliasNotBind",
        "NOTarget",
        "TaskNotScheduled",
    ];
    KNOWN.into_iter().find(|k| *k == result).unwrap_or("other")
}

/// Reads the whole body (inflating gzip) and its envelope.
async fn read_call(state: &ApiState, req: Request<Incoming>) -> Result<Call, Refusal> {
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let raw = read_whole_body(state, req.into_body(), MAX_BODY).await.map_err(|e| match e {
        BodyError::Unreadable => Refusal::new("Error", format!("the body is unreadable or over {MAX_BODY} bytes")),
        BodyError::TimedOut(d) => Refusal::new("Error", format!("the body did not arrive within {} s", d.as_secs())),
    })?;
    let body = if gzip { Bytes::from(inflate_gzip(&raw, MAX_INFLATED)?) } else { raw };
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| Refusal::new("Error", format!("the body is not a JSON call with an action: {e}")))?;
    Ok(Call { envelope, body })
}

/// Answers a call: host discovery and `connect` need no token, the rest a valid one.
async fn answer(state: &Arc<ApiState>, ingress: &LegacyIngress, call: &Call) -> Result<Value, Refusal> {
    match call.action() {
        "getOSPushDomailUrlListAction" => {
            Ok(json!({"result": "ok", "osList": [format!("{}/apiex.htm", ingress.public_url)]}))
        }
        "connect" => auth::connect(ingress, call),
        action if ACTIONS.contains(&action) => {
            let app = auth::verify(ingress, &call.envelope)?;
            let cx = Cx { state, ingress, app };
            authenticated(&cx, call).await
        }
        _ => Ok(json!({"result": "action_error"})),
    }
}

/// What every authenticated action works with.
pub(super) struct Cx<'a> {
    state: &'a Arc<ApiState>,
    ingress: &'a LegacyIngress,
    app: &'a LegacyApp,
}

async fn authenticated(cx: &Cx<'_>, call: &Call) -> Result<Value, Refusal> {
    match call.action() {
        "pushMessageToSingleAction" => pushes::single(cx, call.parse()?).await,
        "getContentIdAction" => pushes::content(cx, call.parse()?).await,
        "pushMessageToListAction" => pushes::list(cx, call.parse()?).await,
        "pushMessageToAppAction" => pushes::app(cx, call.parse()?).await,
        "pushMessageToSingleBatchAction" => pushes::batch(cx, call.parse()?).await,
        "bind_cid_pn" => cid_pn::bind(cx, call.parse()?).await,
        "unbind_cid_pn" => cid_pn::unbind(cx, call.parse()?).await,
        "query_cid_pn" => cid_pn::query(cx, call.parse()?).await,
        "stop_sms" => tasks::stop_sms(cx, call.parse()?).await,
        "getScheduleTaskAction" => tasks::schedule(cx, call.parse()?).await,
        "delScheduleTaskAction" => tasks::delete_schedule(cx, call.parse()?).await,
        "stopTaskAction" => tasks::stop(cx, call.parse()?).await,
        // `close` ends nothing here: tokens are signed, not kept, and simply run out.
        _ => Ok(json!({"result": "ok"})),
    }
}

impl Cx<'_> {
    /// Refuses an `appId` that is not the authenticated app's.
    fn check_app_id(&self, app_id: Option<&str>) -> Result<(), Refusal> {
        match app_id {
            Some(id) if !id.is_empty() && id != self.app.app_id => {
                Err(Refusal::new("AppidError", format!("appId {id:?} is not the AppId of this AppKey")))
            }
            _ => Ok(()),
        }
    }
}

/// An answer as written: like the value, but a batch's `info` keyed by seqId in numeric order
/// (serde_json's map would write "0", "1", "10", "100", "2", …).
struct InOrder<'a>(&'a Value);

impl serde::Serialize for InOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(top) = self.0 else { return self.0.serialize(s) };
        let mut map = s.serialize_map(Some(top.len()))?;
        for (k, v) in top {
            match v {
                Value::Object(info) if k == "info" => {
                    let mut entries: Vec<(&String, &Value)> = info.iter().collect();
                    entries.sort_by_key(|(seq, _)| (seq.parse::<i64>().ok(), seq.len()));
                    map.serialize_entry(k, &Entries(entries))?;
                }
                v => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// Map entries written in the order given.
struct Entries<'a>(Vec<(&'a String, &'a Value)>);

impl serde::Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().copied())
    }
}

/// HTTP 200 with the answer as JSON (plain JSON only: the Python SDK `eval`s answers).
fn reply(answer: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&InOrder(answer)).unwrap_or_else(|_| br#"{"result":"Error"}"#.to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_info_is_written_in_seq_order() {
        let mut info = serde_json::Map::new();
        for seq in [0, 1, 2, 10, 100, 11] {
            info.insert(seq.to_string(), json!({"result": "ok"}));
        }
        let answer = json!({"result": "ok", "info": info});
        let written = String::from_utf8(serde_json::to_vec(&InOrder(&answer)).unwrap()).unwrap();
        let order: Vec<usize> = ["\"0\"", "\"1\"", "\"2\"", "\"10\"", "\"11\"", "\"100\""]
            .iter()
            .map(|k| written.find(k).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{written}");
        assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), answer);
    }

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(action_label("pushMessageToListAction"), "pushMessageToListAction");
        assert_eq!(action_label("connect"), "connect");
        assert_eq!(action_label("x\"y"), "other");
        assert_eq!(result_label("sign_error"), "sign_error");
        assert_eq!(result_label("anything else"), "other");
    }
}
