//! The store never stalls the async workers: opening it waits for a file lock on the blocking
//! pool, so everything else on the runtime keeps running meanwhile.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use campaignd::config::Config;
use campaignd::daemon::Daemon;

/// One worker thread: anything that blocks it stops the ticker too.
#[tokio::test(flavor = "current_thread")]
async fn waiting_for_the_store_lock_does_not_block_the_runtime() {
    let sim = common::start_sim(campaignd::simulator::SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = common::config_text(&sim.getui_base_url(), dir.path(), &[]);
    let config = Config::from_toml(&text, std::path::Path::new("test.toml")).unwrap();

    // Another process-like holder keeps the lock for a second, as a daemon being restarted does.
    let holder = sled::open(dir.path()).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_000));
        drop(holder);
    });

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let daemon = Daemon::build(&config, |_| None).await.expect("the daemon opens the store once the lock is free");
    let seen = ticks.load(Ordering::Relaxed);
    assert!(seen >= 20, "the runtime kept running while the store waited for its lock ({seen} ticks)");
    ticker.abort();
    release.join().unwrap();
    daemon.shutdown_token().cancel();
    daemon.run().await.unwrap();
}
