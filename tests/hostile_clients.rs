//! Resource bounds under hostile clients, over loopback against a real daemon: idle
//! connections and slowloris clients do not keep a normal request waiting, a body streamed
//! forever is cut at its endpoint's limit, a flood of headers is refused, and a gzip or XML
//! bomb is refused before it inflates. Every loop here is bounded in count and time.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{spawn_app_with, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A small `dispatch.max_recipients`, so that a streamed upload meets its line cap quickly.
fn small_app_config() -> [(&'static str, &'static str); 1] {
    [("# max_recipients = 50000000", "max_recipients = 1000")]
}

async fn app() -> TestApp {
    let sim =
        campaignd::simulator::SimConfig { limits: campaignd::simulator::Limits::unlimited(), ..Default::default() };
    spawn_app_with(sim, &small_app_config()).await
}

/// The status of the answer to `request`, sent on a new connection, or `None` when the
/// connection closed without one; gives up after `limit`.
async fn status_of(addr: SocketAddr, request: &[u8], limit: Duration) -> Option<u16> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(request).await.ok()?;
        read_status(&mut s).await
    };
    tokio::time::timeout(limit, exchange).await.ok().flatten()
}

async fn read_status(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace().nth(1)?.parse().ok()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: campaignd\r\nConnection: close\r\n\r\n";

/// `/healthz` answers 200 within a second, on a fresh connection.
async fn answers_promptly(addr: SocketAddr) {
    let started = Instant::now();
    let status = status_of(addr, HEALTHZ, Duration::from_secs(1)).await;
    assert_eq!(status, Some(200), "a normal request waited {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_slowloris_clients_do_not_block_a_normal_request() {
    let app = app().await;
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(app.addr).await.expect("an idle connection"));
    }
    answers_promptly(app.addr).await;
    drop(idle);

    // 200 clients sending one header byte a second, for five seconds.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let (addr, stop) = (app.addr, stop.clone());
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else { return };
            for b in b"GET /healthz HTTP/1.1\r\nHost: campaignd\r\nX-Slow: ".iter().cycle().take(10) {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if s.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        answers_promptly(app.addr).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    stop.cancel();
    for t in slow {
        let _ = t.await;
    }
}

/// Streams `head` and then `piece` again and again (chunked), until an answer comes or
/// `limit` passes; answers the status.
async fn stream_forever(addr: SocketAddr, head: &str, piece: &[u8], limit: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(head.as_bytes()).await.ok()?;
    let (mut read, mut write) = s.into_split();
    let chunk = [format!("{:x}\r\n", piece.len()).into_bytes(), piece.to_vec(), b"\r\n".to_vec()].concat();
    let writer = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && write.write_all(&chunk).await.is_ok() {}
    });
    let answer = tokio::time::timeout(limit, async {
        let mut buf = Vec::new();
        let mut c = [0u8; 4096];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            let n = read.read(&mut c).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&c[..n]);
        }
        String::from_utf8_lossy(&buf).split_whitespace().nth(1)?.parse().ok()
    })
    .await
    .ok()
    .flatten();
    writer.abort();
    answer
}

fn post_head(path: &str, content_type: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: campaignd\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        common::DEV_TOKEN
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_streamed_forever_is_cut_at_its_limit() {
    let app = app().await;
    let id = app.api.create(&common::list_campaign("endless", None)).await.unwrap().id;
    let limit = Duration::from_secs(30);
    let endless_json = vec![b' '; 64 * 1024];
    let cases: Vec<(String, &str, Vec<u8>, u16)> = vec![
        ("/v1/campaigns".into(), "application/json", endless_json.clone(), 413),
        (format!("/v1/campaigns/{id}/recipients"), "text/plain", b"0\n".repeat(4096), 413),
        (format!("/v1/campaigns/{id}/recipients"), "text/plain", vec![b'a'; 64 * 1024], 413),
        ("/v1/apps/main/cid-pn/import".into(), "text/csv", b"x,y\n".repeat(4096), 413),
        ("/getui/main/receipts".into(), "application/json", endless_json.clone(), 413),
        ("/sms/main/status".into(), "application/json", endless_json.clone(), 413),
        // The legacy protocol answers 200 with its result string (checked below).
        ("/apiex.htm".into(), "application/json", endless_json.clone(), 200),
    ];
    for (path, content_type, piece, expected) in cases {
        let started = Instant::now();
        let status = stream_forever(app.addr, &post_head(&path, content_type), &piece, limit).await;
        assert_eq!(status, Some(expected), "{path} ({content_type}) after {:?}", started.elapsed());
    }
    let wecom = "/wecom/staff/callback?msg_signature=x&timestamp=1&nonce=n";
    let status = stream_forever(app.addr, &post_head(wecom, "text/xml"), &endless_json, limit).await;
    assert!(status.is_some_and(|s| (400..500).contains(&s)), "{wecom}: {status:?}");
    let v = app.api.campaign(&id).await.unwrap();
    assert_eq!(v.recipients.total, 0, "nothing of a refused upload is kept");
    answers_promptly(app.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_headers_and_bombs_are_refused() {
    let app = app().await;
    let mut flood = String::from("GET /healthz HTTP/1.1\r\nHost: campaignd\r\n");
    for i in 0..10_000 {
        flood.push_str(&format!("X-Header-{i}: v\r\n"));
    }
    flood.push_str("\r\n");
    let status = status_of(app.addr, flood.as_bytes(), Duration::from_secs(10)).await;
    assert!(status.is_none_or(|s| s == 431), "10,000 headers got {status:?}");
    answers_promptly(app.addr).await;

    // A gzip bomb to the legacy ingress: 256 MiB of zeros in about 256 KiB.
    let bomb = {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    };
    let head = format!(
        "POST /apiex.htm HTTP/1.1\r\nHost: campaignd\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        bomb.len()
    );
    let started = Instant::now();
    let answer = exchange(app.addr, &[head.as_bytes(), &bomb].concat()).await;
    assert!(answer.contains("\"result\":\"data_too_big\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused in {:?}", started.elapsed());
    let refused = app.metric("campaignd_legacy_requests_total{action=\"other\",result=\"data_too_big\"}").await;
    assert_eq!(refused, Some(1.0), "counted");

    // An XML bomb (billion laughs) to the WeCom callback: refused, never expanded.
    let mut xml = String::from("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\">");
    for i in 1..10 {
        let prev = if i == 1 { "a".to_owned() } else { format!("a{}", i - 1) };
        xml.push_str(&format!("<!ENTITY a{i} \"{}\">", format!("&{prev};").repeat(10)));
    }
    xml.push_str("]><xml><ToUserName>&a9;</ToUserName><Encrypt>&a9;</Encrypt></xml>");
    let head = format!(
        "POST /wecom/staff/callback?msg_signature=x&timestamp=1&nonce=n HTTP/1.1\r\nHost: campaignd\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        xml.len()
    );
    let started = Instant::now();
    let status = status_of(app.addr, &[head.as_bytes(), xml.as_bytes()].concat(), Duration::from_secs(5)).await;
    assert!(status.is_some_and(|s| (400..500).contains(&s)), "XML bomb: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "refused in {:?}", started.elapsed());
    answers_promptly(app.addr).await;
}

/// The whole answer to `request` (the server closes the connection after it).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
