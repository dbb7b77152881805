//! Crash safety: the daemon runs as a child process and is killed with SIGKILL at random
//! points of two campaigns, then restarted on the same store. The simulator (in this process)
//! outlives every crash, and its ledger proves that nobody was lost, that batch_single sent no
//! duplicate, and that list duplicates stay within the replayed chunks the report counts. A
//! last kill, right after both completed, must leave them completed.

mod common;

use std::time::{Duration, Instant};

use campaignd::domain::CompactCid;
use campaignd::simulator::{Limits, SimConfig};
use common::{child_config, cid, list_campaign, ndjson_range, start_sim, wait_healthy, ChildDaemon};

const LIST: u64 = 40_000;
const BATCH: u64 = 8_000;
const BATCH_FROM: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_nobody() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);

    let sim = start_sim(SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, api, _) = child_config(&sim.getui_base_url(), dir.path(), &[]);

    let mut daemon = ChildDaemon::start(&config);
    wait_healthy(&api).await;
    let list = api.create(&list_campaign("crash-list", Some(20_000))).await.unwrap().id;
    let ids: String = (0..LIST).map(|i| format!("{}\n", cid(i))).collect();
    api.upload(&list, "text/plain", ids).await.unwrap();
    let batch = api.create(&common::batch_campaign("crash-batch")).await.unwrap().id;
    api.upload(&batch, "application/x-ndjson", ndjson_range(BATCH_FROM, BATCH)).await.unwrap();
    api.act(&list, "start").await.unwrap();
    api.act(&batch, "start").await.unwrap();

    for round in 0..4 {
        let after = Duration::from_millis(rng.u64(100..900));
        tokio::time::sleep(after).await;
        daemon.kill();
        eprintln!("round {round}: killed after {after:?}; ledger {:?}", sim.ledger().summary());
        daemon = ChildDaemon::start(&config);
        wait_healthy(&api).await;
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let (l, b) = loop {
        let l = api.campaign(&list).await.unwrap();
        let b = api.campaign(&batch).await.unwrap();
        if l.state == "completed" && b.state == "completed" {
            break (l, b);
        }
        assert!(Instant::now() < deadline, "campaigns did not finish: {l:#?} {b:#?}");
        // Polled often, so that the kill below comes within milliseconds of the completion.
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(l.progress.results.values().sum::<u64>(), LIST, "{l:#?}");
    assert_eq!(b.progress.results.values().sum::<u64>(), BATCH, "{b:#?}");

    let ledger = sim.ledger();
    let mut list_duplicates = 0;
    for i in 0..LIST {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert!(n >= 1, "list recipient {i} was lost");
        list_duplicates += u64::from(n - 1);
    }
    for i in BATCH_FROM..BATCH_FROM + BATCH {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert_eq!(n, 1, "batch recipient {i} delivered {n} times");
    }
    eprintln!("list duplicates {list_duplicates}, replayed {}", l.progress.replayed);
    assert!(
        list_duplicates <= l.progress.replayed,
        "{list_duplicates} duplicates but only {} replayed",
        l.progress.replayed
    );

    // Seen completed, a campaign stays completed with the same results through a kill -9 at
    // once: the acknowledgement that completes a campaign is durable when answered, though
    // others wait for a later flush.
    daemon.kill();
    let daemon = ChildDaemon::start(&config);
    wait_healthy(&api).await;
    for (id, seen) in [(&list, &l), (&batch, &b)] {
        let now = api.campaign(id).await.unwrap();
        assert_eq!(now.state, "completed", "{id} after a kill right after it completed: {now:#?}");
        assert_eq!(now.progress.results, seen.progress.results, "{id}");
        assert_eq!(now.progress.replayed, seen.progress.replayed, "{id}");
    }
    drop(daemon);
}
