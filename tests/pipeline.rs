//! The durable pipeline end to end over real loopback HTTP: daemon + simulator, every send
//! mode, pause and resume, cancel, speed, faults, and bad input.

mod common;

use std::time::Duration;

use campaignd::client::ClientError;
use campaignd::domain::CompactCid;
use campaignd::simulator::{FaultProfile, Limits, SimConfig};
use common::{batch_campaign, cid, list_campaign, ndjson_range, spawn_app, spawn_app_with, TestApp};

fn sum(v: &campaignd::protocol::CampaignView) -> u64 {
    v.progress.results.values().sum()
}

/// The campaign's `sent` and the simulator's deliveries.
async fn sent_and_delivered(app: &TestApp, id: &str) -> (u64, u64) {
    let sent = app.api.campaign(id).await.expect("status").progress.sent;
    (sent, app.sim.ledger().summary().deliveries)
}

/// Waits until no chunk is in flight and [`sent_and_delivered`] has stopped moving (after a
/// pause or cancel, the chunks already sent land first); answers the settled pair.
async fn quiet(app: &TestApp, id: &str) -> (u64, u64) {
    common::settled("the campaign's sending", Duration::from_secs(15), || async move {
        let in_flight = app.metric("campaignd_chunks_inflight").await;
        let pair = sent_and_delivered(app, id).await;
        (in_flight == Some(0.0)).then_some(pair)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_campaign_reaches_every_recipient_once() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("list", None)).await;
    app.upload_range(&id, 0, 5_000).await;
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 60).await;
    assert_eq!(done.state, "completed");
    assert_eq!((done.progress.sent, sum(&done), done.progress.pending), (5_000, 5_000, 0));
    assert!(done.taskid.as_deref().is_some_and(|t| t.starts_with("RASL-")));
    let ledger = app.sim.ledger().summary();
    assert_eq!((ledger.deliveries, ledger.unique_cids, ledger.duplicates), (5_000, 5_000, 0));
    let report = app.api.report(&id).await.unwrap();
    assert_eq!(report.delivered + report.failed, 5_000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_single_sends_personal_copies_once() {
    let app = spawn_app().await;
    let id = app.create(batch_campaign("personal")).await;
    let view = app.api.campaign(&id).await.unwrap();
    assert_eq!(view.mode, "batch_single", "auto mode picks batch_single for ${{...}} messages");
    let up = app.api.upload(&id, "application/x-ndjson", ndjson_range(0, 1_000)).await.unwrap();
    assert_eq!(up.accepted, 1_000);
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 60).await;
    assert_eq!((done.state.as_str(), sum(&done)), ("completed", 1_000));
    let ledger = app.sim.ledger().summary();
    assert_eq!(ledger.by_endpoint["push_single_batch_cid"], 1_000);
    assert_eq!(ledger.duplicates, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_campaign_is_one_upstream_task() {
    let app = spawn_app().await;
    let id = app
        .create(serde_json::json!({
            "name": "android-only", "app": "main",
            "message": {"transmission": "{\"promo\":1}"},
            "settings": {"speed": 300, "group": "spring-ab"},
            "audience": {"conditions": [{"key": "phone_type", "values": ["android"], "opt": "or"}]}
        }))
        .await;
    let started = app.api.act(&id, "start").await.unwrap();
    assert_eq!(started.mode, "app");
    let done = app.wait_final(&id, 30).await;
    assert_eq!(done.state, "completed");
    assert!(done.taskid.as_deref().is_some_and(|t| t.starts_with("RASA-")), "{done:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_sending_and_resume_finishes_without_duplicates() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("paced", Some(2_000))).await;
    app.upload_range(&id, 0, 8_000).await;
    app.api.act(&id, "start").await.unwrap();
    app.wait_for(&id, 30, |v| v.progress.sent >= 1_000).await;
    let paused = app.api.act(&id, "pause").await.unwrap();
    assert_eq!(paused.state, "paused");
    // Chunks in flight may still land; once none is and the counts rest, nothing moves.
    let a = quiet(&app, &id).await;
    common::stays("nothing is sent while paused", &a, Duration::from_secs(1), || sent_and_delivered(&app, &id)).await;
    let b = sent_and_delivered(&app, &id).await;
    assert_eq!(a, b, "nothing is sent while paused");
    assert!(b.0 < 8_000);
    let err = app.api.act(&id, "pause").await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 409, .. }), "{err}");
    app.api.act(&id, "resume").await.unwrap();
    let done = app.wait_final(&id, 60).await;
    assert_eq!((done.state.as_str(), sum(&done)), ("completed", 8_000));
    let ledger = app.sim.ledger().summary();
    assert_eq!((ledger.unique_cids, ledger.duplicates), (8_000, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_for_good_and_counts_what_was_not_sent() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("cancelled", Some(1_000))).await;
    app.upload_range(&id, 0, 10_000).await;
    app.api.act(&id, "start").await.unwrap();
    app.wait_for(&id, 30, |v| v.progress.sent >= 1_000).await;
    let cancelled = app.api.act(&id, "cancel").await.unwrap();
    assert_eq!(cancelled.state, "cancelled");
    quiet(&app, &id).await;
    let v = app.api.campaign(&id).await.unwrap();
    assert!(v.progress.not_sent > 0);
    let ledger = app.sim.ledger();
    assert_eq!(ledger.summary().deliveries, v.progress.sent);
    let never_delivered = (0..10_000).filter(|i| ledger.count(&CompactCid::parse(&cid(*i)).unwrap()) == 0).count();
    assert_eq!(never_delivered as u64, v.progress.not_sent, "not_sent counts exactly those the upstream never got");
    let err = app.api.act(&id, "resume").await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 409, .. }));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_is_never_exceeded_in_any_second() {
    let app = spawn_app().await;
    let speed = 3_000u64;
    let id = app.create(list_campaign("speed", Some(speed as u32))).await;
    app.upload_range(&id, 0, 12_000).await;
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 60).await;
    let burst = 1_000; // one chunk: the bucket's capacity
    let timeline = app.sim.ledger().timeline();
    let busiest = timeline.iter().copied().max().unwrap_or(0);
    assert!(busiest <= speed + burst, "{busiest} in one second: {timeline:?}");
    // And it is not absurdly slow either: 12 000 at 3 000/s takes about 3.7 s.
    let seconds_used = timeline.iter().filter(|n| **n > 0).count();
    assert!((3..=6).contains(&seconds_used), "{timeline:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_campaign_holds_no_shards_a_fast_one_needs() {
    // Small chunks give the slow campaign many of them to wait with.
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("chunk_size = 1000", "chunk_size = 100")]).await;
    let slow = app.create(list_campaign("slow", Some(20))).await;
    app.upload_range(&slow, 0, 2_000).await;
    app.api.act(&slow, "start").await.unwrap();
    let fast = app.create(list_campaign("fast", None)).await;
    app.upload_range(&fast, 10_000, 5_000).await;
    app.api.act(&fast, "start").await.unwrap();
    let done = app.wait_final(&fast, 60).await;
    assert_eq!((done.state.as_str(), done.progress.sent), ("completed", 5_000));
    let slow_view = app.api.campaign(&slow).await.unwrap();
    assert_eq!(slow_view.state, "running", "the slow one (100 s at 20/s) is still sending at its own pace");
    app.api.act(&slow, "cancel").await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_complete_with_nobody_lost_under_faults() {
    // 5xx, dropped connections (before and after delivery), rate-limit bursts, 3-second tokens.
    let profile = FaultProfile::by_name("chaos").unwrap();
    let sim = SimConfig { profile, limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("chunk_size = 1000", "chunk_size = 200")]).await;
    let list = app.create(list_campaign("chaos-list", None)).await;
    app.upload_range(&list, 0, 20_000).await;
    let batch = app.create(batch_campaign("chaos-batch")).await;
    app.api.upload(&batch, "application/x-ndjson", ndjson_range(100_000, 2_000)).await.unwrap();
    app.api.act(&list, "start").await.unwrap();
    app.api.act(&batch, "start").await.unwrap();
    let l = app.wait_final(&list, 120).await;
    let b = app.wait_final(&batch, 120).await;
    assert_eq!((l.state.as_str(), sum(&l)), ("completed", 20_000), "{l:#?}");
    assert_eq!((b.state.as_str(), sum(&b)), ("completed", 2_000), "{b:#?}");
    let ledger = app.sim.ledger();
    for i in (0..20_000).chain(100_000..102_000) {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert!(n >= 1, "cid {i} never delivered");
        if i >= 100_000 {
            assert_eq!(n, 1, "batch cid {i} delivered {n} times");
        }
    }
    let (_, metrics) = common::raw("GET", &format!("http://{}/metrics", app.addr), None, serde_json::Value::Null).await;
    assert!(metrics.is_null(), "metrics are text, not JSON");
    let text = metrics_text(&app).await;
    assert!(text.contains("campaignd_retries_total{app=\"main\""), "faults caused retries:\n{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_recorded_per_recipient_and_not_retried() {
    // A daily list quota smaller than the campaign: the rest fails with 30008, once.
    let limits = Limits { list_cids_per_day: Some(2_000), ..Limits::unlimited() };
    let app = spawn_app_with(SimConfig { limits, ..SimConfig::default() }, &[]).await;
    let id = app.create(list_campaign("quota", None)).await;
    app.upload_range(&id, 0, 5_000).await;
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 60).await;
    assert_eq!(done.state, "completed");
    assert_eq!(done.progress.results.get("PushTotalNumOverLimit"), Some(&3_000), "{done:#?}");
    assert_eq!(app.sim.ledger().summary().deliveries, 2_000);
    app.stop().await;
}

async fn metrics_text(app: &common::TestApp) -> String {
    let client = campaignd::upstream::http::build_client(&Default::default()).unwrap();
    let req = hyper::Request::get(format!("http://{}/metrics", app.addr)).body(Default::default()).unwrap();
    let resp = client.request(req).await.unwrap();
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_mid_campaign_releases_queued_chunks() {
    let app = spawn_app().await;
    let id = app.create(list_campaign("stopping", Some(1_000))).await;
    app.upload_range(&id, 0, 30_000).await;
    app.api.act(&id, "start").await.unwrap();
    app.wait_for(&id, 30, |v| v.progress.sent >= 1_000).await;
    // Shards are waiting on the speed bucket and more chunks are queued for them.
    tokio::time::timeout(Duration::from_secs(20), app.stop()).await.expect("the daemon stops without hanging");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_report_puts_the_groups_campaigns_side_by_side() {
    let app = spawn_app().await;
    let a = app.create(list_campaign("variant-a", None)).await;
    let b = app.create(list_campaign("variant-b", None)).await;
    app.upload_range(&a, 0, 1_000).await;
    app.upload_range(&b, 1_000, 2_000).await;
    for id in [&a, &b] {
        app.api.act(id, "start").await.unwrap();
        app.wait_final(id, 30).await;
    }
    let group = app.api.group_report("spring-ab").await.unwrap();
    let names: Vec<&str> = group.campaigns.iter().map(|c| c.campaign.name.as_str()).collect();
    assert_eq!(names, vec!["variant-a", "variant-b"]);
    assert_eq!(group.results.values().sum::<u64>(), 3_000);
    assert_eq!(group.campaigns[1].results.values().sum::<u64>(), 2_000);
    let missing = app.api.group_report("nobody").await.unwrap_err();
    assert!(matches!(missing, ClientError::Api { status: 404, .. }));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_campaign_starts_on_time_after_a_restart() {
    let mut app = spawn_app().await;
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let mut body = list_campaign("later", None);
    body["settings"]["schedule_at"] = at.format(&time::format_description::well_known::Rfc3339).unwrap().into();
    let id = app.create(body).await;
    app.upload_range(&id, 0, 2_000).await;
    assert_eq!(app.api.act(&id, "start").await.unwrap().state, "scheduled");
    app.restart().await;
    let v = app.api.campaign(&id).await.unwrap();
    assert_eq!((v.state.as_str(), v.progress.sent), ("scheduled", 0), "nothing is sent before the time");
    let done = app.wait_final(&id, 30).await;
    assert_eq!(done.state, "completed");
    let started = time::OffsetDateTime::parse(
        done.started_at.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(started >= at - time::Duration::milliseconds(1), "started {started} before {at}");
    assert!(started - at < time::Duration::seconds(2), "started {started}, due {at}");
    assert_eq!(app.sim.ledger().summary().unique_cids, 2_000);
    app.stop().await;
}
