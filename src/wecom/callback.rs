//! The WeCom callback as pure functions of the request: URL verification, the checks every
//! delivery must pass, what a message asks for (a passive reply, an opt-out, an opt-in), and
//! the encrypted reply. No I/O: the HTTP edge (`api::wecom`) applies the effects to the store
//! and remembers deliveries it has answered.

use std::time::Duration;

use super::message::{parse_envelope, parse_inbound, Event, Inbound, InboundKind, XmlError};
use super::reply::{reply_xml, ReplyMessage};
use super::{CryptError, MsgCrypt};
use crate::domain::recipient::parse_user;

/// One application's callback, resolved from the configuration (secrets included).
#[derive(Debug, Clone)]
pub struct CallbackAgent {
    /// The app's name: the `{agent}` of `/wecom/{agent}/callback` and the metric label.
    pub app: String,
    /// CorpID: the receive id of inbound messages and the sender of replies.
    pub corp_id: String,
    /// Token and EncodingAESKey.
    pub crypt: MsgCrypt,
    /// Largest accepted distance between a delivery's timestamp and now.
    pub timestamp_window: Duration,
    /// Text messages equal to one of these opt the sender out.
    pub opt_out_keywords: Vec<String>,
    /// Text messages equal to one of these opt the sender back in.
    pub opt_in_keywords: Vec<String>,
    /// Keyword and menu replies, first match wins.
    pub replies: Vec<ReplyRule>,
}

/// A passive reply rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyRule {
    /// Matches text messages containing this keyword.
    pub keyword: Option<String>,
    /// Matches menu clicks with this EventKey.
    pub click: Option<String>,
    /// The answer.
    pub reply: ReplyMessage,
}

/// Why a delivery is refused before any handler sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A query parameter is missing.
    #[error("query parameter `{0}` is missing")]
    Missing(&'static str),
    /// The timestamp is not a number or too far from now.
    #[error("timestamp {0:?} is outside the accepted window")]
    Stale(String),
    /// The signature does not match the Token.
    #[error("msg_signature does not match")]
    BadSignature,
    /// The message was encrypted for another corp.
    #[error("the message is addressed to another receive id")]
    WrongReceiver,
    /// The body (the envelope around the ciphertext) is not the expected XML.
    #[error("unparsable XML: {0}")]
    BadXml(String),
    /// The decrypted message is not UTF-8 or not the expected XML.
    #[error("unparsable decrypted message: {0}")]
    BadPlaintext(String),
    /// Decryption failed for another reason (bad base64, padding, buffer).
    #[error("cannot decrypt: {0}")]
    Crypt(CryptError),
    /// The sender's id is one the suppression API would refuse (too long, odd characters).
    #[error("{0}")]
    BadUser(String),
    /// The body did not arrive within the deadline (`server.body_timeout_ms`).
    #[error("the body did not arrive within {0:?}")]
    SlowBody(Duration),
}

/// The one answer to every failure after a valid signature: a tampered ciphertext must not
/// learn whether its padding, its receive id or its plaintext was wrong (a padding oracle).
const UNDECRYPTABLE_CODE: &str = "undecryptable";
const UNDECRYPTABLE_MESSAGE: &str = "the message cannot be decrypted with this app's EncodingAESKey";

impl Refusal {
    /// The `result` label of `wecom_callbacks_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Missing(_) => "bad_request",
            Refusal::Stale(_) => "stale",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongReceiver => "wrong_receiver",
            Refusal::BadXml(_) | Refusal::BadPlaintext(_) => "bad_xml",
            Refusal::Crypt(_) => "bad_ciphertext",
            Refusal::BadUser(_) => "bad_user",
            Refusal::SlowBody(_) => "body_timeout",
        }
    }

    /// True for failures found while decrypting a correctly signed message; they all get
    /// one answer (see [`Refusal::code`]) and differ only in the metric label and the log.
    pub fn is_decryption_failure(&self) -> bool {
        matches!(self, Refusal::WrongReceiver | Refusal::BadPlaintext(_) | Refusal::Crypt(_))
    }

    /// The HTTP status: 403 for a failed signature, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadSignature => 403,
            Refusal::SlowBody(_) => 408,
            _ => 400,
        }
    }

    /// The error code the caller sees: the label, except that decryption failures share one.
    pub fn code(&self) -> &'static str {
        if self.is_decryption_failure() {
            UNDECRYPTABLE_CODE
        } else {
            self.label()
        }
    }

    /// The message the caller sees; decryption failures share one.
    pub fn public_message(&self) -> String {
        if self.is_decryption_failure() {
            UNDECRYPTABLE_MESSAGE.to_owned()
        } else {
            self.to_string()
        }
    }
}

impl From<CryptError> for Refusal {
    fn from(e: CryptError) -> Self {
        match e {
            CryptError::ValidateSignature => Refusal::BadSignature,
            CryptError::ValidateCorpid => Refusal::WrongReceiver,
            other => Refusal::Crypt(other),
        }
    }
}

impl From<XmlError> for Refusal {
    fn from(e: XmlError) -> Self {
        Refusal::BadXml(e.to_string())
    }
}

/// The signed query of every callback request (percent-decoded).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallbackQuery {
    /// `msg_signature`.
    pub msg_signature: String,
    /// `timestamp`, seconds.
    pub timestamp: String,
    /// `nonce`.
    pub nonce: String,
    /// `echostr` (URL verification only).
    pub echostr: Option<String>,
}

impl CallbackQuery {
    /// Parses a raw query string. A `+` stays a `+`: the echostr is base64 (the reference's
    /// pitfall 6), so this is percent-decoding only, not form decoding.
    pub fn parse(query: &str) -> Result<CallbackQuery, Refusal> {
        let mut q = CallbackQuery::default();
        let (mut sig, mut ts, mut nonce) = (None, None, None);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = crate::percent::decode(v);
            match k {
                "msg_signature" => sig = Some(v),
                "timestamp" => ts = Some(v),
                "nonce" => nonce = Some(v),
                "echostr" => q.echostr = Some(v),
                _ => {}
            }
        }
        q.msg_signature = sig.ok_or(Refusal::Missing("msg_signature"))?;
        q.timestamp = ts.ok_or(Refusal::Missing("timestamp"))?;
        q.nonce = nonce.ok_or(Refusal::Missing("nonce"))?;
        Ok(q)
    }

    fn check_fresh(&self, window: Duration, now_s: i64) -> Result<(), Refusal> {
        let ts: i64 = self.timestamp.parse().map_err(|_| Refusal::Stale(self.timestamp.clone()))?;
        if ts.abs_diff(now_s) > window.as_secs() {
            return Err(Refusal::Stale(self.timestamp.clone()));
        }
        Ok(())
    }
}

/// What a delivery does to the sender's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Put the user on the suppression list, for this reason.
    OptOut(&'static str),
    /// Take the user off it.
    OptIn(&'static str),
}

/// A delivery that passed every check.
#[derive(Debug, Clone)]
pub struct Received {
    /// The decrypted message.
    pub inbound: Inbound,
    /// Its effect on the suppression list.
    pub effect: Effect,
    /// The passive reply to send, if a rule matched.
    pub reply: Option<ReplyMessage>,
}

impl CallbackAgent {
    /// `GET`: checks the echostr's signature and freshness and returns its plaintext.
    pub fn verify_url(&self, q: &CallbackQuery, now_s: i64) -> Result<String, Refusal> {
        let echo = q.echostr.as_deref().ok_or(Refusal::Missing("echostr"))?;
        q.check_fresh(self.timestamp_window, now_s)?;
        Ok(self.crypt.verify_url(&q.msg_signature, &q.timestamp, &q.nonce, echo)?)
    }

    /// `POST`: checks, decrypts and parses a delivery and decides what it asks for.
    pub fn receive(&self, q: &CallbackQuery, body: &str, now_s: i64) -> Result<Received, Refusal> {
        q.check_fresh(self.timestamp_window, now_s)?;
        let envelope = parse_envelope(body)?;
        let plain = self.crypt.decrypt(&q.msg_signature, &q.timestamp, &q.nonce, &envelope.encrypt)?;
        let text = String::from_utf8(plain).map_err(|_| Refusal::BadPlaintext("the message is not UTF-8".into()))?;
        let mut inbound = parse_inbound(&text).map_err(|e| Refusal::BadPlaintext(e.to_string()))?;
        // The sender becomes a suppression-list key: the same rule as the suppression API, so
        // every entry a member creates can be shown and lifted through it.
        inbound.from_user = parse_user(&inbound.from_user).map_err(Refusal::BadUser)?;
        let effect = self.effect_of(&inbound.kind);
        let reply = self.reply_to(&inbound.kind, &effect);
        Ok(Received { inbound, effect, reply })
    }

    /// The encrypted, signed passive reply to `to` (the inbound message's sender).
    pub fn seal_reply(&self, reply: &ReplyMessage, to: &str, now_s: i64, nonce: &str) -> Result<String, CryptError> {
        let plain = reply_xml(reply, to, &self.corp_id, now_s);
        let sealed = self.crypt.encrypt_random(plain.as_bytes(), &now_s.to_string(), nonce)?;
        Ok(sealed.to_xml())
    }

    fn effect_of(&self, kind: &InboundKind) -> Effect {
        match kind {
            InboundKind::Event(Event::Unsubscribe) => Effect::OptOut("unsubscribe"),
            InboundKind::Event(Event::Subscribe) => Effect::OptIn("subscribe"),
            InboundKind::Text { content } if matches_any(&self.opt_out_keywords, content) => Effect::OptOut("keyword"),
            InboundKind::Text { content } if matches_any(&self.opt_in_keywords, content) => Effect::OptIn("keyword"),
            _ => Effect::None,
        }
    }

    /// The configured reply; opt-outs and opt-ins are confirmed even without a rule.
    fn reply_to(&self, kind: &InboundKind, effect: &Effect) -> Option<ReplyMessage> {
        let rule = self.replies.iter().find(|r| match kind {
            InboundKind::Text { content } => r.keyword.as_deref().is_some_and(|k| content.contains(k)),
            InboundKind::Event(Event::Click { key }) => r.click.as_deref() == Some(key.as_str()),
            _ => false,
        });
        if let Some(r) = rule {
            return Some(r.reply.clone());
        }
        let confirm = |content: &str| Some(ReplyMessage::Text { content: content.to_owned() });
        match (kind, effect) {
            (InboundKind::Text { .. }, Effect::OptOut(_)) => confirm("已退订，回复“订阅”可重新接收消息。"),
            (InboundKind::Text { .. }, Effect::OptIn(_)) => confirm("已重新订阅。"),
            _ => None,
        }
    }
}

fn matches_any(keywords: &[String], content: &str) -> bool {
    let c = content.trim();
    keywords.iter().any(|k| k.eq_ignore_ascii_case(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const CORP: &str = "wx5823bf96d3bd56c7";

    fn agent() -> CallbackAgent {
        CallbackAgent {
            app: "staff".into(),
            corp_id: CORP.into(),
            crypt: MsgCrypt::new(TOKEN, KEY, CORP).unwrap(),
            timestamp_window: Duration::from_secs(300),
            opt_out_keywords: vec!["TD".into(), "退订".into()],
            opt_in_keywords: vec!["订阅".into()],
            replies: vec![
                ReplyRule {
                    keyword: Some("价格".into()),
                    click: None,
                    reply: ReplyMessage::Text { content: "9.9".into() },
                },
                ReplyRule {
                    keyword: None,
                    click: Some("V1001".into()),
                    reply: ReplyMessage::Image { media_id: "m".into() },
                },
            ],
        }
    }

    /// Encrypts `xml` as WeCom would and returns the query and body.
    fn deliver(a: &CallbackAgent, xml: &str, ts: i64) -> (CallbackQuery, String) {
        let sealed = a.crypt.encrypt_random(xml.as_bytes(), &ts.to_string(), "1234").unwrap();
        let body = format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            sealed.encrypt
        );
        let q = CallbackQuery {
            msg_signature: sealed.msg_signature,
            timestamp: ts.to_string(),
            nonce: "1234".into(),
            echostr: None,
        };
        (q, body)
    }

    fn text(content: &str) -> String {
        format!("<xml><ToUserName>{CORP}</ToUserName><FromUserName>li</FromUserName><CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>{content}</Content><MsgId>1</MsgId><AgentID>1</AgentID></xml>")
    }

    #[test]
    fn query_keeps_plus_signs_and_names_missing_parameters() {
        let q = CallbackQuery::parse("msg_signature=ab&timestamp=1&nonce=2&echostr=a%2Bb+c%3D").unwrap();
        assert_eq!(q.echostr.as_deref(), Some("a+b+c="));
        assert_eq!(CallbackQuery::parse("timestamp=1&nonce=2"), Err(Refusal::Missing("msg_signature")));
    }

    #[test]
    fn keywords_and_events_decide_the_effect_and_reply() {
        let a = agent();
        let now = 1_700_000_000;
        let (q, body) = deliver(&a, &text(" td "), now);
        let r = a.receive(&q, &body, now).unwrap();
        assert_eq!(r.effect, Effect::OptOut("keyword"));
        assert!(matches!(r.reply, Some(ReplyMessage::Text { .. })));
        let (q, body) = deliver(&a, &text("多少价格?"), now);
        assert_eq!(a.receive(&q, &body, now).unwrap().reply, Some(ReplyMessage::Text { content: "9.9".into() }));
        let click = format!("<xml><ToUserName>{CORP}</ToUserName><FromUserName>li</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>click</Event><EventKey>V1001</EventKey></xml>");
        let (q, body) = deliver(&a, &click, now);
        assert_eq!(a.receive(&q, &body, now).unwrap().reply, Some(ReplyMessage::Image { media_id: "m".into() }));
        let unsub = click.replace("<Event>click</Event><EventKey>V1001</EventKey>", "<Event>unsubscribe</Event>");
        let (q, body) = deliver(&a, &unsub, now);
        let r = a.receive(&q, &body, now).unwrap();
        assert_eq!((r.effect, r.reply), (Effect::OptOut("unsubscribe"), None));
    }

    #[test]
    fn refusals_are_classified() {
        let a = agent();
        let now = 1_700_000_000;
        let (q, body) = deliver(&a, &text("hi"), now);
        assert!(matches!(a.receive(&q, &body, now + 301), Err(Refusal::Stale(_))));
        let forged = CallbackQuery { msg_signature: "0".repeat(40), ..q.clone() };
        assert_eq!(a.receive(&forged, &body, now).unwrap_err(), Refusal::BadSignature);
        assert!(matches!(a.receive(&q, "<xml><Encrypt>", now), Err(Refusal::BadXml(_))));
        let other = CallbackAgent { crypt: MsgCrypt::new(TOKEN, KEY, "ww-other").unwrap(), ..agent() };
        let (q2, body2) = deliver(&other, &text("hi"), now);
        assert_eq!(a.receive(&q2, &body2, now).unwrap_err(), Refusal::WrongReceiver);
        let (q3, body3) = deliver(&a, "<xml><ToUserName>x</ToUserName></xml>", now);
        assert!(matches!(a.receive(&q3, &body3, now), Err(Refusal::BadPlaintext(_))));
    }

    #[test]
    fn senders_the_suppression_api_would_refuse_are_refused() {
        let a = agent();
        let now = 1_700_000_000;
        for bad in ["a".repeat(10_000), "../../etc".into(), "li lei".into(), "li/lei".into()] {
            let xml =
                text("TD").replace("<FromUserName>li</FromUserName>", &format!("<FromUserName>{bad}</FromUserName>"));
            let (q, body) = deliver(&a, &xml, now);
            let refusal = a.receive(&q, &body, now).unwrap_err();
            assert_eq!(refusal.label(), "bad_user", "{refusal}");
            assert!(parse_user(&bad).is_err(), "the API refuses {bad:.20} too");
        }
        let (q, body) = deliver(&a, &text("TD").replace(">li<", "> li.Lei@x <"), now);
        assert_eq!(a.receive(&q, &body, now).unwrap().inbound.from_user, "li.Lei@x", "trimmed as the API trims");
    }

    #[test]
    fn every_decryption_failure_looks_the_same_to_the_caller() {
        let failures = [
            Refusal::WrongReceiver,
            Refusal::Crypt(CryptError::DecryptAes),
            Refusal::Crypt(CryptError::IllegalBuffer),
            Refusal::Crypt(CryptError::DecodeBase64),
            Refusal::BadPlaintext("x".into()),
        ];
        for f in &failures {
            assert_eq!(
                (f.status(), f.code(), f.public_message()),
                (400, "undecryptable", UNDECRYPTABLE_MESSAGE.into())
            );
        }
        assert_eq!(Refusal::BadSignature.status(), 403);
        assert_eq!(Refusal::BadXml("x".into()).code(), "bad_xml");
    }

    #[test]
    fn sealed_replies_decrypt_to_the_reply_xml() {
        let a = agent();
        let sealed = a.seal_reply(&ReplyMessage::Text { content: "ok".into() }, "li", 1_700_000_000, "99").unwrap();
        let env = crate::wecom::parse_envelope(&sealed).unwrap();
        let sig = sealed.split("<MsgSignature><![CDATA[").nth(1).and_then(|s| s.split("]]>").next()).unwrap();
        let plain = a.crypt.decrypt(sig, "1700000000", "99", &env.encrypt).unwrap();
        let xml = String::from_utf8(plain).unwrap();
        assert!(xml.contains("<ToUserName><![CDATA[li]]></ToUserName>"), "{xml}");
        assert!(xml.contains("<Content><![CDATA[ok]]></Content>"), "{xml}");
    }
}
