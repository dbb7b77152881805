//! Message templates: what marketing writes (with `${name}` variables) and how one recipient's
//! copy is rendered into Getui's `push_message`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::FieldError;
use crate::upstream::getui::checks;
use crate::upstream::getui::wire::{Notification, PushMessage};

/// A campaign's message: exactly one of a notification and a pass-through transmission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplate {
    /// A visible notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationTemplate>,
    /// A pass-through payload for the app (≤ 3072 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmission: Option<String>,
}

/// A notification; `title`, `body`, `url` and `payload` may use `${variable}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationTemplate {
    /// Title, ≤ 50 characters once rendered.
    pub title: String,
    /// Body, ≤ 256 characters once rendered.
    pub body: String,
    /// What a tap does: `startapp` (default), `url`, `intent`, `payload`, `payload_custom`, `none`.
    #[serde(default = "default_click_type")]
    pub click_type: String,
    /// Target of `click_type: url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Android intent of `click_type: intent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// Payload of `click_type: payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Embedded icon file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
}

fn default_click_type() -> String {
    "startapp".into()
}

impl MessageTemplate {
    /// Names of the `${...}` variables the message uses.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for text in self.texts() {
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else { break };
                out.insert(after[..end].to_owned());
                rest = &after[end + 1..];
            }
        }
        out
    }

    fn texts(&self) -> Vec<&str> {
        let mut v = Vec::new();
        if let Some(n) = &self.notification {
            v.extend([n.title.as_str(), n.body.as_str()]);
            v.extend(n.url.as_deref());
            v.extend(n.payload.as_deref());
        }
        v.extend(self.transmission.as_deref());
        v
    }

    /// Renders one recipient's copy; an unknown variable renders as the empty string.
    pub fn render(&self, vars: &dyn Fn(&str) -> Option<String>) -> PushMessage {
        let r = |s: &str| substitute(s, vars);
        PushMessage {
            notification: self.notification.as_ref().map(|n| Notification {
                title: r(&n.title),
                body: r(&n.body),
                click_type: n.click_type.clone(),
                url: n.url.as_deref().map(r),
                intent: n.intent.clone(),
                payload: n.payload.as_deref().map(r),
                logo: n.logo.clone(),
                logo_url: n.logo_url.clone(),
                ..Notification::default()
            }),
            transmission: self.transmission.as_deref().map(r),
            ..PushMessage::default()
        }
    }

    /// Checks the template against Getui's limits, naming the failing field under `message.`.
    pub fn validate(&self) -> Result<(), FieldError> {
        let plain = self.render(&|_| None);
        checks::check_push_message(&plain).map_err(|v| {
            let field = v.param.replacen("push_message", "message", 1);
            let field = if field == "message" { "message".to_owned() } else { field };
            FieldError::new(field, v.msg)
        })
    }
}

/// Replaces every `${name}` in `text` with the variable's value.
pub fn substitute(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    if !text.contains("${") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&vars(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(body: &str) -> MessageTemplate {
        MessageTemplate {
            notification: Some(NotificationTemplate {
                title: "Sale".into(),
                body: body.into(),
                click_type: "startapp".into(),
                url: None,
                intent: None,
                payload: None,
                logo: None,
                logo_url: None,
            }),
            transmission: None,
        }
    }

    #[test]
    fn variables_are_found_and_rendered() {
        let t = template("Hi ${name}, ${pct}% off ${name}");
        assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), vec!["name", "pct"]);
        let msg = t.render(&|k| (k == "name").then(|| "Li".to_owned()));
        assert_eq!(msg.notification.unwrap().body, "Hi Li, % off Li");
        assert!(template("no variables").variables().is_empty());
        assert_eq!(substitute("broken ${name", &|_| Some("x".into())), "broken ${name");
    }

    #[test]
    fn validation_names_the_message_field() {
        let err = template(&"x".repeat(257)).validate().unwrap_err();
        assert_eq!(err.field, "message.notification.body");
        let none = MessageTemplate { notification: None, transmission: None };
        assert_eq!(none.validate().unwrap_err().field, "message");
    }
}
