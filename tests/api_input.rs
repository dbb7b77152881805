//! Bad input to the control API: each is refused with a 4xx JSON error that names the
//! problem, nothing is stored, and the daemon keeps serving.

mod common;

use campaignd::client::{ApiClient, ClientError};
use campaignd::secret::Secret;
use common::{cid, list_campaign, raw, spawn_app};
use serde_json::json;

fn api_err(e: ClientError) -> (u16, String, Option<String>) {
    match e {
        ClientError::Api { status, code, field, .. } => (status, code, field),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn raw_post(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    ct: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let client = campaignd::upstream::http::build_client(&Default::default()).unwrap();
    let mut req = hyper::Request::post(format!("http://{addr}{path}")).header("content-type", ct);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = client.request(req.body(http_body_util::Full::new(bytes::Bytes::from(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_campaigns_are_refused_with_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (status, body) =
        raw_post(app.addr, "/v1/campaigns", Some(common::DEV_TOKEN), "application/json", b"{\"name\":".to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");

    let cases = [
        (
            json!({"name": "x", "app": "main", "message": {"transmission": "t"}, "settings": {"speed": "fast"}}),
            "settings.speed",
        ),
        (json!({"name": "x", "app": "nope", "message": {"transmission": "t"}}), "app"),
        (
            json!({"name": "x", "app": "main", "message": {"notification": {"title": "t".repeat(51), "body": "b"}}}),
            "message.notification.title",
        ),
        (
            json!({"name": "x", "app": "main", "message": {"notification": {"title": "t", "body": "b".repeat(257)}}}),
            "message.notification.body",
        ),
        (json!({"name": "x", "app": "main", "message": {"transmission": "p".repeat(3073)}}), "message.transmission"),
        (
            json!({"name": "x", "app": "main", "message": {"transmission": "t"}, "settings": {"ttl_ms": 259_200_001}}),
            "settings.ttl_ms",
        ),
        (
            json!({"name": "x", "app": "main", "message": {"transmission": "t"}, "settings": {"group": "a b"}}),
            "settings.group",
        ),
        (
            json!({"name": "x", "app": "main", "message": {"transmission": "t"}, "settings": {"schedule_at": "190001010000"}}),
            "settings.schedule_at",
        ),
        (json!({"name": 5, "app": "main", "message": {"transmission": "t"}}), "name"),
    ];
    for (body, field) in cases {
        let (status, code, got) = api_err(app.api.create(&body).await.unwrap_err());
        assert_eq!((status, code.as_str(), got.as_deref()), (400, "invalid_field", Some(field)), "{body}");
    }
    assert!(app.api.list().await.unwrap().is_empty(), "nothing was stored");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_tokens_are_401() {
    let app = spawn_app().await;
    let (status, body) = raw_post(app.addr, "/v1/campaigns", None, "application/json", b"{}".to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let wrong = ApiClient::new(&format!("http://{}", app.addr), Secret::new("not-the-token")).unwrap();
    let (status, ..) = api_err(wrong.list().await.unwrap_err());
    assert_eq!(status, 401);
    // Health and metrics need no token.
    let (status, _) = raw("GET", &format!("http://{}/healthz", app.addr), None, json!(null)).await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_uploads_store_nothing_and_bad_lines_are_reported() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("uploads", None)).await;
    let path = format!("/v1/campaigns/{id}/recipients");
    let token = Some(common::DEV_TOKEN);

    // Not UTF-8: refused whole.
    let mut body = format!("{}\n", cid(1)).into_bytes();
    body.extend_from_slice(b"\xff\xfe\n");
    let (status, err) = raw_post(app.addr, &path, token, "text/plain", body).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("line 2 is not UTF-8"), "{err}");

    // No final line end: refused whole.
    let (status, err) =
        raw_post(app.addr, &path, token, "text/plain", format!("{}\n{}", cid(1), cid(2)).into_bytes()).await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("line 2 has no line end"), "{err}");

    // A line longer than the limit: refused whole.
    let (status, _) =
        raw_post(app.addr, &path, token, "text/plain", format!("{}\n", "a".repeat(10_000)).into_bytes()).await;
    assert_eq!(status, 413);

    // Wrong content type.
    let (status, err) = raw_post(app.addr, &path, token, "application/json", b"[]".to_vec()).await;
    assert_eq!((status, err["error"]["field"].as_str()), (415, Some("content-type")));
    assert_eq!(app.api.campaign(&id).await.unwrap().recipients.total, 0, "nothing of the refused uploads was kept");

    // Bad lines alone are refused, with their numbers; duplicates dropped and counted.
    let text = format!("{}\nnot-a-cid\n{}\n\n{}\n{{\"cid\":1}}\n", cid(1), cid(2), cid(1));
    let up = app.api.upload(&id, "text/plain", text).await.unwrap();
    assert_eq!((up.accepted, up.duplicates, up.rejected), (2, 1, 2));
    assert_eq!(up.first_rejected.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 6]);
    // A second upload sees the first one's recipients as duplicates.
    let up = app.api.upload(&id, "text/plain", format!("{}\n{}\n", cid(2), cid(3))).await.unwrap();
    assert_eq!((up.accepted, up.duplicates, up.campaign_total), (1, 1, 3));

    // Uploading to a running campaign is a conflict naming the state.
    app.api.act(&id, "start").await.unwrap();
    let (status, err) = raw_post(app.addr, &path, token, "text/plain", format!("{}\n", cid(9)).into_bytes()).await;
    assert_eq!(status, 409);
    assert!(matches!(err["error"]["state"].as_str(), Some("running" | "completed")), "{err}");
    app.wait_final(&id, 30).await;
    assert_eq!(app.api.campaign(&id).await.unwrap().recipients.total, 3);
    assert_eq!(app.sim.ledger().summary().unique_cids, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_are_409_with_the_current_state() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("states", None)).await;
    for action in ["pause", "resume"] {
        let (status, code, _) = api_err(app.api.act(&id, action).await.unwrap_err());
        assert_eq!((status, code.as_str()), (409, "conflict"), "{action}");
    }
    let (status, ..) = api_err(app.api.act(&id, "start").await.unwrap_err());
    assert_eq!(status, 409, "a campaign without recipients cannot start");
    let (status, ..) = api_err(app.api.campaign("999").await.unwrap_err());
    assert_eq!(status, 404);
    let (status, ..) = api_err(app.api.campaign("abc").await.unwrap_err());
    assert_eq!(status, 404);
    app.api.delete(&id).await.unwrap();
    let (status, ..) = api_err(app.api.campaign(&id).await.unwrap_err());
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_campaigns_wait_and_cannot_be_deleted_in_the_last_minute() {
    let app = spawn_app().await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
    let mut body = list_campaign("scheduled", None);
    body["settings"]["schedule_at"] = soon.format(&time::format_description::well_known::Rfc3339).unwrap().into();
    let id = app.create(body).await;
    app.upload_range(&id, 0, 10).await;
    let v = app.api.act(&id, "start").await.unwrap();
    assert_eq!(v.state, "scheduled");
    let (status, ..) = api_err(app.api.delete(&id).await.unwrap_err());
    assert_eq!(status, 409);
    assert_eq!(app.api.campaign(&id).await.unwrap().progress.sent, 0);
    app.api.act(&id, "cancel").await.unwrap();
    app.stop().await;
}

/// A client retrying an upload while its first attempt is still streaming gets an immediate
/// 409, and nothing else is disturbed. (This once deadlocked a worker thread, then the whole
/// daemon, so the test runs under a watchdog rather than trusting its own timeouts.)
#[test]
fn a_second_upload_during_a_slow_one_is_refused_at_once_and_the_daemon_stays_responsive() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(retried_upload_sequence());
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the sequence finished: the daemon did not hang");
}

async fn retried_upload_sequence() {
    use std::time::Duration;
    let app = spawn_app().await;
    let slow = app.create(list_campaign("slow", None)).await;
    let (tx, body) = campaignd::client::channel_body(4);
    let first = {
        let api = app.api.clone();
        let slow = slow.clone();
        tokio::spawn(async move { api.upload_stream(&slow, "text/plain", body).await })
    };
    let lines =
        |from: u64, n: u64| -> bytes::Bytes { (from..from + n).map(|i| cid(i) + "\n").collect::<String>().into() };
    tx.send(lines(0, 100)).await.unwrap();
    // The first upload holds the campaign's upload slot (and so a filter) from its start.
    common::eventually("the first upload to begin", Duration::from_secs(10), || async {
        match app.metric("campaignd_upload_filters").await {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(other),
        }
    })
    .await;

    let retry = tokio::time::timeout(Duration::from_secs(5), app.api.upload(&slow, "text/plain", lines(0, 100)))
        .await
        .expect("the retried upload is answered at once");
    let (status, code, _) = api_err(retry.unwrap_err());
    assert_eq!((status, code.as_str()), (409, "conflict"));

    let other = app.create(list_campaign("other", None)).await;
    let up = tokio::time::timeout(Duration::from_secs(5), app.api.upload(&other, "text/plain", lines(500, 10)))
        .await
        .expect("another campaign's upload is answered")
        .unwrap();
    assert_eq!(up.accepted, 10);
    let health = format!("http://{}/healthz", app.addr);
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), raw("GET", &health, None, json!(null)))
        .await
        .expect("/healthz answers during the slow upload");
    assert_eq!(status, 200);

    tx.send(lines(100, 100)).await.unwrap();
    drop(tx);
    let up =
        tokio::time::timeout(Duration::from_secs(10), first).await.expect("the first upload ends").unwrap().unwrap();
    assert_eq!((up.accepted, up.campaign_total), (200, 200), "the first upload is unaffected");
    let (status, _) = raw("GET", &health, None, json!(null)).await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// A create body is one JSON object and nothing else: trailing bytes or a second object are
/// refused with a 400 naming the body, and no campaign is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_body_with_bytes_after_its_object_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let object = serde_json::to_vec(&list_campaign("trailing", None)).unwrap();
    let trailers: [&[u8]; 4] = [b"xyz", b"{}", b" {\"name\":\"second\"}", b"\n]"];
    for trailer in trailers {
        let body = [object.as_slice(), trailer].concat();
        let (status, answer) =
            raw_post(app.addr, "/v1/campaigns", Some(common::DEV_TOKEN), "application/json", body).await;
        let shown = String::from_utf8_lossy(trailer);
        assert_eq!(status, 400, "trailer {shown:?}: {answer}");
        assert_eq!(answer["error"]["field"], "body", "trailer {shown:?}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap_or("").contains("after its JSON object"), "{answer}");
    }
    assert!(app.api.list().await.unwrap().is_empty(), "nothing was stored");
    let padded = [object.as_slice(), b" \n\t "].concat();
    let (status, answer) =
        raw_post(app.addr, "/v1/campaigns", Some(common::DEV_TOKEN), "application/json", padded).await;
    assert_eq!(status, 201, "trailing whitespace is still fine: {answer}");
    app.stop().await;
}

/// Opens a TCP connection to the daemon and sends one raw HTTP/1.1 request head.
async fn raw_connection(addr: std::net::SocketAddr, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Reads until the end of an HTTP answer's head (or EOF) and returns what arrived.
async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads whatever arrives until the server closes the connection.
async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// Over `server.max_connections`, a new client waits (in the listen backlog) and is served
/// as soon as an open connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_until_one_closes() {
    use std::time::Duration;
    let sim = campaignd::simulator::SimConfig::default();
    let app = common::spawn_app_with(sim, &[("# max_connections = 10000", "max_connections = 2")]).await;
    let get = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut first = raw_connection(app.addr, get).await;
    assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = raw_connection(app.addr, get).await;
    assert!(read_head(&mut second).await.starts_with("HTTP/1.1 200"));

    let mut third = raw_connection(app.addr, get).await;
    let early = tokio::time::timeout(Duration::from_millis(500), read_head(&mut third)).await;
    assert!(early.is_err(), "a third connection is not served while two are open: {early:?}");
    drop(first);
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut third))
        .await
        .expect("served once a connection closed");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop((second, third));
    app.stop().await;
}

/// A campaign body that trickles in slower than `server.body_timeout_ms` gets 408 naming the
/// deadline; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_body_slower_than_the_deadline_gets_408_and_nothing_is_stored() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let sim = campaignd::simulator::SimConfig::default();
    let app = common::spawn_app_with(sim, &[("# body_timeout_ms = 30000", "body_timeout_ms = 500")]).await;
    let body = serde_json::to_vec(&list_campaign("slow-loris", None)).unwrap();
    let head = format!(
        "POST /v1/campaigns HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        common::DEV_TOKEN,
        body.len()
    );
    let s = raw_connection(app.addr, &head).await;
    let (mut reader, mut writer) = s.into_split();
    // One byte every 100 ms: never idle long, but far too slow for the whole body.
    let trickle = tokio::spawn(async move {
        for b in body.iter().take(100) {
            if writer.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got);
    let _ = tokio::time::timeout(Duration::from_secs(8), read).await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&got).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "answered {answer:?}");
    assert!(answer.contains("request_timeout") && answer.contains("body_timeout_ms"), "{answer}");
    assert!(app.api.list().await.unwrap().is_empty(), "nothing was stored");
    app.stop().await;
}

/// An upload that stalls for longer than `server.idle_timeout_ms` is cut off and keeps
/// nothing; an upload that keeps sending, however slowly overall, is not cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_off_and_keeps_nothing_while_a_steady_one_completes() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let sim = campaignd::simulator::SimConfig::default();
    let app = common::spawn_app_with(sim, &[("# idle_timeout_ms = 30000", "idle_timeout_ms = 1000")]).await;
    let id = app.create(list_campaign("stalls", None)).await;
    let head = format!(
        "POST /v1/campaigns/{id}/recipients HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: text/plain\r\ncontent-length: 100000000\r\n\r\n",
        common::DEV_TOKEN
    );
    let mut s = raw_connection(app.addr, &head).await;
    let lines: String = (0..2000).map(|i| cid(i) + "\n").collect();
    s.write_all(lines.as_bytes()).await.unwrap();
    // Then silence: the daemon must close the connection on its own.
    let closed = tokio::time::timeout(Duration::from_secs(15), read_to_close(&mut s)).await;
    assert!(closed.is_ok(), "the stalled upload was cut off");
    let v = app.api.campaign(&id).await.unwrap();
    assert_eq!(v.recipients.total, 0, "a cut upload keeps nothing: {v:?}");

    let (tx, body) = campaignd::client::channel_body(4);
    let steady = {
        let api = app.api.clone();
        let id = id.clone();
        tokio::spawn(async move { api.upload_stream(&id, "text/plain", body).await })
    };
    for batch in 0..8u64 {
        let text: String = (batch * 100..batch * 100 + 100).map(|i| cid(i) + "\n").collect();
        tx.send(text.into()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(tx);
    let up = tokio::time::timeout(Duration::from_secs(10), steady).await.expect("answered").unwrap().unwrap();
    assert_eq!(up.accepted, 800, "an upload longer than the idle timeout, but never idle, completes");
    app.stop().await;
}
