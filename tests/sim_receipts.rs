//! The simulated Getui's receipt callback (消息回执) over real loopback HTTP: a receiver on an
//! ephemeral port collects the posted bodies; every delivered message gets exactly the lines the
//! public facts (`arrives_after`, `clicks`) predict, with the taskid its push answered, signed;
//! a repeated request_id gets none; a receiver that keeps failing costs one failed post.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::domain::CompactCid;
use campaignd::serve::{text_response, HandlerResult};
use campaignd::simulator::{
    arrives_after, clicks, returns_after, ReceiptSimConfig, ReceiptStats, SimConfig, ACTION_ARRIVAL, ACTION_CLICKED,
    DEV_APP_ID, DEV_MASTER_SECRET,
};
use campaignd::wire::getui::receipt::ReceiptLine;
use common::{cid, eventually, raw, raw_token, start_sim};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// What the receiver saw: every request's content type and body, and how it answered.
#[derive(Default)]
struct Received {
    requests: Vec<(String, String, u16)>,
}

/// A receiver on 127.0.0.1:0 that answers `answers[i]` to the i-th request (200 after the list
/// runs out) and keeps every request.
async fn receiver(answers: Vec<u16>, stop: CancellationToken) -> (SocketAddr, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Received::default()));
    let answers = Arc::new(answers);
    let kept = seen.clone();
    let handler = move |req: hyper::Request<hyper::body::Incoming>, _peer: SocketAddr| {
        let (seen, answers) = (kept.clone(), answers.clone());
        async move {
            let ct = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let mut seen = seen.lock().unwrap();
            let status = answers.get(seen.requests.len()).copied().unwrap_or(200);
            seen.requests.push((ct, String::from_utf8_lossy(&body).into_owned(), status));
            HandlerResult::Ok(text_response(status, Bytes::from_static(b"ok")))
        }
    };
    tokio::spawn(campaignd::serve::serve(listener, handler, stop));
    (addr, seen)
}

fn receipts_config(addr: SocketAddr) -> ReceiptSimConfig {
    ReceiptSimConfig {
        url: Some(format!("http://{addr}/getui/main/receipts")),
        return_spread: Duration::from_millis(400),
        ..ReceiptSimConfig::default()
    }
}

fn note() -> Value {
    json!({"notification": {"title": "Spring sale", "body": "20% off", "click_type": "url", "url": "https://example.com/"}})
}

/// `/push/single/batch/cid` of one message per cid n in `range`.
fn batch(range: std::ops::Range<u64>) -> Value {
    let msgs: Vec<Value> = range
        .map(
            |n| json!({"request_id": format!("receipt-{n:08}"), "audience": {"cid": [cid(n)]}, "push_message": note()}),
        )
        .collect();
    json!({"is_async": false, "msg_list": msgs})
}

/// The (cid, taskid) → status pairs of a push answer's `data`.
fn statuses(data: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (taskid, per_cid) in data.as_object().expect("data is an object") {
        for (cid, status) in per_cid.as_object().expect("per-cid statuses") {
            out.push((cid.clone(), taskid.clone(), status.as_str().unwrap().to_owned()));
        }
    }
    out
}

/// Every line of every accepted body, in arrival order.
fn accepted_lines(seen: &Mutex<Received>) -> Vec<ReceiptLine> {
    let seen = seen.lock().unwrap();
    let mut lines = Vec::new();
    for (ct, body, status) in &seen.requests {
        assert_eq!(ct, "text/plain");
        if *status == 200 {
            lines.extend(body.split('\n').map(|l| serde_json::from_str::<ReceiptLine>(l).expect("a receipt line")));
        }
    }
    lines
}

async fn stats(sim_addr: SocketAddr) -> ReceiptStats {
    let (status, body) = raw("GET", &format!("http://{sim_addr}/_sim/receipts"), None, json!(null)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test]
async fn delivered_messages_get_exactly_the_predicted_receipts() {
    let stop = CancellationToken::new();
    // The first POST is refused: the simulator must try again and lose nothing.
    let (addr, seen) = receiver(vec![503], stop.clone()).await;
    let cfg = receipts_config(addr);
    let sim = start_sim(SimConfig { receipts: cfg.clone(), ..SimConfig::default() }).await;
    let token = raw_token(&sim.getui_base_url()).await;
    let base = format!("{}/{DEV_APP_ID}", sim.getui_base_url());

    let mut pushed = Vec::new();
    let (status, first) = raw("POST", &format!("{base}/push/single/batch/cid"), Some(&token), batch(0..200)).await;
    assert_eq!(status, 200, "{first}");
    pushed.extend(statuses(&first["data"]));
    // The same request_ids again: the same answer, no delivery, so no receipt.
    let (status, again) = raw("POST", &format!("{base}/push/single/batch/cid"), Some(&token), batch(0..200)).await;
    assert_eq!((status, &again["data"]), (200, &first["data"]));

    let (status, task) = raw(
        "POST",
        &format!("{base}/push/list/message"),
        Some(&token),
        json!({"push_message": note(), "settings": {"ttl": 3_600_000}}),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    let taskid = task["data"]["taskid"].as_str().unwrap().to_owned();
    let cids: Vec<String> = (1000..1300).map(cid).collect();
    let list = json!({"audience": {"cid": cids}, "taskid": taskid, "is_async": false});
    let (status, answer) = raw("POST", &format!("{base}/push/list/cid"), Some(&token), list).await;
    assert_eq!(status, 200, "{answer}");
    let listed = statuses(&answer["data"]);
    assert!(listed.iter().all(|(_, t, _)| *t == taskid));
    pushed.extend(listed);
    let pushed_at = Instant::now();
    assert_eq!(pushed.len(), 500);

    // What the public facts predict, in order of posting per cid: arrival, then click.
    let mut expected = Vec::new();
    let mut kinds = BTreeMap::new();
    for (c, taskid, status) in &pushed {
        let compact = CompactCid::parse(c).unwrap();
        let arrives = arrives_after(&compact, status, &cfg);
        let kind = match (status.as_str(), arrives.is_some()) {
            ("successed_offline", true) => "offline, returns",
            ("successed_offline", false) => "offline, never returns",
            (s, _) => s,
        };
        *kinds.entry(kind).or_insert(0) += 1;
        if arrives.is_some() {
            expected.push((c.clone(), taskid.clone(), ACTION_ARRIVAL.to_owned()));
            if clicks(&compact, &cfg) {
                expected.push((c.clone(), taskid.clone(), ACTION_CLICKED.to_owned()));
            }
        }
    }
    for kind in ["successed_online", "offline, returns", "offline, never returns", "successed_ignore"] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} cid among {kinds:?}");
    }
    assert!(expected.iter().any(|(_, _, a)| a == ACTION_CLICKED));

    // Wait for the predicted count, and past the spread so that a stray late line would show.
    let lines = eventually("every predicted receipt line", Duration::from_secs(10), || async {
        let lines = accepted_lines(&seen);
        let late_enough = pushed_at.elapsed() > cfg.return_spread + Duration::from_millis(300);
        if lines.len() >= expected.len() && late_enough {
            Ok(lines)
        } else {
            Err(format!("{} of {} lines", lines.len(), expected.len()))
        }
    })
    .await;

    for line in &lines {
        assert!(line.verify(DEV_MASTER_SECRET), "{line:?}");
        assert_eq!((line.appid.as_str(), line.code.as_str()), (DEV_APP_ID, "200"));
    }
    let got: Vec<(String, String, String)> =
        lines.iter().map(|l| (l.cid.clone(), l.taskid.clone(), l.action_id.clone())).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(got_sorted, expected_sorted, "the posted lines are exactly the predicted ones, once each");
    // A click line follows its arrival line.
    for (i, (c, t, a)) in got.iter().enumerate() {
        if a == ACTION_CLICKED {
            assert!(got[..i].iter().any(|(c2, t2, a2)| (c2, t2, a2.as_str()) == (c, t, ACTION_ARRIVAL)), "{c}");
        }
    }
    let msgids: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.msgid.as_str()).collect();
    assert_eq!(msgids.len(), lines.len(), "msgids are unique");

    // The counters move once the receiver's answer is back, just after the body was seen.
    let s = eventually("the counters to catch up", Duration::from_secs(5), || async {
        let s = stats(sim.local_addr()).await;
        if s.posted_lines >= expected.len() as u64 {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .await;
    let clicked = expected.iter().filter(|(_, _, a)| a == ACTION_CLICKED).count() as u64;
    assert_eq!((s.queued, s.dropped, s.failed_posts), (0, 0, 0), "{s:?}");
    assert_eq!(s.posted_lines, expected.len() as u64);
    assert_eq!((s.by_kind.arrival, s.by_kind.clicked), (expected.len() as u64 - clicked, clicked));
    assert_eq!(s.posts as usize + 1, seen.lock().unwrap().requests.len(), "one refused POST, then accepted ones");

    // `/_sim/device/{cid}` tells the same facts.
    for (c, _, status) in pushed.iter().take(20) {
        let (code, view) = raw("GET", &format!("http://{}/_sim/device/{c}", sim.local_addr()), None, json!(null)).await;
        assert_eq!(code, 200, "{view}");
        let compact = CompactCid::parse(c).unwrap();
        assert_eq!(view["status"].as_str(), Some(status.as_str()));
        assert_eq!(view["clicks"].as_bool(), Some(clicks(&compact, &cfg)));
        let ms = returns_after(&compact, &cfg).map(|d| d.as_millis() as u64);
        assert_eq!(view["returns_after_ms"].as_u64(), ms);
    }
    let (code, _) = raw("GET", &format!("http://{}/_sim/device/nope", sim.local_addr()), None, json!(null)).await;
    assert_eq!(code, 400);
    stop.cancel();
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_costs_one_failed_post_after_three_tries() {
    let stop = CancellationToken::new();
    let (addr, seen) = receiver(vec![500; 10], stop.clone()).await;
    let cfg = receipts_config(addr);
    let sim = start_sim(SimConfig { receipts: cfg.clone(), ..SimConfig::default() }).await;
    let token = raw_token(&sim.getui_base_url()).await;
    let base = format!("{}/{DEV_APP_ID}", sim.getui_base_url());
    // The first test cid the simulator answers successed_online (its receipt is due at once).
    let mut online = None;
    for n in 0..100 {
        let (_, v) =
            raw("GET", &format!("http://{}/_sim/device/{}", sim.local_addr(), cid(n)), None, json!(null)).await;
        if v["status"] == "successed_online" {
            online = Some(cid(n));
            break;
        }
    }
    let online = online.expect("an online cid among the first 100");
    let one = json!({"is_async": false, "msg_list": [{"request_id": "receipt-fail-0001", "audience": {"cid": [online]},
        "push_message": note()}]});
    let (status, body) = raw("POST", &format!("{base}/push/single/batch/cid"), Some(&token), one).await;
    assert_eq!(status, 200, "{body}");
    let s = eventually("the post to be given up", Duration::from_secs(10), || async {
        let s = stats(sim.local_addr()).await;
        if s.failed_posts == 1 {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .await;
    assert_eq!((s.posted_lines, s.posts, s.queued), (0, 0, 0), "{s:?}");
    assert_eq!(seen.lock().unwrap().requests.len(), 3, "three tries, then dropped");
    stop.cancel();
}
