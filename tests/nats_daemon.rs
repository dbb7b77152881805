//! The whole daemon on the NATS backend (`store.backend = "nats"`): a list and a batch_single
//! campaign sent through the simulator complete with nobody lost and nobody sent twice, and a
//! restarted daemon finds the same store. A daemon whose NATS is unreachable at start says so
//! and exits 69 (EX_UNAVAILABLE). Without `nats-server` on PATH the tests say they were skipped;
//! under `CI=true` they fail instead.

mod common;

use std::process::Command;
use std::time::Duration;

use campaignd::domain::CompactCid;
use campaignd::simulator::{Limits, SimConfig};
use common::{batch_campaign, cid, list_campaign, ndjson_range, spawn_app_with, NatsServer};

const LIST: u64 = 5_000;
const BATCH_FROM: u64 = 100_000;
const BATCH: u64 = 1_000;

/// The config replacement that moves the store to NATS at `url`.
fn nats_store(url: &str) -> String {
    format!("retention_days = 30\nbackend = \"nats\"\n[store.nats]\nurl = \"{url}\"\nstream_prefix = \"e2e\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_batch_campaigns_complete_on_nats_with_nobody_lost_or_sent_twice() {
    let Some(nats) = NatsServer::start_or_skip("the NATS end-to-end test") else { return };
    let store = nats_store(&nats.url());
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let mut app = spawn_app_with(sim, &[("retention_days = 30\n", &store)]).await;
    let identity = app.store_identity().await;

    let list = app.create(list_campaign("nats-list", None)).await;
    app.upload_range(&list, 0, LIST).await;
    let batch = app.create(batch_campaign("nats-batch")).await;
    let up = app.api.upload(&batch, "application/x-ndjson", ndjson_range(BATCH_FROM, BATCH)).await.unwrap();
    assert_eq!(up.accepted, BATCH);
    app.api.act(&list, "start").await.unwrap();
    app.api.act(&batch, "start").await.unwrap();
    let l = app.wait_final(&list, 120).await;
    let b = app.wait_final(&batch, 120).await;
    assert_eq!((l.state.as_str(), b.state.as_str()), ("completed", "completed"), "{l:#?} {b:#?}");
    assert_eq!(l.progress.results.values().sum::<u64>(), LIST, "{l:#?}");
    assert_eq!(b.progress.results.values().sum::<u64>(), BATCH, "{b:#?}");

    let ledger = app.sim.ledger();
    for i in 0..LIST {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert_eq!(n, 1, "list recipient {i} delivered {n} times");
    }
    for i in BATCH_FROM..BATCH_FROM + BATCH {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert_eq!(n, 1, "batch recipient {i} delivered {n} times");
    }
    assert_eq!(l.progress.replayed, 0);

    // A restarted daemon finds the same store: identity, campaigns, results.
    tokio::time::timeout(Duration::from_secs(60), app.restart()).await.expect("restarted in time");
    assert_eq!(app.store_identity().await, identity);
    let again = app.api.campaign(&list).await.unwrap();
    assert_eq!((again.state.as_str(), again.progress.results.values().sum::<u64>()), ("completed", LIST));
    assert_eq!(app.api.list().await.unwrap().len(), 2);
    app.stop().await;
    let streams = nats.dir.path().join("js/jetstream/$G/streams");
    assert!(streams.join("e2e_chunks").is_dir() && streams.join("KV_e2e_campaigns").is_dir(), "stored in NATS");
    drop(nats);
}

#[test]
fn a_daemon_whose_nats_is_unreachable_says_so_and_exits_69() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let text = common::config_text(
        "http://127.0.0.1:9/v2",
        &dir.path().join("store"),
        &[("retention_days = 30\n", &nats_store(&url))],
    );
    let config = dir.path().join("campaignd.toml");
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_campaignd"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not give up on an unreachable NATS within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(69), "{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("NATS unavailable"), "the message names the URL: {stderr}");
}
