//! The legacy SDK ingress over raw HTTP, for what the unmodified SDK's scripts
//! (`tests/legacy_sdk.rs`) cannot show: a retried single push's `requestId` and a retried
//! batch hold across a daemon restart (the idempotency keys live in the store), and a
//! personalised batch becomes one campaign that still sends everyone once.

mod common;

use std::time::Duration;

use base64::Engine;
use campaignd::protocol::CampaignView;
use campaignd::wire::getui_legacy::connect_sign;
use campaignd::wire::getui_legacy::proto::{action_chain::Type, ActionChain, PushInfo, SingleBatchItem};
use campaignd::wire::getui_legacy::proto::{SingleBatchRequest, Transparent};
use common::{cid, now_ms, settled, spawn_app, TestApp};
use prost::Message;
use serde_json::{json, Value};

const APP_KEY: &str = "campaignd-dev-key";
const APP_ID: &str = "campaignd-dev-app";
const MASTER_SECRET: &str = "campaignd-dev-master-secret";

fn action(id: i32, ty: Type, next: Option<i32>) -> ActionChain {
    ActionChain { action_id: Some(id), r#type: Some(ty as i32), next, ..Default::default() }
}

/// A transmission template's `clientData`, as the SDK builds it.
fn transmission() -> String {
    let t = Transparent {
        action: Some("pushmessage".into()),
        app_key: Some(APP_KEY.into()),
        app_id: Some(APP_ID.into()),
        push_info: Some(PushInfo { invalid_apn: Some(true), invalid_mpn: Some(true), ..Default::default() }),
        action_chain: vec![
            action(1, Type::Goto, Some(10030)),
            ActionChain {
                autostart: Some(false),
                failed_action: Some(100),
                ..action(10030, Type::Startapp, Some(100))
            },
            action(100, Type::Eoa, None),
        ],
        condition: vec![String::new()],
        template_id: Some(4),
        ..Default::default()
    };
    base64::engine::general_purpose::STANDARD.encode(t.encode_to_vec())
}

async fn call(app: &TestApp, body: Value) -> Value {
    let url = format!("http://{}/apiex.htm", app.addr);
    let (status, answer) = common::raw("POST", &url, None, body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn token(app: &TestApp) -> String {
    let ts = now_ms() as i64;
    let sign = connect_sign(APP_KEY, ts, MASTER_SECRET);
    let answer = call(app, json!({"action": "connect", "appkey": APP_KEY, "timeStamp": ts, "sign": sign})).await;
    assert_eq!(answer["result"], "success", "{answer}");
    answer["authtoken"].as_str().unwrap().to_owned()
}

fn single(token: &str, request_id: &str, to: &str, content: &str) -> Value {
    json!({
        "action": "pushMessageToSingleAction", "appkey": APP_KEY, "authToken": token, "version": "4.1.1.2",
        "requestId": request_id, "clientData": transmission(), "transmissionContent": content,
        "isOffline": true, "offlineExpireTime": 3_600_000, "pushNetWorkType": 0,
        "appId": APP_ID, "clientId": to, "alias": "", "type": 2, "pushType": "TransmissionMsg"
    })
}

fn batch(token: &str, request_id: &str, cids: &[String]) -> Value {
    let items = cids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut data = single("", "", c, &format!("{{\"n\":{i}}}"));
            data["version"] = json!("3.0.0.0");
            SingleBatchItem { seq_id: Some(i as i32), data: Some(data.to_string()) }
        })
        .collect();
    let request = SingleBatchRequest { batch_id: Some("b-1".into()), batch_item: items };
    json!({
        "action": "pushMessageToSingleBatchAction", "appkey": APP_KEY, "authToken": token, "version": "4.1.1.2",
        "requestId": request_id, "serialize": "pb", "async": false,
        "singleDatas": base64::engine::general_purpose::STANDARD.encode(request.encode_to_vec())
    })
}

async fn legacy_campaigns(app: &TestApp) -> Vec<CampaignView> {
    app.api.list().await.unwrap().into_iter().filter(|c| c.origin == "legacy").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_calls_send_nothing_twice_even_across_a_restart() {
    let mut app = spawn_app().await;
    let t = token(&app).await;
    let first = call(&app, single(&t, "req-7", &cid(7), "hello")).await;
    assert_eq!(first["result"], "ok", "{first}");
    let cids: Vec<String> = (100..130).map(cid).collect();
    let submitted = call(&app, batch(&t, "batch-1", &cids)).await;
    assert_eq!(submitted["info"].as_object().unwrap().len(), 30, "{submitted}");

    app.restart().await;
    // The token is signed, not kept: it outlives the restart.
    let again = call(&app, single(&t, "req-7", &cid(7), "hello")).await;
    assert_eq!((again["result"].clone(), again["taskId"].clone()), ("ok".into(), first["taskId"].clone()));
    let resubmitted = call(&app, batch(&t, "batch-1", &cids)).await;
    assert_eq!(resubmitted["info"], submitted["info"], "retry() answers as submit() did");

    let ledger = app.sim.ledger().clone();
    let (unique, duplicates) = settled("the simulator's ledger", Duration::from_secs(30), || {
        let s = ledger.summary();
        async move { (s.unique_cids >= 31).then_some((s.unique_cids, s.duplicates)) }
    })
    .await;
    assert_eq!((unique, duplicates), (31, 0), "each recipient once");
    // Thirty personalised messages of one shape are one campaign, plus the single push.
    let made = legacy_campaigns(&app).await;
    let calls: Vec<&str> = made.iter().map(|c| c.legacy.as_ref().unwrap().call.as_str()).collect();
    assert_eq!(calls.iter().filter(|c| **c == "batch").count(), 1, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| **c == "single").count(), 1, "{calls:?}");
    let batch_campaign = made.iter().find(|c| c.legacy.as_ref().unwrap().call == "batch").unwrap();
    assert_eq!((batch_campaign.recipients.total, batch_campaign.mode.as_str()), (30, "batch_single"));
}
