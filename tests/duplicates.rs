//! Duplicates that are counted: list chunks and WeCom sends retried after an answer was lost
//! may reach their recipients twice, and every such repeat must show in the report's
//! `replayed` (and in `retries_total{reason="maybe_delivered"}`). The simulators' ledgers are
//! the judge: ledger duplicates ≤ `replayed`, nobody lost, and with WeCom's own duplicate check
//! on, no duplicate at all.

mod common;

use campaignd::domain::CompactCid;
use campaignd::protocol::CampaignView;
use campaignd::simulator::{FaultProfile, Limits, SimConfig, WecomLedgerSummary};
use common::{cid, list_campaign, raw, spawn_app_with, TestApp};
use serde_json::{json, Value};

const RECIPIENTS: u64 = 20_000;
/// Recipients per chunk, and so per call: 100 calls for a campaign.
const CHUNK: u64 = 200;

fn flaky() -> FaultProfile {
    FaultProfile::by_name("flaky").expect("flaky is a profile")
}

/// `flaky` with the lost-answer shapes made frequent, so that a run surely meets them.
fn lossy() -> FaultProfile {
    FaultProfile { drop_after_share: 0.1, server_error_after_share: 0.1, ..flaky() }
}

/// A daemon with chunks of [`CHUNK`] in front of a simulator misbehaving as `profile`;
/// `extra` edits the shipped configuration further.
async fn app_with(profile: FaultProfile, extra: &[(&str, &str)]) -> TestApp {
    let sim = SimConfig { profile, limits: Limits::unlimited(), ..SimConfig::default() };
    let mut edits =
        vec![("chunk_size = 1000", "chunk_size = 200"), ("calls_per_second = 50", "calls_per_second = 1000")];
    edits.extend_from_slice(extra);
    spawn_app_with(sim, &edits).await
}

/// `campaignd_retries_total{app,reason}` as /metrics shows it (0 when absent).
async fn retries(app: &TestApp, app_name: &str, reason: &str) -> u64 {
    let client = campaignd::upstream::http::build_client(&Default::default()).unwrap();
    let req = hyper::Request::get(format!("http://{}/metrics", app.addr)).body(Default::default()).unwrap();
    let resp = client.request(req).await.unwrap();
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let series = format!("campaignd_retries_total{{app=\"{app_name}\",reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

/// Runs a list campaign of [`RECIPIENTS`] to its end; checks nobody was lost; returns the
/// final view and the ledger's duplicates.
async fn run_list(app: &TestApp) -> (CampaignView, u64) {
    let id = app.create(list_campaign("lossy-list", None)).await;
    app.upload_range(&id, 0, RECIPIENTS).await;
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 120).await;
    assert_eq!(done.state, "completed", "{done:#?}");
    let ledger = app.sim.ledger();
    for i in 0..RECIPIENTS {
        assert!(ledger.count(&CompactCid::parse(&cid(i)).unwrap()) >= 1, "cid {i} never delivered");
    }
    (done, ledger.summary().duplicates)
}

/// Runs a WeCom campaign to [`RECIPIENTS`] members to its end; checks that every member got
/// it; returns the final view and the WeCom ledger.
async fn run_wecom(app: &TestApp) -> (CampaignView, WecomLedgerSummary) {
    let id = app
        .create(json!({"name": "lossy-wecom", "app": "staff",
                       "message": {"wecom": {"msgtype": "text", "text": {"content": "周五下午三点全员会议"}}}}))
        .await;
    let members: String = (0..RECIPIENTS).map(|i| format!("member{i:06}\n")).collect();
    assert_eq!(app.api.upload(&id, "text/plain", members).await.unwrap().accepted, RECIPIENTS);
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 120).await;
    assert_eq!(done.state, "completed", "{done:#?}");
    assert_eq!(done.progress.results.get("sent"), Some(&RECIPIENTS), "{done:#?}");
    let url = format!("http://{}/_sim/wecom/ledger", app.sim.local_addr());
    let (status, body) = raw("GET", &url, None, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let ledger: WecomLedgerSummary = serde_json::from_value(body).unwrap();
    assert_eq!(ledger.unique, RECIPIENTS, "every member received it: {ledger:?}");
    (done, ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_campaign_under_the_flaky_profile_counts_every_duplicate() {
    let app = app_with(flaky(), &[]).await;
    let (done, duplicates) = run_list(&app).await;
    let replayed = done.progress.replayed;
    let maybe = retries(&app, "main", "maybe_delivered").await;
    eprintln!("flaky list: ledger duplicates {duplicates}, replayed {replayed}, maybe-delivered retries {maybe}");
    assert!(duplicates <= replayed, "{duplicates} duplicate deliveries but only {replayed} counted as replayed");
    // Each call carries one whole chunk, and each maybe-delivered retry counts it once.
    assert_eq!(replayed, maybe * CHUNK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_retries_after_lost_answers_are_counted_as_replayed() {
    let app = app_with(lossy(), &[]).await;
    let (done, duplicates) = run_list(&app).await;
    let replayed = done.progress.replayed;
    eprintln!("lossy list: ledger duplicates {duplicates}, replayed {replayed}");
    assert!(duplicates > 0, "no answer was lost after delivery; the test proves nothing");
    assert!(duplicates <= replayed, "{duplicates} duplicate deliveries but only {replayed} counted as replayed");
    assert_eq!(replayed, retries(&app, "main", "maybe_delivered").await * CHUNK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_campaign_under_the_flaky_profile_with_the_duplicate_check_has_no_duplicate() {
    let app = app_with(flaky(), &[]).await;
    let (done, ledger) = run_wecom(&app).await;
    eprintln!("flaky wecom, check on: {ledger:?}, replayed {}", done.progress.replayed);
    assert_eq!(ledger.duplicates, 0, "{ledger:?}");
    assert!(ledger.duplicates <= done.progress.replayed);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_duplicate_check_drops_the_repeats_of_lost_answers() {
    let app = app_with(lossy(), &[]).await;
    let (done, ledger) = run_wecom(&app).await;
    let maybe = retries(&app, "staff", "maybe_delivered").await;
    eprintln!("lossy wecom, check on: {ledger:?}, replayed {}, retries {maybe}", done.progress.replayed);
    assert!(ledger.dropped_repeats > 0, "no repeat reached WeCom; the test proves nothing: {ledger:?}");
    assert_eq!(ledger.duplicates, 0, "{ledger:?}");
    // The retries happened and are counted, but WeCom dropped them: nobody got it twice.
    assert!(maybe > 0);
    assert_eq!(done.progress.replayed, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_without_the_duplicate_check_counts_every_duplicate() {
    for (name, profile) in [("flaky", flaky()), ("lossy", lossy())] {
        let app = app_with(profile, &[("duplicate_check = true", "duplicate_check = false")]).await;
        let (done, ledger) = run_wecom(&app).await;
        let replayed = done.progress.replayed;
        eprintln!("{name} wecom, check off: {ledger:?}, replayed {replayed}");
        assert!(ledger.duplicates <= replayed, "{} duplicates but only {replayed} replayed", ledger.duplicates);
        assert_eq!(ledger.dropped_repeats, 0, "the sends asked for no duplicate check");
        assert_eq!(replayed, retries(&app, "staff", "maybe_delivered").await * CHUNK);
        if name == "lossy" {
            assert!(ledger.duplicates > 0, "no answer was lost after delivery; the test proves nothing");
        }
        app.stop().await;
    }
}
