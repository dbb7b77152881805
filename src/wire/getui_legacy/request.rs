//! The JSON bodies the legacy SDKs POST, one struct per action (reference §1.5 and the wire
//! capture). Every struct tolerates the spellings of all SDKs (see [`super::lenient`]) and
//! ignores fields it does not need (`version`, `type`, …).

use serde::Deserialize;

use super::lenient;

/// What every call carries: which action, for which appkey, with which token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// The action name (also in the `Gt-Action` header).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub action: String,
    /// The caller's appkey.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub appkey: String,
    /// The token from `connect`; `""` from a fresh SDK; PHP's `close` spells it `authtoken`.
    #[serde(default, rename = "authToken", alias = "authtoken")]
    pub auth_token: Option<String>,
}

/// `connect`: the signature that earns a token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Connect {
    /// The caller's appkey.
    pub appkey: String,
    /// Milliseconds since the epoch, as a number or a numeric string.
    #[serde(rename = "timeStamp", deserialize_with = "lenient::int")]
    pub time_stamp: i64,
    /// `md5(appkey + timeStamp + masterSecret)`, lowercase hex ([`super::connect_sign`]).
    pub sign: String,
}

/// The message fields of every push-creating call (single, getContentId, batch item).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PushFields {
    /// base64 of the protobuf `Transparent` ([`super::decode_client_data`]).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub client_data: String,
    /// The template's pass-through payload; `""` when unused.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub transmission_content: String,
    /// Keep the message for offline devices.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_offline: Option<bool>,
    /// How long to keep it, ms.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub offline_expire_time: Option<i64>,
    /// 0 any network, 1 Wi-Fi only, 2 mobile only.
    #[serde(default, rename = "pushNetWorkType", deserialize_with = "lenient::int")]
    pub push_network_type: i64,
    /// `NotifyMsg`, `TransmissionMsg`, `NotyPopLoadMsg`, `startmyactivity`, …
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub push_type: String,
}

/// `pushMessageToSingleAction`, and the JSON of each `pushMessageToSingleBatchAction` item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleRequest {
    /// The caller's idempotency key (same value on SDK retries); absent in batch items.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The target app.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id: String,
    /// The target cid; `""` for an alias push.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub client_id: String,
    /// The target alias; `""` (or absent) for a cid push.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub alias: String,
    /// The message.
    #[serde(flatten)]
    pub push: PushFields,
}

/// One condition of an app push (`AppConditions`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCondition {
    /// `phoneType`, `region`, `tag` (or a custom key).
    pub key: String,
    /// Values of that key.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub values: Vec<String>,
    /// 0 OR, 1 AND, 2 NOT.
    #[serde(default, deserialize_with = "lenient::int")]
    pub opt_type: i64,
}

/// `getContentIdAction`: stores a message for a later list (contentType 1) or app (2) push.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentIdRequest {
    /// Task group (≤ 40 characters, SDK-checked).
    #[serde(default)]
    pub task_group_name: Option<String>,
    /// 1 list, 2 app.
    #[serde(default, deserialize_with = "lenient::int")]
    pub content_type: i64,
    /// The message.
    #[serde(flatten)]
    pub push: PushFields,
    /// App pushes: the target apps.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id_list: Vec<String>,
    /// App pushes: messages per second; 0 or absent is unlimited.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub speed: Option<i64>,
    /// App pushes: conditions, ANDed.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub conditions: Vec<LegacyCondition>,
    /// App pushes, old style: phone types (one OR condition).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub phone_type_list: Vec<String>,
    /// App pushes, old style: provinces (one OR condition).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub province_list: Vec<String>,
    /// App pushes, old style: tags (one OR condition).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub tag_list: Vec<String>,
    /// App pushes: `yyyyMMddHHmm`, Beijing time.
    #[serde(default)]
    pub push_time: Option<String>,
}

/// `pushMessageToListAction` (gzip body): sends a stored message to cids and aliases.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    /// From `getContentIdAction`.
    pub content_id: String,
    /// Answer per-cid statuses (`details`).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub need_details: bool,
    /// Asynchronous send (the SDK then allows 10000 targets).
    #[serde(default, rename = "async", deserialize_with = "lenient::bool")]
    pub is_async: bool,
    /// The first target's app.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id: String,
    /// Target cids.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub client_id_list: Vec<String>,
    /// Target aliases.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub alias_list: Vec<String>,
}

/// `pushMessageToAppAction`: sends a stored app message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppPushRequest {
    /// From `getContentIdAction` with contentType 2.
    pub content_id: String,
}

/// `pushMessageToSingleBatchAction` (gzip body): many single pushes in one protobuf.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// The caller's idempotency key.
    #[serde(default)]
    pub request_id: Option<String>,
    /// `"pb"`.
    #[serde(default)]
    pub serialize: Option<String>,
    /// Asynchronous send.
    #[serde(default, rename = "async", deserialize_with = "lenient::bool")]
    pub is_async: bool,
    /// base64 of `SingleBatchRequest` ([`super::decode_single_datas`]).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub single_datas: String,
}

/// `bind_cid_pn`: cid → md5(phone) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindRequest {
    /// The app.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id: String,
    /// (cid, pn) in the order of the JSON object, so per-cid answers follow it.
    #[serde(default, deserialize_with = "lenient::ordered_pairs")]
    pub cidpnlist: Vec<(String, String)>,
}

/// `unbind_cid_pn` and `query_cid_pn`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidsRequest {
    /// The app.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id: String,
    /// The cids.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub cids: Vec<String>,
}

/// `stop_sms`, `getScheduleTaskAction` and `delScheduleTaskAction`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequest {
    /// The app.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub app_id: String,
    /// The task (a taskId or contentId).
    pub task_id: String,
}

/// `stopTaskAction`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    /// The list or app task.
    pub content_id: String,
}
