//! A daemon on a 3-node JetStream cluster with `replicas = 3` (issue 12, point 4): one node is
//! killed with SIGKILL while a batch_single and a list campaign are sending. Every stream
//! keeps two of its three copies, a majority, so JetStream elects new leaders where it must
//! and dispatch goes on: both campaigns complete with nobody lost, no batch recipient sent
//! twice, and list duplicates no more than the campaign's `replayed`. The node killed is the
//! one the daemon is connected to: its client must reconnect to another seed as well. Without
//! `nats-server` on PATH the test says it was skipped; under `CI=true` it fails.

mod common;

use std::time::{Duration, Instant};

use campaignd::domain::CompactCid;
use campaignd::simulator::{Limits, SimConfig};
use common::{batch_campaign, cid, eventually, list_campaign, ndjson_range, spawn_app_with, NatsCluster};

const LIST: u64 = 30_000;
const LIST_SPEED: u32 = 3_000;
const BATCH_FROM: u64 = 1_000_000;
const BATCH: u64 = 100_000;
const BATCH_SPEED: u32 = 10_000;

/// The config replacement that moves the store to the cluster at `urls`, three copies each.
fn nats_store(urls: &str) -> String {
    format!(
        "retention_days = 30\nbackend = \"nats\"\n[store.nats]\nurl = \"{urls}\"\nstream_prefix = \"ha\"\nreplicas = 3\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_node_of_three_mid_campaign_loses_nobody() {
    // The daemon's warnings (store waits, failed acks) go with the test's output on failure.
    let _ = tracing_subscriber::fmt().with_env_filter("campaignd=info").with_test_writer().try_init();
    let Some(mut cluster) = NatsCluster::start_or_skip("the NATS cluster test", 3) else { return };
    let started = Instant::now();
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("retention_days = 30\n", &nats_store(&cluster.urls()))]).await;

    let mut body = batch_campaign("ha-batch");
    body["settings"] = serde_json::json!({"speed": BATCH_SPEED});
    let batch = app.create(body).await;
    let up = app.api.upload(&batch, "application/x-ndjson", ndjson_range(BATCH_FROM, BATCH)).await.unwrap();
    assert_eq!(up.accepted, BATCH);
    let list = app.create(list_campaign("ha-list", Some(LIST_SPEED))).await;
    app.upload_range(&list, 0, LIST).await;
    let uploaded = started.elapsed();
    app.api.act(&batch, "start").await.unwrap();
    app.api.act(&list, "start").await.unwrap();

    let ledger = app.sim.ledger();
    let total = BATCH + LIST;
    eventually("a quarter of both campaigns delivered", Duration::from_secs(90), || async {
        let n = ledger.summary().deliveries;
        if n >= total / 4 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    // The node the daemon is connected to: its client must move to another, and the streams
    // that node led elect new leaders.
    let leader = cluster.agreed_leader().expect("the cluster has a meta leader");
    let victim = cluster.serving("campaignd").expect("the daemon is connected to a node");
    let at_kill = ledger.summary().deliveries;
    cluster.kill(&victim);
    let killed = Instant::now();

    // Dispatch goes on: deliveries grow again after the loss (not only once it is repaired).
    eventually("deliveries after the kill", Duration::from_secs(60), || async {
        let n = ledger.summary().deliveries;
        if n > at_kill + 5_000 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;
    let b = app.wait_final_through_outages(&batch, 150).await;
    let l = app.wait_final_through_outages(&list, 150).await;
    let finished_after_kill = killed.elapsed();
    eventually("/readyz 200 on the two nodes left", Duration::from_secs(30), || async {
        match app.readyz().await {
            Some((200, _)) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!((b.state.as_str(), l.state.as_str()), ("completed", "completed"), "{b:#?} {l:#?}");
    assert_eq!(b.progress.results.values().sum::<u64>(), BATCH, "{b:#?}");
    assert_eq!(l.progress.results.values().sum::<u64>(), LIST, "{l:#?}");

    for i in BATCH_FROM..BATCH_FROM + BATCH {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert_eq!(n, 1, "batch recipient {i} delivered {n} times");
    }
    let mut duplicates = 0;
    for i in 0..LIST {
        let n = u64::from(ledger.count(&CompactCid::parse(&cid(i)).unwrap()));
        assert!(n >= 1, "list recipient {i} lost");
        duplicates += n - 1;
    }
    assert!(duplicates <= l.progress.replayed, "{duplicates} list duplicates, {} replayed", l.progress.replayed);
    eprintln!(
        "cluster: uploads took {uploaded:?}; killed {victim} (meta leader: {leader}) at {at_kill} of {total} \
         delivered; both completed \
         {finished_after_kill:?} later; batch 0 duplicates, list {duplicates} duplicates, {} replayed; \
         {} repeats dropped by request id; whole test {:?}",
        l.progress.replayed,
        ledger.summary().dropped_repeats,
        started.elapsed()
    );
    app.stop().await;
}
