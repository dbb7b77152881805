//! Message templates: what marketing writes (the seed's four template kinds plus the iOS APNs
//! payload, with `${name}` variables, or a WeCom application message), and one recipient's
//! copy of it with the variables filled in. The `render` module turns that copy into Getui's
//! `push_message` and `push_channel`; the mapping table is in `docs/getui-features.md`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::FieldError;
use crate::wire::getui::checks::{self, NotificationFields};
use crate::wire::wecom::{check_content, check_news, check_textcard};

/// A campaign's message: exactly one of the four kinds, optionally with an iOS APNs payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplate {
    /// A notification (the seed's NotificationTemplate; `click_type` also gives v2's others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationTemplate>,
    /// A notification that opens a web page (the seed's LinkTemplate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkTemplate>,
    /// A pass-through payload for the app, ≤ 3072 characters (the seed's TransmissionTemplate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmission: Option<String>,
    /// A notification whose tap downloads an app (the seed's NotyPopLoadTemplate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popup_download: Option<PopupDownloadTemplate>,
    /// What iOS devices show through APNs (v2 `push_channel.ios`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ios: Option<ApnsTemplate>,
    /// The application message of a WeCom campaign (text, textcard, news or markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wecom: Option<WecomMessage>,
}

/// A WeCom application message as a campaign defines it: one of the four types a campaign can
/// send without uploading media.
///
/// It reads and writes the vendor's shape, `{"msgtype":"text","text":{"content":"hi"}}`, in the
/// API and in the store alike (stored records keep the bytes they had when the spec held the
/// wire type itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(into = "TaggedWecom", from = "TaggedWecom")]
pub enum WecomMessage {
    /// Plain text; `\n` and `<a href>` links are allowed.
    Text {
        /// 1..=2048 bytes.
        content: String,
    },
    /// A card with a title, a description, a link and a button.
    TextCard {
        /// At most 128 bytes.
        title: String,
        /// At most 512 bytes; may hold `<div class="gray|highlight|normal">`.
        description: String,
        /// Where the card leads.
        url: String,
        /// Button text, at most 4 characters; WeCom shows "详情" when absent.
        btntxt: Option<String>,
    },
    /// One to eight linked articles.
    News {
        /// The articles, in display order.
        articles: Vec<WecomArticle>,
    },
    /// Markdown (shown by the WeCom app only).
    Markdown {
        /// 1..=2048 bytes.
        content: String,
    },
}

/// One article of a WeCom `news` message; the first is shown large.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WecomArticle {
    /// Headline.
    pub title: String,
    /// Summary under the headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where a tap leads.
    pub url: String,
    /// Cover image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picurl: Option<String>,
}

/// How [`WecomMessage`] is written: `msgtype` beside a body named after it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
enum TaggedWecom {
    Text { text: WecomContent },
    Textcard { textcard: WecomCard },
    News { news: WecomArticles },
    Markdown { markdown: WecomContent },
}

#[derive(Serialize, Deserialize)]
struct WecomContent {
    content: String,
}

#[derive(Serialize, Deserialize)]
struct WecomCard {
    title: String,
    description: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    btntxt: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WecomArticles {
    articles: Vec<WecomArticle>,
}

impl From<WecomMessage> for TaggedWecom {
    fn from(m: WecomMessage) -> Self {
        match m {
            WecomMessage::Text { content } => TaggedWecom::Text { text: WecomContent { content } },
            WecomMessage::TextCard { title, description, url, btntxt } => {
                TaggedWecom::Textcard { textcard: WecomCard { title, description, url, btntxt } }
            }
            WecomMessage::News { articles } => TaggedWecom::News { news: WecomArticles { articles } },
            WecomMessage::Markdown { content } => TaggedWecom::Markdown { markdown: WecomContent { content } },
        }
    }
}

impl From<TaggedWecom> for WecomMessage {
    fn from(m: TaggedWecom) -> Self {
        match m {
            TaggedWecom::Text { text } => WecomMessage::Text { content: text.content },
            TaggedWecom::Textcard { textcard: c } => {
                WecomMessage::TextCard { title: c.title, description: c.description, url: c.url, btntxt: c.btntxt }
            }
            TaggedWecom::News { news } => WecomMessage::News { articles: news.articles },
            TaggedWecom::Markdown { markdown } => WecomMessage::Markdown { content: markdown.content },
        }
    }
}

impl WecomMessage {
    /// Checks WeCom's documented limits, so that a campaign is refused when it is created
    /// rather than by every send. The error says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            WecomMessage::Text { content } => check_content("text.content", content),
            WecomMessage::Markdown { content } => check_content("markdown.content", content),
            WecomMessage::TextCard { title, description, url, btntxt } => {
                check_textcard(title, description, url, btntxt.as_deref())
            }
            WecomMessage::News { articles } => check_news(articles.iter().map(|a| (a.title.as_str(), a.url.as_str()))),
        }
    }
}

/// Looks of a notification shared by the notification, link and popup-download kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationTemplate {
    /// Title, ≤ 50 characters once rendered.
    pub title: String,
    /// Body (the seed's `text`), ≤ 256 characters once rendered.
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
    /// The seed's transmission content of a notification: handed to the app when the
    /// notification is tapped (sent as `click_type: payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmission_content: Option<String>,
    /// Embedded icon file name, ≤ 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Icon URL, ≤ 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Ring on arrival (default true).
    #[serde(default = "yes")]
    pub ring: bool,
    /// Vibrate on arrival (default true).
    #[serde(default = "yes")]
    pub vibrate: bool,
    /// The user may swipe it away (default true; v2 cannot send an unclearable one).
    #[serde(default = "yes")]
    pub clearable: bool,
}

/// The seed's LinkTemplate: a notification that opens `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTemplate {
    /// Title, ≤ 50 characters.
    pub title: String,
    /// Body, ≤ 256 characters.
    pub body: String,
    /// The page to open, ≤ 1024 characters.
    pub url: String,
    /// Embedded icon file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Ring on arrival (default true).
    #[serde(default = "yes")]
    pub ring: bool,
    /// Vibrate on arrival (default true).
    #[serde(default = "yes")]
    pub vibrate: bool,
    /// Swipe-away allowed (default true).
    #[serde(default = "yes")]
    pub clearable: bool,
}

/// The seed's NotyPopLoadTemplate: notification → confirmation popup → download.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopupDownloadTemplate {
    /// Notification title.
    pub title: String,
    /// Notification body.
    pub body: String,
    /// Notification icon file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Popup title (the seed's popTitle).
    pub popup_title: String,
    /// Popup text (the seed's popContent).
    pub popup_content: String,
    /// Popup image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popup_image: Option<String>,
    /// Confirm and cancel button labels (default 下载 / 取消).
    #[serde(default = "default_buttons")]
    pub popup_buttons: [String; 2],
    /// Title of the download.
    pub download_title: String,
    /// The package to download, ≤ 1024 characters.
    pub download_url: String,
    /// Ring on arrival (default true).
    #[serde(default = "yes")]
    pub ring: bool,
    /// Vibrate on arrival (default true).
    #[serde(default = "yes")]
    pub vibrate: bool,
}

/// The iOS APNs payload (the seed's IGtAPNPayload), sent as v2 `push_channel.ios`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApnsTemplate {
    /// Alert title; `${name}` allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Alert body (the seed's alertMsg / body); `${name}` allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Alert subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Localized body key and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc_key: Option<String>,
    /// Arguments of `loc_key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loc_args: Vec<String>,
    /// Localized title key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_loc_key: Option<String>,
    /// Arguments of `title_loc_key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub title_loc_args: Vec<String>,
    /// Localized action button key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_loc_key: Option<String>,
    /// Launch image file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_image: Option<String>,
    /// Badge: `"+1"`, `"-1"` or an absolute number such as `"5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    /// Sound file name; `silent` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Notification category (actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Wake the app in the background (`content-available: 1`).
    #[serde(default)]
    pub content_available: bool,
    /// Custom payload for the app (the seed's customMsg): a JSON object, sent as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

fn default_click_type() -> String {
    "startapp".into()
}

fn yes() -> bool {
    true
}

fn default_buttons() -> [String; 2] {
    ["下载".into(), "取消".into()]
}

/// Largest APNs payload in bytes (Apple: 4 KB for regular remote notifications).
pub const MAX_APNS_BYTES: usize = 4096;
/// Getui's silent iOS sound.
const SILENT_SOUND: &str = "com.gexin.ios.silence";

/// One recipient's copy of a Getui campaign's message: the variables filled in and every
/// notification-like kind brought to one notification. At most one of `notification` and
/// `transmission` is set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageCopy {
    /// What Android shows, for the notification, link and popup-download kinds.
    pub notification: Option<NotificationCopy>,
    /// The pass-through payload of the transmission kind.
    pub transmission: Option<String>,
    /// What iOS shows: the APNs dictionary (`aps`, badge, payload) in Getui's iOS-channel shape.
    pub ios: Option<serde_json::Value>,
}

/// A notification as one recipient sees it, whichever template kind it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotificationCopy {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// What a tap does: `startapp`, `url`, `intent`, `payload`, `payload_custom` or `none`.
    pub click_type: String,
    /// Target of `click_type: url`.
    pub url: Option<String>,
    /// Android intent of `click_type: intent`.
    pub intent: Option<String>,
    /// Payload of `click_type: payload`.
    pub payload: Option<String>,
    /// Embedded icon file name.
    pub logo: Option<String>,
    /// Icon URL.
    pub logo_url: Option<String>,
    /// Rings or vibrates on arrival (false: shown silently).
    pub audible: bool,
}

impl NotificationCopy {
    /// The fields Getui's notification rules look at, with `channel_level` left to the wire.
    fn fields(&self) -> NotificationFields<'_> {
        NotificationFields {
            title: &self.title,
            body: &self.body,
            click_type: &self.click_type,
            url: self.url.as_deref(),
            intent: self.intent.as_deref(),
            payload: self.payload.as_deref(),
            logo: self.logo.as_deref(),
            logo_url: self.logo_url.as_deref(),
            channel_level: None,
        }
    }
}

impl MessageCopy {
    /// Bytes of the APNs payload as it is sent, if there is one.
    pub fn apns_bytes(&self) -> usize {
        self.ios.as_ref().map_or(0, json_len)
    }
}

/// Length of `v` written as compact JSON, counted without building the text.
pub fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

impl MessageTemplate {
    /// Names of the `${...}` variables the message uses.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for text in self.texts() {
            let mut rest = text;
            while let Some(start) = placeholder_start(rest) {
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
            v.extend(n.transmission_content.as_deref());
        }
        if let Some(l) = &self.link {
            v.extend([l.title.as_str(), l.body.as_str(), l.url.as_str()]);
        }
        if let Some(p) = &self.popup_download {
            v.extend([p.title.as_str(), p.body.as_str(), p.popup_title.as_str(), p.popup_content.as_str()]);
            v.push(p.download_url.as_str());
        }
        if let Some(i) = &self.ios {
            v.extend(i.title.as_deref());
            v.extend(i.body.as_deref());
        }
        v.extend(self.transmission.as_deref());
        v
    }

    /// The text fields that may hold `${...}` variables (those [`Self::variables`] reads), in
    /// a fixed order, for changing them in place: the legacy ingress turns the texts in which
    /// the messages of a batch differ into variables, so that one `batch_single` campaign
    /// sends them all.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut v: Vec<&mut String> = Vec::new();
        if let Some(n) = &mut self.notification {
            v.extend([&mut n.title, &mut n.body]);
            v.extend(n.url.as_mut());
            v.extend(n.payload.as_mut());
            v.extend(n.transmission_content.as_mut());
        }
        if let Some(l) = &mut self.link {
            v.extend([&mut l.title, &mut l.body, &mut l.url]);
        }
        if let Some(p) = &mut self.popup_download {
            v.extend([&mut p.title, &mut p.body, &mut p.popup_title, &mut p.popup_content]);
            v.push(&mut p.download_url);
        }
        if let Some(i) = &mut self.ios {
            v.extend(i.title.as_mut());
            v.extend(i.body.as_mut());
        }
        v.extend(self.transmission.as_mut());
        v
    }

    /// Which of the four kinds the template is, or `None` unless exactly one is set.
    pub fn kind(&self) -> Option<&'static str> {
        let kinds = [
            (self.notification.is_some(), "notification"),
            (self.link.is_some(), "link"),
            (self.transmission.is_some(), "transmission"),
            (self.popup_download.is_some(), "popup_download"),
            (self.wecom.is_some(), "wecom"),
        ];
        let mut set = kinds.iter().filter(|(on, _)| *on);
        match (set.next(), set.next()) {
            (Some((_, k)), None) => Some(k),
            _ => None,
        }
    }

    /// One recipient's copy; an unknown variable becomes the empty string.
    pub fn personalize<'v>(&self, vars: &dyn Fn(&str) -> Option<&'v str>) -> MessageCopy {
        let r = |s: &str| substitute(s, vars);
        let notification = if let Some(n) = &self.notification {
            Some(notification_copy(n, &r))
        } else if let Some(l) = &self.link {
            Some(NotificationCopy {
                title: r(&l.title),
                body: r(&l.body),
                click_type: "url".into(),
                url: Some(r(&l.url)),
                logo: l.logo.clone(),
                logo_url: l.logo_url.clone(),
                audible: l.ring || l.vibrate,
                ..NotificationCopy::default()
            })
        } else {
            self.popup_download.as_ref().map(|p| NotificationCopy {
                title: r(&p.title),
                body: r(&p.body),
                click_type: "payload".into(),
                payload: Some(popup_payload(p, &r)),
                logo: p.logo.clone(),
                audible: p.ring || p.vibrate,
                ..NotificationCopy::default()
            })
        };
        MessageCopy {
            notification,
            transmission: self.transmission.as_deref().map(r),
            ios: self.ios.as_ref().map(|i| apns_json(i, &r)),
        }
    }

    /// Checks a WeCom campaign's message: only `wecom`, within WeCom's limits.
    pub fn validate_wecom(&self) -> Result<(), FieldError> {
        let Some(m) = self.wecom.as_ref().filter(|_| self.kind() == Some("wecom") && self.ios.is_none()) else {
            return Err(FieldError::new(
                "message",
                "a WeCom campaign sends one application message: give only `wecom`, e.g. \
                 {\"wecom\": {\"msgtype\": \"text\", \"text\": {\"content\": \"...\"}}}",
            ));
        };
        m.validate().map_err(|problem| FieldError::new("message.wecom", problem))
    }

    /// Checks the template against Getui's limits, naming the failing field under `message.`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.kind().is_none() || self.wecom.is_some() {
            return Err(FieldError::new(
                "message",
                "give exactly one of notification, link, transmission and popup_download \
                 (`wecom` is for campaigns on WeCom apps)",
            ));
        }
        self.check_unsendable()?;
        // Variables render as a placeholder so that a `${name}`-only title is not "empty";
        // each recipient's copy is checked again when it is sent.
        let plain = self.personalize(&|_| Some("x"));
        let checked = match (&plain.notification, &plain.transmission) {
            (Some(n), _) => checks::check_notification_fields(&n.fields()),
            (None, Some(t)) => checks::check_transmission(t),
            (None, None) => Ok(()),
        };
        checked.map_err(|v| {
            let field = v.param.replacen("push_message.notification", self.notification_field(), 1);
            FieldError::new(field.replacen("push_message", "message", 1), v.msg)
        })?;
        let size = plain.apns_bytes();
        if size > MAX_APNS_BYTES {
            return Err(FieldError::new(
                "message.ios",
                format!("the APNs payload is {size} bytes; Apple takes at most {MAX_APNS_BYTES}"),
            ));
        }
        if let Some(badge) = self.ios.as_ref().and_then(|i| i.badge.as_deref()) {
            let digits = badge.strip_prefix(['+', '-']).unwrap_or(badge);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
                return Err(FieldError::new("message.ios.badge", "must be \"+N\", \"-N\" or \"N\", e.g. \"+1\""));
            }
        }
        Ok(())
    }

    /// Settings the seed allows that v2 cannot carry are refused rather than silently dropped.
    fn check_unsendable(&self) -> Result<(), FieldError> {
        let unclearable = [
            (self.notification.as_ref().is_some_and(|n| !n.clearable), "message.notification.clearable"),
            (self.link.as_ref().is_some_and(|l| !l.clearable), "message.link.clearable"),
        ];
        if let Some((_, field)) = unclearable.iter().find(|(bad, _)| *bad) {
            return Err(FieldError::new(*field, "Getui v2 has no unclearable notifications; leave it true"));
        }
        if let Some(n) = &self.notification {
            if n.transmission_content.is_some() && (n.click_type != "startapp" || n.payload.is_some()) {
                return Err(FieldError::new(
                    "message.notification.transmission_content",
                    "is handed to the app when the notification is tapped (sent as click_type payload): use it \
                     alone with the default click_type, or use click_type payload with payload instead",
                ));
            }
        }
        if let Some(p) = &self.popup_download {
            if p.popup_title.trim().is_empty() || p.download_title.trim().is_empty() {
                return Err(FieldError::new("message.popup_download", "popup_title and download_title must be set"));
            }
        }
        Ok(())
    }

    fn notification_field(&self) -> &'static str {
        match self.kind() {
            Some("link") => "message.link",
            Some("popup_download") => "message.popup_download",
            _ => "message.notification",
        }
    }
}

fn notification_copy(n: &NotificationTemplate, r: &dyn Fn(&str) -> String) -> NotificationCopy {
    let (click_type, payload) = match (&n.transmission_content, &n.payload) {
        (Some(content), _) => ("payload".to_owned(), Some(r(content))),
        (None, p) => (n.click_type.clone(), p.as_deref().map(r)),
    };
    NotificationCopy {
        title: r(&n.title),
        body: r(&n.body),
        click_type,
        url: n.url.as_deref().map(r),
        intent: n.intent.clone(),
        payload,
        logo: n.logo.clone(),
        logo_url: n.logo_url.clone(),
        audible: n.ring || n.vibrate,
    }
}

/// v2 has no popup-download template (the v1 SDK drew the popup itself), so the popup and the
/// download travel whole in the tap's payload for the app to show: nothing the sender wrote is
/// dropped.
fn popup_payload(p: &PopupDownloadTemplate, r: &dyn Fn(&str) -> String) -> String {
    serde_json::json!({
        "kind": "popup_download",
        "popup": {
            "title": r(&p.popup_title),
            "content": r(&p.popup_content),
            "image": p.popup_image,
            "buttons": p.popup_buttons,
        },
        "download": { "title": p.download_title, "url": r(&p.download_url) },
    })
    .to_string()
}

/// The APNs dictionary in the shape Getui's `push_channel.ios` takes: `aps.alert` with APNs'
/// kebab-case keys. It stays with the template because creation measures it against Apple's 4 KB.
fn apns_json(i: &ApnsTemplate, r: &dyn Fn(&str) -> String) -> serde_json::Value {
    let mut alert = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            alert.insert(k.to_owned(), v);
        }
    };
    put("title", i.title.as_deref().map(|t| r(t).into()));
    put("body", i.body.as_deref().map(|b| r(b).into()));
    put("subtitle", i.subtitle.clone().map(Into::into));
    put("loc-key", i.loc_key.clone().map(Into::into));
    put("loc-args", (!i.loc_args.is_empty()).then(|| i.loc_args.clone().into()));
    put("title-loc-key", i.title_loc_key.clone().map(Into::into));
    put("title-loc-args", (!i.title_loc_args.is_empty()).then(|| i.title_loc_args.clone().into()));
    put("action-loc-key", i.action_loc_key.clone().map(Into::into));
    put("launch-image", i.launch_image.clone().map(Into::into));
    let mut aps = serde_json::Map::new();
    if !alert.is_empty() {
        aps.insert("alert".into(), alert.into());
    }
    if let Some(s) = &i.sound {
        aps.insert("sound".into(), if s == "silent" { SILENT_SOUND.into() } else { s.clone().into() });
    }
    if let Some(c) = &i.category {
        aps.insert("category".into(), c.clone().into());
    }
    aps.insert("content-available".into(), u8::from(i.content_available).into());
    let mut ios = serde_json::json!({ "type": "notify", "aps": aps });
    if let Some(b) = &i.badge {
        ios["auto_badge"] = b.clone().into();
    }
    if let Some(p) = &i.payload {
        ios["payload"] = match p {
            serde_json::Value::String(s) => s.clone().into(),
            other => other.to_string().into(),
        };
    }
    ios
}

/// Replaces every `${name}` in `text` with the variable's value.
pub fn substitute<'v>(text: &str, vars: &dyn Fn(&str) -> Option<&'v str>) -> String {
    let Some(first) = placeholder_start(text) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len() + 16);
    let (mut rest, mut start) = (text, Some(first));
    while let Some(at) = start {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(vars(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
        start = placeholder_start(rest);
    }
    out.push_str(rest);
    out
}

/// Where the first `${` of `s` starts. Searched for by its `$` (one byte, memchr): a two-byte
/// `str` pattern sets up a substring searcher on every call, which cost more than scanning
/// the short texts of a message (a batch_single campaign runs this per recipient and text).
fn placeholder_start(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(found) = memchr::memchr(b'$', &bytes[from..]) {
        let at = from + found;
        if bytes.get(at + 1) == Some(&b'{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(v: serde_json::Value) -> MessageTemplate {
        serde_json::from_value(v).unwrap()
    }

    fn note(body: &str) -> MessageTemplate {
        template(serde_json::json!({"notification": {"title": "Sale", "body": body}}))
    }

    #[test]
    fn texts_mut_reaches_every_text_that_variables_reads() {
        let mut m = template(serde_json::json!({
            "notification": {"title": "a", "body": "b", "click_type": "url", "url": "c", "transmission_content": "d"},
            "ios": {"title": "e", "body": "f"}
        }));
        for (i, t) in m.texts_mut().into_iter().enumerate() {
            *t = format!("${{v{i}}}");
        }
        let names: Vec<String> = m.variables().into_iter().collect();
        assert_eq!(names, ["v0", "v1", "v2", "v3", "v4", "v5"]);
        let mut t = template(serde_json::json!({"transmission": "x"}));
        assert_eq!(t.texts_mut().len(), t.texts().len());
    }

    #[test]
    fn a_dollar_without_a_brace_is_text_and_every_placeholder_is_filled() {
        let vars = |k: &str| match k {
            "a" => Some("1"),
            "b" => Some("$"),
            _ => None,
        };
        assert_eq!(substitute("$5 $${a}${b}{a} ${none}$", &vars), "$5 $1${a} $");
        assert_eq!(substitute("no placeholder $ here", &vars), "no placeholder $ here");
        assert_eq!(substitute("${a} then ${b", &vars), "1 then ${b");
        assert_eq!(note("$$ ${x}$${y} $").variables().into_iter().collect::<Vec<_>>(), ["x", "y"]);
    }

    #[test]
    fn validation_names_the_message_field() {
        let err = note(&"x".repeat(257)).validate().unwrap_err();
        assert_eq!(err.field, "message.notification.body");
        assert_eq!(MessageTemplate::default().validate().unwrap_err().field, "message");
        let two = template(serde_json::json!({"transmission": "x", "link": {"title": "t", "body": "b", "url": "u"}}));
        assert_eq!(two.validate().unwrap_err().field, "message");
        let long_link = template(serde_json::json!({"link": {"title": "t", "body": "b", "url": "u".repeat(1025)}}));
        assert_eq!(long_link.validate().unwrap_err().field, "message.link.url");
        let unclearable =
            template(serde_json::json!({"notification": {"title": "t", "body": "b", "clearable": false}}));
        assert_eq!(unclearable.validate().unwrap_err().field, "message.notification.clearable");
        let badge = template(serde_json::json!({"transmission": "x", "ios": {"badge": "lots"}}));
        assert_eq!(badge.validate().unwrap_err().field, "message.ios.badge");
        let huge = template(serde_json::json!({"transmission": "x", "ios": {"body": "x".repeat(5000)}}));
        assert_eq!(huge.validate().unwrap_err().field, "message.ios");
    }
}
