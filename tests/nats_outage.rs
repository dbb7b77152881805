//! NATS lost while a daemon runs (issue 12, point 4): the nats-server process is killed in the
//! middle of a list campaign. `/readyz` must turn 503 within seconds, dispatch must pause (the
//! simulator's ledger stops growing), and after nats-server is started again on the same port
//! and storage directory the daemon must notice by itself, turn ready, and finish the
//! campaign with nobody lost (list duplicates no more than the campaign's `replayed`).
//! Without `nats-server` on PATH the test says it was skipped; under `CI=true` it fails.

mod common;

use std::time::{Duration, Instant};

use campaignd::domain::CompactCid;
use campaignd::simulator::{Limits, SimConfig};
use common::{cid, eventually, list_campaign, settled, spawn_app_with, stays, NatsServer};

const LIST: u64 = 50_000;
/// Recipients a second: the campaign takes about ten seconds, so the kill lands mid-way.
const SPEED: u32 = 5_000;

/// The config replacement that moves the store to NATS at `url`.
fn nats_store(url: &str) -> String {
    format!("retention_days = 30\nbackend = \"nats\"\n[store.nats]\nurl = \"{url}\"\nstream_prefix = \"outage\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_nats_mid_campaign_pauses_dispatch_which_resumes_by_itself_with_nobody_lost() {
    // The daemon's warnings (store waits, failed acks) go with the test's output on failure.
    let _ = tracing_subscriber::fmt().with_env_filter("campaignd=info").with_test_writer().try_init();
    let Some(mut nats) = NatsServer::start_or_skip("the NATS outage test") else { return };
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("retention_days = 30\n", &nats_store(&nats.url()))]).await;
    let list = app.create(list_campaign("outage", Some(SPEED))).await;
    app.upload_range(&list, 0, LIST).await;
    app.api.act(&list, "start").await.unwrap();
    let ledger = app.sim.ledger();
    let delivered = || {
        let ledger = ledger.clone();
        async move { ledger.summary().deliveries }
    };
    eventually("a fifth of the list delivered", Duration::from_secs(60), || async {
        let n = delivered().await;
        if n >= LIST / 5 {
            Ok(())
        } else {
            Err(n)
        }
    })
    .await;

    nats.kill();
    let killed = Instant::now();
    let body = eventually("/readyz to fail", Duration::from_secs(5), || async {
        match app.readyz().await {
            Some((503, body)) => Ok(body),
            other => Err(other),
        }
    })
    .await;
    let not_ready_after = killed.elapsed();
    assert_eq!(body["ready"], false, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("NATS unavailable") && error.contains(&nats.url()), "names the problem: {body}");

    // Shards finish the calls they were in, then wait in the store: the ledger stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paused =
        settled("the ledger while NATS is down", Duration::from_secs(20), || async { Some(delivered().await) }).await;
    let cpu_before = cpu_seconds();
    stays("the ledger while NATS is down", &paused, Duration::from_secs(3), delivered).await;
    // Waiting, not spinning: daemon and simulator (this process) nearly idle meanwhile.
    let cpu_paused = cpu_seconds() - cpu_before;
    assert!(cpu_paused < 1.0, "{cpu_paused:.2} CPU seconds in 3 s of outage: something spins");
    assert!(paused < LIST, "killed mid-campaign: {paused} of {LIST} delivered");
    let down_for = killed.elapsed();

    nats.restart();
    let restarted = Instant::now();
    eventually("/readyz to answer 200 again", Duration::from_secs(30), || async {
        match app.readyz().await {
            Some((200, _)) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let ready_again_after = restarted.elapsed();
    let v = app.wait_final_through_outages(&list, 120).await;
    assert_eq!(v.state, "completed", "{v:#?}");
    assert_eq!(v.progress.results.values().sum::<u64>(), LIST, "{v:#?}");

    let mut duplicates = 0;
    for i in 0..LIST {
        let n = u64::from(ledger.count(&CompactCid::parse(&cid(i)).unwrap()));
        assert!(n >= 1, "list recipient {i} lost");
        duplicates += n - 1;
    }
    assert!(duplicates <= v.progress.replayed, "{duplicates} duplicates, {} replayed", v.progress.replayed);
    eprintln!(
        "outage: readyz 503 after {not_ready_after:?}; paused at {paused} of {LIST} for {down_for:?} \
         ({cpu_paused:.2} CPU s in 3 s of it); ready again \
         {ready_again_after:?} after the restart; completed with {duplicates} duplicates, {} replayed",
        v.progress.replayed
    );
    app.stop().await;
}

/// CPU seconds this process (the test, the daemon and the simulator) has used, from
/// `/proc/self/stat` (utime + stime, in the kernel's fixed 100 ticks a second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file; the first after the name is field 3.
    let ticks: u64 = fields.get(11..13).unwrap_or_default().iter().filter_map(|f| f.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}
