//! Request ids are unique across stores: a store reset (the README's recovery advice), a
//! restored backup or a second daemon on the same Getui app must never repeat an id that
//! another store sent, or the upstream silently drops the new message.

mod common;

use campaignd::domain::CompactCid;
use common::{batch_campaign, cid, list_campaign, ndjson_range, spawn_app};

fn delivered(app: &common::TestApp, from: u64, n: u64) -> Vec<u32> {
    let ledger = app.sim.ledger();
    (from..from + n).map(|i| ledger.count(&CompactCid::parse(&cid(i)).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_store_has_a_new_identity_and_its_campaigns_are_delivered() {
    let mut app = spawn_app().await;
    let first_identity = app.store_identity().await;
    assert_eq!(first_identity.len(), 12);

    // Store 1: a personalised campaign and a list campaign.
    let a = app.create(batch_campaign("before-reset")).await;
    app.api.upload(&a, "application/x-ndjson", ndjson_range(0, 300)).await.unwrap();
    app.api.act(&a, "start").await.unwrap();
    assert_eq!(app.wait_final(&a, 60).await.state, "completed");
    let l = app.create(list_campaign("list-before-reset", None)).await;
    app.upload_range(&l, 10_000, 500).await;
    app.api.act(&l, "start").await.unwrap();
    let list_a = app.wait_final(&l, 60).await;

    app.restart().await;
    assert_eq!(app.store_identity().await, first_identity, "a restart keeps the identity");

    // Store 2: the same campaign numbers, chunks and message indexes as store 1.
    app.reset_store().await;
    assert_ne!(app.store_identity().await, first_identity, "a new store draws a new identity");
    let b = app.create(batch_campaign("after-reset")).await;
    assert_eq!(a, b, "the fresh store numbers its campaigns from the start again");
    app.api.upload(&b, "application/x-ndjson", ndjson_range(1_000, 300)).await.unwrap();
    app.api.act(&b, "start").await.unwrap();
    assert_eq!(app.wait_final(&b, 60).await.state, "completed");
    assert!(delivered(&app, 1_000, 300).iter().all(|n| *n == 1), "every recipient of the second store's campaign");
    assert_eq!(app.sim.ledger().summary().dropped_repeats, 0, "no request id was taken for a repeat");

    let l2 = app.create(list_campaign("list-after-reset", None)).await;
    assert_eq!(l, l2);
    app.upload_range(&l2, 20_000, 500).await;
    app.api.act(&l2, "start").await.unwrap();
    let list_b = app.wait_final(&l2, 60).await;
    assert_ne!(list_a.taskid, list_b.taskid, "the second store's list task is a task of its own");
    assert!(delivered(&app, 20_000, 500).iter().all(|n| *n == 1));
    let ledger = app.sim.ledger().summary();
    assert_eq!((ledger.duplicates, ledger.dropped_repeats), (0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_pushes_from_two_stores_are_two_pushes() {
    let mut app = spawn_app().await;
    let body = serde_json::json!({
        "name": "everyone", "app": "main", "mode": "app", "message": {"transmission": "{\"promo\":1}"},
    });
    let a = app.create(body.clone()).await;
    app.api.act(&a, "start").await.unwrap();
    let first = app.wait_final(&a, 30).await;
    let after_first = app.sim.ledger().summary().deliveries;
    assert!(after_first > 0);

    app.reset_store().await;
    let b = app.create(body).await;
    assert_eq!(a, b);
    app.api.act(&b, "start").await.unwrap();
    let second = app.wait_final(&b, 30).await;
    assert_eq!(second.state, "completed");
    assert_ne!(first.taskid, second.taskid, "Getui made a new task, not the old one again");
    let ledger = app.sim.ledger().summary();
    assert_eq!(ledger.deliveries, 2 * after_first, "the second push reached everyone again");
    assert_eq!(ledger.dropped_repeats, 0);
    app.stop().await;
}
