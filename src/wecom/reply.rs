//! Builds the plaintext XML of a passive reply (the answer to a callback, before encryption)
//! from a reply that users write in the TOML configuration. Shapes: `shared/reference/wecom.md` §3.3.

use serde::{Deserialize, Serialize};

/// Longest text reply WeCom delivers whole; it cuts longer ones.
pub const MAX_TEXT_BYTES: usize = 2048;

/// Most articles a news reply may carry (the send API's limit, the safe one for replies too).
pub const MAX_ARTICLES: usize = 8;

/// A passive reply as configured, e.g. `reply = { type = "text", content = "hi" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReplyMessage {
    /// A text message.
    Text {
        /// The text, at most [`MAX_TEXT_BYTES`] bytes of UTF-8.
        content: String,
    },
    /// A picture uploaded beforehand through WeCom's media API.
    Image {
        /// The uploaded picture's media id.
        media_id: String,
    },
    /// A voice recording uploaded beforehand.
    Voice {
        /// The uploaded recording's media id.
        media_id: String,
    },
    /// A video uploaded beforehand.
    Video {
        /// The uploaded video's media id.
        media_id: String,
        /// Title shown with the video; may be empty.
        #[serde(default)]
        title: String,
        /// Description shown with the video; may be empty.
        #[serde(default)]
        description: String,
    },
    /// Link cards (图文); the first is shown large.
    News {
        /// 1 to [`MAX_ARTICLES`] cards.
        articles: Vec<Article>,
    },
}

/// One link card of a news reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    /// The card's title; required.
    pub title: String,
    /// Text under the title.
    #[serde(default)]
    pub description: String,
    /// The picture's URL.
    #[serde(default)]
    pub picurl: String,
    /// Where a tap on the card leads.
    #[serde(default)]
    pub url: String,
}

impl ReplyMessage {
    /// Checks the limits WeCom enforces, so a bad reply is refused when the configuration loads
    /// rather than silently dropped by WeCom later. The message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ReplyMessage::Text { content } => validate_content(content),
            ReplyMessage::Image { media_id } | ReplyMessage::Voice { media_id } => {
                validate_media_id(self.msg_type(), media_id)
            }
            ReplyMessage::Video { media_id, title, description } => {
                validate_media_id("video", media_id)?;
                check_xml_chars("video reply title", title)?;
                check_xml_chars("video reply description", description)
            }
            ReplyMessage::News { articles } => validate_articles(articles),
        }
    }

    /// The `MsgType` WeCom expects for this reply.
    fn msg_type(&self) -> &'static str {
        match self {
            ReplyMessage::Text { .. } => "text",
            ReplyMessage::Image { .. } => "image",
            ReplyMessage::Voice { .. } => "voice",
            ReplyMessage::Video { .. } => "video",
            ReplyMessage::News { .. } => "news",
        }
    }
}

/// A text reply must say something and fit WeCom's limit.
fn validate_content(content: &str) -> Result<(), String> {
    if content.is_empty() {
        return Err("text reply: `content` is empty; write the text to send".to_owned());
    }
    if content.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "text reply: `content` is {} bytes but WeCom keeps at most {MAX_TEXT_BYTES} bytes \
             (about 680 Chinese characters); shorten it",
            content.len()
        ));
    }
    check_xml_chars("text reply content", content)
}

/// A media reply needs the id WeCom returned when the file was uploaded.
fn validate_media_id(kind: &str, media_id: &str) -> Result<(), String> {
    if media_id.trim().is_empty() {
        return Err(format!(
            "{kind} reply: `media_id` is empty; upload the file with WeCom's media upload API and use the id it returns"
        ));
    }
    check_xml_chars(&format!("{kind} reply media_id"), media_id)
}

/// A news reply needs 1 to [`MAX_ARTICLES`] cards, each with a title.
fn validate_articles(articles: &[Article]) -> Result<(), String> {
    if articles.is_empty() || articles.len() > MAX_ARTICLES {
        return Err(format!(
            "news reply: has {} articles; WeCom accepts 1 to {MAX_ARTICLES}, add or remove some",
            articles.len()
        ));
    }
    for (index, article) in articles.iter().enumerate() {
        let number = index + 1;
        if article.title.trim().is_empty() {
            return Err(format!("news reply: article {number} has an empty `title`; give it one"));
        }
        for (field, value) in [
            ("title", &article.title),
            ("description", &article.description),
            ("picurl", &article.picurl),
            ("url", &article.url),
        ] {
            check_xml_chars(&format!("news reply article {number} {field}"), value)?;
        }
    }
    Ok(())
}

/// Refuses control characters that XML 1.0 cannot carry at all, even in CDATA.
fn check_xml_chars(what: &str, value: &str) -> Result<(), String> {
    let bad =
        value.chars().find(|&c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}');
    match bad {
        Some(c) => {
            Err(format!("{what} contains the control character U+{:04X}, which XML cannot carry; remove it", c as u32))
        }
        None => Ok(()),
    }
}

/// The plaintext XML of a passive reply, ready to encrypt: `to_user` is the member who wrote (the
/// inbound `FromUserName`), `from_corp` the CorpID, `create_time` Unix seconds.
///
/// Text values go into CDATA sections; a `]]>` inside a value is split across two sections, so
/// the document stays well-formed whatever the configuration holds.
pub fn reply_xml(reply: &ReplyMessage, to_user: &str, from_corp: &str, create_time: i64) -> String {
    let mut xml = String::from("<xml>");
    push_cdata(&mut xml, "ToUserName", to_user);
    push_cdata(&mut xml, "FromUserName", from_corp);
    push_plain(&mut xml, "CreateTime", &create_time.to_string());
    push_cdata(&mut xml, "MsgType", reply.msg_type());
    push_body(&mut xml, reply);
    xml.push_str("</xml>");
    xml
}

/// The elements after the header, which differ by reply type.
fn push_body(xml: &mut String, reply: &ReplyMessage) {
    match reply {
        ReplyMessage::Text { content } => push_cdata(xml, "Content", content),
        ReplyMessage::Image { media_id } => push_media(xml, "Image", media_id),
        ReplyMessage::Voice { media_id } => push_media(xml, "Voice", media_id),
        ReplyMessage::Video { media_id, title, description } => {
            xml.push_str("<Video>");
            push_cdata(xml, "MediaId", media_id);
            push_cdata(xml, "Title", title);
            push_cdata(xml, "Description", description);
            xml.push_str("</Video>");
        }
        ReplyMessage::News { articles } => push_articles(xml, articles),
    }
}

/// `<Image><MediaId>..</MediaId></Image>` and its voice twin.
fn push_media(xml: &mut String, wrapper: &str, media_id: &str) {
    push_open(xml, wrapper);
    push_cdata(xml, "MediaId", media_id);
    push_close(xml, wrapper);
}

/// `<ArticleCount>` and one `<item>` per article inside `<Articles>`.
fn push_articles(xml: &mut String, articles: &[Article]) {
    push_plain(xml, "ArticleCount", &articles.len().to_string());
    xml.push_str("<Articles>");
    for article in articles {
        xml.push_str("<item>");
        push_cdata(xml, "Title", &article.title);
        push_cdata(xml, "Description", &article.description);
        push_cdata(xml, "PicUrl", &article.picurl);
        push_cdata(xml, "Url", &article.url);
        xml.push_str("</item>");
    }
    xml.push_str("</Articles>");
}

/// `<name><![CDATA[value]]></name>`. A CDATA section ends at the first `]]>` and nothing inside can
/// be escaped, so each `]]>` is cut between `]]` and `>` into two adjacent sections.
fn push_cdata(xml: &mut String, name: &str, value: &str) {
    push_open(xml, name);
    xml.push_str("<![CDATA[");
    xml.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    xml.push_str("]]>");
    push_close(xml, name);
}

/// `<name>value</name>` for values we produce ourselves (numbers), which need no escaping.
fn push_plain(xml: &mut String, name: &str, value: &str) {
    push_open(xml, name);
    xml.push_str(value);
    push_close(xml, name);
}

/// `<name>`.
fn push_open(xml: &mut String, name: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
}

/// `</name>`.
fn push_close(xml: &mut String, name: &str) {
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    /// Parses `xml` with quick-xml and lists every leaf element as (`path/of/names`, text),
    /// in document order, joining CDATA sections and plain text as a reader would.
    fn leaves(xml: &str) -> Vec<(String, String)> {
        let mut reader = Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut is_leaf = false;
        let mut out = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(tag) => {
                    path.push(String::from_utf8(tag.name().as_ref().to_vec()).unwrap());
                    text.clear();
                    is_leaf = true;
                }
                Event::End(_) => {
                    if is_leaf {
                        out.push((path.join("/"), std::mem::take(&mut text)));
                    }
                    path.pop();
                    is_leaf = false;
                }
                Event::Text(t) => text.push_str(&t.decode().unwrap()),
                Event::CData(c) => text.push_str(&c.decode().unwrap()),
                Event::Eof => break,
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert!(path.is_empty(), "unclosed elements in {xml}");
        out
    }

    /// Owned (path, text) pairs from string literals, to compare with [`leaves`].
    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
    }

    /// The header every reply starts with, for member `zhangsan` of corp `ww1436e0e65a779aee`.
    fn header(msg_type: &str) -> Vec<(String, String)> {
        pairs(&[
            ("xml/ToUserName", "zhangsan"),
            ("xml/FromUserName", "ww1436e0e65a779aee"),
            ("xml/CreateTime", "1700000000"),
            ("xml/MsgType", msg_type),
        ])
    }

    /// The leaves of `reply` built for the header above.
    fn built(reply: &ReplyMessage) -> Vec<(String, String)> {
        leaves(&reply_xml(reply, "zhangsan", "ww1436e0e65a779aee", 1700000000))
    }

    #[test]
    fn text_reply_exact_shape() {
        let xml = reply_xml(&ReplyMessage::Text { content: "this is a test".into() }, "toUser", "fromUser", 1348831860);
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName>\
             <CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[this is a test]]></Content></xml>"
        );
    }

    #[test]
    fn text_reply_keeps_cdata_end_newlines_and_chinese() {
        let content = "a]]>b]]]>c\n第二行 <tag> & ]]>";
        let mut expected = header("text");
        expected.extend(pairs(&[("xml/Content", content)]));
        assert_eq!(built(&ReplyMessage::Text { content: content.into() }), expected);
    }

    #[test]
    fn text_reply_parses_back_as_an_inbound_message() {
        let content = "你好\n]]>";
        let xml = reply_xml(&ReplyMessage::Text { content: content.into() }, "zhangsan", "corp", 5);
        let parsed = crate::wecom::parse_inbound(&xml).unwrap();
        assert_eq!(parsed.to_user, "zhangsan");
        assert_eq!(parsed.from_user, "corp");
        assert_eq!(parsed.create_time, 5);
        assert_eq!(parsed.kind, crate::wecom::InboundKind::Text { content: content.into() });
    }

    #[test]
    fn image_and_voice_replies() {
        let mut expected = header("image");
        expected.extend(pairs(&[("xml/Image/MediaId", "media_1")]));
        assert_eq!(built(&ReplyMessage::Image { media_id: "media_1".into() }), expected);
        let mut expected = header("voice");
        expected.extend(pairs(&[("xml/Voice/MediaId", "media_2")]));
        assert_eq!(built(&ReplyMessage::Voice { media_id: "media_2".into() }), expected);
    }

    #[test]
    fn video_reply() {
        let reply =
            ReplyMessage::Video {
                media_id: "m".into(), title: "标题]]>".into(), description: "line 1\nline 2".into()
            };
        let mut expected = header("video");
        expected.extend(pairs(&[
            ("xml/Video/MediaId", "m"),
            ("xml/Video/Title", "标题]]>"),
            ("xml/Video/Description", "line 1\nline 2"),
        ]));
        assert_eq!(built(&reply), expected);
    }

    #[test]
    fn news_reply() {
        let reply = ReplyMessage::News {
            articles: vec![
                Article {
                    title: "新品上市".into(),
                    description: "第一行\n第二行".into(),
                    picurl: "https://example.com/p.png".into(),
                    url: "https://example.com/a?x=1&y=]]>".into(),
                },
                Article { title: "t2".into(), description: String::new(), picurl: String::new(), url: "u2".into() },
            ],
        };
        let mut expected = header("news");
        expected.extend(pairs(&[
            ("xml/ArticleCount", "2"),
            ("xml/Articles/item/Title", "新品上市"),
            ("xml/Articles/item/Description", "第一行\n第二行"),
            ("xml/Articles/item/PicUrl", "https://example.com/p.png"),
            ("xml/Articles/item/Url", "https://example.com/a?x=1&y=]]>"),
            ("xml/Articles/item/Title", "t2"),
            ("xml/Articles/item/Description", ""),
            ("xml/Articles/item/PicUrl", ""),
            ("xml/Articles/item/Url", "u2"),
        ]));
        assert_eq!(built(&reply), expected);
    }

    /// The TOML table a user writes, as the configuration would hold it.
    #[derive(Debug, Deserialize)]
    struct Config {
        reply: ReplyMessage,
    }

    #[test]
    fn reads_from_toml() {
        let text: Config = toml::from_str(r#"reply = { type = "text", content = "hi" }"#).unwrap();
        assert_eq!(text.reply, ReplyMessage::Text { content: "hi".into() });
        let video: Config = toml::from_str(r#"reply = { type = "video", media_id = "m" }"#).unwrap();
        assert_eq!(video.reply, ReplyMessage::Video { media_id: "m".into(), title: "".into(), description: "".into() });
        let news: Config = toml::from_str(
            r#"
            [reply]
            type = "news"
            articles = [{ title = "a", url = "https://example.com/" }]
            "#,
        )
        .unwrap();
        let article = Article {
            title: "a".into(),
            description: "".into(),
            picurl: "".into(),
            url: "https://example.com/".into(),
        };
        assert_eq!(news.reply, ReplyMessage::News { articles: vec![article] });
    }

    #[test]
    fn toml_typos_are_refused() {
        for bad in [
            r#"reply = { type = "text", content = "hi", colour = "red" }"#,
            r#"reply = { type = "txt", content = "hi" }"#,
            r#"reply = { type = "news", articles = [{ title = "a", link = "b" }] }"#,
            r#"reply = { content = "hi" }"#,
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn validate_accepts_good_replies() {
        assert_eq!(ReplyMessage::Text { content: "好".repeat(682) }.validate(), Ok(()));
        assert_eq!(ReplyMessage::Image { media_id: "m".into() }.validate(), Ok(()));
        let articles =
            vec![Article { title: "t".into(), description: "".into(), picurl: "".into(), url: "".into() }; 8];
        assert_eq!(ReplyMessage::News { articles }.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_bad_replies() {
        let too_long = ReplyMessage::Text { content: "好".repeat(683) }.validate().unwrap_err();
        assert!(too_long.contains("2049 bytes"), "{too_long}");
        let empty = ReplyMessage::Text { content: String::new() }.validate().unwrap_err();
        assert!(empty.contains("`content` is empty"), "{empty}");
        let control = ReplyMessage::Text { content: "bell\u{7}".into() }.validate().unwrap_err();
        assert!(control.contains("U+0007"), "{control}");
        let media = ReplyMessage::Voice { media_id: " ".into() }.validate().unwrap_err();
        assert!(media.starts_with("voice reply: `media_id` is empty"), "{media}");
        let article = Article { title: "t".into(), description: "".into(), picurl: "".into(), url: "".into() };
        let nine = ReplyMessage::News { articles: vec![article.clone(); 9] }.validate().unwrap_err();
        assert!(nine.contains("has 9 articles"), "{nine}");
        let none = ReplyMessage::News { articles: vec![] }.validate().unwrap_err();
        assert!(none.contains("has 0 articles"), "{none}");
        let untitled = Article { title: "".into(), ..article.clone() };
        let err = ReplyMessage::News { articles: vec![article, untitled] }.validate().unwrap_err();
        assert_eq!(err, "news reply: article 2 has an empty `title`; give it one");
    }
}
