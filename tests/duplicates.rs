//! Duplicates that are counted: list chunks and WeCom sends retried after an answer was lost
//! may reach their recipients twice, and every such repeat must show in the report's
//! `replayed`. The simulators' ledgers are the judge: ledger duplicates ≤ `replayed`, nobody
//! lost, and WeCom's own duplicate check leaves no duplicate at all.

mod common;

use campaignd::domain::CompactCid;
use campaignd::simulator::{FaultProfile, Limits, SimConfig};
use common::{cid, list_campaign, spawn_app_with, TestApp};

const LIST_RECIPIENTS: u64 = 20_000;

/// The `flaky` profile with the lost-answer shapes made frequent, so a run surely meets them.
fn lossy() -> FaultProfile {
    FaultProfile { drop_after_share: 0.2, ..FaultProfile::by_name("flaky").unwrap() }
}

/// A daemon with chunks of 200 (100 list calls for 20,000 recipients) in front of `profile`.
async fn app_with(profile: FaultProfile) -> TestApp {
    let sim = SimConfig { profile, limits: Limits::unlimited(), ..SimConfig::default() };
    spawn_app_with(sim, &[("chunk_size = 1000", "chunk_size = 200")]).await
}

/// Runs a list campaign to its end and returns (ledger duplicates, the report's replayed).
async fn run_list(app: &TestApp) -> (u64, u64) {
    let id = app.create(list_campaign("lossy-list", None)).await;
    app.upload_range(&id, 0, LIST_RECIPIENTS).await;
    app.api.act(&id, "start").await.unwrap();
    let done = app.wait_final(&id, 120).await;
    assert_eq!(done.state, "completed", "{done:#?}");
    let ledger = app.sim.ledger();
    for i in 0..LIST_RECIPIENTS {
        assert!(ledger.count(&CompactCid::parse(&cid(i)).unwrap()) >= 1, "cid {i} never delivered");
    }
    (ledger.summary().duplicates, done.progress.replayed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_retries_after_lost_answers_are_counted_as_replayed() {
    let app = app_with(lossy()).await;
    let (duplicates, replayed) = run_list(&app).await;
    eprintln!("list: ledger duplicates {duplicates}, replayed {replayed}");
    assert!(duplicates > 0, "the profile lost no answer after delivery; the test proves nothing");
    assert!(duplicates <= replayed, "{duplicates} duplicate deliveries but only {replayed} counted as replayed");
    app.stop().await;
}
