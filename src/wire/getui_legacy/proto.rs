//! The protobuf messages of the legacy SDK (`GtReq.proto`, package `com.gexin.rp.sdk.dto`),
//! written by hand for prost so the build needs no `protoc`. Names and field numbers are
//! those of the schema; proto2 `required` fields are plain optionals here, and fields the
//! server never reads are left out (prost skips unknown fields when decoding).

/// The message a template becomes: `clientData` of every push-creating call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Transparent {
    /// Always `""` from the SDK.
    #[prost(string, optional, tag = "1")]
    pub id: Option<String>,
    /// `"pushmessage"`.
    #[prost(string, optional, tag = "2")]
    pub action: Option<String>,
    /// `""` from the SDK.
    #[prost(string, optional, tag = "3")]
    pub task_id: Option<String>,
    /// The template's appKey.
    #[prost(string, optional, tag = "4")]
    pub app_key: Option<String>,
    /// The template's appId.
    #[prost(string, optional, tag = "5")]
    pub app_id: Option<String>,
    /// `""` from the SDK.
    #[prost(string, optional, tag = "6")]
    pub message_id: Option<String>,
    /// APNs payload and vendor-channel flags.
    #[prost(message, optional, tag = "7")]
    pub push_info: Option<PushInfo>,
    /// What the device does, as a linked list of actions starting at actionId 1.
    #[prost(message, repeated, tag = "8")]
    pub action_chain: Vec<ActionChain>,
    /// `""` or `"duration=<startMs>-<endMs>"`.
    #[prost(string, repeated, tag = "9")]
    pub condition: Vec<String>,
    /// Notification 0, Link 1, NotyPopLoad 2, Transmission 4, APN 5, StartActivity 7, Revoke 8.
    #[prost(int32, optional, tag = "10")]
    pub template_id: Option<i32>,
    /// Task group id (unused by the SDK).
    #[prost(string, optional, tag = "11")]
    pub task_group_id: Option<String>,
    /// SMS fallback (短信补量), when the template had `setSmsInfo`.
    #[prost(message, optional, tag = "12")]
    pub sms_info: Option<SmsInfo>,
}

/// iOS (APNs) and vendor-channel information of a template.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushInfo {
    /// Old-style APNs alert text.
    #[prost(string, optional, tag = "1")]
    pub message: Option<String>,
    /// Old-style APNs sound.
    #[prost(string, optional, tag = "3")]
    pub sound: Option<String>,
    /// Old-style APNs badge.
    #[prost(string, optional, tag = "4")]
    pub badge: Option<String>,
    /// Old-style APNs custom payload.
    #[prost(string, optional, tag = "5")]
    pub payload: Option<String>,
    /// Old-style content-available flag.
    #[prost(int32, optional, tag = "10")]
    pub content_available: Option<i32>,
    /// True when the template carries no APNs payload.
    #[prost(bool, optional, tag = "11")]
    pub invalid_apn: Option<bool>,
    /// The whole APNs payload as JSON (`setApnInfo`).
    #[prost(string, optional, tag = "12")]
    pub apn_json: Option<String>,
    /// True when there is no MPN (Windows Phone) payload.
    #[prost(bool, optional, tag = "13")]
    pub invalid_mpn: Option<bool>,
    /// True when `notifyInfo` (vendor channel notification) is set.
    #[prost(bool, optional, tag = "15")]
    pub valid_notify: Option<bool>,
}

/// One step of a template's action chain.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActionChain {
    /// This action's id; the chain starts at 1.
    #[prost(int32, optional, tag = "1")]
    pub action_id: Option<i32>,
    /// What the action does ([`action_chain::Type`]).
    #[prost(enumeration = "action_chain::Type", optional, tag = "2")]
    pub r#type: Option<i32>,
    /// The action that follows.
    #[prost(int32, optional, tag = "3")]
    pub next: Option<i32>,
    /// Notification icon file name; appdownload icon.
    #[prost(string, optional, tag = "100")]
    pub logo: Option<String>,
    /// Notification icon URL.
    #[prost(string, optional, tag = "101")]
    pub logo_url: Option<String>,
    /// Notification or popup title.
    #[prost(string, optional, tag = "102")]
    pub title: Option<String>,
    /// Notification or popup text.
    #[prost(string, optional, tag = "103")]
    pub text: Option<String>,
    /// The user may swipe the notification away.
    #[prost(bool, optional, tag = "104")]
    pub clearable: Option<bool>,
    /// Ring on arrival.
    #[prost(bool, optional, tag = "105")]
    pub ring: Option<bool>,
    /// Vibrate on arrival.
    #[prost(bool, optional, tag = "106")]
    pub buzz: Option<bool>,
    /// Popup image URL.
    #[prost(string, optional, tag = "120")]
    pub img: Option<String>,
    /// Popup buttons (confirm, cancel).
    #[prost(message, repeated, tag = "121")]
    pub buttons: Vec<Button>,
    /// startapp: app id (`""` from the SDK).
    #[prost(string, optional, tag = "140")]
    pub appid: Option<String>,
    /// startapp / appdownload: per-platform start marks.
    #[prost(message, optional, tag = "141")]
    pub appstartupid: Option<AppStartUp>,
    /// startapp: start the app on arrival (transmissionType 1); appdownload: start after install.
    #[prost(bool, optional, tag = "142")]
    pub autostart: Option<bool>,
    /// startapp: where to go when the app cannot start.
    #[prost(int32, optional, tag = "143")]
    pub failed_action: Option<i32>,
    /// startweb / appdownload: the URL.
    #[prost(string, optional, tag = "160")]
    pub url: Option<String>,
    /// appdownload: download title.
    #[prost(string, optional, tag = "220")]
    pub name: Option<String>,
    /// appdownload: install without asking.
    #[prost(bool, optional, tag = "223")]
    pub auto_install: Option<bool>,
    /// mmsinbox2 (revoke): the task to revoke.
    #[prost(string, optional, tag = "320")]
    pub taskid: Option<String>,
    /// mmsinbox2: sub-type, `"terminatetask"` for revoke.
    #[prost(string, optional, tag = "380")]
    pub stype: Option<String>,
    /// Extra typed key/values (notifyStyle, channel, force, …).
    #[prost(message, repeated, tag = "381")]
    pub field: Vec<InnerFiled>,
}

/// Nested types of [`ActionChain`].
pub mod action_chain {
    /// `ActionChain.Type` of the schema (only the values the SDK's templates use matter).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    #[allow(non_camel_case_types)]
    pub enum Type {
        /// Jump to `next`.
        Goto = 0,
        /// Show a notification.
        Notification = 1,
        /// Show a popup with buttons.
        Popup = 2,
        /// Start (or wake) the app.
        Startapp = 3,
        /// Open a web page.
        Startweb = 4,
        /// Legacy SMS inbox.
        Smsinbox = 5,
        /// Check an app.
        Checkapp = 6,
        /// End of actions.
        Eoa = 7,
        /// Download an app.
        Appdownload = 8,
        /// Start SMS.
        Startsms = 9,
        /// HTTP proxy.
        Httpproxy = 10,
        /// SMS inbox 2.
        Smsinbox2 = 11,
        /// MMS inbox 2 (the revoke template uses it with stype terminatetask).
        Mmsinbox2 = 12,
        /// Popup web page.
        Popupweb = 13,
        /// Dial.
        Dial = 14,
        /// Report bound app.
        Reportbindapp = 15,
        /// Report phone info.
        Reportaddphoneinfo = 16,
        /// Report app list.
        Reportapplist = 17,
        /// Terminate a task.
        Terminatetask = 18,
        /// Report app.
        Reportapp = 19,
        /// Enable log.
        Enablelog = 20,
        /// Disable log.
        Disablelog = 21,
        /// Upload log.
        Uploadlog = 22,
    }
}

/// A typed key/value of an action (`InnerFiled`, sic, in the schema).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InnerFiled {
    /// Key.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// Value as text.
    #[prost(string, optional, tag = "2")]
    pub val: Option<String>,
    /// Type of the value: str 0, int32 1, int64 2, floa 3, doub 4, bool 5.
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
}

/// Per-platform start marks of an app.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStartUp {
    /// Android.
    #[prost(string, optional, tag = "1")]
    pub android: Option<String>,
    /// Symbian.
    #[prost(string, optional, tag = "2")]
    pub symbia: Option<String>,
    /// iOS.
    #[prost(string, optional, tag = "3")]
    pub ios: Option<String>,
}

/// A popup button.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Button {
    /// Label.
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
    /// Action a tap leads to.
    #[prost(int32, optional, tag = "2")]
    pub next: Option<i32>,
}

/// One variable of an SMS template.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SmsContentEntry {
    /// Variable name (or `applinkIdentification` / `url` for AppLink).
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// Value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// SMS fallback of a template (短信补量).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SmsInfo {
    /// The filed SMS template's id.
    #[prost(string, optional, tag = "1")]
    pub sms_template_id: Option<String>,
    /// Template variables in the order the SDK wrote them.
    #[prost(message, repeated, tag = "2")]
    pub sms_content: Vec<SmsContentEntry>,
    /// Delay after the push, ms, before unreached users are texted.
    #[prost(int64, optional, tag = "3")]
    pub offline_sendtime: Option<i64>,
    /// Always 0 from the SDK.
    #[prost(int64, optional, tag = "4")]
    pub sms_send_duration: Option<i64>,
    /// Always false from the SDK.
    #[prost(bool, optional, tag = "5")]
    pub sms_checked: Option<bool>,
    /// Unset from the SDK.
    #[prost(string, optional, tag = "6")]
    pub sms_checked_error_msg: Option<String>,
}

/// `singleDatas` of `pushMessageToSingleBatchAction`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SingleBatchRequest {
    /// The batch's id (a uuid from the SDK).
    #[prost(string, optional, tag = "1")]
    pub batch_id: Option<String>,
    /// The single pushes.
    #[prost(message, repeated, tag = "2")]
    pub batch_item: Vec<SingleBatchItem>,
}

/// One push of a batch: its order number and its request as a JSON string.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SingleBatchItem {
    /// Order number (Python starts at 0, one PHP fork at 1); answers are keyed by it.
    #[prost(int32, optional, tag = "1")]
    pub seq_id: Option<i32>,
    /// JSON of a `pushMessageToSingleAction` body without alias/requestId.
    #[prost(string, optional, tag = "2")]
    pub data: Option<String>,
}
