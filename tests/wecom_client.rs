//! The WeCom client against the simulator over real loopback HTTP: token caching and renewal,
//! recipient limits and invalid members, answer classes, the duplicate check; and the
//! callback player against a minimal callback endpoint.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use campaignd::secret::Secret;
use campaignd::serve::{serve, text_response, HandlerResult};
use campaignd::simulator::{
    CallbackPlayer, Delivery, Inbound, RunningSimulator, Signing, SimConfig, Simulator, WecomLedgerSummary,
    WecomSimConfig, DEV_WECOM_AES_KEY, DEV_WECOM_AGENT_ID, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_CORP_ID,
    DEV_WECOM_SECRET,
};
use campaignd::upstream::getui::AnswerClass;
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use campaignd::upstream::wecom::{AppMessage, NewsArticle, WecomClient, WecomError, WecomSettings};
use campaignd::upstream::ProviderError;
use campaignd::wecom::MsgCrypt;
use common::eventually;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio_util::sync::CancellationToken;

async fn start(wecom: WecomSimConfig) -> RunningSimulator {
    let config = SimConfig { wecom, ..SimConfig::default() };
    Simulator::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap().spawn()
}

fn settings(base_url: &str) -> WecomSettings {
    WecomSettings {
        base_url: base_url.to_owned(),
        corp_id: DEV_WECOM_CORP_ID.into(),
        agent_id: DEV_WECOM_AGENT_ID,
        secret: Secret::new(DEV_WECOM_SECRET),
        request_timeout: Duration::from_secs(5),
        pool: PoolSettings::default(),
    }
}

fn client(sim: &RunningSimulator) -> WecomClient {
    WecomClient::new(settings(&sim.wecom_base_url())).unwrap()
}

fn text(s: &str) -> AppMessage {
    AppMessage::Text { content: s.into() }
}

/// One request to the simulator's introspection paths.
async fn sim_call(sim: &RunningSimulator, method: Method, path: &str) -> (u16, serde_json::Value) {
    let http = build_client(&PoolSettings::default()).unwrap();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", sim.local_addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = http.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = read_body(resp.into_body()).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

async fn ledger(sim: &RunningSimulator) -> WecomLedgerSummary {
    let (status, body) = sim_call(sim, Method::GET, "/_sim/wecom/ledger").await;
    assert_eq!(status, 200);
    serde_json::from_value(body).unwrap()
}

async fn received(sim: &RunningSimulator, user: &str) -> u64 {
    let (status, body) = sim_call(sim, Method::GET, &format!("/_sim/wecom/ledger/{user}")).await;
    assert_eq!(status, 200);
    body["deliveries"].as_u64().unwrap()
}

fn api_code(e: &WecomError) -> Option<i64> {
    match e {
        WecomError::Api { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn token_is_fetched_once_and_reused() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let first = c.send(&text("first"), &["alice", "bob"]).await.unwrap();
    let second = c.send(&text("second"), &["alice"]).await.unwrap();
    assert!(first.invalid_users.is_empty() && second.invalid_users.is_empty());
    assert!(first.msgid.is_some() && first.msgid != second.msgid, "{first:?} {second:?}");
    let l = ledger(&sim).await;
    assert_eq!((l.gettoken_calls, l.tokens_issued, l.calls, l.refused), (1, 1, 2, 0));
    assert_eq!((l.deliveries, l.unique, l.duplicates), (3, 2, 1));
    assert_eq!((received(&sim, "alice").await, received(&sim, "bob").await), (2, 1));
}

#[tokio::test]
async fn concurrent_sends_share_one_token_fetch() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let sends = (0..8).map(|i| {
        let c = c.clone();
        tokio::spawn(async move { c.send(&text(&format!("n{i}")), &[&format!("user{i}")]).await })
    });
    for s in sends {
        s.await.unwrap().unwrap();
    }
    let l = ledger(&sim).await;
    assert_eq!((l.gettoken_calls, l.calls, l.deliveries), (1, 8, 8));
}

#[tokio::test]
async fn expired_token_is_renewed_and_the_send_replayed_once() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    c.send(&text("warm-up"), &["zed"]).await.unwrap();
    let (status, body) = sim_call(&sim, Method::POST, "/_sim/wecom/expire-tokens").await;
    assert_eq!((status, body["expired"].as_u64()), (200, Some(1)));

    let out = c.send(&text("after expiry"), &["alice", "bob"]).await.unwrap();
    assert!(out.invalid_users.is_empty());
    let l = ledger(&sim).await;
    // The send with the expired token was refused (42001), then replayed once with a new one.
    assert_eq!((l.refused, l.calls, l.gettoken_calls, l.tokens_issued), (1, 2, 2, 2));
    assert_eq!((received(&sim, "alice").await, received(&sim, "bob").await), (1, 1));
}

#[tokio::test]
async fn a_recipient_list_over_1000_is_refused_before_any_request() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i:04}")).collect();
    let users: Vec<&str> = ids.iter().map(String::as_str).collect();
    let err = c.send(&text("hi"), &users).await.unwrap_err();
    assert!(matches!(err, WecomError::Invalid { .. }), "{err:?}");
    assert_eq!((err.class(), err.code_label().to_string().as_str()), (AnswerClass::Permanent, "invalid"));
    assert!(err.to_string().contains("got 1001"), "{err}");
    assert!(c.send(&text("hi"), &[]).await.is_err());
    let ok = c.send(&text("hi"), &users[..1000]).await.unwrap();
    assert!(ok.invalid_users.is_empty());
    let l = ledger(&sim).await;
    assert_eq!((l.calls, l.deliveries, l.unique), (1, 1000, 1000));
}

#[tokio::test]
async fn members_outside_the_visible_range_come_back_in_the_callers_spelling() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let out = c.send(&text("hi"), &["Alice", "LEFT-Bob", "left-carol"]).await.unwrap();
    assert_eq!(out.invalid_users, vec!["LEFT-Bob", "left-carol"]);
    assert!(out.msgid.is_some());
    assert_eq!((received(&sim, "alice").await, received(&sim, "left-bob").await), (1, 0));
    let l = ledger(&sim).await;
    assert_eq!((l.calls, l.deliveries, l.invalid_recipients), (1, 1, 2));
}

#[tokio::test]
async fn all_recipients_invalid_is_ok_with_everyone_listed() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let out = c.send(&text("hi"), &["left-a", "Left-B"]).await.unwrap();
    assert_eq!(out.invalid_users, vec!["left-a", "Left-B"]);
    assert_eq!(out.msgid, None);
    let l = ledger(&sim).await;
    assert_eq!((l.calls, l.refused, l.deliveries, l.invalid_recipients), (0, 1, 0, 2));
}

#[tokio::test]
async fn a_full_minute_window_is_rate_limited() {
    let sim = start(WecomSimConfig { calls_per_minute: Some(2), ..WecomSimConfig::default() }).await;
    let c = client(&sim);
    c.send(&text("1"), &["a"]).await.unwrap();
    c.send(&text("2"), &["a"]).await.unwrap();
    let err = c.send(&text("3"), &["a"]).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (Some(45009), AnswerClass::RateLimited));
    assert_eq!(err.code_label().to_string(), "45009");
    assert_eq!(err.suggested_backoff(), Some(Duration::from_secs(60)));
    assert_eq!(received(&sim, "a").await, 2);
}

#[tokio::test]
async fn too_many_concurrent_sends_are_rate_limited() {
    let wecom = WecomSimConfig {
        max_concurrent_sends: Some(1),
        send_latency: Duration::from_millis(400),
        ..WecomSimConfig::default()
    };
    let sim = start(wecom).await;
    let c = client(&sim);
    c.authenticate().await.unwrap();
    let (first, second) = (text("a"), text("b"));
    let sim = &sim;
    let (a, b) = tokio::join!(c.send(&first, &["x"]), async {
        // The second send leaves once the first holds the only slot (it keeps it 400 ms).
        eventually("the first send to be under way", Duration::from_secs(5), || async move {
            let (status, body) = sim_call(sim, Method::GET, "/_sim/wecom/in-flight").await;
            if status == 200 && body["in_flight"] == 1 {
                Ok(())
            } else {
                Err((status, body))
            }
        })
        .await;
        c.send(&second, &["y"]).await
    });
    assert!(a.is_ok(), "{a:?}");
    let err = b.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (Some(45033), AnswerClass::RateLimited));
}

#[tokio::test]
async fn wrong_credentials_are_permanent() {
    let sim = start(WecomSimConfig::default()).await;
    let mut s = settings(&sim.wecom_base_url());
    s.secret = Secret::new("not-the-secret");
    let err = WecomClient::new(s).unwrap().send(&text("hi"), &["a"]).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (Some(40001), AnswerClass::Permanent));
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    assert!(!format!("{err:?}").contains("not-the-secret"), "{err:?}");

    let mut s = settings(&sim.wecom_base_url());
    s.corp_id = "wwsomeoneelse".into();
    let err = WecomClient::new(s).unwrap().authenticate().await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (Some(40013), AnswerClass::Permanent));

    let mut s = settings(&sim.wecom_base_url());
    s.agent_id = 7;
    let err = WecomClient::new(s).unwrap().send(&text("hi"), &["a"]).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (Some(40056), AnswerClass::Permanent));
    let l = ledger(&sim).await;
    assert_eq!((l.calls, l.deliveries, l.gettoken_calls, l.tokens_issued), (0, 0, 3, 1));
}

#[tokio::test]
async fn invalid_messages_are_refused_without_traffic() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim);
    let cases = [
        (text(""), "text.content is empty"),
        (AppMessage::Markdown { content: "m".repeat(2049) }, "markdown.content is 2049 bytes"),
        (
            AppMessage::TextCard { title: "t".into(), description: "d".into(), url: String::new(), btntxt: None },
            "textcard.url is missing",
        ),
        (AppMessage::News { articles: vec![] }, "news.articles holds 0 articles"),
    ];
    for (message, expected) in cases {
        let err = c.send(&message, &["a"]).await.unwrap_err();
        assert!(matches!(err, WecomError::Invalid { .. }) && err.to_string().contains(expected), "{err}");
        assert_eq!(err.class(), AnswerClass::Permanent);
    }
    let article =
        NewsArticle { title: "Spring".into(), description: None, url: "https://e.example/s".into(), picurl: None };
    c.send(&AppMessage::News { articles: vec![article; 8] }, &["a"]).await.unwrap();
    let l = ledger(&sim).await;
    assert_eq!((l.gettoken_calls, l.calls, l.refused), (1, 1, 0));
}

#[tokio::test]
async fn duplicate_check_keeps_a_retry_from_delivering_twice() {
    let sim = start(WecomSimConfig::default()).await;
    let c = client(&sim).with_duplicate_check(Duration::from_secs(600));
    let a = c.send(&text("same"), &["alice"]).await.unwrap();
    let b = c.send(&text("same"), &["alice"]).await.unwrap();
    assert_eq!(a.msgid, b.msgid);
    c.send(&text("different"), &["alice"]).await.unwrap();
    let l = ledger(&sim).await;
    assert_eq!((l.calls, l.deliveries, l.dropped_repeats), (3, 2, 1));
    assert_eq!(received(&sim, "alice").await, 2);
}

#[tokio::test]
async fn no_answer_and_wrong_paths_are_classified() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = WecomClient::new(settings(&format!("http://{addr}/cgi-bin"))).unwrap().authenticate().await.unwrap_err();
    assert_eq!((err.class(), err.code_label().to_string().as_str()), (AnswerClass::Retryable, "transport"));

    let sim = start(WecomSimConfig::default()).await;
    let err = WecomClient::new(settings(&format!("http://{}/wrong", sim.local_addr())))
        .unwrap()
        .authenticate()
        .await
        .unwrap_err();
    assert_eq!((err.class(), err.code_label().to_string().as_str()), (AnswerClass::Permanent, "http_404"));
}

/// A minimal callback endpoint: answers the URL check, and replies to a text message with an
/// encrypted text reply echoing it.
async fn echo_endpoint() -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let crypt = Arc::new(MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, DEV_WECOM_CORP_ID).unwrap());
    let handler = move |req: Request<Incoming>, _peer| {
        let crypt = crypt.clone();
        async move { echo(&crypt, req).await }
    };
    tokio::spawn(serve(listener, handler, stop.clone()));
    (addr, stop)
}

async fn echo(crypt: &MsgCrypt, req: Request<Incoming>) -> HandlerResult {
    let query = req.uri().query().unwrap_or("").to_owned();
    let param = |name: &str| query_param(&query, name);
    let (sig, ts, nonce) = (param("msg_signature"), param("timestamp"), param("nonce"));
    if req.method() == Method::GET {
        return Ok(match crypt.verify_url(&sig, &ts, &nonce, &param("echostr")) {
            Ok(plain) => text_response(200, plain),
            Err(e) => text_response(400, e.to_string()),
        });
    }
    let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let plain = match crypt.decrypt(&sig, &ts, &nonce, between(&body, "<Encrypt><![CDATA[", "]]>")) {
        Ok(p) => String::from_utf8(p).unwrap(),
        Err(e) => return Ok(text_response(400, e.to_string())),
    };
    if !plain.contains("<MsgType><![CDATA[text]]></MsgType>") {
        return Ok(text_response(200, ""));
    }
    let reply = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><Content><![CDATA[echo: {}]]></Content></xml>",
        between(&plain, "<FromUserName><![CDATA[", "]]>"),
        between(&plain, "<Content><![CDATA[", "]]>")
    );
    Ok(text_response(200, crypt.encrypt_random(reply.as_bytes(), "1700000000", "42").unwrap().to_xml()))
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).map(|i| i + start.len()).unwrap_or(s.len());
    let to = s[from..].find(end).map(|i| from + i).unwrap_or(s.len());
    &s[from..to]
}

fn query_param(query: &str, name: &str) -> String {
    let raw = query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map_or("", |(_, v)| v);
    let mut out = Vec::new();
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap());
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn callback_player_plays_wecom_against_an_endpoint() {
    let (addr, stop) = echo_endpoint().await;
    let player = CallbackPlayer::dev(format!("http://{addr}/wecom/callback"));

    // The echostr of the URL check is base64 with '+', '/' and '='; it must arrive intact.
    for echo in ["1616140317555161061", "x+y/z=="] {
        assert_eq!(player.verify_url(echo).await.unwrap(), (200, echo.to_owned()));
    }
    let forged = Signing { tamper: true, ..Signing::default() };
    let (status, body) = player.verify_url_with("123", &forged).await.unwrap();
    assert_eq!((status, body.as_str()), (400, "signature does not match (-40001)"));

    let answer = player.text("ZhangSan", "你好 ]]> there").await.unwrap();
    assert_eq!(answer.status, 200);
    let reply = answer.reply.expect("an encrypted reply");
    assert!(reply.contains("<ToUserName><![CDATA[ZhangSan]]></ToUserName>"), "{reply}");
    assert!(reply.contains("echo: 你好 ]]"), "{reply}");

    let event = player.push("ZhangSan", Inbound::Click { key: "MENU_1".into() }).await.unwrap();
    assert_eq!((event.status, event.body.as_str(), event.reply), (200, "", None));

    let stale = Delivery::new("ZhangSan", Inbound::Text { content: "old".into() })
        .created_at(1_400_000_000)
        .with_msg_id(99)
        .signed(Signing { timestamp: Some("1400000000".into()), nonce: Some("7".into()), tamper: true });
    let refused = player.deliver(&stale).await.unwrap();
    assert_eq!((refused.status, refused.reply), (400, None));
    stop.cancel();
}
