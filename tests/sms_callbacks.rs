//! The SMS-fallback callbacks and `sms/stop` through a real daemon over loopback (issue 13
//! points 3 and 4): Getui's receipt lines verified with the app's MasterSecret, refused lines
//! counted; Tencent's status reports answered as Tencent expects; `sms/stop` refused without
//! `sms_fallback` and shown in the report with it.

mod common;

use bytes::Bytes;
use campaignd::client::ClientError;
use campaignd::dev::{DEV_APP_ID, DEV_MASTER_SECRET};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use campaignd::wire::getui::receipt::ReceiptLine;
use common::{batch_campaign, cid, spawn_app, TestApp};
use http_body_util::Full;
use serde_json::{json, Value};

/// POSTs `body` as it is (no bearer token, as the vendors send) and returns status and JSON.
async fn post(app: &TestApp, path: &str, content_type: &str, body: impl Into<Bytes>) -> (u16, Value) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let req = hyper::Request::post(format!("http://{}{path}", app.addr))
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    let resp = client.request(req).await.expect("the daemon answers");
    let status = resp.status().as_u16();
    let bytes = read_body(resp.into_body()).await.expect("a body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// One receipt line for the development app, signed with `secret`.
fn receipt(n: u64, action: &str, secret: &str) -> String {
    let line = ReceiptLine::signed(DEV_APP_ID, &cid(n), "RASL_1201_task", "msg-1", action, 1_764_000_000_000, secret);
    serde_json::to_string(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_verified_counted_and_refused_lines_named() {
    let app = spawn_app().await;
    let body = [
        receipt(1, "0", DEV_MASTER_SECRET),
        receipt(2, "10000", DEV_MASTER_SECRET),
        receipt(3, "10010", DEV_MASTER_SECRET),
        receipt(4, "0", "a-wrong-master-secret"),
    ]
    .join("\n");
    let (status, v) = post(&app, "/getui/main/receipts", "text/plain", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["accepted"].as_u64(), v["refused"].as_u64()), (Some(3), Some(1)), "{v}");
    assert_eq!(v["errors"], json!([{"line": 4, "error": "bad sign"}]));
    assert_eq!(app.metric("campaignd_receipts_total{app=\"main\",kind=\"refused_bad_sign\"}").await, Some(1.0));
    assert_eq!(app.metric("campaignd_receipts_total{app=\"main\",kind=\"arrival\"}").await, Some(1.0));
    assert_eq!(app.metric("campaignd_receipts_total{app=\"main\",kind=\"clicked\"}").await, Some(1.0));

    // Getui may post the same lines again: taken again, nothing breaks.
    let (status, v) = post(&app, "/getui/main/receipts", "text/plain", body).await;
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(3)), "{v}");

    // A sender with the wrong secret notices: every line refused is a 400 of the same shape.
    let bad = [receipt(5, "0", "wrong"), "{not json".to_owned()].join("\n");
    let (status, v) = post(&app, "/getui/main/receipts", "text/plain", bad).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!((v["accepted"].as_u64(), v["refused"].as_u64()), (Some(0), Some(2)), "{v}");
    assert_eq!(v["errors"][1]["line"], 2);

    let (status, v) = post(&app, "/getui/main/receipts", "text/plain", "").await;
    assert_eq!((status, v), (200, json!({"accepted": 0, "refused": 0, "errors": []})));
    let (status, v) = post(&app, "/getui/nope/receipts", "text/plain", receipt(1, "0", DEV_MASTER_SECRET)).await;
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
    let (status, _) = post(&app, "/getui/main/receipts", "text/plain", vec![b'\n'; 5 << 20]).await;
    assert_eq!(status, 413, "a body over 4 MiB");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_get_tencents_answer_and_bad_bodies_a_named_400() {
    let app = spawn_app().await;
    let reports = json!([{"user_receive_time": "2026-12-01 10:00:00", "nationcode": "86", "mobile": "13800000000",
        "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": "never-sent"}]);
    let (status, v) = post(&app, "/sms/main/status", "application/json", reports.to_string()).await;
    assert_eq!((status, v), (200, json!({"result": 0, "errmsg": "OK"})));
    // The series exists from the start (at 0) and stays there.
    let delivered = app.metric("campaignd_sms_total{app=\"main\",result=\"delivered\"}").await;
    assert_eq!(delivered, Some(0.0), "no change");

    let (status, v) = post(&app, "/sms/main/status", "application/json", json!({"sid": "x"}).to_string()).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("body")), "{v}");
    let (status, v) = post(&app, "/sms/main/status", "application/json", "[{").await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_request")), "{v}");
    let (status, _) = post(&app, "/sms/nope/status", "application/json", "[]").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_stop_needs_sms_fallback_and_shows_in_the_report() {
    let app = spawn_app().await;
    let plain = app.create(batch_campaign("push only")).await;
    match app.api.act(&plain, "sms/stop").await.unwrap_err() {
        ClientError::Api { status, code, .. } => assert_eq!((status, code.as_str()), (409, "conflict")),
        other => panic!("expected a 409, got {other}"),
    }
    assert!(app.api.report(&plain).await.unwrap().sms.is_none(), "no sms object without sms_fallback");
    match app.api.act("999999", "sms/stop").await.unwrap_err() {
        ClientError::Api { status, .. } => assert_eq!(status, 404),
        other => panic!("expected a 404, got {other}"),
    }

    let mut texted = batch_campaign("texted");
    texted["settings"] = json!({"ttl_ms": 7_200_000,
        "sms_fallback": {"template_id": "1000001", "params": ["${name}", "订单已发货"], "after_ms": 5000}});
    let id = app.create(texted).await;
    let before = app.api.campaign(&id).await.unwrap().sms.expect("an sms object with sms_fallback");
    assert!(!before.stopped);
    let view = app.api.act(&id, "sms/stop").await.unwrap();
    assert!(view.sms.expect("the view has it").stopped);
    let (status, report) =
        common::raw("GET", &format!("http://{}/v1/campaigns/{id}/report", app.addr), None, Value::Null).await;
    assert_eq!(status, 401, "the report needs the bearer token: {report}");
    let report = serde_json::to_value(app.api.report(&id).await.unwrap()).unwrap();
    assert_eq!(report["sms"]["stopped"], true, "{report}");
    for key in ["reached", "clicked", "sms_sent", "sms_delivered", "sms_maybe_sent", "sms_replayed", "chunks_done"] {
        assert_eq!(report["sms"][key], 0, "{key}: {report}");
    }
    assert_eq!((&report["sms"]["sms_failed"], &report["sms"]["sms_skipped"]), (&json!({}), &json!({})));
    let (status, _) = common::raw("GET", &format!("http://{}/getui/main/receipts", app.addr), None, Value::Null).await;
    assert_eq!(status, 405, "the callbacks take POST only");
    app.stop().await;
}

/// With `server.callback_listen`, both vendor callbacks are served there and not on `listen`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_callbacks_live_on_the_callback_listener() {
    let daemon = common::SplitListeners::start().await;
    let (main, edge) = (daemon.main, daemon.edge);

    let line = receipt(1, "0", DEV_MASTER_SECRET);
    let (status, _) = common::raw("POST", &format!("http://{edge}/sms/main/status"), None, json!([])).await;
    assert_eq!(status, 200);
    let (status, _) = common::raw("POST", &format!("http://{main}/sms/main/status"), None, json!([])).await;
    assert_eq!(status, 404, "not on the main listener");
    let client = build_client(&PoolSettings::default()).unwrap();
    for (addr, expected) in [(edge, 200), (main, 404)] {
        let req = hyper::Request::post(format!("http://{addr}/getui/main/receipts"))
            .body(Full::new(Bytes::from(line.clone())))
            .unwrap();
        assert_eq!(client.request(req).await.unwrap().status().as_u16(), expected, "{addr}");
    }
    daemon.stop().await;
}
