//! WeCom (企业微信) outbound wire types: the JSON of `gettoken` and `message/send`, nothing else.
//!
//! The client serializes these and the simulator reads them back, so a field name can only be
//! wrong in one place. Names and limits follow `shared/reference/wecom.md` §4. Only the four
//! message types a campaign needs are modelled (text, textcard, news, markdown); media types
//! would need an upload step that campaignd does not have.

use serde::{Deserialize, Serialize};

/// Most member ids one `message/send` call may name in `touser`.
pub const MAX_USERS_PER_SEND: usize = 1000;
/// Longest `text.content` and `markdown.content`, in UTF-8 bytes.
pub const MAX_CONTENT_BYTES: usize = 2048;
/// Longest `textcard.title`, in UTF-8 bytes.
pub const MAX_TEXTCARD_TITLE_BYTES: usize = 128;
/// Longest `textcard.description`, in UTF-8 bytes.
pub const MAX_TEXTCARD_DESCRIPTION_BYTES: usize = 512;
/// Longest `textcard.btntxt`, in characters (not bytes: "详情" is two).
pub const MAX_BTNTXT_CHARS: usize = 4;
/// Most articles in one `news` message.
pub const MAX_NEWS_ARTICLES: usize = 8;
/// Longest `duplicate_check_interval` the upstream accepts: four hours, in seconds.
pub const MAX_DUPLICATE_CHECK_SECS: u32 = 4 * 3600;

/// `GET /cgi-bin/gettoken` answer. Every field but `errcode` defaults so that an error answer
/// (which has no token) still parses and can be classified; `errcode` is always present
/// upstream, and requiring it keeps a stray JSON body (a proxy's, a wrong path's) from passing
/// for success.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenAnswer {
    /// 0 on success.
    pub errcode: i64,
    /// Human-readable; never branch on it.
    #[serde(default)]
    pub errmsg: String,
    /// The token for the `access_token` query parameter (up to 512 bytes).
    #[serde(default)]
    pub access_token: String,
    /// Seconds the token stays valid, normally 7200.
    #[serde(default)]
    pub expires_in: u64,
}

/// One article of a `news` message. The first one is shown large.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewsArticle {
    /// Headline (required).
    pub title: String,
    /// Summary under the headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where a tap leads (required).
    pub url: String,
    /// Cover image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picurl: Option<String>,
}

/// An application message as a campaign defines it.
///
/// It serializes to the vendor's shape, `{"msgtype":"text","text":{"content":"hi"}}`, both on
/// its own (so API users can write it that way) and when flattened into [`SendRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(into = "TaggedMessage", from = "TaggedMessage")]
pub enum AppMessage {
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
        /// Where the card leads (required).
        url: String,
        /// Button text, at most 4 characters; the client shows "详情" when absent.
        btntxt: Option<String>,
    },
    /// One to eight linked articles.
    News {
        /// The articles, in display order.
        articles: Vec<NewsArticle>,
    },
    /// Markdown (shown by the WeCom app only, not by the WeChat plugin).
    Markdown {
        /// 1..=2048 bytes.
        content: String,
    },
}

/// `{"content": ...}`, the body of `text` and `markdown`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentBody {
    /// The text.
    pub content: String,
}

/// The body of `textcard`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TextCardBody {
    /// Card title.
    pub title: String,
    /// Card text.
    pub description: String,
    /// Card link.
    pub url: String,
    /// Button text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btntxt: Option<String>,
}

/// The body of `news`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewsBody {
    /// The articles.
    pub articles: Vec<NewsArticle>,
}

/// The on-the-wire form of [`AppMessage`]: serde's internal tag gives `"msgtype"`, and each
/// variant's single field is named after its type, which yields `"text": {...}` beside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum TaggedMessage {
    /// `"msgtype":"text","text":{...}`.
    Text {
        /// Body.
        text: ContentBody,
    },
    /// `"msgtype":"textcard","textcard":{...}`.
    Textcard {
        /// Body.
        textcard: TextCardBody,
    },
    /// `"msgtype":"news","news":{...}`.
    News {
        /// Body.
        news: NewsBody,
    },
    /// `"msgtype":"markdown","markdown":{...}`.
    Markdown {
        /// Body.
        markdown: ContentBody,
    },
}

impl From<AppMessage> for TaggedMessage {
    fn from(m: AppMessage) -> Self {
        match m {
            AppMessage::Text { content } => TaggedMessage::Text { text: ContentBody { content } },
            AppMessage::TextCard { title, description, url, btntxt } => {
                TaggedMessage::Textcard { textcard: TextCardBody { title, description, url, btntxt } }
            }
            AppMessage::News { articles } => TaggedMessage::News { news: NewsBody { articles } },
            AppMessage::Markdown { content } => TaggedMessage::Markdown { markdown: ContentBody { content } },
        }
    }
}

impl From<TaggedMessage> for AppMessage {
    fn from(m: TaggedMessage) -> Self {
        match m {
            TaggedMessage::Text { text } => AppMessage::Text { content: text.content },
            TaggedMessage::Textcard { textcard: c } => {
                AppMessage::TextCard { title: c.title, description: c.description, url: c.url, btntxt: c.btntxt }
            }
            TaggedMessage::News { news } => AppMessage::News { articles: news.articles },
            TaggedMessage::Markdown { markdown } => AppMessage::Markdown { content: markdown.content },
        }
    }
}

impl AppMessage {
    /// The vendor's `msgtype` string.
    pub fn msgtype(&self) -> &'static str {
        match self {
            AppMessage::Text { .. } => "text",
            AppMessage::TextCard { .. } => "textcard",
            AppMessage::News { .. } => "news",
            AppMessage::Markdown { .. } => "markdown",
        }
    }

    /// Checks the documented limits so that a campaign is refused when it is created, not when
    /// the upstream answers 44004/45002/45008 for every batch. The error says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            AppMessage::Text { content } => check_content("text.content", content),
            AppMessage::Markdown { content } => check_content("markdown.content", content),
            AppMessage::TextCard { title, description, url, btntxt } => {
                check_textcard(title, description, url, btntxt.as_deref())
            }
            AppMessage::News { articles } => check_news(articles.iter().map(|a| (a.title.as_str(), a.url.as_str()))),
        }
    }
}

/// `text.content` or `markdown.content` (`field` names which): some text, at most
/// [`MAX_CONTENT_BYTES`].
pub fn check_content(field: &str, content: &str) -> Result<(), String> {
    if content.trim().is_empty() {
        return Err(format!("{field} is empty; give it some text"));
    }
    max_bytes(field, content, MAX_CONTENT_BYTES)
}

/// `textcard`: title, description and url present, each within its limit, and a short button.
pub fn check_textcard(title: &str, description: &str, url: &str, btntxt: Option<&str>) -> Result<(), String> {
    required("textcard.title", title)?;
    max_bytes("textcard.title", title, MAX_TEXTCARD_TITLE_BYTES)?;
    required("textcard.description", description)?;
    max_bytes("textcard.description", description, MAX_TEXTCARD_DESCRIPTION_BYTES)?;
    required("textcard.url", url)?;
    if let Some(b) = btntxt {
        let chars = b.chars().count();
        if chars > MAX_BTNTXT_CHARS {
            return Err(format!(
                "textcard.btntxt has {chars} characters; shorten it to at most {MAX_BTNTXT_CHARS} or leave it out"
            ));
        }
    }
    Ok(())
}

/// `news`: 1 to [`MAX_NEWS_ARTICLES`] articles, given as `(title, url)`, each with both.
pub fn check_news<'a>(articles: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    let n = articles.len();
    if n == 0 || n > MAX_NEWS_ARTICLES {
        return Err(format!("news.articles holds {n} articles; give it 1 to {MAX_NEWS_ARTICLES}"));
    }
    for (i, (title, url)) in articles.enumerate() {
        required(&format!("news.articles[{i}].title"), title)?;
        required(&format!("news.articles[{i}].url"), url)?;
    }
    Ok(())
}

fn required(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{field} is missing; it is required"))
    } else {
        Ok(())
    }
}

fn max_bytes(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        Err(format!("{field} is {} bytes (UTF-8); shorten it to at most {max} bytes", value.len()))
    } else {
        Ok(())
    }
}

/// `POST /cgi-bin/message/send` body for member recipients (`toparty`/`totag` are not used).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendRequest {
    /// Member ids joined with `|`, at most [`MAX_USERS_PER_SEND`].
    pub touser: String,
    /// The application's AgentId.
    pub agentid: i64,
    /// `msgtype` and its body, flattened beside the other fields.
    #[serde(flatten)]
    pub message: AppMessage,
    /// 1: the upstream drops an identical request seen within the interval.
    #[serde(default)]
    pub enable_duplicate_check: u8,
    /// Seconds the duplicate check looks back (default 1800, at most 4 hours).
    #[serde(default = "default_duplicate_interval")]
    pub duplicate_check_interval: u32,
}

fn default_duplicate_interval() -> u32 {
    1800
}

/// `message/send` answer. Unknown fields (`invalidparty`, `response_code`, ...) are ignored;
/// `errcode` is required, as for [`TokenAnswer`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendAnswer {
    /// 0 on success (recipients in `invaliduser` were still skipped).
    pub errcode: i64,
    /// Human-readable; never branch on it.
    #[serde(default)]
    pub errmsg: String,
    /// Skipped member ids, lower-cased, joined with `|`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invaliduser: Option<String>,
    /// Members skipped because they hold no license; they did not receive the message either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlicenseduser: Option<String>,
    /// Id for recalling the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgid: Option<String>,
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters stay as they are), so
/// that `+`, `/` and `=` in base64 or secrets survive the trip.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(s: &str) -> AppMessage {
        AppMessage::Text { content: s.into() }
    }

    #[test]
    fn messages_have_the_vendor_shape() {
        assert_eq!(serde_json::to_value(text("hi")).unwrap(), json!({"msgtype": "text", "text": {"content": "hi"}}));
        let card = AppMessage::TextCard {
            title: "t".into(),
            description: "d".into(),
            url: "https://e.example/".into(),
            btntxt: None,
        };
        assert_eq!(
            serde_json::to_value(&card).unwrap(),
            json!({"msgtype": "textcard", "textcard": {"title": "t", "description": "d", "url": "https://e.example/"}})
        );
        let parsed: AppMessage =
            serde_json::from_value(json!({"msgtype": "markdown", "markdown": {"content": "**x**"}})).unwrap();
        assert_eq!(parsed, AppMessage::Markdown { content: "**x**".into() });
        assert!(serde_json::from_value::<AppMessage>(json!({"msgtype": "image", "image": {"media_id": "m"}})).is_err());
    }

    #[test]
    fn send_request_flattens_the_message() {
        let req = SendRequest {
            touser: "a|b".into(),
            agentid: 1000002,
            message: AppMessage::News {
                articles: vec![NewsArticle {
                    title: "n".into(),
                    description: None,
                    url: "https://e.example/n".into(),
                    picurl: Some("https://e.example/p.png".into()),
                }],
            },
            enable_duplicate_check: 0,
            duplicate_check_interval: 1800,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({
                "touser": "a|b", "agentid": 1000002, "msgtype": "news",
                "news": {"articles": [{"title": "n", "url": "https://e.example/n", "picurl": "https://e.example/p.png"}]},
                "enable_duplicate_check": 0, "duplicate_check_interval": 1800
            })
        );
        assert_eq!(serde_json::from_value::<SendRequest>(v).unwrap(), req);
    }

    #[test]
    fn validation_names_the_field_to_fix() {
        assert!(text("hello").validate().is_ok());
        assert!(text(&"a".repeat(2048)).validate().is_ok());
        assert!(text("").validate().unwrap_err().contains("text.content is empty"));
        // 683 three-byte characters are 2049 bytes.
        let err = text(&"字".repeat(683)).validate().unwrap_err();
        assert!(err.contains("2049 bytes") && err.contains("at most 2048"), "{err}");
        let card = |title: &str, btn: Option<&str>| AppMessage::TextCard {
            title: title.into(),
            description: "d".into(),
            url: "https://e.example/".into(),
            btntxt: btn.map(str::to_owned),
        };
        assert!(card("t", Some("详情详情")).validate().is_ok());
        assert!(card("t", Some("查看详情啊")).validate().unwrap_err().contains("textcard.btntxt has 5 characters"));
        assert!(card(&"x".repeat(129), None).validate().unwrap_err().contains("textcard.title is 129 bytes"));
        let article = NewsArticle { title: "a".into(), description: None, url: "u".into(), picurl: None };
        let news = |n: usize| AppMessage::News { articles: vec![article.clone(); n] };
        assert!(news(8).validate().is_ok());
        assert!(news(9).validate().unwrap_err().contains("holds 9 articles"));
        assert!(news(0).validate().unwrap_err().contains("holds 0 articles"));
        let no_url = AppMessage::News { articles: vec![NewsArticle { url: String::new(), ..article }] };
        assert_eq!(no_url.validate().unwrap_err(), "news.articles[0].url is missing; it is required");
    }

    #[test]
    fn error_answers_parse_without_a_token() {
        let t: TokenAnswer = serde_json::from_str(r#"{"errcode":40013,"errmsg":"invalid corpid"}"#).unwrap();
        assert_eq!((t.errcode, t.access_token.as_str(), t.expires_in), (40013, "", 0));
        let s: SendAnswer =
            serde_json::from_str(r#"{"errcode":0,"errmsg":"ok","invaliduser":"x","invalidparty":"","msgid":"m"}"#)
                .unwrap();
        assert_eq!((s.invaliduser.as_deref(), s.msgid.as_deref()), (Some("x"), Some("m")));
        // Somebody else's JSON is not a success.
        assert!(serde_json::from_str::<TokenAnswer>(r#"{"code":404,"msg":"url is not found"}"#).is_err());
        assert!(serde_json::from_str::<SendAnswer>(r#"{"ok":true}"#).is_err());
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(query_escape("ww-1_x.~"), "ww-1_x.~");
    }
}
