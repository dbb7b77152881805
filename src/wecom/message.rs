//! Turns the XML of a WeCom callback into typed values: the outer POST envelope and the
//! decrypted inbound message or event inside it. No I/O; facts in `shared/reference/wecom.md` §1.6, §3.
//!
//! Both documents are flat: a root element (`<xml>`) whose children each hold one value as plain
//! text, CDATA, or a mix of both. `read_fields` collects those children once with a real XML
//! parser; everything else here only picks values out of them.

use quick_xml::events::{BytesRef, Event as XmlEvent};
use quick_xml::Reader;
use std::str::FromStr;

/// Longest piece of an offending value an error message repeats.
const MAX_ERROR_VALUE_CHARS: usize = 64;

/// Why a callback body or decrypted message could not be read.
///
/// Every variant maps to the official libraries' `ParseXmlError` (-40002), see [`XmlError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The text is not well-formed XML (garbage, truncated, mismatched tags, unknown entity).
    #[error("callback XML is not well-formed: {0}")]
    Malformed(String),
    /// A required element is absent.
    #[error("callback XML lacks the required element <{0}>")]
    Missing(&'static str),
    /// An element is present but its text cannot be used (e.g. a time that is not an integer).
    #[error("callback XML element <{element}> holds {value:?}, which is not a usable value for it")]
    Invalid {
        /// The element's name.
        element: &'static str,
        /// Its text, shortened to a readable length.
        value: String,
    },
}

impl XmlError {
    /// The official libraries' code for any XML problem (`ParseXmlError`), so callers can log and
    /// count it the same way as the crypto errors.
    pub fn code(&self) -> i32 {
        -40002
    }

    /// An [`XmlError::Invalid`] whose value is cut short so one bad field cannot flood a log line.
    fn invalid(element: &'static str, value: &str) -> XmlError {
        let mut shown: String = value.chars().take(MAX_ERROR_VALUE_CHARS).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        XmlError::Invalid { element, value: shown }
    }
}

/// The outer body WeCom POSTs to the callback URL: who it is for and the ciphertext to verify and
/// decrypt (wecom.md §1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `ToUserName`: the CorpID (or SuiteId for third-party apps); empty when WeCom leaves it out.
    pub to_user: String,
    /// `AgentID` as sent; `None` when absent or empty (third-party "指令回调" sends it empty).
    pub agent_id: Option<String>,
    /// `Encrypt`: the base64 ciphertext, exactly as sent, because the signature covers it.
    pub encrypt: String,
}

/// Reads the outer POST body. Elements may come in any order, as CDATA or plain text; only
/// `Encrypt` is required, like the official libraries.
pub fn parse_envelope(body: &str) -> Result<Envelope, XmlError> {
    let fields = read_fields(body)?;
    let encrypt = fields.required("Encrypt")?;
    if encrypt.trim().is_empty() {
        return Err(XmlError::invalid("Encrypt", encrypt));
    }
    Ok(Envelope {
        to_user: fields.get("ToUserName").unwrap_or_default().to_owned(),
        agent_id: fields.non_blank("AgentID").map(str::to_owned),
        encrypt: encrypt.to_owned(),
    })
}

/// A decrypted message or event from a member, ready for the callback to act on and reply to.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// `ToUserName`: the CorpID the message was sent to.
    pub to_user: String,
    /// `FromUserName`: the member's UserID; a passive reply goes back to it.
    pub from_user: String,
    /// `CreateTime`: Unix seconds.
    pub create_time: i64,
    /// `AgentID`: the app the member used; `None` when absent or empty.
    pub agent_id: Option<i64>,
    /// `MsgId`: present on messages, usually absent on events; the retry deduplication key.
    pub msg_id: Option<String>,
    /// What was sent, by `MsgType`.
    pub kind: InboundKind,
}

/// The content of an inbound message, one variant per `MsgType` (wecom.md §3.1).
#[derive(Debug, Clone, PartialEq)]
pub enum InboundKind {
    /// `text`.
    Text {
        /// `Content`, byte-exact (newlines and spaces kept).
        content: String,
    },
    /// `image`.
    Image {
        /// `PicUrl`: where the picture can be downloaded.
        pic_url: String,
        /// `MediaId`: fetchable through the media API for 3 days.
        media_id: String,
    },
    /// `voice`.
    Voice {
        /// `MediaId` of the recording.
        media_id: String,
        /// `Format`, e.g. `amr` or `speex`; empty when not sent.
        format: String,
    },
    /// `video`.
    Video {
        /// `MediaId` of the video.
        media_id: String,
        /// `ThumbMediaId` of its thumbnail.
        thumb_media_id: String,
    },
    /// `location`: a place the member shared.
    Location {
        /// `Location_X`.
        latitude: f64,
        /// `Location_Y`.
        longitude: f64,
        /// `Scale`: the map zoom level.
        scale: u32,
        /// `Label`: the place's description; empty when not sent.
        label: String,
    },
    /// `link`.
    Link {
        /// `Title`; empty when not sent.
        title: String,
        /// `Description`; empty when not sent.
        description: String,
        /// `Url`.
        url: String,
        /// `PicUrl`: the link's picture; empty when not sent.
        pic_url: String,
    },
    /// `event`: something the member did rather than said.
    Event(Event),
    /// Any other `MsgType` (e.g. `shortvideo`), kept so the callback can still answer it.
    Other {
        /// The `MsgType` as sent.
        msg_type: String,
    },
}

impl InboundKind {
    /// The `MsgType` value this kind came from, for logs and deduplication.
    pub fn msg_type(&self) -> &str {
        match self {
            InboundKind::Text { .. } => "text",
            InboundKind::Image { .. } => "image",
            InboundKind::Voice { .. } => "voice",
            InboundKind::Video { .. } => "video",
            InboundKind::Location { .. } => "location",
            InboundKind::Link { .. } => "link",
            InboundKind::Event(_) => "event",
            InboundKind::Other { msg_type } => msg_type,
        }
    }
}

/// An inbound event (`MsgType` = `event`), by its `Event` name (wecom.md §3.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `subscribe`: the member can now see the app.
    Subscribe,
    /// `unsubscribe`: the member can no longer see the app.
    Unsubscribe,
    /// `enter_agent`: the member opened the app.
    EnterAgent,
    /// `LOCATION`: the member's device reported where it is.
    Location {
        /// `Latitude`.
        latitude: f64,
        /// `Longitude`.
        longitude: f64,
        /// `Precision`, in metres.
        precision: f64,
    },
    /// `click`: the member pressed a menu button.
    Click {
        /// `EventKey`: the button's key.
        key: String,
    },
    /// `view`: the member followed a menu link.
    View {
        /// `EventKey`: the link's URL.
        url: String,
    },
    /// Any other event (scan codes, contact changes, card clicks, ...).
    Other {
        /// The `Event` name as sent.
        name: String,
    },
}

impl Event {
    /// The event's name as WeCom writes it, for logs and deduplication.
    pub fn name(&self) -> &str {
        match self {
            Event::Subscribe => "subscribe",
            Event::Unsubscribe => "unsubscribe",
            Event::EnterAgent => "enter_agent",
            Event::Location { .. } => "LOCATION",
            Event::Click { .. } => "click",
            Event::View { .. } => "view",
            Event::Other { name } => name,
        }
    }
}

impl Inbound {
    /// The key under which a delivery is remembered, so that WeCom's retries of the same delivery
    /// (up to 3) are answered once: `msg:<sender>:<MsgId>` for messages; events carry no MsgId, so
    /// `evt:<FromUserName>:<CreateTime>:<event name>` (wecom.md §1.6).
    pub fn dedup_key(&self) -> String {
        if let Some(msg_id) = &self.msg_id {
            return format!("msg:{}:{msg_id}", self.from_user);
        }
        // The event's key or URL too: two menu taps within one second are two events.
        let (what, detail) = match &self.kind {
            InboundKind::Event(event @ Event::Click { key }) => (event.name(), key.as_str()),
            InboundKind::Event(event @ Event::View { url }) => (event.name(), url.as_str()),
            InboundKind::Event(event) => (event.name(), ""),
            other => (other.msg_type(), ""),
        };
        format!("evt:{}:{}:{}:{}", self.from_user, self.create_time, what, detail)
    }
}

/// Reads a decrypted message or event. Unknown elements are ignored and unknown `MsgType`s become
/// [`InboundKind::Other`], so new WeCom features do not break the callback.
pub fn parse_inbound(xml: &str) -> Result<Inbound, XmlError> {
    let fields = read_fields(xml)?;
    Ok(Inbound {
        to_user: fields.required("ToUserName")?.to_owned(),
        from_user: fields.required("FromUserName")?.to_owned(),
        create_time: fields.number("CreateTime")?,
        agent_id: fields.optional_number("AgentID")?,
        msg_id: fields.non_blank("MsgId").map(str::to_owned),
        kind: parse_kind(&fields)?,
    })
}

/// The `MsgType`-specific part of a message.
fn parse_kind(fields: &Fields) -> Result<InboundKind, XmlError> {
    let msg_type = fields.required("MsgType")?;
    let kind = match msg_type.trim().to_ascii_lowercase().as_str() {
        "text" => InboundKind::Text { content: fields.required("Content")?.to_owned() },
        "image" => InboundKind::Image {
            pic_url: fields.required("PicUrl")?.to_owned(),
            media_id: fields.required("MediaId")?.to_owned(),
        },
        "voice" => InboundKind::Voice {
            media_id: fields.required("MediaId")?.to_owned(),
            format: fields.text_or_empty("Format"),
        },
        "video" => InboundKind::Video {
            media_id: fields.required("MediaId")?.to_owned(),
            thumb_media_id: fields.required("ThumbMediaId")?.to_owned(),
        },
        "location" => InboundKind::Location {
            latitude: fields.coordinate("Location_X")?,
            longitude: fields.coordinate("Location_Y")?,
            scale: fields.number("Scale")?,
            label: fields.text_or_empty("Label"),
        },
        "link" => InboundKind::Link {
            title: fields.text_or_empty("Title"),
            description: fields.text_or_empty("Description"),
            url: fields.required("Url")?.to_owned(),
            pic_url: fields.text_or_empty("PicUrl"),
        },
        "event" => InboundKind::Event(parse_event(fields)?),
        _ => InboundKind::Other { msg_type: msg_type.to_owned() },
    };
    Ok(kind)
}

/// The event-specific part; names compare case-insensitively because WeCom and the WeChat docs
/// disagree on case (`click` / `CLICK`).
fn parse_event(fields: &Fields) -> Result<Event, XmlError> {
    let name = fields.required("Event")?;
    let event = match name.trim().to_ascii_lowercase().as_str() {
        "subscribe" => Event::Subscribe,
        "unsubscribe" => Event::Unsubscribe,
        "enter_agent" => Event::EnterAgent,
        "location" => Event::Location {
            latitude: fields.coordinate("Latitude")?,
            longitude: fields.coordinate("Longitude")?,
            precision: fields.coordinate("Precision")?,
        },
        "click" => Event::Click { key: fields.required("EventKey")?.to_owned() },
        "view" => Event::View { url: fields.required("EventKey")?.to_owned() },
        _ => Event::Other { name: name.to_owned() },
    };
    Ok(event)
}

/// The text of each direct child of the root element, in document order.
#[derive(Debug, Default)]
struct Fields {
    values: Vec<(String, String)>,
}

impl Fields {
    /// The element's text; the first one wins if an element repeats.
    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The element's text, which may be empty; an error if the element is absent.
    fn required(&self, name: &'static str) -> Result<&str, XmlError> {
        self.get(name).ok_or(XmlError::Missing(name))
    }

    /// The element's text, or an empty string when it is absent.
    fn text_or_empty(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// The element's text without surrounding whitespace, or `None` when absent or blank.
    fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A required number; surrounding whitespace is allowed.
    fn number<T: FromStr>(&self, name: &'static str) -> Result<T, XmlError> {
        let text = self.required(name)?;
        text.trim().parse().map_err(|_| XmlError::invalid(name, text))
    }

    /// An optional number: `None` when absent or blank, an error when present but not a number.
    fn optional_number<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, XmlError> {
        match self.non_blank(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| XmlError::invalid(name, text)),
        }
    }

    /// A required finite decimal (coordinates, precision); `NaN` and `inf` are refused.
    fn coordinate(&self, name: &'static str) -> Result<f64, XmlError> {
        let value: f64 = self.number(name)?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(XmlError::invalid(name, self.get(name).unwrap_or_default()))
        }
    }
}

/// Parses `xml` and collects the text of every direct child of its root element.
///
/// A child's text is kept byte-exact: CDATA sections, plain text and resolved entities are joined
/// as they come, nothing is trimmed. Whitespace between the children is ignored, and so is
/// anything nested deeper (e.g. `ScanCodeInfo`), which no caller reads.
fn read_fields(xml: &str) -> Result<Fields, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut fields = Fields::default();
    // Names of the open elements; `open[0]` is the root, `open[1]` the child being read.
    let mut open: Vec<String> = Vec::new();
    let mut seen_root = false;
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|err| XmlError::Malformed(format!("{err} (at byte {})", reader.error_position())))?;
        match event {
            XmlEvent::Start(tag) => {
                start_element(&open, &mut seen_root)?;
                open.push(String::from_utf8_lossy(tag.name().as_ref()).into_owned());
                if open.len() == 2 {
                    text.clear();
                }
            }
            XmlEvent::Empty(tag) => {
                start_element(&open, &mut seen_root)?;
                if open.len() == 1 {
                    fields.values.push((String::from_utf8_lossy(tag.name().as_ref()).into_owned(), String::new()));
                }
            }
            XmlEvent::End(_) => {
                if let Some(name) = open.pop() {
                    if open.len() == 1 {
                        fields.values.push((name, std::mem::take(&mut text)));
                    }
                }
            }
            XmlEvent::Text(raw) => add_text(&open, &mut text, &raw.decode().map_err(malformed)?)?,
            XmlEvent::CData(raw) => add_text(&open, &mut text, &raw.decode().map_err(malformed)?)?,
            XmlEvent::GeneralRef(entity) => add_text(&open, &mut text, &resolve_entity(&entity)?)?,
            XmlEvent::Eof => break,
            // Declarations, comments, processing instructions, DOCTYPE: nothing to read.
            _ => {}
        }
    }
    finish(&open, seen_root)?;
    Ok(fields)
}

/// Refuses a second root element; notes the first.
fn start_element(open: &[String], seen_root: &mut bool) -> Result<(), XmlError> {
    if open.is_empty() {
        if *seen_root {
            return Err(XmlError::Malformed("more than one root element".to_owned()));
        }
        *seen_root = true;
    }
    Ok(())
}

/// Adds character data to the child being read. Outside the root only whitespace is allowed;
/// between the children and deeper inside them it is ignored.
fn add_text(open: &[String], text: &mut String, chunk: &str) -> Result<(), XmlError> {
    match open.len() {
        0 if !chunk.trim().is_empty() => Err(XmlError::Malformed("text outside the root element".to_owned())),
        2 => {
            text.push_str(chunk);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The text an entity or character reference (`&lt;`, `&#20320;`) stands for.
fn resolve_entity(entity: &BytesRef) -> Result<String, XmlError> {
    if let Some(ch) = entity.resolve_char_ref().map_err(malformed)? {
        return Ok(ch.to_string());
    }
    let name = entity.decode().map_err(malformed)?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| XmlError::Malformed(format!("unknown entity &{name};")))
}

/// Checks that the document had a root element and closed it (a truncated body does not).
fn finish(open: &[String], seen_root: bool) -> Result<(), XmlError> {
    if let Some(innermost) = open.last() {
        return Err(XmlError::Malformed(format!("document ends inside <{innermost}>; is it truncated?")));
    }
    if !seen_root {
        return Err(XmlError::Malformed("no root element".to_owned()));
    }
    Ok(())
}

/// Wraps a parser error whose position is not known.
fn malformed(err: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wecom::MsgCrypt;

    /// Vector A2's decrypted plaintext: no CDATA anywhere.
    const A2_PLAIN: &str = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>\
        <CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>\
        <MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";

    /// Vector A2's POST body.
    const A2_BODY: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[\
        Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+\
        kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4\
        Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49H\
        KYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>";

    /// Vector C2's decrypted plaintext: CDATA, one element a line.
    const C2_PLAIN: &str = "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n\
        <FromUserName><![CDATA[messense]]></FromUserName>\n\
        <CreateTime>1411525903</CreateTime>\n\
        <MsgType><![CDATA[text]]></MsgType>\n\
        <Content><![CDATA[test]]></Content>\n\
        <MsgId>4363689963896700987</MsgId>\n\
        <AgentID>1</AgentID>\n\
        </xml>";

    /// An inbound document with the common header of wecom.md §3 and the given type-specific body.
    fn message(msg_type: &str, body: &str) -> String {
        format!(
            "<xml>\n   <ToUserName><![CDATA[toUser]]></ToUserName>\n   <FromUserName><![CDATA[fromUser]]></FromUserName>\n   \
             <CreateTime>1348831860</CreateTime>\n   <MsgType><![CDATA[{msg_type}]]></MsgType>\n   {body}\n   \
             <MsgId>1234567890123456</MsgId>\n   <AgentID>1</AgentID>\n</xml>"
        )
    }

    /// The kind of a §3.1-shaped message.
    fn kind_of(msg_type: &str, body: &str) -> InboundKind {
        parse_inbound(&message(msg_type, body)).unwrap().kind
    }

    /// The event of a §3.2-shaped event document with the given `Event` and extra elements.
    fn event_of(name: &str, extra: &str) -> Event {
        let xml = format!(
            "<xml>\n\t<ToUserName><![CDATA[toUser]]></ToUserName>\n\t<FromUserName><![CDATA[UserID]]></FromUserName>\n\t\
             <CreateTime>1348831860</CreateTime>\n\t<MsgType><![CDATA[event]]></MsgType>\n\t\
             <Event><![CDATA[{name}]]></Event>\n\t{extra}\n\t<AgentID>1</AgentID>\n</xml>"
        );
        match parse_inbound(&xml).unwrap().kind {
            InboundKind::Event(event) => event,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn vector_a2_plaintext_without_cdata() {
        let inbound = parse_inbound(A2_PLAIN).unwrap();
        assert_eq!(
            inbound,
            Inbound {
                to_user: "ww1436e0e65a779aee".into(),
                from_user: "ChenJiaShun".into(),
                create_time: 1476422779,
                agent_id: Some(1000002),
                msg_id: Some("1456453720".into()),
                kind: InboundKind::Text { content: "你好".into() },
            }
        );
        assert_eq!(inbound.dedup_key(), "msg:ChenJiaShun:1456453720");
    }

    #[test]
    fn vector_c2_plaintext_with_newlines_and_cdata() {
        let inbound = parse_inbound(C2_PLAIN).unwrap();
        assert_eq!(inbound.to_user, "wx49f0ab532d5d035a");
        assert_eq!(inbound.from_user, "messense");
        assert_eq!(inbound.create_time, 1411525903);
        assert_eq!(inbound.agent_id, Some(1));
        assert_eq!(inbound.msg_id.as_deref(), Some("4363689963896700987"));
        assert_eq!(inbound.kind, InboundKind::Text { content: "test".into() });
    }

    #[test]
    fn vector_a2_envelope_decrypts_to_the_message() {
        let envelope = parse_envelope(A2_BODY).unwrap();
        assert_eq!(envelope.to_user, "ww1436e0e65a779aee");
        assert_eq!(envelope.agent_id.as_deref(), Some("1000002"));
        assert!(envelope.encrypt.starts_with("Kl7kjoSf6DMD") && envelope.encrypt.ends_with("KiypE+"));
        let crypt = MsgCrypt::new(
            "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            "ww1436e0e65a779aee",
        )
        .unwrap();
        let plain = crypt
            .decrypt("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", &envelope.encrypt)
            .unwrap();
        let inbound = parse_inbound(std::str::from_utf8(&plain).unwrap()).unwrap();
        assert_eq!(inbound, parse_inbound(A2_PLAIN).unwrap());
    }

    #[test]
    fn envelope_in_any_order_with_plain_text() {
        let body = "<xml>\n   <ToUserName>corp</ToUserName>\n   <AgentID><![CDATA[]]></AgentID>\n   \
                    <Encrypt>abc+/=</Encrypt>\n</xml>";
        let envelope = parse_envelope(body).unwrap();
        assert_eq!(envelope, Envelope { to_user: "corp".into(), agent_id: None, encrypt: "abc+/=".into() });
    }

    #[test]
    fn envelope_without_encrypt_names_it() {
        let err = parse_envelope("<xml><ToUserName>corp</ToUserName></xml>").unwrap_err();
        assert_eq!(err, XmlError::Missing("Encrypt"));
        assert!(err.to_string().contains("<Encrypt>"), "{err}");
        assert_eq!(parse_envelope("<xml><Encrypt/></xml>").unwrap_err(), XmlError::invalid("Encrypt", ""));
    }

    #[test]
    fn every_message_kind() {
        assert_eq!(
            kind_of("text", "<Content><![CDATA[this is a test]]></Content>"),
            InboundKind::Text { content: "this is a test".into() }
        );
        assert_eq!(
            kind_of("image", "<PicUrl><![CDATA[this is a url]]></PicUrl>\n   <MediaId><![CDATA[media_id]]></MediaId>"),
            InboundKind::Image { pic_url: "this is a url".into(), media_id: "media_id".into() }
        );
        assert_eq!(
            kind_of("voice", "<MediaId><![CDATA[media_id]]></MediaId>\n   <Format><![CDATA[Format]]></Format>"),
            InboundKind::Voice { media_id: "media_id".into(), format: "Format".into() }
        );
        assert_eq!(
            kind_of("video", "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb]]></ThumbMediaId>"),
            InboundKind::Video { media_id: "media_id".into(), thumb_media_id: "thumb".into() }
        );
        assert_eq!(
            kind_of(
                "location",
                "<Location_X>23.134</Location_X>\n   <Location_Y>113.358</Location_Y>\n   <Scale>20</Scale>\n   \
                 <Label><![CDATA[位置信息]]></Label>\n   <AppType><![CDATA[wxwork]]></AppType>"
            ),
            InboundKind::Location { latitude: 23.134, longitude: 113.358, scale: 20, label: "位置信息".into() }
        );
        assert_eq!(
            kind_of(
                "link",
                "<Title><![CDATA[标题]]></Title><Description><![CDATA[desc]]></Description>\
                 <Url><![CDATA[https://example.com/a?b=1&amp;c=2]]></Url><PicUrl><![CDATA[picurl]]></PicUrl>"
            ),
            InboundKind::Link {
                title: "标题".into(),
                description: "desc".into(),
                url: "https://example.com/a?b=1&amp;c=2".into(),
                pic_url: "picurl".into(),
            }
        );
        assert_eq!(kind_of("shortvideo", "<MediaId>m</MediaId>"), InboundKind::Other { msg_type: "shortvideo".into() });
    }

    #[test]
    fn every_event() {
        assert_eq!(event_of("subscribe", ""), Event::Subscribe);
        assert_eq!(event_of("unsubscribe", ""), Event::Unsubscribe);
        assert_eq!(event_of("enter_agent", "<EventKey><![CDATA[]]></EventKey>"), Event::EnterAgent);
        assert_eq!(
            event_of(
                "LOCATION",
                "<Latitude>23.104</Latitude>\n<Longitude>113.320</Longitude>\n<Precision>65.000</Precision>\n\
                 <AppType><![CDATA[wxwork]]></AppType>"
            ),
            Event::Location { latitude: 23.104, longitude: 113.32, precision: 65.0 }
        );
        assert_eq!(event_of("click", "<EventKey><![CDATA[MENU_1]]></EventKey>"), Event::Click { key: "MENU_1".into() });
        assert_eq!(event_of("CLICK", "<EventKey>MENU_2</EventKey>"), Event::Click { key: "MENU_2".into() });
        assert_eq!(
            event_of("view", "<EventKey><![CDATA[https://example.com/]]></EventKey>"),
            Event::View { url: "https://example.com/".into() }
        );
    }

    #[test]
    fn unknown_event_with_nested_elements() {
        let extra = "<EventKey><![CDATA[scan]]></EventKey>\n<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>\n\
                     <ScanResult><![CDATA[1]]></ScanResult>\n</ScanCodeInfo>";
        assert_eq!(event_of("scancode_push", extra), Event::Other { name: "scancode_push".into() });
    }

    #[test]
    fn content_is_kept_byte_exact() {
        let cdata = kind_of("text", "<Content><![CDATA[  first line\nsecond line\n]]></Content>");
        assert_eq!(cdata, InboundKind::Text { content: "  first line\nsecond line\n".into() });
        let plain = kind_of("text", "<Content> a\n\tb </Content>");
        assert_eq!(plain, InboundKind::Text { content: " a\n\tb ".into() });
        let mixed = kind_of("text", "<Content>x<![CDATA[<y>]]>z</Content>");
        assert_eq!(mixed, InboundKind::Text { content: "x<y>z".into() });
    }

    #[test]
    fn entities_are_unescaped() {
        let kind = kind_of("text", "<Content>a &lt;b&gt; &amp; &quot;c&apos; &#20320;&#x597D;</Content>");
        assert_eq!(kind, InboundKind::Text { content: "a <b> & \"c' 你好".into() });
    }

    #[test]
    fn missing_required_elements_are_named() {
        let xml = A2_PLAIN.replace("<FromUserName>ChenJiaShun</FromUserName>", "");
        assert_eq!(parse_inbound(&xml).unwrap_err(), XmlError::Missing("FromUserName"));
        let xml = A2_PLAIN.replace("<Content>你好</Content>", "");
        assert_eq!(parse_inbound(&xml).unwrap_err(), XmlError::Missing("Content"));
        let xml = A2_PLAIN.replace("<MsgType>text</MsgType>", "");
        assert_eq!(parse_inbound(&xml).unwrap_err(), XmlError::Missing("MsgType"));
        let err = parse_inbound("<xml><ToUserName>t</ToUserName></xml>").unwrap_err();
        assert_eq!(err.to_string(), "callback XML lacks the required element <FromUserName>");
        assert_eq!(err.code(), -40002);
    }

    #[test]
    fn invalid_values_are_named() {
        let xml = A2_PLAIN.replace("1476422779", "yesterday");
        assert_eq!(
            parse_inbound(&xml).unwrap_err(),
            XmlError::Invalid { element: "CreateTime", value: "yesterday".into() }
        );
        let xml = A2_PLAIN.replace("<AgentID>1000002</AgentID>", "<AgentID>app</AgentID>");
        assert_eq!(parse_inbound(&xml).unwrap_err(), XmlError::Invalid { element: "AgentID", value: "app".into() });
        let body = "<Location_X>NaN</Location_X><Location_Y>1</Location_Y><Scale>1</Scale>";
        assert_eq!(
            parse_inbound(&message("location", body)).unwrap_err(),
            XmlError::Invalid { element: "Location_X", value: "NaN".into() }
        );
        let long = "9".repeat(100);
        let err = parse_inbound(&A2_PLAIN.replace("1476422779", &long)).unwrap_err();
        assert_eq!(err, XmlError::Invalid { element: "CreateTime", value: format!("{}…", &long[..64]) });
    }

    #[test]
    fn garbage_and_truncated_xml_are_malformed() {
        let cases = [
            "",
            "   \n",
            "not xml at all",
            "{\"ToUserName\": \"x\"}",
            "<xml><ToUserName>a</ToUserName><FromUser",
            "<xml><ToUserName>a</ToUserName><Content>abc",
            "<xml><ToUserName>a</FromUserName></xml>",
            "<xml></xml><xml></xml>",
            "<xml><Content>&nbsp;</Content></xml>",
            "<xml><Content>a & b</Content></xml>",
        ];
        for case in cases {
            match parse_inbound(case) {
                Err(XmlError::Malformed(why)) => assert!(!why.is_empty()),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
        let truncated = &A2_PLAIN[..A2_PLAIN.len() - 6];
        assert_eq!(
            parse_inbound(truncated).unwrap_err(),
            XmlError::Malformed("document ends inside <xml>; is it truncated?".into())
        );
    }

    #[test]
    fn dedup_key_of_an_event_uses_sender_time_and_name() {
        let xml = "<xml><ToUserName>corp</ToUserName><FromUserName>UserID</FromUserName>\
                   <CreateTime>1348831860</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>";
        assert_eq!(parse_inbound(xml).unwrap().dedup_key(), "evt:UserID:1348831860:subscribe:");
        let click = xml.replace("<Event>subscribe</Event>", "<Event>CLICK</Event><EventKey>k</EventKey>");
        assert_eq!(parse_inbound(&click).unwrap().dedup_key(), "evt:UserID:1348831860:click:k");
    }
}
