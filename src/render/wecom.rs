//! WeCom: a campaign's application message as `message/send` carries it.

use crate::domain::message::{WecomArticle, WecomMessage};
use crate::wire::wecom::{AppMessage, NewsArticle};

/// The wire form of a campaign's WeCom message.
pub fn app_message(m: &WecomMessage) -> AppMessage {
    match m {
        WecomMessage::Text { content } => AppMessage::Text { content: content.clone() },
        WecomMessage::TextCard { title, description, url, btntxt } => AppMessage::TextCard {
            title: title.clone(),
            description: description.clone(),
            url: url.clone(),
            btntxt: btntxt.clone(),
        },
        WecomMessage::News { articles } => AppMessage::News { articles: articles.iter().map(news_article).collect() },
        WecomMessage::Markdown { content } => AppMessage::Markdown { content: content.clone() },
    }
}

fn news_article(a: &WecomArticle) -> NewsArticle {
    NewsArticle {
        title: a.title.clone(),
        description: a.description.clone(),
        url: a.url.clone(),
        picurl: a.picurl.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::wecom::SendRequest;
    use serde_json::{json, Value};

    fn wire(domain: Value) -> Value {
        let m: WecomMessage = serde_json::from_value(domain).unwrap();
        serde_json::to_value(app_message(&m)).unwrap()
    }

    #[test]
    fn text_and_markdown_keep_their_content() {
        let text = json!({"msgtype": "text", "text": {"content": "Standup at 10\n<a href=\"https://x\">x</a>"}});
        assert_eq!(wire(text.clone()), text);
        let md = json!({"msgtype": "markdown", "markdown": {"content": "**bold**"}});
        assert_eq!(wire(md.clone()), md);
    }

    #[test]
    fn textcard_leaves_out_an_absent_button() {
        let card = json!({"msgtype": "textcard", "textcard": {
            "title": "Leave approved", "description": "<div class=\"gray\">today</div>", "url": "https://hr.example/1",
            "btntxt": "详情"}});
        assert_eq!(
            wire(card),
            json!({"msgtype": "textcard", "textcard": {
            "title": "Leave approved", "description": "<div class=\"gray\">today</div>", "url": "https://hr.example/1",
            "btntxt": "详情"}})
        );
        let plain = json!({"msgtype": "textcard", "textcard": {"title": "t", "description": "d", "url": "u"}});
        assert_eq!(
            wire(plain),
            json!({"msgtype": "textcard", "textcard": {"title": "t", "description": "d", "url": "u"}})
        );
    }

    #[test]
    fn news_articles_keep_their_order_and_optional_fields() {
        let news = json!({"msgtype": "news", "news": {"articles": [
            {"title": "One", "description": "first", "url": "https://n.example/1", "picurl": "https://n.example/1.png"},
            {"title": "Two", "url": "https://n.example/2"}]}});
        assert_eq!(
            wire(news),
            json!({"msgtype": "news", "news": {"articles": [
            {"title": "One", "description": "first", "url": "https://n.example/1", "picurl": "https://n.example/1.png"},
            {"title": "Two", "url": "https://n.example/2"}]}})
        );
    }

    /// The stored domain message and the wire message it becomes are written alike, in the
    /// store's msgpack and in JSON: a stored spec is what the vendor reads.
    #[test]
    fn domain_and_wire_messages_are_written_alike() {
        let article = WecomArticle { title: "a".into(), description: None, url: "u".into(), picurl: Some("p".into()) };
        let messages = [
            WecomMessage::Text { content: "hi".into() },
            WecomMessage::TextCard { title: "t".into(), description: "d".into(), url: "u".into(), btntxt: None },
            WecomMessage::TextCard {
                title: "t".into(),
                description: "d".into(),
                url: "u".into(),
                btntxt: Some("b".into()),
            },
            WecomMessage::News {
                articles: vec![article.clone(), WecomArticle { description: Some("d".into()), ..article }],
            },
            WecomMessage::Markdown { content: "**m**".into() },
        ];
        for m in messages {
            let wire = app_message(&m);
            assert_eq!(rmp_serde::to_vec_named(&m).unwrap(), rmp_serde::to_vec_named(&wire).unwrap(), "{m:?}");
            assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::to_value(&wire).unwrap(), "{m:?}");
        }
    }

    #[test]
    fn the_message_flattens_into_a_send_request() {
        let m = WecomMessage::Text { content: "hi".into() };
        let req = SendRequest {
            touser: "a|b".into(),
            agentid: 1000002,
            message: app_message(&m),
            enable_duplicate_check: 0,
            duplicate_check_interval: 1800,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"touser": "a|b", "agentid": 1000002, "msgtype": "text", "text": {"content": "hi"},
                   "enable_duplicate_check": 0, "duplicate_check_interval": 1800})
        );
    }
}
