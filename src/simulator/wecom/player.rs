//! Plays the WeCom server against a callback endpoint: builds inbound messages and events,
//! encrypts and signs them like WeCom does, POSTs them, and checks and decrypts the passive
//! reply. Also performs the GET URL-verification handshake.
//!
//! Tests steer it with [`Delivery`] (create time, msg id) and [`Signing`] (timestamp, nonce,
//! a broken signature) to send stale, repeated or forged deliveries.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};

use super::{DEV_WECOM_AES_KEY, DEV_WECOM_AGENT_ID, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_CORP_ID};
use crate::clock::now_s;
use crate::upstream::http::{build_client, read_body, PoolSettings};
use crate::wecom::{CryptError, MsgCrypt};
use crate::wire::wecom::query_escape;

/// WeCom gives up on a callback after 5 seconds (and retries); the player does the same.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The WeCom side of one application's callback configuration.
#[derive(Debug, Clone)]
pub struct CallbackPlayer {
    /// The callback URL configured in the admin console (may already hold a query string).
    pub url: String,
    /// The callback Token.
    pub token: String,
    /// The 43-character EncodingAESKey.
    pub encoding_aes_key: String,
    /// CorpID: `ToUserName` and the receive id inside every ciphertext.
    pub corp_id: String,
    /// The application's AgentId.
    pub agent_id: i64,
}

/// What WeCom pushes: a member's message or an event.
///
/// Kept apart from `wecom::message::InboundKind` on purpose: the player writes the XML the way
/// WeCom does, so the daemon's parser is tested against a producer it shares no code with.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A text message.
    Text {
        /// What the member typed.
        content: String,
    },
    /// A picture.
    Image {
        /// Where the picture can be fetched.
        pic_url: String,
        /// Media id (valid 3 days upstream).
        media_id: String,
    },
    /// A voice note.
    Voice {
        /// Media id.
        media_id: String,
        /// Audio format, e.g. `amr`.
        format: String,
    },
    /// A video.
    Video {
        /// Media id.
        media_id: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// A place the member shared.
    Location {
        /// `Location_X`.
        latitude: f64,
        /// `Location_Y`.
        longitude: f64,
        /// Map zoom.
        scale: u32,
        /// Place description.
        label: String,
    },
    /// A shared link.
    Link {
        /// Link title.
        title: String,
        /// Link summary.
        description: String,
        /// The URL.
        url: String,
        /// Cover picture.
        pic_url: String,
    },
    /// Event `subscribe`: the member entered the app's visible range.
    Subscribe,
    /// Event `unsubscribe`: the member left it.
    Unsubscribe,
    /// Event `click`: a menu item with `key` was tapped.
    Click {
        /// The menu key.
        key: String,
    },
    /// Event `enter_agent`: the member opened the app.
    EnterAgent,
    /// Event `view`: a menu link was opened.
    View {
        /// The link.
        url: String,
    },
    /// Event `LOCATION`: the periodic location report.
    ReportLocation {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Accuracy.
        precision: f64,
    },
}

impl Inbound {
    /// True for events, which carry no `MsgId` (WeCom deduplicates them by sender and time).
    pub fn is_event(&self) -> bool {
        self.event_name().is_some()
    }

    fn event_name(&self) -> Option<&'static str> {
        match self {
            Inbound::Subscribe => Some("subscribe"),
            Inbound::Unsubscribe => Some("unsubscribe"),
            Inbound::Click { .. } => Some("click"),
            Inbound::EnterAgent => Some("enter_agent"),
            Inbound::View { .. } => Some("view"),
            Inbound::ReportLocation { .. } => Some("LOCATION"),
            _ => None,
        }
    }

    fn msg_type(&self) -> &'static str {
        match self {
            Inbound::Text { .. } => "text",
            Inbound::Image { .. } => "image",
            Inbound::Voice { .. } => "voice",
            Inbound::Video { .. } => "video",
            Inbound::Location { .. } => "location",
            Inbound::Link { .. } => "link",
            _ => "event",
        }
    }

    /// Writes the type-specific elements.
    fn write_fields(&self, x: &mut String) {
        match self {
            Inbound::Text { content } => cdata(x, "Content", content),
            Inbound::Image { pic_url, media_id } => {
                cdata(x, "PicUrl", pic_url);
                cdata(x, "MediaId", media_id);
            }
            Inbound::Voice { media_id, format } => {
                cdata(x, "MediaId", media_id);
                cdata(x, "Format", format);
            }
            Inbound::Video { media_id, thumb_media_id } => {
                cdata(x, "MediaId", media_id);
                cdata(x, "ThumbMediaId", thumb_media_id);
            }
            Inbound::Location { latitude, longitude, scale, label } => {
                plain(x, "Location_X", latitude);
                plain(x, "Location_Y", longitude);
                plain(x, "Scale", scale);
                cdata(x, "Label", label);
            }
            Inbound::Link { title, description, url, pic_url } => {
                cdata(x, "Title", title);
                cdata(x, "Description", description);
                cdata(x, "Url", url);
                cdata(x, "PicUrl", pic_url);
            }
            Inbound::Click { key } => cdata(x, "EventKey", key),
            Inbound::View { url } => cdata(x, "EventKey", url),
            Inbound::EnterAgent => cdata(x, "EventKey", ""),
            Inbound::ReportLocation { latitude, longitude, precision } => {
                plain(x, "Latitude", latitude);
                plain(x, "Longitude", longitude);
                plain(x, "Precision", precision);
            }
            Inbound::Subscribe | Inbound::Unsubscribe => {}
        }
    }
}

/// The URL parameters of one push, each overridable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signing {
    /// `timestamp` (default: now, in seconds).
    pub timestamp: Option<String>,
    /// `nonce` (default: random digits).
    pub nonce: Option<String>,
    /// Send a wrong `msg_signature`, to test that the endpoint refuses it.
    pub tamper: bool,
}

/// One push: who sent what, and the overrides a test wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The member's UserID (`FromUserName`).
    pub from: String,
    /// The message or event.
    pub inbound: Inbound,
    /// `CreateTime` (default: now).
    pub create_time: Option<i64>,
    /// `MsgId` of a message (default: a fresh one); ignored for events.
    pub msg_id: Option<u64>,
    /// URL parameters.
    pub signing: Signing,
}

impl Delivery {
    /// A push from `from` with default time, id and signature.
    pub fn new(from: impl Into<String>, inbound: Inbound) -> Self {
        Delivery { from: from.into(), inbound, create_time: None, msg_id: None, signing: Signing::default() }
    }

    /// Sets `CreateTime` (seconds), e.g. to repeat an event or send an old one.
    pub fn created_at(mut self, create_time: i64) -> Self {
        self.create_time = Some(create_time);
        self
    }

    /// Sets `MsgId`, e.g. to send the same message twice as WeCom's retries do.
    pub fn with_msg_id(mut self, msg_id: u64) -> Self {
        self.msg_id = Some(msg_id);
        self
    }

    /// Sets the URL parameters.
    pub fn signed(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }
}

/// What the callback endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    /// HTTP status.
    pub status: u16,
    /// The body as received.
    pub body: String,
    /// The decrypted passive reply (plaintext XML) when the endpoint answered 200 with an
    /// encrypted reply whose signature checked out.
    pub reply: Option<String>,
}

/// Why a push could not be played to the end.
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// The player's own key or token is unusable.
    #[error("cannot encrypt: {0}")]
    Crypt(#[from] CryptError),
    /// The callback URL does not parse.
    #[error("bad callback URL: {0}")]
    BadUrl(String),
    /// No answer (connect refused, reset).
    #[error("no answer: {0}")]
    Transport(String),
    /// No answer within WeCom's 5 seconds.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A 200 answer whose body is neither empty nor a valid encrypted reply.
    #[error("reply is not a valid encrypted reply ({reason}): {body:?}")]
    BadReply {
        /// What was wrong.
        reason: String,
        /// The body.
        body: String,
    },
}

/// Fresh `MsgId`s: the clock at start-up, then counting, so runs do not repeat each other.
static NEXT_MSG_ID: AtomicU64 = AtomicU64::new(0);

impl CallbackPlayer {
    /// A player with the simulator's development credentials, pushing to `url`.
    pub fn dev(url: impl Into<String>) -> Self {
        CallbackPlayer {
            url: url.into(),
            token: DEV_WECOM_CALLBACK_TOKEN.into(),
            encoding_aes_key: DEV_WECOM_AES_KEY.into(),
            corp_id: DEV_WECOM_CORP_ID.into(),
            agent_id: DEV_WECOM_AGENT_ID,
        }
    }

    /// Pushes a text message from `from`.
    pub async fn text(&self, from: &str, content: &str) -> Result<CallbackAnswer, PlayerError> {
        self.deliver(&Delivery::new(from, Inbound::Text { content: content.into() })).await
    }

    /// Pushes any message or event from `from` with default time, id and signature.
    pub async fn push(&self, from: &str, inbound: Inbound) -> Result<CallbackAnswer, PlayerError> {
        self.deliver(&Delivery::new(from, inbound)).await
    }

    /// Pushes one delivery: encrypts the plaintext XML, signs it, POSTs the envelope, and
    /// verifies and decrypts a passive reply if there is one.
    pub async fn deliver(&self, d: &Delivery) -> Result<CallbackAnswer, PlayerError> {
        let crypt = self.crypt()?;
        let (timestamp, nonce) = stamp(&d.signing);
        let sealed = crypt.encrypt_random(self.plaintext(d).as_bytes(), &timestamp, &nonce)?;
        let signature = signature_of(&sealed.msg_signature, d.signing.tamper);
        let mut envelope = String::from("<xml>");
        cdata(&mut envelope, "ToUserName", &self.corp_id);
        cdata(&mut envelope, "Encrypt", &sealed.encrypt);
        cdata(&mut envelope, "AgentID", &self.agent_id.to_string());
        envelope.push_str("</xml>");
        let url = self.url_with(&[("msg_signature", &signature), ("timestamp", &timestamp), ("nonce", &nonce)]);
        let (status, body) = exchange(Method::POST, &url, Bytes::from(envelope)).await?;
        let reply = match (status, body.trim().is_empty()) {
            (200, false) => Some(open_reply(&crypt, &body)?),
            _ => None,
        };
        Ok(CallbackAnswer { status, body, reply })
    }

    /// The GET URL check: encrypts `echo`, signs it, and returns the endpoint's status and body
    /// (a correct endpoint answers 200 with exactly `echo`).
    pub async fn verify_url(&self, echo: &str) -> Result<(u16, String), PlayerError> {
        self.verify_url_with(echo, &Signing::default()).await
    }

    /// [`CallbackPlayer::verify_url`] with chosen URL parameters.
    pub async fn verify_url_with(&self, echo: &str, signing: &Signing) -> Result<(u16, String), PlayerError> {
        let crypt = self.crypt()?;
        let (timestamp, nonce) = stamp(signing);
        let sealed = crypt.encrypt_random(echo.as_bytes(), &timestamp, &nonce)?;
        let signature = signature_of(&sealed.msg_signature, signing.tamper);
        let url = self.url_with(&[
            ("msg_signature", &signature),
            ("timestamp", &timestamp),
            ("nonce", &nonce),
            ("echostr", &sealed.encrypt),
        ]);
        exchange(Method::GET, &url, Bytes::new()).await
    }

    /// The plaintext XML of a delivery, as WeCom puts it inside `Encrypt`.
    pub fn plaintext(&self, d: &Delivery) -> String {
        let mut x = String::from("<xml>");
        cdata(&mut x, "ToUserName", &self.corp_id);
        cdata(&mut x, "FromUserName", &d.from);
        plain(&mut x, "CreateTime", d.create_time.unwrap_or_else(now_s));
        cdata(&mut x, "MsgType", d.inbound.msg_type());
        if let Some(event) = d.inbound.event_name() {
            cdata(&mut x, "Event", event);
        }
        d.inbound.write_fields(&mut x);
        if !d.inbound.is_event() {
            plain(&mut x, "MsgId", d.msg_id.unwrap_or_else(fresh_msg_id));
        }
        plain(&mut x, "AgentID", self.agent_id);
        x.push_str("</xml>");
        x
    }

    fn crypt(&self) -> Result<MsgCrypt, CryptError> {
        MsgCrypt::new(&self.token, &self.encoding_aes_key, &self.corp_id)
    }

    /// The callback URL with `params` appended, percent-encoded (base64 holds `+`, `/`, `=`).
    fn url_with(&self, params: &[(&str, &str)]) -> String {
        let mut url = self.url.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            let _ = write!(url, "{sep}{k}={}", query_escape(v));
            sep = '&';
        }
        url
    }
}

/// Checks a passive reply's signature and receive id and returns its plaintext.
fn open_reply(crypt: &MsgCrypt, body: &str) -> Result<String, PlayerError> {
    let bad = |reason: String| PlayerError::BadReply { reason, body: body.to_owned() };
    let field = |tag: &str| element_text(body, tag).ok_or_else(|| bad(format!("no <{tag}>")));
    let (encrypt, signature) = (field("Encrypt")?, field("MsgSignature")?);
    let (timestamp, nonce) = (field("TimeStamp")?, field("Nonce")?);
    let plain = crypt.decrypt(signature, timestamp, nonce, encrypt).map_err(|e| bad(e.to_string()))?;
    String::from_utf8(plain).map_err(|_| bad("plaintext is not UTF-8".into()))
}

/// The text of the first `<tag>` element, without a CDATA wrapper. Enough for the four flat
/// elements of a reply envelope; not a general XML parser.
fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let inner = xml[start..end].trim();
    Some(inner.strip_prefix("<![CDATA[").and_then(|s| s.strip_suffix("]]>")).unwrap_or(inner))
}

async fn exchange(method: Method, url: &str, body: Bytes) -> Result<(u16, String), PlayerError> {
    let client = build_client(&PoolSettings::default()).map_err(|e| PlayerError::Transport(e.to_string()))?;
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "text/xml; charset=utf-8")
        .header("user-agent", "Mozilla/5.0 (campaignd WeCom simulator)")
        .body(Full::new(body))
        .map_err(|e| PlayerError::BadUrl(e.to_string()))?;
    let answer = async {
        let resp = client.request(req).await.map_err(|e| PlayerError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = read_body(resp.into_body()).await.map_err(PlayerError::Transport)?;
        Ok::<_, PlayerError>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(CALLBACK_TIMEOUT, answer).await.map_err(|_| PlayerError::Timeout(CALLBACK_TIMEOUT))?
}

fn stamp(signing: &Signing) -> (String, String) {
    let timestamp = signing.timestamp.clone().unwrap_or_else(|| now_s().to_string());
    let nonce = signing.nonce.clone().unwrap_or_else(|| fastrand::u32(100_000_000..=999_999_999).to_string());
    (timestamp, nonce)
}

/// The real signature, or one that differs from it in every position when tampering.
fn signature_of(real: &str, tamper: bool) -> String {
    if tamper {
        real.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
    } else {
        real.to_owned()
    }
}

fn cdata(x: &mut String, tag: &str, value: &str) {
    // A "]]>" inside the value would end the section early; split it across two sections.
    let _ = write!(x, "<{tag}><![CDATA[{}]]></{tag}>", value.replace("]]>", "]]]]><![CDATA[>"));
}

fn plain(x: &mut String, tag: &str, value: impl std::fmt::Display) {
    let _ = write!(x, "<{tag}>{value}</{tag}>");
}

fn fresh_msg_id() -> u64 {
    let _ = NEXT_MSG_ID.compare_exchange(
        0,
        // Random low bits: two players started in the same second must not reuse ids.
        (u64::try_from(now_s()).unwrap_or(1) << 20) | fastrand::u64(..1 << 19),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
    NEXT_MSG_ID.fetch_add(1, Ordering::AcqRel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player() -> CallbackPlayer {
        CallbackPlayer::dev("http://127.0.0.1:1/wecom/callback")
    }

    #[test]
    fn plaintext_has_the_documented_elements() {
        let p = player();
        let text = p.plaintext(
            &Delivery::new("zhangsan", Inbound::Text { content: "a]]>b".into() })
                .created_at(1_700_000_000)
                .with_msg_id(42),
        );
        assert_eq!(
            text,
            "<xml><ToUserName><![CDATA[wwcampaignddev001]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[a]]]]><![CDATA[>b]]></Content><MsgId>42</MsgId><AgentID>1000002</AgentID></xml>"
        );
        let click = p.plaintext(&Delivery::new("u", Inbound::Click { key: "K1".into() }).with_msg_id(7));
        assert!(click.contains("<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[click]]></Event><EventKey><![CDATA[K1]]></EventKey>"), "{click}");
        assert!(!click.contains("MsgId"), "events carry no MsgId: {click}");
        let loc = p.plaintext(&Delivery::new(
            "u",
            Inbound::ReportLocation { latitude: 23.1, longitude: 113.3, precision: 65.0 },
        ));
        assert!(loc.contains("<Event><![CDATA[LOCATION]]></Event><Latitude>23.1</Latitude>"), "{loc}");
    }

    #[test]
    fn urls_get_escaped_parameters() {
        let p = player();
        assert_eq!(
            p.url_with(&[("echostr", "a+b/c="), ("nonce", "1")]),
            "http://127.0.0.1:1/wecom/callback?echostr=a%2Bb%2Fc%3D&nonce=1"
        );
        let q = CallbackPlayer { url: "http://h/cb?app=1".into(), ..player() };
        assert_eq!(q.url_with(&[("nonce", "1")]), "http://h/cb?app=1&nonce=1");
    }

    #[test]
    fn replies_are_verified_and_decrypted() {
        let p = player();
        let crypt = p.crypt().unwrap();
        let sealed = crypt.encrypt_random(b"<xml><Content>ok</Content></xml>", "1700000000", "123").unwrap();
        assert_eq!(open_reply(&crypt, &sealed.to_xml()).unwrap(), "<xml><Content>ok</Content></xml>");
        let forged = sealed.to_xml().replace(&sealed.msg_signature, &signature_of(&sealed.msg_signature, true));
        assert!(matches!(open_reply(&crypt, &forged), Err(PlayerError::BadReply { .. })));
        assert!(matches!(open_reply(&crypt, "success"), Err(PlayerError::BadReply { .. })));
        assert_ne!(fresh_msg_id(), fresh_msg_id());
    }
}
