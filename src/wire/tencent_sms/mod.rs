//! Tencent Cloud SMS (腾讯云短信), API 2021-01-11, as it travels: the `SendSms` request and
//! answer, the status-report callback and its answer, the TC3-HMAC-SHA256 signature
//! ([`sign`]), templates and segment counting ([`template`]), the error codes ([`codes`]),
//! phone numbers and the marketing send window. No I/O: the client and the simulator both
//! read these, so a field name or a limit can only be wrong in one place.
//!
//! Source: `shared/reference/getui-legacy-and-sms.md` §3.1 (endpoint, headers, body fields,
//! answer shapes, limits, status callback) and §1.6 (Getui's 3-day fallback delay).

pub mod codes;
pub mod sign;
pub mod template;

use serde::{Deserialize, Serialize};

/// The public endpoint's host (regional ones: `sms.ap-guangzhou.tencentcloudapi.com`, …).
pub const DEFAULT_HOST: &str = "sms.tencentcloudapi.com";
/// The service name in the credential scope.
pub const SERVICE: &str = "sms";
/// `X-TC-Version`.
pub const API_VERSION: &str = "2021-01-11";
/// `X-TC-Action` of a send.
pub const ACTION_SEND_SMS: &str = "SendSms";
/// The `Content-Type` the official SDK sends and signs.
pub const CONTENT_TYPE: &str = "application/json";
/// The region campaignd sends `X-TC-Region` with unless configured otherwise.
pub const DEFAULT_REGION: &str = "ap-guangzhou";
/// Most numbers in one `PhoneNumberSet`.
pub const MAX_NUMBERS_PER_CALL: usize = 200;
/// `SessionContext` must be shorter than this many bytes.
pub const SESSION_CONTEXT_LIMIT_BYTES: usize = 512;
/// Largest distance between `X-TC-Timestamp` and the server's clock, seconds.
pub const MAX_TIMESTAMP_SKEW_SECS: i64 = 300;
/// Longest delay between a push and its SMS fallback (Getui's `offlineSendtime` limit), ms.
pub const MAX_FALLBACK_DELAY_MS: u64 = 3 * 24 * 3600 * 1000;
pub use template::{LONG_SEGMENT_CHARS, SINGLE_SEGMENT_CHARS};

/// The `SendSms` request body. One `TemplateParamSet` applies to every number of the call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct SendSms {
    /// 1..=200 numbers, E.164 (`+8613800000000`); all domestic or all international.
    pub phone_number_set: Vec<String>,
    /// The SMS application, e.g. `1400006666`.
    pub sms_sdk_app_id: String,
    /// The approved signature's content (not its id), e.g. `腾讯云`; required for domestic texts.
    pub sign_name: String,
    /// The approved template's id.
    pub template_id: String,
    /// One value per placeholder `{1}`, `{2}`…, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_param_set: Vec<String>,
    /// Echoed back in each `SendStatus` (< 512 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<String>,
}

/// The whole answer: everything sits under `Response`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendSmsAnswer {
    /// The answer.
    #[serde(rename = "Response")]
    pub response: SendSmsResponse,
}

/// `Response` of a `SendSms` answer: the per-number statuses, or a request-level error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct SendSmsResponse {
    /// One status per number, when the request was accepted as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send_status_set: Vec<SendStatus>,
    /// Present when the whole request was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The request's id at Tencent, for support tickets.
    #[serde(default)]
    pub request_id: String,
}

/// A request-level error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ApiError {
    /// E.g. `AuthFailure.SignatureFailure` (see [`codes`]).
    pub code: String,
    /// For people; never branch on it.
    #[serde(default)]
    pub message: String,
}

/// What happened to one number of the call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct SendStatus {
    /// The id the status report will carry as `sid`; empty when not sent.
    #[serde(default)]
    pub serial_no: String,
    /// The number as Tencent normalised it (`+86…`).
    #[serde(default)]
    pub phone_number: String,
    /// Billed segments; 0 when not sent.
    #[serde(default)]
    pub fee: u32,
    /// The request's `SessionContext`, echoed.
    #[serde(default)]
    pub session_context: String,
    /// `Ok`, or why this number was not sent (see [`codes`]).
    pub code: String,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// The number's country, e.g. `CN`.
    #[serde(default)]
    pub iso_code: String,
}

impl SendStatus {
    /// True when the gateway accepted this number.
    pub fn is_ok(&self) -> bool {
        self.code == codes::OK
    }
}

/// `report_status` of a delivered text.
pub const REPORT_SUCCESS: &str = "SUCCESS";
/// `report_status` of a text that did not arrive.
pub const REPORT_FAIL: &str = "FAIL";

/// One item of the status-report callback (短信下发状态通知), a JSON array POSTed to the
/// configured URL. No signature is documented: protect the URL.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReport {
    /// When the phone received it, `YYYY-MM-DD HH:MM:SS` (Beijing time).
    pub user_receive_time: String,
    /// Country code without `+`, e.g. `86`.
    pub nationcode: String,
    /// The number without its country code.
    pub mobile: String,
    /// [`REPORT_SUCCESS`] or [`REPORT_FAIL`].
    pub report_status: String,
    /// The carrier's code, `DELIVRD` on success.
    pub errmsg: String,
    /// For people.
    pub description: String,
    /// The `SerialNo` of the send.
    pub sid: String,
}

/// What the callback receiver answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReportAnswer {
    /// 0 when the reports were taken.
    pub result: i64,
    /// `OK` when the reports were taken.
    pub errmsg: String,
}

impl StatusReportAnswer {
    /// `{"result":0,"errmsg":"OK"}`.
    pub fn ok() -> Self {
        StatusReportAnswer { result: 0, errmsg: "OK".into() }
    }
}

/// A phone number in E.164 form: domestic numbers given as `+86…`, `0086…`, `86…` or bare 11
/// digits starting with 1 become `+86` and the 11 digits; other `+` numbers of 6 to 15 digits
/// stay as they are. `None` for anything else.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let s = raw.trim();
    let all_digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let cn_mobile = |d: &str| d.len() == 11 && d.starts_with('1') && all_digits(d);
    let domestic = s.strip_prefix("+86").or_else(|| s.strip_prefix("0086")).or_else(|| s.strip_prefix("86"));
    if let Some(d) = domestic.filter(|d| cn_mobile(d)) {
        return Some(format!("+86{d}"));
    }
    if cn_mobile(s) {
        return Some(format!("+86{s}"));
    }
    match s.strip_prefix('+') {
        Some(d) if !d.starts_with("86") && all_digits(d) && (6..=15).contains(&d.len()) => Some(s.to_owned()),
        _ => None,
    }
}

/// The hours marketing texts may go out, as minutes of the Beijing day (UTC+8 all year):
/// `[start, end)`. The default is 08:00–22:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    /// First minute of the day a text may go out (480 = 08:00).
    pub start_minute: u16,
    /// First minute of the day it may no longer (1320 = 22:00).
    pub end_minute: u16,
}

/// Beijing's offset from UTC, seconds (no daylight saving).
pub const BEIJING_OFFSET_SECS: i64 = 8 * 3600;

impl Default for SendWindow {
    fn default() -> Self {
        SendWindow { start_minute: 8 * 60, end_minute: 22 * 60 }
    }
}

impl SendWindow {
    /// Parses `HH:MM` pairs; `None` unless both are valid times and start < end.
    pub fn from_hhmm(start: &str, end: &str) -> Option<Self> {
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            // 24:00 is allowed as an end: the window runs to midnight.
            (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
        };
        let (start_minute, end_minute) = (minute(start)?, minute(end)?);
        (start_minute < end_minute && start_minute < 24 * 60).then_some(SendWindow { start_minute, end_minute })
    }

    /// The Beijing minute of the day at Unix second `unix_s`.
    pub fn beijing_minute(unix_s: i64) -> u16 {
        let minute = (unix_s + BEIJING_OFFSET_SECS).rem_euclid(86_400) / 60;
        u16::try_from(minute).unwrap_or(0)
    }

    /// True when a marketing text may go out at `unix_s`.
    pub fn contains(&self, unix_s: i64) -> bool {
        let m = Self::beijing_minute(unix_s);
        self.start_minute <= m && m < self.end_minute
    }

    /// Seconds from `unix_s` until the window is open (0 when it is).
    pub fn wait_secs(&self, unix_s: i64) -> i64 {
        if self.contains(unix_s) {
            return 0;
        }
        let second_of_day = (unix_s + BEIJING_OFFSET_SECS).rem_euclid(86_400);
        let start = i64::from(self.start_minute) * 60;
        if second_of_day < start {
            start - second_of_day
        } else {
            86_400 - second_of_day + start
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_answer_use_the_documented_names() {
        let req = SendSms {
            phone_number_set: vec!["+8613800000000".into()],
            sms_sdk_app_id: "1400006666".into(),
            sign_name: "腾讯云".into(),
            template_id: "1234567".into(),
            template_param_set: vec!["张三".into(), "12".into()],
            session_context: Some("campaign-1:cid-A".into()),
        };
        // Field order and names as the §3.1 signing vector's body.
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1234567","TemplateParamSet":["张三","12"],"SessionContext":"campaign-1:cid-A"}"#
        );
        let answer: SendSmsAnswer = serde_json::from_str(
            r#"{"Response": {"SendStatusSet": [
               {"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8618511122233", "Fee": 1,
                "SessionContext": "test", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
              "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#,
        )
        .unwrap();
        let s = &answer.response.send_status_set[0];
        assert!(s.is_ok() && s.fee == 1 && s.iso_code == "CN" && answer.response.error.is_none());
        let refused: SendSmsAnswer = serde_json::from_str(
            r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"x"},"RequestId":"r"}}"#,
        )
        .unwrap();
        assert_eq!(refused.response.error.unwrap().code, codes::SIGNATURE_FAILURE);
    }

    #[test]
    fn status_reports_and_their_answer() {
        let reports: Vec<StatusReport> = serde_json::from_str(
            r#"[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13xxxxxxxxx",
                 "report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"x"}]"#,
        )
        .unwrap();
        assert_eq!(reports[0].report_status, REPORT_SUCCESS);
        assert_eq!(serde_json::to_string(&StatusReportAnswer::ok()).unwrap(), r#"{"result":0,"errmsg":"OK"}"#);
    }

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        for raw in ["+8613800000000", "008613800000000", "8613800000000", "13800000000", " 13800000000 "] {
            assert_eq!(normalize_phone(raw).as_deref(), Some("+8613800000000"), "{raw}");
        }
        assert_eq!(normalize_phone("+14155550100").as_deref(), Some("+14155550100"));
        for bad in ["", "12345", "+86123", "23800000000", "+86 13800000000", "+abc", "+8623456789012"] {
            assert!(normalize_phone(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_marketing_window_is_beijing_time() {
        let w = SendWindow::default();
        // 2025-12-01 00:00 UTC is 08:00 in Beijing.
        let eight_beijing = 1_764_547_200;
        assert!(w.contains(eight_beijing));
        assert!(!w.contains(eight_beijing - 1));
        assert_eq!(w.wait_secs(eight_beijing - 60), 60);
        let ten_pm = eight_beijing + 14 * 3600;
        assert!(w.contains(ten_pm - 1) && !w.contains(ten_pm));
        assert_eq!(w.wait_secs(ten_pm), 10 * 3600);
        assert_eq!(SendWindow::from_hhmm("08:00", "22:00"), Some(w));
        assert_eq!(SendWindow::from_hhmm("00:00", "24:00").map(|w| w.end_minute), Some(1440));
        for (a, b) in [("22:00", "08:00"), ("8", "22:00"), ("08:60", "22:00"), ("25:00", "26:00")] {
            assert!(SendWindow::from_hhmm(a, b).is_none(), "{a}-{b}");
        }
    }
}
