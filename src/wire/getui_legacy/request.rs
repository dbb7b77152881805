//! The JSON bodies the legacy SDKs POST, one struct per action (reference §1.5 and the wire
//! capture). Every struct tolerates the spellings of all SDKs (see the `lenient` module) and
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

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;

    fn parse<T: DeserializeOwned>(json: &str) -> T {
        match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => panic!("{e}: {json}"),
        }
    }

    // Request lines of the wire capture (clientData shortened: it is decoded elsewhere).
    const SINGLE: &str = r#"{"requestId": "1b60fd8e-ed8f-11f1-99f5-02fc00000001", "action": "pushMessageToSingleAction", "appkey": "AK_test", "clientData": "Cg==", "transmissionContent": "hello-\u900f\u4f20", "isOffline": true, "offlineExpireTime": 43200000, "pushNetWorkType": 0, "appId": "AID_test", "clientId": "cid-A", "alias": "", "type": 2, "pushType": "TransmissionMsg", "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const CONNECT: &str = r#"{"action": "connect", "appkey": "AK_test", "timeStamp": 1796133432132, "sign": "19df44b7e2cc2e9ec88b01c2bd1d9faf", "version": "4.1.1.2"}"#;
    const CONTENT_LIST: &str = r#"{"taskGroupName": "group-1", "action": "getContentIdAction", "appkey": "AK_test", "clientData": "Cg==", "transmissionContent": "tc", "isOffline": true, "offlineExpireTime": 3600000, "pushNetWorkType": 0, "pushType": "NotifyMsg", "type": 2, "contentType": 1, "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const CONTENT_APP: &str = r#"{"taskGroupName": "grp-app", "action": "getContentIdAction", "appkey": "AK_test", "clientData": "Cg==", "transmissionContent": "hello-\u900f\u4f20", "isOffline": true, "offlineExpireTime": 600000, "pushNetWorkType": 0, "pushType": "TransmissionMsg", "type": 2, "conditions": [{"key": "phoneType", "values": ["ANDROID"], "optType": 0}, {"key": "region", "values": ["\u6d59\u6c5f", "33010000"], "optType": 1}, {"key": "tag", "values": ["haha"], "optType": 2}], "speed": 100, "contentType": 2, "appIdList": ["AID_test"], "pushTime": "203001011200", "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const CONTENT_APP_OLD: &str = r#"{"action": "getContentIdAction", "appkey": "AK_test", "clientData": "Cg==", "transmissionContent": "tc", "isOffline": false, "offlineExpireTime": 0, "pushNetWorkType": 0, "pushType": "NotifyMsg", "type": 2, "phoneTypeList": ["IOS"], "provinceList": ["\u6d59\u6c5f"], "tagList": ["t1"], "speed": 0, "contentType": 2, "appIdList": ["AID_test"], "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const LIST: &str = r#"{"action": "pushMessageToListAction", "appkey": "AK_test", "contentId": "OSL-0001_3", "needDetails": "true", "async": false, "appId": "AID_test", "clientIdList": ["cid-1", "cid-2"], "aliasList": ["alias-3"], "type": 2, "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const APP: &str = r#"{"action": "pushMessageToAppAction", "appkey": "AK_test", "contentId": "OSA-0001_4", "type": 2, "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const BATCH: &str = r#"{"requestId": "1babb3ba-ed8f-11f1-99f5-02fc00000001", "appkey": "AK_test", "action": "pushMessageToSingleBatchAction", "serialize": "pb", "async": false, "singleDatas": "CgA=", "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const BIND: &str = r#"{"action": "bind_cid_pn", "appId": "AID_test", "appkey": "AK_test", "cidpnlist": {"cid-B": "0cc175b9c0f1b6a831c399e269772661", "cid-A": "e10adc3949ba59abbe56e057f20f883e"}, "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const UNBIND: &str = r#"{"action": "unbind_cid_pn", "appId": "AID_test", "appkey": "AK_test", "cids": ["cid-A", "cid-B"], "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const STOP_SMS: &str = r#"{"action": "stop_sms", "appId": "AID_test", "appkey": "AK_test", "taskId": "OSA-0001_x", "version": "4.1.1.2", "authToken": "tok-123"}"#;
    const STOP_TASK: &str = r#"{"action": "stopTaskAction", "appkey": "AK_test", "contentId": "OSL-0001_x", "version": "4.1.1.2", "authToken": "tok-123"}"#;

    #[test]
    fn envelope_reads_every_capture_line_and_both_token_spellings() {
        for json in [SINGLE, CONTENT_LIST, CONTENT_APP, LIST, APP, BATCH, BIND, UNBIND, STOP_SMS, STOP_TASK] {
            let e: Envelope = parse(json);
            assert_eq!((e.appkey.as_str(), e.auth_token.as_deref()), ("AK_test", Some("tok-123")), "{json}");
        }
        let discovery: Envelope = parse(r#"{"action": "getOSPushDomailUrlListAction", "appkey": "AK_test"}"#);
        assert_eq!((discovery.action.as_str(), discovery.auth_token), ("getOSPushDomailUrlListAction", None));
        let close: Envelope = parse(r#"{"action":"close","appkey":"AK_test","version":"4.1.1.2","authtoken":"t"}"#);
        assert_eq!(close.auth_token.as_deref(), Some("t"));
        let fresh: Envelope = parse(r#"{"action":"x","appkey":"AK_test","authToken":""}"#);
        assert_eq!(fresh.auth_token.as_deref(), Some(""));
    }

    #[test]
    fn connect_takes_a_number_or_a_numeric_string() {
        let c: Connect = parse(CONNECT);
        assert_eq!(
            (c.appkey.as_str(), c.time_stamp, c.sign.as_str()),
            ("AK_test", 1796133432132, "19df44b7e2cc2e9ec88b01c2bd1d9faf")
        );
        let php: Connect = parse(r#"{"action":"connect","appkey":"AK_test","timeStamp":"1796133432132","sign":"s"}"#);
        assert_eq!(php.time_stamp, 1796133432132);
        assert!(serde_json::from_str::<Connect>(r#"{"appkey":"a","timeStamp":"soon","sign":"s"}"#).is_err());
    }

    #[test]
    fn single_push_of_capture_1() {
        let s: SingleRequest = parse(SINGLE);
        assert_eq!(s.request_id.as_deref(), Some("1b60fd8e-ed8f-11f1-99f5-02fc00000001"));
        assert_eq!((s.app_id.as_str(), s.client_id.as_str(), s.alias.as_str()), ("AID_test", "cid-A", ""));
        let want = PushFields {
            client_data: "Cg==".into(),
            transmission_content: "hello-透传".into(),
            is_offline: Some(true),
            offline_expire_time: Some(43200000),
            push_network_type: 0,
            push_type: "TransmissionMsg".into(),
        };
        assert_eq!(s.push, want);
    }

    #[test]
    fn content_id_requests_for_list_and_app() {
        let list: ContentIdRequest = parse(CONTENT_LIST);
        assert_eq!((list.content_type, list.task_group_name.as_deref()), (1, Some("group-1")));
        assert_eq!((list.push.push_type.as_str(), list.push.offline_expire_time), ("NotifyMsg", Some(3600000)));
        assert!(list.conditions.is_empty() && list.app_id_list.is_empty() && list.push_time.is_none());
        let app: ContentIdRequest = parse(CONTENT_APP);
        assert_eq!((app.content_type, app.speed, app.push_time.as_deref()), (2, Some(100), Some("203001011200")));
        assert_eq!(app.app_id_list, ["AID_test"]);
        let region = &app.conditions[1];
        assert_eq!(
            (region.key.as_str(), region.values.clone(), region.opt_type),
            ("region", vec!["浙江".into(), "33010000".into()], 1)
        );
        let old: ContentIdRequest = parse(CONTENT_APP_OLD);
        assert_eq!(
            (old.phone_type_list.clone(), old.province_list.clone(), old.tag_list.clone()),
            (vec!["IOS".into()], vec!["浙江".into()], vec!["t1".into()])
        );
        assert_eq!((old.push.is_offline, old.speed, old.task_group_name), (Some(false), Some(0), None));
    }

    #[test]
    fn list_app_batch_task_requests() {
        let l: ListRequest = parse(LIST);
        assert!(l.need_details && !l.is_async);
        assert_eq!((l.content_id.as_str(), l.app_id.as_str()), ("OSL-0001_3", "AID_test"));
        assert_eq!((l.client_id_list.len(), l.alias_list.clone()), (2, vec!["alias-3".to_owned()]));
        assert_eq!(parse::<AppPushRequest>(APP).content_id, "OSA-0001_4");
        let b: BatchRequest = parse(BATCH);
        assert_eq!((b.serialize.as_deref(), b.is_async, b.single_datas.as_str()), (Some("pb"), false, "CgA="));
        assert_eq!(parse::<CidsRequest>(UNBIND).cids, ["cid-A", "cid-B"]);
        let t: TaskRequest = parse(STOP_SMS);
        assert_eq!((t.app_id.as_str(), t.task_id.as_str()), ("AID_test", "OSA-0001_x"));
        assert_eq!(parse::<StopTaskRequest>(STOP_TASK).content_id, "OSL-0001_x");
    }

    /// Per-cid answers follow the caller's order, which serde_json's map would sort away.
    #[test]
    fn cidpnlist_keeps_its_order() {
        let b: BindRequest = parse(BIND);
        let cids: Vec<&str> = b.cidpnlist.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(cids, ["cid-B", "cid-A"]);
        assert_eq!(b.cidpnlist[1].1, "e10adc3949ba59abbe56e057f20f883e");
        assert!(parse::<BindRequest>(r#"{"appId":"a","cidpnlist":null}"#).cidpnlist.is_empty());
        assert!(serde_json::from_str::<BindRequest>(r#"{"appId":"a","cidpnlist":{"c":5}}"#).is_err());
    }

    #[test]
    fn booleans_and_numbers_in_every_spelling() {
        for (text, want) in [("true", true), ("\"true\"", true), ("\"TRUE\"", true), ("\"1\"", true), ("1", true)]
            .into_iter()
            .chain([("false", false), ("\"false\"", false), ("\"0\"", false), ("0", false), ("null", false)])
        {
            let l: ListRequest = parse(&format!(r#"{{"contentId":"c","needDetails":{text},"async":{text}}}"#));
            assert_eq!((l.need_details, l.is_async), (want, want), "{text}");
        }
        assert!(serde_json::from_str::<ListRequest>(r#"{"contentId":"c","needDetails":"maybe"}"#).is_err());
        // Flattened fields too: numbers as strings, booleans as strings, nulls, absent fields.
        let s: SingleRequest = parse(
            r#"{"appId":"a","clientId":"c","clientData":"x","isOffline":"1","offlineExpireTime":"7200000","pushNetWorkType":"1","alias":null}"#,
        );
        assert_eq!(
            (s.push.is_offline, s.push.offline_expire_time, s.push.push_network_type),
            (Some(true), Some(7200000), 1)
        );
        assert_eq!((s.alias.as_str(), s.push.transmission_content.as_str(), s.request_id), ("", "", None));
        let bare: SingleRequest = parse(r#"{"clientData":"x"}"#);
        assert_eq!((bare.push.is_offline, bare.push.offline_expire_time), (None, None));
        let c: ContentIdRequest = parse(
            r#"{"contentType":"2","speed":"50","conditions":[{"key":"tag","values":["a"],"optType":"2"}],"tagList":null}"#,
        );
        assert_eq!((c.content_type, c.speed, c.conditions[0].opt_type, c.tag_list.len()), (2, Some(50), 2, 0));
    }
}
