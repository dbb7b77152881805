//! Getui RestAPI v2 wire types: the JSON bodies as they travel, nothing else.
//!
//! Both the client (which serializes requests and parses answers) and the simulator (which does
//! the reverse) use these types, so a field name can only be wrong in one place. Field names and
//! limits follow `shared/reference/getui-v2.md`; strings borrow where they can (`Cow`) so that a
//! 1000-cid list push is encoded straight from the caller's ids.

pub mod answer_scan;
pub mod auth;
pub mod checks;
pub mod compact;
pub mod receipt;
pub mod regions;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Most messages one `/push/single/batch/cid` call may carry.
pub const MAX_BATCH_MESSAGES: usize = 200;
/// Most cids one `/push/list/cid` call may carry.
pub const MAX_LIST_CIDS: usize = 1000;
/// Shortest and longest `request_id` the upstream accepts.
pub const REQUEST_ID_LEN: std::ops::RangeInclusive<usize> = 10..=32;
/// Longest offline retention (`settings.ttl`): three days in milliseconds.
pub const MAX_TTL_MS: i64 = 259_200_000;

/// The envelope of every answer: `{"code": 0, "msg": "", "data": ...}`.
///
/// `data` stays raw until the code says which shape it has (success data, a 301 host list, or
/// nothing), so an error answer never fails to parse because of its `data`.
#[derive(Debug, Deserialize)]
pub struct RawEnvelope<'a> {
    /// Business code; 0 is success.
    pub code: i64,
    /// Human-readable message, often empty on success.
    #[serde(default, borrow)]
    pub msg: Cow<'a, str>,
    /// The payload, parsed later by the caller.
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// The envelope read with its `data` in the same pass, as success data of type `T`. Only an
/// answer with code 0 and that data is taken from it; for any other answer this fails or gives
/// another code, and the answer is read again through [`RawEnvelope`]. The common answer is
/// then scanned once instead of twice (`data` is most of a 1000-cid list answer).
#[derive(Debug, Deserialize)]
pub struct DataEnvelope<T> {
    /// Business code; 0 is success.
    pub code: i64,
    /// The payload.
    #[serde(default = "Option::default")]
    pub data: Option<T>,
}

/// The `data` of a success answer, as the client reads it from a whole answer body.
pub trait SuccessData: serde::de::DeserializeOwned {
    /// The data of a success `body` read without serde_json, or `None` (the default) to let
    /// serde_json read the body. Only the per-cid statuses of a push answer have a reader of
    /// their own ([`answer_scan`]): a 1000-cid list answer is the one body large and frequent
    /// enough for it to pay.
    fn read_success(_body: &[u8]) -> Option<Self> {
        None
    }
}

impl<T: SuccessData> SuccessData for Option<T> {
    fn read_success(body: &[u8]) -> Option<Self> {
        T::read_success(body).map(Some)
    }
}

impl SuccessData for compact::CidStatuses {
    fn read_success(body: &[u8]) -> Option<Self> {
        answer_scan::read_success_statuses(body)
    }
}

impl SuccessData for () {}
impl SuccessData for AuthData {}
impl SuccessData for TaskIdData {}
impl SuccessData for TaskCidStatus {}
impl SuccessData for BTreeMap<String, ScheduleTaskInfo> {}
impl SuccessData for ReportData {}

/// An answer as the simulator writes it.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// Business code; 0 is success.
    pub code: i64,
    /// Human-readable message.
    pub msg: &'a str,
    /// The payload, left out when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// `POST /auth` body. `sign` is sha256(appkey + timestamp + mastersecret) in lowercase hex.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuthRequest<'a> {
    /// Hex SHA-256 signature.
    #[serde(borrow)]
    pub sign: Cow<'a, str>,
    /// Milliseconds since the epoch, as a string (the Java SDK sends a number; both are accepted).
    #[serde(deserialize_with = "string_or_number")]
    pub timestamp: String,
    /// The application's AppKey (not its AppId).
    #[serde(borrow)]
    pub appkey: Cow<'a, str>,
}

/// `POST /auth` success data. `expire_time` is a millisecond epoch written as a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthData {
    /// When the token stops working, ms since the epoch, as a string.
    pub expire_time: String,
    /// The token to send in the `token` header.
    pub token: String,
}

/// Audience of one or many cids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CidAudience<'a> {
    /// Client ids (one for single pushes, up to 1000 for list pushes).
    #[serde(borrow)]
    pub cid: Vec<Cow<'a, str>>,
}

/// Audience of aliases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliasAudience<'a> {
    /// Aliases bound to cids with `/user/alias`.
    #[serde(borrow)]
    pub alias: Vec<Cow<'a, str>>,
    /// Optional alias namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_type: Option<String>,
}

/// The whole app: serialized as the bare JSON string `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllAudience;

impl Serialize for AllAudience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("all")
    }
}

impl<'de> Deserialize<'de> for AllAudience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        if s == "all" {
            Ok(AllAudience)
        } else {
            Err(serde::de::Error::custom("audience must be \"all\""))
        }
    }
}

/// How the values of one tag condition combine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OptType {
    /// The device matches any of the values.
    Or,
    /// The device matches all of the values.
    And,
    /// The device matches none of the values.
    Not,
}

/// One condition of a `/push/tag` audience; different conditions are ANDed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Condition {
    /// `phone_type`, `region`, `custom_tag` or `portrait`.
    pub key: String,
    /// Values of that key.
    pub values: Vec<String>,
    /// How the values combine.
    pub opt_type: OptType,
}

/// Audience of devices matching tag conditions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagAudience {
    /// Conditions, ANDed.
    pub tag: Vec<Condition>,
}

/// Push settings shared by every push body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// Offline retention in ms; -1 means no offline storage; at most three days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Per-channel routing strategy, e.g. `{"default": 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<BTreeMap<String, u8>>,
    /// Upstream pacing for app pushes, messages per second; 0 is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// Scheduled send time for app pushes, ms since the epoch (minute precision, ≤ 7 days ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_time: Option<i64>,
}

/// An Android notification shown by the Getui channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// Title, at most 50 characters.
    pub title: String,
    /// Body, at most 256 characters.
    pub body: String,
    /// What a tap does: intent, url, payload, payload_custom, startapp or none.
    pub click_type: String,
    /// Target URL when `click_type` is `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Android intent when `click_type` is `intent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// Payload when `click_type` is `payload` or `payload_custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Embedded icon file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Android notification channel id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Android notification channel name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    /// 0–4: sound, vibration and heads-up level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_level: Option<u8>,
    /// A later notification with the same id replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_id: Option<u32>,
}

/// Revoke an earlier notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Revoke {
    /// The task whose notification to withdraw.
    pub old_task_id: String,
    /// Withdraw all of the app's notifications when the task is not found.
    #[serde(default)]
    pub force: bool,
}

/// The Getui-channel message: exactly one of notification, transmission and revoke.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PushMessage {
    /// 0 any network, 1 Wi-Fi only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_type: Option<u8>,
    /// Display window `"<startMs>-<endMs>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A visible notification (Android).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// A pass-through payload, at most 3072 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmission: Option<String>,
    /// Withdraw an earlier notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Revoke>,
}

impl PushMessage {
    /// How many of notification, transmission and revoke are set (the upstream wants one).
    pub fn kinds_set(&self) -> usize {
        usize::from(self.notification.is_some())
            + usize::from(self.transmission.is_some())
            + usize::from(self.revoke.is_some())
    }
}

/// A push body with an audience of type `A`: single cid, alias, all or tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Push<'a, A> {
    /// Idempotency key, 10–32 characters; a repeated one is not delivered again.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// Task group for group reports: letters, digits, `-`, `_`, at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Who receives it.
    pub audience: A,
    /// Delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// The Getui-channel message.
    pub push_message: PushMessage,
    /// Vendor-channel messages (iOS APNs, Android vendors); carried as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_channel: Option<serde_json::Value>,
}

/// `/push/single/cid` and each element of a batch.
pub type SingleCidPush<'a> = Push<'a, CidAudience<'a>>;
/// `/push/single/alias`.
pub type SingleAliasPush<'a> = Push<'a, AliasAudience<'a>>;
/// `/push/all`.
pub type AllPush<'a> = Push<'a, AllAudience>;
/// `/push/tag`.
pub type TagPush<'a> = Push<'a, TagAudience>;

/// `/push/single/batch/cid`: up to 200 single pushes, each with its own request_id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchPush<'a> {
    /// Answer at once without per-message details.
    #[serde(default)]
    pub is_async: bool,
    /// The messages.
    #[serde(borrow)]
    pub msg_list: Vec<SingleCidPush<'a>>,
}

/// `/push/list/message`: creates the content of a list task and returns its taskid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListMessage<'a> {
    /// Optional idempotency key.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Cow<'a, str>>,
    /// Task group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Delivery settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// The Getui-channel message.
    pub push_message: PushMessage,
    /// Vendor-channel messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_channel: Option<serde_json::Value>,
}

/// `/push/list/cid`: sends an existing list task to up to 1000 cids. Takes no request_id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListCidPush<'a> {
    /// Recipients.
    #[serde(borrow)]
    pub audience: CidAudience<'a>,
    /// The task created by `/push/list/message`.
    #[serde(borrow)]
    pub taskid: Cow<'a, str>,
    /// Answer at once without per-cid details.
    #[serde(default)]
    pub is_async: bool,
}

/// `data` of `/push/list/message`, `/push/all` and `/push/tag`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskIdData {
    /// The task id.
    pub taskid: String,
}

/// `data` of single, batch and list pushes: taskid → cid → status string.
pub type TaskCidStatus = BTreeMap<String, BTreeMap<String, String>>;

/// `data` of a 301 answer: the hosts to use for this appId.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostListData {
    /// Candidate host groups.
    pub host_list: Vec<HostGroup>,
    /// Opaque hash the SDKs echo in the `domainHash` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_hash: Option<String>,
}

/// One group of equivalent hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostGroup {
    /// Base URLs, e.g. `https://cncrestapi.getui.com/v2/`; the appId follows.
    pub domain_list: Vec<String>,
    /// Seconds between priority probes (SDKs default to 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_gap: Option<u64>,
}

/// One entry of `GET /task/schedule/{taskid}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduleTaskInfo {
    /// When the task was created, ms epoch as a string.
    pub create_time: String,
    /// `send_success`, `do_not_send`, `send_failed` or `has_delete`.
    pub send_result: String,
    /// The transmission content, if any.
    #[serde(default)]
    pub transmission_content: String,
    /// When the task fires, ms epoch as a string.
    pub push_time: String,
}

/// Counters of one task report section (`total`, `gt`, or a vendor).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReportCounts {
    /// Messages created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_num: Option<u64>,
    /// Devices targeted.
    #[serde(default)]
    pub target_num: u64,
    /// Devices that received it.
    #[serde(default)]
    pub receive_num: u64,
    /// Devices that displayed it.
    #[serde(default)]
    pub display_num: u64,
    /// Devices where it was tapped.
    #[serde(default)]
    pub click_num: u64,
}

/// `data` of the task and group reports: key (taskid or group) → section name → counters.
pub type ReportData = BTreeMap<String, BTreeMap<String, ReportCounts>>;

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<'a> {
        Str(#[serde(borrow)] Cow<'a, str>),
        Num(u64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Str(s) => s.into_owned(),
        Either::Num(n) => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_audience_is_the_bare_string_all() {
        let push = AllPush {
            request_id: "req-0000000001".into(),
            group_name: None,
            audience: AllAudience,
            settings: None,
            push_message: PushMessage { transmission: Some("x".into()), ..PushMessage::default() },
            push_channel: None,
        };
        let json = serde_json::to_string(&push).unwrap();
        assert!(json.contains(r#""audience":"all""#), "{json}");
        let back: AllPush = serde_json::from_str(&json).unwrap();
        assert_eq!(back, push);
        assert!(serde_json::from_str::<AllPush>(&json.replace("\"all\"", "\"some\"")).is_err());
    }

    #[test]
    fn auth_timestamp_accepts_string_and_number() {
        let a: AuthRequest = serde_json::from_str(r#"{"sign":"s","timestamp":1700000000000,"appkey":"k"}"#).unwrap();
        let b: AuthRequest = serde_json::from_str(r#"{"sign":"s","timestamp":"1700000000000","appkey":"k"}"#).unwrap();
        assert_eq!(a.timestamp, "1700000000000");
        assert_eq!(b.timestamp, a.timestamp);
    }

    #[test]
    fn tag_conditions_use_snake_case_opt_type() {
        let aud = TagAudience {
            tag: vec![Condition { key: "phone_type".into(), values: vec!["android".into()], opt_type: OptType::Not }],
        };
        assert_eq!(
            serde_json::to_string(&aud).unwrap(),
            r#"{"tag":[{"key":"phone_type","values":["android"],"opt_type":"not"}]}"#
        );
    }

    #[test]
    fn envelope_keeps_error_data_raw() {
        let env: RawEnvelope =
            serde_json::from_str(r#"{"code":20001,"msg":"sign is invalid","data":{"odd":[1,2]}}"#).unwrap();
        assert_eq!(env.code, 20001);
        assert_eq!(env.msg, "sign is invalid");
        assert_eq!(env.data.unwrap().get(), r#"{"odd":[1,2]}"#);
    }
}
