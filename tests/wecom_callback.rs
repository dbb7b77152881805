//! The WeCom callback over real HTTP, played by the simulator's `CallbackPlayer` against the
//! daemon's `/wecom/staff/callback`: URL verification, every message and event type, passive
//! replies, each refusal, retried deliveries, opt-outs honoured by the next WeCom campaign,
//! the suppression API, and a WeCom-channel campaign end to end.

mod common;

use bytes::Bytes;
use campaignd::simulator::{CallbackPlayer, Delivery, Inbound, Signing, DEV_WECOM_AES_KEY, DEV_WECOM_CALLBACK_TOKEN};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use campaignd::wecom::MsgCrypt;
use common::{raw, spawn_app, TestApp, DEV_TOKEN};
use http_body_util::Full;
use serde_json::{json, Value};

fn player(app: &TestApp) -> CallbackPlayer {
    CallbackPlayer::dev(format!("http://{}/wecom/staff/callback", app.addr))
}

fn now_s() -> i64 {
    (common::now_ms() / 1000) as i64
}

/// `wecom_callbacks_total{agent="staff",result}` as the daemon's /metrics shows it.
async fn callbacks(app: &TestApp, result: &str) -> u64 {
    let text = fetch(&format!("http://{}/metrics", app.addr)).await;
    let series = format!("campaignd_wecom_callbacks_total{{agent=\"staff\",result=\"{result}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

async fn fetch(url: &str) -> String {
    let client = build_client(&PoolSettings::default()).unwrap();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    String::from_utf8(read_body(resp.into_body()).await.unwrap().to_vec()).unwrap()
}

/// POSTs `body` to the callback with the given query; returns the status.
async fn post_raw(app: &TestApp, query: &str, body: &str) -> u16 {
    let client = build_client(&PoolSettings::default()).unwrap();
    let req = hyper::Request::post(format!("http://{}/wecom/staff/callback?{query}", app.addr))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client.request(req).await.unwrap().status().as_u16()
}

/// A field of the plaintext reply XML (CDATA or not).
fn field(xml: &str, name: &str) -> String {
    let start = xml.find(&format!("<{name}>")).unwrap_or_else(|| panic!("no <{name}> in {xml}")) + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    xml[start..end].trim_start_matches("<![CDATA[").trim_end_matches("]]>").to_owned()
}

async fn suppressed(app: &TestApp, user: &str) -> (u16, Value) {
    let url = format!("http://{}/v1/apps/staff/suppressions/{user}", app.addr);
    bearer("GET", &url).await
}

async fn bearer(method: &str, url: &str) -> (u16, Value) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {DEV_TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = read_body(resp.into_body()).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_answers_the_bare_echo() {
    let app = spawn_app().await;
    let p = player(&app);
    // An echo whose ciphertext holds `+`, `/` or `=` must survive percent-decoding.
    for echo in ["1616140317555161061", "5927782489442352469", "echo/with+odd=chars"] {
        let (status, body) = p.verify_url(echo).await.unwrap();
        assert_eq!((status, body.as_str()), (200, echo), "no quotes, no newline");
    }
    let tampered = Signing { tamper: true, ..Signing::default() };
    assert_eq!(p.verify_url_with("123", &tampered).await.unwrap().0, 403);
    let stale = Signing { timestamp: Some((now_s() - 3600).to_string()), ..Signing::default() };
    assert_eq!(p.verify_url_with("123", &stale).await.unwrap().0, 400);
    assert_eq!(callbacks(&app, "verified").await, 3);
    assert_eq!(callbacks(&app, "bad_signature").await, 1);
    assert_eq!(callbacks(&app, "stale").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_and_event_type_is_accepted_and_replies_follow_the_rules() {
    let app = spawn_app().await;
    let p = player(&app);
    let plain = [
        Inbound::Text { content: "第一行\n第二行".into() },
        Inbound::Image { pic_url: "https://example.com/p.png".into(), media_id: "m1".into() },
        Inbound::Voice { media_id: "m2".into(), format: "amr".into() },
        Inbound::Video { media_id: "m3".into(), thumb_media_id: "t3".into() },
        Inbound::Location { latitude: 23.134, longitude: 113.358, scale: 20, label: "位置".into() },
        Inbound::Link {
            title: "t".into(),
            description: "d".into(),
            url: "https://example.com".into(),
            pic_url: String::new(),
        },
        Inbound::EnterAgent,
        Inbound::View { url: "https://example.com/menu".into() },
        Inbound::ReportLocation { latitude: 23.1, longitude: 113.3, precision: 65.0 },
        Inbound::Click { key: "UNKNOWN_KEY".into() },
    ];
    for inbound in plain {
        let a = p.push("zhangsan", inbound.clone()).await.unwrap();
        assert_eq!((a.status, a.body.as_str()), (200, ""), "{inbound:?} gets an empty 200");
    }
    // Keyword rule: a text reply, encrypted, signed, addressed back to the sender.
    let a = p.text("zhangsan", "需要帮助").await.unwrap();
    let reply = a.reply.expect("an encrypted passive reply");
    assert_eq!(field(&reply, "ToUserName"), "zhangsan");
    assert_eq!(field(&reply, "FromUserName"), campaignd::simulator::DEV_WECOM_CORP_ID);
    assert_eq!(field(&reply, "MsgType"), "text");
    assert!(field(&reply, "Content").contains("TD"));
    // Menu click rule: a news reply.
    let a = p.push("zhangsan", Inbound::Click { key: "V1001_TODAY_NEWS".into() }).await.unwrap();
    let reply = a.reply.expect("news reply");
    assert_eq!((field(&reply, "MsgType").as_str(), field(&reply, "ArticleCount").as_str()), ("news", "1"));
    assert_eq!(field(&reply, "Url"), "https://example.com/a");
    assert_eq!(callbacks(&app, "accepted").await, 10);
    assert_eq!(callbacks(&app, "replied").await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_never_reach_a_handler() {
    let app = spawn_app().await;
    let p = player(&app);
    let unsub = |s: Signing| Delivery::new("lisi", Inbound::Unsubscribe).signed(s);
    // Wrong signature, stale timestamp: 4xx, and the unsubscribe is not applied.
    let forged = p.deliver(&unsub(Signing { tamper: true, ..Signing::default() })).await.unwrap();
    assert_eq!(forged.status, 403);
    let old = Signing { timestamp: Some((now_s() - 301).to_string()), ..Signing::default() };
    assert_eq!(p.deliver(&unsub(old)).await.unwrap().status, 400);
    let future = Signing { timestamp: Some((now_s() + 3600).to_string()), ..Signing::default() };
    assert_eq!(p.deliver(&unsub(future)).await.unwrap().status, 400);
    // Encrypted for another corp.
    let foreign = CallbackPlayer { corp_id: "wwsomeoneelse01".into(), ..player(&app) };
    assert_eq!(foreign.deliver(&Delivery::new("lisi", Inbound::Unsubscribe)).await.unwrap().status, 400);
    // Unparsable XML: the envelope, and a well-encrypted plaintext that is not XML.
    let ts = now_s().to_string();
    assert_eq!(post_raw(&app, &format!("msg_signature=x&timestamp={ts}&nonce=1"), "<xml><Encrypt>").await, 400);
    let crypt =
        MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, campaignd::simulator::DEV_WECOM_CORP_ID).unwrap();
    let sealed = crypt.encrypt_random(b"this is not xml", &ts, "77").unwrap();
    let body = format!("<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>", sealed.encrypt);
    let query = format!("msg_signature={}&timestamp={ts}&nonce=77", sealed.msg_signature);
    assert_eq!(post_raw(&app, &query, &body).await, 400);
    assert_eq!(post_raw(&app, &format!("timestamp={ts}&nonce=1"), &body).await, 400, "no msg_signature");
    // An agent that is not configured.
    let nobody = CallbackPlayer { url: format!("http://{}/wecom/nobody/callback", app.addr), ..player(&app) };
    assert_eq!(nobody.text("lisi", "hi").await.unwrap().status, 404);

    assert_eq!(suppressed(&app, "lisi").await.0, 404, "no refused delivery changed anything");
    assert_eq!(callbacks(&app, "bad_signature").await, 1);
    assert_eq!(callbacks(&app, "stale").await, 2);
    assert_eq!(callbacks(&app, "wrong_receiver").await, 1);
    assert_eq!(callbacks(&app, "bad_xml").await, 2);
    assert_eq!(callbacks(&app, "bad_request").await, 1);
    assert_eq!(callbacks(&app, "accepted").await + callbacks(&app, "replied").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_deliveries_are_answered_once() {
    let app = spawn_app().await;
    let p = player(&app);
    let msg = Delivery::new("wangwu", Inbound::Text { content: "帮助".into() }).with_msg_id(4_363_689_963_896_700_987);
    let first = p.deliver(&msg).await.unwrap();
    assert!(first.reply.is_some());
    for _ in 0..2 {
        let again = p.deliver(&msg).await.unwrap();
        assert_eq!((again.status, again.reply), (200, None), "a retry gets an empty 200");
    }
    // Events repeat with the same sender and CreateTime.
    let t = now_s();
    let click = Delivery::new("wangwu", Inbound::Click { key: "V1001_TODAY_NEWS".into() }).created_at(t);
    assert!(p.deliver(&click).await.unwrap().reply.is_some());
    assert!(p.deliver(&click).await.unwrap().reply.is_none());
    let later = Delivery::new("wangwu", Inbound::Click { key: "V1001_TODAY_NEWS".into() }).created_at(t + 1);
    assert!(p.deliver(&later).await.unwrap().reply.is_some(), "a new event is not a retry");
    assert_eq!(callbacks(&app, "duplicate").await, 3);
    assert_eq!(callbacks(&app, "replied").await, 3);
    app.stop().await;
}

fn wecom_campaign(name: &str) -> Value {
    json!({"name": name, "app": "staff",
           "message": {"wecom": {"msgtype": "text", "text": {"content": "周五下午三点全员会议"}}}})
}

async fn run_wecom(app: &TestApp, name: &str, users: &[&str]) -> campaignd::protocol::CampaignView {
    let id = app.create(wecom_campaign(name)).await;
    let text: String = users.iter().map(|u| format!("{u}\n")).collect();
    let up = app.api.upload(&id, "text/plain", text).await.unwrap();
    assert_eq!(up.accepted, users.len() as u64);
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 30).await
}

async fn wecom_deliveries(app: &TestApp, user: &str) -> u64 {
    let (_, v) =
        raw("GET", &format!("http://{}/_sim/wecom/ledger/{user}", app.sim.local_addr()), None, Value::Null).await;
    v["deliveries"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_are_honoured_by_the_next_wecom_campaign() {
    let app = spawn_app().await;
    let p = player(&app);
    // One member leaves through the unsubscribe event, one by texting TD.
    assert_eq!(p.push("LiLei", Inbound::Unsubscribe).await.unwrap().status, 200);
    let td = p.text("hanmei", " td ").await.unwrap();
    assert!(field(&td.reply.expect("the opt-out is confirmed"), "Content").contains("退订"));
    let (status, entry) = suppressed(&app, "lilei").await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("unsubscribe")));

    let done = run_wecom(&app, "all-hands", &["lilei", "hanmei", "zhangsan", "left-lucy"]).await;
    assert_eq!(done.state, "completed");
    let r = &done.progress.results;
    assert_eq!((r.get("suppressed"), r.get("sent"), r.get("invaliduser")), (Some(&2), Some(&1), Some(&1)), "{r:?}");
    assert_eq!(wecom_deliveries(&app, "lilei").await, 0);
    assert_eq!(wecom_deliveries(&app, "zhangsan").await, 1);

    // hanmei opts back in; an operator suppresses zhangsan through the API.
    p.text("hanmei", "订阅").await.unwrap();
    let (status, _) = bearer("PUT", &format!("http://{}/v1/apps/staff/suppressions/ZhangSan", app.addr)).await;
    assert_eq!(status, 201);
    let (_, list) = bearer("GET", &format!("http://{}/v1/apps/staff/suppressions", app.addr)).await;
    let users: Vec<&str> = list["users"].as_array().unwrap().iter().map(|u| u["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["lilei", "zhangsan"]);
    let done = run_wecom(&app, "second", &["lilei", "hanmei", "zhangsan"]).await;
    let r = &done.progress.results;
    assert_eq!((r.get("suppressed"), r.get("sent")), (Some(&2), Some(&1)), "{r:?}");
    assert_eq!(wecom_deliveries(&app, "hanmei").await, 1);
    let (status, _) = bearer("DELETE", &format!("http://{}/v1/apps/staff/suppressions/lilei", app.addr)).await;
    assert_eq!(status, 200);
    assert_eq!(suppressed(&app, "lilei").await.0, 404);
    // Refusals of the suppression API.
    assert_eq!(bearer("PUT", &format!("http://{}/v1/apps/staff/suppressions/a%7Cb", app.addr)).await.0, 400);
    assert_eq!(bearer("GET", &format!("http://{}/v1/apps/main/suppressions", app.addr)).await.0, 404);
    assert_eq!(bearer("GET", &format!("http://{}/v1/apps/staff/suppressions?limit=0", app.addr)).await.0, 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_campaign_reaches_thousands_of_members_once() {
    let app = spawn_app().await;
    let users: Vec<String> = (0..2_500).map(|i| format!("member{i:05}")).collect();
    let mut refs: Vec<&str> = users.iter().map(String::as_str).collect();
    refs.push("left-former");
    let done = run_wecom(&app, "bulk", &refs).await;
    let r = &done.progress.results;
    assert_eq!((r.get("sent"), r.get("invaliduser")), (Some(&2_500), Some(&1)), "{r:?}");
    let (_, ledger) =
        raw("GET", &format!("http://{}/_sim/wecom/ledger", app.sim.local_addr()), None, Value::Null).await;
    assert_eq!((ledger["unique"].as_u64(), ledger["duplicates"].as_u64()), (Some(2_500), Some(0)), "{ledger}");
    assert!(ledger["calls"].as_u64().unwrap() >= 3, "at most 1000 members a call: {ledger}");
    // Refused WeCom campaigns name the field.
    let bad = [
        (json!({"name": "x", "app": "staff", "message": {"transmission": "x"}}), "message"),
        (
            json!({"name": "x", "app": "staff", "message": {"wecom": {"msgtype": "text", "text": {"content": ""}}}}),
            "message.wecom",
        ),
        (json!({"name": "x", "app": "staff", "channel": "getui", "message": {"transmission": "x"}}), "channel"),
        (
            json!({"name": "x", "app": "main", "message": {"wecom": {"msgtype": "text", "text": {"content": "x"}}}}),
            "message",
        ),
    ];
    for (body, f) in bad {
        match app.api.create(&body).await {
            Err(campaignd::client::ClientError::Api { field: Some(got), .. }) => assert_eq!(got, f),
            other => panic!("expected a refusal naming {f}, got {other:?}"),
        }
    }
    // Member ids are checked line by line at upload.
    let id = app.create(wecom_campaign("ids")).await;
    let up = app.api.upload(&id, "text/plain", "ok.user\nbad|user\nOK.USER\n").await.unwrap();
    assert_eq!((up.accepted, up.rejected, up.duplicates), (1, 1, 1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_sends_back_off_on_45033_and_refresh_expired_tokens() {
    use campaignd::simulator::{Limits, SimConfig, WecomSimConfig};
    let wecom = WecomSimConfig {
        max_concurrent_sends: Some(1),
        send_latency: std::time::Duration::from_millis(150),
        ..WecomSimConfig::default()
    };
    let app =
        common::spawn_app_with(SimConfig { limits: Limits::unlimited(), wecom, ..SimConfig::default() }, &[]).await;
    // Four chunks of ≤ 1000 on eight shards meet a one-call-at-a-time WeCom: 45033, back off, retry.
    let users: Vec<String> = (0..3_500).map(|i| format!("m{i:05}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let done = run_wecom(&app, "busy", &refs).await;
    assert_eq!(done.progress.results.get("sent"), Some(&3_500), "{:?}", done.progress.results);
    let sim = format!("http://{}", app.sim.local_addr());
    let (_, ledger) = raw("GET", &format!("{sim}/_sim/wecom/ledger"), None, Value::Null).await;
    assert!(ledger["refused"].as_u64().unwrap() > 0, "some calls met 45033: {ledger}");
    assert_eq!((ledger["unique"].as_u64(), ledger["duplicates"].as_u64()), (Some(3_500), Some(0)));
    let metrics = fetch(&format!("http://{}/metrics", app.addr)).await;
    assert!(metrics.contains(r#"code="45033""#), "45033 answers are counted per code");
    // Tokens expire upstream: the next campaign refreshes once and delivers each member once.
    raw("POST", &format!("{sim}/_sim/wecom/expire-tokens"), None, Value::Null).await;
    let done = run_wecom(&app, "after-expiry", &["x.one", "x.two"]).await;
    assert_eq!(done.progress.results.get("sent"), Some(&2));
    assert_eq!(wecom_deliveries(&app, "x.one").await, 1);
    app.stop().await;
}

/// POSTs `body` to the callback with the given query; returns the status and the body.
async fn post_answer(app: &TestApp, query: &str, body: &str) -> (u16, String) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let req = hyper::Request::post(format!("http://{}/wecom/staff/callback?{query}", app.addr))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, String::from_utf8_lossy(&read_body(resp.into_body()).await.unwrap()).into_owned())
}

/// A member id the suppression API refuses is refused by the callback too: no suppression the
/// API could not show or lift, and the refusal is counted as `bad_user`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_from_ids_the_suppression_api_refuses_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let p = player(&app);
    let bad_ids = ["a".repeat(10_000), "../../etc/passwd".to_owned(), "li\0lei".to_owned(), "li lei".to_owned()];
    for id in &bad_ids {
        let shown = &id[..id.len().min(20)];
        let escaped = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
        let (status, _) = bearer("PUT", &format!("http://{}/v1/apps/staff/suppressions/{escaped}", app.addr)).await;
        assert_eq!(status, 400, "the API refuses {shown:?}");
        for inbound in [Inbound::Unsubscribe, Inbound::Text { content: "TD".into() }] {
            let a = p.push(id, inbound).await.unwrap();
            assert_eq!(a.status, 400, "{shown:?}: {}", a.body);
            let body: Value = serde_json::from_str(&a.body).unwrap();
            assert_eq!(body["error"]["code"], "bad_user", "{shown:?}: {body}");
            assert!(a.reply.is_none());
        }
    }
    let list = app.api.suppressions("staff", "", 1000).await.unwrap();
    assert!(list.users.is_empty(), "nothing was stored: {:?}", list.users);
    assert_eq!(callbacks(&app, "bad_user").await, 2 * bad_ids.len() as u64);
    let a = p.text("li.lei@corp", "TD").await.unwrap();
    assert_eq!(a.status, 200, "a valid member id still opts out");
    assert_eq!(suppressed(&app, "li.lei@corp").await.0, 200);
    app.stop().await;
}

/// After a valid signature, every way a ciphertext can fail to decrypt (not base64, a length
/// that is no multiple of the block, bad padding, another receive id, a plaintext that is not
/// XML) gets the very same answer, so the answer is no padding oracle; the metric keeps the
/// precise reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decryption_failure_after_a_valid_signature_gets_the_same_answer() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let app = spawn_app().await;
    let ts = now_s().to_string();
    let corp = campaignd::simulator::DEV_WECOM_CORP_ID;
    let ours = MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, corp).unwrap();
    let theirs = MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, "wwsomeoneelse01").unwrap();
    let xml = format!("<xml><ToUserName>{corp}</ToUserName><FromUserName>li</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>unsubscribe</Event></xml>");
    let good = ours.encrypt_random(xml.as_bytes(), &ts, "5").unwrap().encrypt;
    let mut raw_bytes = b64.decode(&good).unwrap();
    let n = raw_bytes.len();
    raw_bytes[n - 17] ^= 0x5a; // flips the last plaintext byte: the padding breaks
    let bad_padding = b64.encode(&raw_bytes);
    let tampered = [
        ("not base64", "!!!!not-base64!!!!".to_owned()),
        ("short block", b64.encode(&b64.decode(&good).unwrap()[..n - 5])),
        ("bad padding", bad_padding),
        ("other receiver", theirs.encrypt_random(xml.as_bytes(), &ts, "5").unwrap().encrypt),
        ("not xml", ours.encrypt_random(b"this is not xml", &ts, "5").unwrap().encrypt),
    ];
    let mut answers = Vec::new();
    for (what, encrypt) in &tampered {
        let sig = campaignd::wecom::signature(DEV_WECOM_CALLBACK_TOKEN, &ts, "5", encrypt);
        let body = format!("<xml><ToUserName>{corp}</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let answer = post_answer(&app, &format!("msg_signature={sig}&timestamp={ts}&nonce=5"), &body).await;
        answers.push((what, answer));
    }
    let (first_what, first) = &answers[0];
    assert_eq!(first.0, 400, "{first:?}");
    let code: Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!(code["error"]["code"], "undecryptable");
    for (what, answer) in &answers {
        assert_eq!(answer, first, "{what} must answer exactly like {first_what}");
    }
    // URL verification decrypts too, and answers the same way.
    let echo = theirs.encrypt_random(b"12345", &ts, "5").unwrap().encrypt;
    let sig = campaignd::wecom::signature(DEV_WECOM_CALLBACK_TOKEN, &ts, "5", &echo);
    let query = format!(
        "msg_signature={sig}&timestamp={ts}&nonce=5&echostr={}",
        echo.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    );
    let client = build_client(&PoolSettings::default()).unwrap();
    let resp = client.get(format!("http://{}/wecom/staff/callback?{query}", app.addr).parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = String::from_utf8_lossy(&read_body(resp.into_body()).await.unwrap()).into_owned();
    assert_eq!(&(status, body), first, "URL verification of a foreign echo");
    assert_eq!(suppressed(&app, "li").await.0, 404, "nothing was applied");
    assert_eq!(callbacks(&app, "bad_ciphertext").await, 3);
    assert_eq!(callbacks(&app, "wrong_receiver").await, 2);
    assert_eq!(callbacks(&app, "bad_xml").await, 1);
    app.stop().await;
}

/// WeCom's retry of a delivery is recognised after a restart: the opt-out is applied once, so
/// an operator's lift in between is not undone, and no second reply goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_retried_across_a_restart_is_handled_once() {
    let mut app = spawn_app().await;
    let td = Delivery::new("zhaoliu", Inbound::Text { content: "TD".into() }).with_msg_id(7_000_000_000_000_000_001);
    let first = player(&app).deliver(&td).await.unwrap();
    assert!(first.reply.is_some(), "the opt-out is confirmed");
    assert_eq!(suppressed(&app, "zhaoliu").await.0, 200);
    let (status, _) = bearer("DELETE", &format!("http://{}/v1/apps/staff/suppressions/zhaoliu", app.addr)).await;
    assert_eq!(status, 200, "an operator lifts the opt-out");

    app.restart().await;
    let again = player(&app).deliver(&td).await.unwrap();
    assert_eq!((again.status, again.reply), (200, None), "the retry gets an empty 200");
    assert_eq!(suppressed(&app, "zhaoliu").await.0, 404, "the retry did not opt the member out again");
    assert_eq!(callbacks(&app, "duplicate").await, 1);
    assert_eq!(callbacks(&app, "replied").await, 0);
    app.stop().await;
}

/// With `server.callback_listen`, the callback (and /healthz) is served there and only there;
/// `/v1` and `/metrics` stay on the main listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_can_have_a_listener_of_its_own() {
    let daemon = common::SplitListeners::start().await;
    let (main, edge) = (daemon.main, daemon.edge);

    let on_edge = CallbackPlayer::dev(format!("http://{edge}/wecom/staff/callback"));
    assert_eq!(on_edge.verify_url("4242").await.unwrap(), (200, "4242".to_owned()));
    let a = on_edge.text("sunqi", "TD").await.unwrap();
    assert!(a.reply.is_some(), "the callback works on its own listener: {}", a.body);
    assert_eq!(fetch(&format!("http://{edge}/healthz")).await, "ok\n");
    for path in ["/metrics", "/readyz", "/v1/campaigns", "/v1/apps/staff/suppressions/sunqi"] {
        assert_eq!(
            bearer("GET", &format!("http://{edge}{path}")).await.0,
            404,
            "{path} is not on the callback listener"
        );
    }

    let on_main = CallbackPlayer::dev(format!("http://{main}/wecom/staff/callback"));
    assert_eq!(on_main.text("zhouba", "TD").await.unwrap().status, 404, "no callback on the main listener");
    assert_eq!(on_main.verify_url("4242").await.unwrap().0, 404);
    assert_eq!(bearer("GET", &format!("http://{main}/v1/apps/staff/suppressions/sunqi")).await.0, 200);
    assert_eq!(bearer("GET", &format!("http://{main}/v1/apps/staff/suppressions/zhouba")).await.0, 404);
    let metrics = fetch(&format!("http://{main}/metrics")).await;
    assert!(metrics.contains("campaignd_wecom_callbacks_total{agent=\"staff\",result=\"replied\"} 1"), "{metrics}");

    daemon.stop().await;
}
