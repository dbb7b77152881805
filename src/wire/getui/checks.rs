//! The field rules Getui applies to a push body, as pure checks.
//!
//! The simulator answers 20001 with the failing parameter when a rule breaks; the daemon can run
//! the same checks before it sends, so a campaign is refused at creation rather than mid-send.
//! Limits: `reference/getui-v2.md` §2.3–2.4 and §3.

use super::{PushMessage, Settings, MAX_TTL_MS, REQUEST_ID_LEN};

/// A broken rule, phrased as Getui phrases its 20001 messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct Violation {
    /// The wire parameter at fault, e.g. `push_message.notification.title`.
    pub param: &'static str,
    /// Getui-style message, e.g. `title size over limit`.
    pub msg: String,
}

fn violation(param: &'static str, msg: impl Into<String>) -> Violation {
    Violation { param, msg: msg.into() }
}

/// Largest notification title, in characters.
pub const MAX_TITLE_CHARS: usize = 50;
/// Largest notification body, in characters.
pub const MAX_BODY_CHARS: usize = 256;
/// Largest transmission or payload, in characters.
pub const MAX_TRANSMISSION_CHARS: usize = 3072;
/// Largest click URL, in characters.
pub const MAX_URL_CHARS: usize = 1024;
/// Largest task group name, in characters.
pub const MAX_GROUP_CHARS: usize = 100;
/// A display window must be longer than this (ms).
pub const MIN_DURATION_MS: i64 = 600_000;
/// Click types a notification may use.
pub const CLICK_TYPES: [&str; 6] = ["intent", "url", "payload", "payload_custom", "startapp", "none"];

/// request_id: present, 10–32 characters.
pub fn check_request_id(id: &str) -> Result<(), Violation> {
    if id.is_empty() {
        return Err(violation("request_id", "request_id can not be empty"));
    }
    if !REQUEST_ID_LEN.contains(&id.chars().count()) {
        return Err(violation("request_id", "request_id is invalid"));
    }
    Ok(())
}

/// group_name: at most 100 of letters, digits, `-`, `_`.
pub fn check_group_name(name: &str) -> Result<(), Violation> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || !ok_chars || name.len() > MAX_GROUP_CHARS {
        return Err(violation("group_name", "group_name is invalid"));
    }
    Ok(())
}

/// settings: ttl in −1 ..= 3 days.
pub fn check_settings(s: &Settings) -> Result<(), Violation> {
    if let Some(ttl) = s.ttl {
        if !(-1..=MAX_TTL_MS).contains(&ttl) {
            return Err(violation("settings.ttl", "ttl is invalid"));
        }
    }
    Ok(())
}

/// push_message: exactly one kind, and each field within its limit.
pub fn check_push_message(m: &PushMessage) -> Result<(), Violation> {
    if m.kinds_set() != 1 {
        return Err(violation("push_message", "please choose one of notification and transmission and revoke"));
    }
    if let Some(t) = &m.transmission {
        check_transmission(t)?;
    }
    if let Some(nt) = m.network_type {
        if nt > 1 {
            return Err(violation("push_message.network_type", "network_type is invalid"));
        }
    }
    if let Some(d) = &m.duration {
        check_duration(d)?;
    }
    if let Some(n) = &m.notification {
        check_notification(n)?;
    }
    Ok(())
}

/// duration: `"<startMs>-<endMs>"`, a window of more than 10 minutes.
fn check_duration(d: &str) -> Result<(), Violation> {
    let bounds = d.split_once('-').and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)));
    match bounds {
        Some((begin, end)) if end - begin > MIN_DURATION_MS => Ok(()),
        Some(_) => Err(violation("push_message.duration", "duration must be longer than 10 minutes")),
        None => Err(violation("push_message.duration", "duration is invalid")),
    }
}

/// The fields of a notification the rules look at, borrowed, so that a notification can be
/// checked before any wire value is built (the campaign's template at creation).
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationFields<'a> {
    /// Title.
    pub title: &'a str,
    /// Body.
    pub body: &'a str,
    /// What a tap does.
    pub click_type: &'a str,
    /// Target of `click_type: url`.
    pub url: Option<&'a str>,
    /// Android intent of `click_type: intent`.
    pub intent: Option<&'a str>,
    /// Payload of `click_type: payload` or `payload_custom`.
    pub payload: Option<&'a str>,
    /// Embedded icon file name.
    pub logo: Option<&'a str>,
    /// Icon URL.
    pub logo_url: Option<&'a str>,
    /// 0–4 importance.
    pub channel_level: Option<u8>,
}

impl<'a> From<&'a super::Notification> for NotificationFields<'a> {
    fn from(n: &'a super::Notification) -> Self {
        NotificationFields {
            title: &n.title,
            body: &n.body,
            click_type: &n.click_type,
            url: n.url.as_deref(),
            intent: n.intent.as_deref(),
            payload: n.payload.as_deref(),
            logo: n.logo.as_deref(),
            logo_url: n.logo_url.as_deref(),
            channel_level: n.channel_level,
        }
    }
}

fn check_notification(n: &super::Notification) -> Result<(), Violation> {
    check_notification_fields(&n.into())
}

/// transmission: at most 3072 characters.
pub fn check_transmission(t: &str) -> Result<(), Violation> {
    max_chars("push_message.transmission", "transmission", t, MAX_TRANSMISSION_CHARS)
}

/// push_message.notification: title and body present, each field within its limit, and the
/// target its click type needs.
pub fn check_notification_fields(n: &NotificationFields<'_>) -> Result<(), Violation> {
    if n.title.is_empty() {
        return Err(violation("push_message.notification.title", "title can not be empty"));
    }
    if n.body.is_empty() {
        return Err(violation("push_message.notification.body", "body can not be empty"));
    }
    max_chars("push_message.notification.title", "title", n.title, MAX_TITLE_CHARS)?;
    max_chars("push_message.notification.body", "body", n.body, MAX_BODY_CHARS)?;
    if !CLICK_TYPES.contains(&n.click_type) {
        return Err(violation("push_message.notification.click_type", "click_type is invalid"));
    }
    let needs = |field: Option<&str>, param: &'static str, name: &str| match field {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(violation(param, format!("{name} can not be empty"))),
    };
    match n.click_type {
        "url" => needs(n.url, "push_message.notification.url", "url")?,
        "intent" => needs(n.intent, "push_message.notification.intent", "intent")?,
        "payload" | "payload_custom" => needs(n.payload, "push_message.notification.payload", "payload")?,
        _ => {}
    }
    let limits = [
        (n.url, "push_message.notification.url", "url", MAX_URL_CHARS),
        (n.payload, "push_message.notification.payload", "payload", MAX_TRANSMISSION_CHARS),
        (n.intent, "push_message.notification.intent", "intent", 4096),
        (n.logo, "push_message.notification.logo", "logo", 64),
        (n.logo_url, "push_message.notification.logo_url", "logo_url", 256),
    ];
    for (value, param, name, max) in limits {
        if let Some(v) = value {
            max_chars(param, name, v, max)?;
        }
    }
    if n.channel_level.is_some_and(|l| l > 4) {
        return Err(violation("push_message.notification.channel_level", "channel_level is invalid"));
    }
    Ok(())
}

fn max_chars(param: &'static str, name: &str, value: &str, max: usize) -> Result<(), Violation> {
    if value.chars().count() > max {
        return Err(violation(param, format!("{name} size over limit")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Notification;
    use super::*;

    fn note(title: &str, body: &str) -> PushMessage {
        PushMessage {
            notification: Some(Notification {
                title: title.into(),
                body: body.into(),
                click_type: "startapp".into(),
                ..Notification::default()
            }),
            ..PushMessage::default()
        }
    }

    #[test]
    fn exactly_one_message_kind() {
        assert!(check_push_message(&note("t", "b")).is_ok());
        let mut both = note("t", "b");
        both.transmission = Some("x".into());
        assert_eq!(check_push_message(&both).unwrap_err().param, "push_message");
        assert!(check_push_message(&PushMessage::default()).is_err());
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(check_push_message(&note(&"春".repeat(50), "b")).is_ok());
        let e = check_push_message(&note(&"春".repeat(51), "b")).unwrap_err();
        assert_eq!(e.param, "push_message.notification.title");
        assert_eq!(e.msg, "title size over limit");
        assert!(check_push_message(&note("t", &"x".repeat(257))).is_err());
    }

    #[test]
    fn click_type_url_needs_a_url() {
        let mut m = note("t", "b");
        if let Some(n) = m.notification.as_mut() {
            n.click_type = "url".into();
        }
        assert_eq!(check_push_message(&m).unwrap_err().msg, "url can not be empty");
    }

    #[test]
    fn duration_is_a_window_over_ten_minutes() {
        let with = |d: &str| PushMessage { duration: Some(d.into()), ..note("t", "b") };
        assert!(check_push_message(&with("1000-601001")).is_ok());
        assert_eq!(check_push_message(&with("1000-601000")).unwrap_err().param, "push_message.duration");
        assert_eq!(check_push_message(&with("soon-later")).unwrap_err().msg, "duration is invalid");
    }

    #[test]
    fn ttl_and_group_rules() {
        assert!(check_settings(&Settings { ttl: Some(-1), ..Settings::default() }).is_ok());
        assert!(check_settings(&Settings { ttl: Some(MAX_TTL_MS + 1), ..Settings::default() }).is_err());
        assert!(check_group_name("spring-ab_1").is_ok());
        assert!(check_group_name("spring ab").is_err());
        assert!(check_group_name(&"a".repeat(101)).is_err());
        assert!(check_request_id("short").is_err());
        assert!(check_request_id("").is_err());
    }
}
