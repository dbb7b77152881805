//! Cost that must not grow with history (issue 10, point 3): an idle scheduler pass and a
//! `/readyz` answer, over an empty store and over one holding 20,000 finished campaigns.
//! The two must stay within 10 % of each other.
//!
//! Run: `cargo bench --bench history` (criterion's figures per case, then a ratio summary).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::config::Config;
use campaignd::daemon::Daemon;
use campaignd::dispatch::{DispatchSettings, Dispatcher};
use campaignd::domain::campaign::{CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::{Action, CampaignSpec};
use campaignd::metrics::Metrics;
use campaignd::store::{Change, SledStore, Store, StoreSettings};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Finished campaigns in the "history" store.
const HISTORY: u64 = 20_000;
/// Writes in flight while filling the store, so the writer groups them under few flushes.
const FILL_CONCURRENCY: u64 = 500;

fn spec() -> CampaignSpec {
    let req: CreateCampaign = serde_json::from_value(serde_json::json!({
        "name": "finished", "app": "main", "message": {"notification": {"title": "t", "body": "b"}},
        "settings": {"group": "history"}
    }))
    .unwrap();
    let rules = Validation {
        app_channel: &|_| Some(campaignd::domain::Channel::Getui),
        now_ms: 0,
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    };
    req.validate(&rules).unwrap()
}

fn open(dir: &Path) -> Arc<SledStore> {
    SledStore::open(&StoreSettings { path: dir.to_path_buf(), cache_bytes: 64 << 20 }).unwrap()
}

fn now_ms() -> i64 {
    campaignd::clock::now_ms()
}

/// Creates `n` campaigns and cancels each (finished now, so retention keeps them).
async fn fill(store: &Arc<SledStore>, n: u64) {
    let mut done = 0;
    while done < n {
        let batch = FILL_CONCURRENCY.min(n - done);
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let rec = store.create(spec(), now_ms()).await.unwrap();
                    store.change(rec.id, Change::Act(Action::Cancel, now_ms())).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        done += batch;
    }
}

/// The two stores: empty, and holding the history.
struct Stores {
    empty: tempfile::TempDir,
    history: tempfile::TempDir,
}

fn stores(rt: &Runtime) -> Stores {
    let (empty, history) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    rt.block_on(async {
        for (dir, n) in [(empty.path(), 0), (history.path(), HISTORY)] {
            let store = open(dir);
            fill(&store, n).await;
            store.close().await.unwrap();
        }
    });
    Stores { empty, history }
}

/// The two cases, by name.
const CASES: [&str; 2] = ["empty", "20000_finished"];

fn dirs(s: &Stores) -> [&Path; 2] {
    [s.empty.path(), s.history.path()]
}

/// A dispatcher without apps over `store`, for timing idle passes.
fn idle_dispatcher(store: &Arc<SledStore>) -> Dispatcher {
    let metrics = Arc::new(Metrics::new());
    Dispatcher::new(store.clone(), Vec::new(), metrics, DispatchSettings::default(), CancellationToken::new())
}

/// A daemon on the store in `dir` (its apps point at a loopback port nothing is sent to).
async fn daemon(dir: &Path) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
    let text = include_str!("../config/campaignd.toml")
        .replace("listen = \"127.0.0.1:8780\"", "listen = \"127.0.0.1:0\"")
        .replace("path = \"data\"", &format!("path = {:?}", dir.display().to_string()));
    let config = Config::from_toml(&text, Path::new("bench.toml")).unwrap();
    let d = Daemon::build(&config, |_| None).await.unwrap();
    let url = format!("http://{}/readyz", d.local_addr());
    let shutdown = d.shutdown_token();
    let task = tokio::spawn(async move { d.run().await.unwrap() });
    (url, shutdown, task)
}

/// Times `iters` sequential `/readyz` requests on one keep-alive connection pool.
async fn readyz(url: &str, iters: u64) -> Duration {
    let client = build_client(&PoolSettings::default()).unwrap();
    let started = Instant::now();
    for _ in 0..iters {
        let req = hyper::Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        read_body(resp.into_body()).await.unwrap();
    }
    started.elapsed()
}

/// Rounds of the summary; the cases alternate within each, so drift in the machine's load
/// hits both alike, and the median round is reported.
const ROUNDS: usize = 7;

fn history(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let s = stores(&rt);
    let mut g = c.benchmark_group("history");
    g.sample_size(20).measurement_time(Duration::from_secs(3));

    // Idle scheduler passes: each store opened once, both open together.
    let opened = dirs(&s).map(open);
    let dispatchers: Vec<Dispatcher> = opened.iter().map(idle_dispatcher).collect();
    for (name, d) in CASES.iter().zip(&dispatchers) {
        g.bench_function(format!("idle_pass/{name}"), |b| {
            b.iter_custom(|iters| rt.block_on(d.time_idle_passes(iters)))
        });
    }
    let passes = alternate(|i| rt.block_on(dispatchers[i].time_idle_passes(5_000)) / 5_000);
    let cpu = alternate(|i| {
        let before = process_cpu();
        rt.block_on(dispatchers[i].time_idle_passes(20_000));
        (process_cpu() - before) / 20_000
    });
    drop(dispatchers);
    for store in opened {
        rt.block_on(store.close()).unwrap();
    }

    // /readyz: both daemons run at once (each with its own idle scheduler, as in production).
    let daemons: Vec<_> = dirs(&s).iter().map(|d| rt.block_on(daemon(d))).collect();
    for (name, (url, ..)) in CASES.iter().zip(&daemons) {
        rt.block_on(readyz(url, 200)); // connect and warm up
        g.bench_function(format!("readyz/{name}"), |b| b.iter_custom(|iters| rt.block_on(readyz(url, iters))));
    }
    let requests = alternate(|i| rt.block_on(readyz(&daemons[i].0, 2_000)) / 2_000);
    for (_, shutdown, task) in daemons {
        shutdown.cancel();
        rt.block_on(task).unwrap();
    }
    g.finish();
    report("idle pass, wall time", passes);
    report("idle pass, CPU time of the process", cpu);
    report("/readyz, latency", requests);
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (in clock
/// ticks of 10 ms: the summary measures many passes at once). Wall time on a shared machine
/// mostly measures how soon threads get a core; CPU time is what an idle daemon costs.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th of them.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Measures case 0 then case 1, `ROUNDS` times; answers each case's median.
fn alternate(mut measure: impl FnMut(usize) -> Duration) -> [Duration; 2] {
    let mut rounds: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (i, r) in rounds.iter_mut().enumerate() {
            r.push(measure(i));
        }
    }
    rounds.map(|mut r| {
        r.sort();
        r[r.len() / 2]
    })
}

fn report(what: &str, [empty, history]: [Duration; 2]) {
    let ratio = history.as_secs_f64() / empty.as_secs_f64();
    println!(
        "history summary: {what}: {empty:?} (empty store) vs {history:?} ({HISTORY} finished campaigns), \
         ratio {ratio:.3} (median of {ROUNDS} alternating rounds)"
    );
}

criterion_group!(benches, history);
criterion_main!(benches);
