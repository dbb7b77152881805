//! Three daemons, one NATS store: campaigns created, uploaded and started through different
//! daemons are shared by all three (chunk leases), a pause and a cancel through one stop every
//! daemon within a second, and a daemon SIGKILLed at a random point mid-campaign leaves its
//! chunks to the other two once its leases expire. The simulator (in this process) outlives
//! the kill; its ledger proves nobody was lost, batch_single reached everyone exactly once, and
//! list duplicates stay within the `replayed` the report counts. Two rate tests show that a
//! campaign's `speed` and an app's `calls_per_second` are totals for the group. Without
//! `nats-server` on PATH the tests say they were skipped; under `CI=true` they fail instead.
//!
//! Rerun a failing kill point with `MULTI_SEED=<seed>` (printed); `MULTI_LOG` sets the
//! daemons' `RUST_LOG` (default `warn`).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use campaignd::client::ApiClient;
use campaignd::domain::CompactCid;
use campaignd::protocol::CampaignView;
use campaignd::secret::Secret;
use campaignd::simulator::{Limits, RunningSimulator, SimConfig};
use common::{
    batch_campaign, cid, config_text, free_port, get_text, list_campaign, ndjson_range, start_sim, NatsServer,
    DEV_TOKEN,
};

const BATCH: u64 = 300_000;
const BATCH_FROM: u64 = 1_000_000;
/// The batch's group speed: it takes about 10 s, so the kill (2–5 s after the start) lands
/// while every daemon holds batch chunks too.
const BATCH_SPEED: u32 = 30_000;
const LIST: u64 = 30_000;
/// The campaign cancelled mid-send: its own cids, so its deliveries can be told apart.
const CANCELLED_FROM: u64 = 2_000_000;
const CANCELLED: u64 = 30_000;
/// Short, so the killed daemon's chunks return within the test's time.
const LEASE_MS: u64 = 3_000;
/// The group's total (each of three daemons sends a third, 600/s, with a third of the burst):
/// slow enough that the list campaign is still running when it is paused and when a daemon is
/// killed, and each daemon's burst (334) is below a chunk (1,000), so each list chunk goes in
/// several calls with waits between them: a daemon killed then leaves it in flight, and its
/// replay is counted by whoever takes it over.
const LIST_SPEED: u32 = 1_800;

/// A daemon child process, killed (by its own process id) when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    base: String,
    api: ApiClient,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts daemon `name` on its own port, on the shared NATS store under prefix `multi`.
fn start_daemon(name: &'static str, dir: &Path, sim: &RunningSimulator, nats_url: &str) -> Daemon {
    start_daemon_with(name, dir, sim, nats_url, &[])
}

/// [`start_daemon`] with more replacements in its configuration.
fn start_daemon_with(
    name: &'static str,
    dir: &Path,
    sim: &RunningSimulator,
    nats_url: &str,
    extra: &[(&str, &str)],
) -> Daemon {
    let port = free_port();
    let store = format!(
        "retention_days = 30\nbackend = \"nats\"\n[store.nats]\nurl = \"{nats_url}\"\nstream_prefix = \"multi\"\nlease_ms = {LEASE_MS}\n"
    );
    let mut replacements = vec![("retention_days = 30\n", store.as_str())];
    replacements.extend_from_slice(extra);
    let text = config_text(&sim.getui_base_url(), &dir.join(format!("store-{name}")), &replacements)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
    // Shards waiting on the slow list's speed bucket must leave some for the batch.
    assert!(text.contains("\nshards = 16\n"), "the shipped config no longer runs 16 shards");
    let config = dir.join(format!("campaignd-{name}.toml"));
    std::fs::write(&config, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_campaignd"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", std::env::var("MULTI_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn daemon");
    let base = format!("http://127.0.0.1:{port}");
    let api = ApiClient::new(&base, Secret::new(DEV_TOKEN)).unwrap();
    Daemon { name, child, base, api }
}

async fn wait_healthy(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.api.list().await.is_err() {
        assert!(Instant::now() < deadline, "daemon {} did not come up", d.name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Recipients this daemon has a result for, all campaigns: the sum of its
/// `campaignd_recipients_total` series (0 when unreachable).
async fn recipients_sent(d: &Daemon) -> f64 {
    let text = get_text(&format!("{}/metrics", d.base)).await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("campaignd_recipients_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What every daemon must agree on about a campaign.
fn summary(v: &CampaignView) -> (String, u64, u64) {
    (v.state.clone(), v.recipients.total, v.progress.replayed)
}

/// Asserts that every daemon answers the same state, totals and replays for campaign `id`
/// (read twice if they differ: a change may land between two reads).
async fn agree(daemons: &[&Daemon], id: &str) -> CampaignView {
    for attempt in 0.. {
        let mut views = Vec::new();
        for d in daemons {
            views.push(d.api.campaign(id).await.unwrap());
        }
        let first = summary(&views[0]);
        if views.iter().all(|v| summary(v) == first) {
            return views.swap_remove(0);
        }
        assert!(attempt < 20, "daemons disagree about {id}: {:?}", views.iter().map(summary).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Deliveries of the list campaign (list pushes but the cancelled campaign's).
fn list_deliveries(sim: &RunningSimulator) -> u64 {
    let all = sim.ledger().summary().by_endpoint.get("push_list_cid").copied().unwrap_or(0);
    all - cancelled_deliveries(sim)
}

fn batch_deliveries(sim: &RunningSimulator) -> u64 {
    sim.ledger().summary().by_endpoint.get("push_single_batch_cid").copied().unwrap_or(0)
}

/// Deliveries to the cancelled campaign's cids.
fn cancelled_deliveries(sim: &RunningSimulator) -> u64 {
    let ledger = sim.ledger();
    (CANCELLED_FROM..CANCELLED_FROM + CANCELLED)
        .map(|i| u64::from(ledger.count(&CompactCid::parse(&cid(i)).unwrap())))
        .sum()
}

/// The deliveries `read` counts once they stop growing, asserted to be at most the chunks the
/// three daemons may have had under way (2 each, of 1,000) when `what` was `at` a second old.
async fn settled_after_stop(what: &str, at: u64, read: impl Fn() -> u64) -> u64 {
    let end =
        common::settled(&format!("deliveries after {what}"), Duration::from_secs(10), || async { Some(read()) }).await;
    assert!(end - at <= 3 * 2 * 1_000, "{} deliveries after {what}'s first second", end - at);
    end
}

/// Waits up to a minute for every daemon to answer its API.
async fn all_healthy(daemons: &[Daemon]) {
    for d in daemons {
        wait_healthy(d).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_share_campaigns_and_survive_the_loss_of_one() {
    let Some(nats) = NatsServer::start_or_skip("the three-daemon test") else { return };
    let seed = std::env::var("MULTI_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("three-daemon test seed {seed} (rerun with MULTI_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let began = Instant::now();

    let sim = start_sim(SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let mut daemons: Vec<Daemon> =
        ["A", "B", "C"].into_iter().map(|n| start_daemon(n, dir.path(), &sim, &nats.url())).collect();
    for d in &daemons {
        wait_healthy(d).await;
    }
    eprintln!("three daemons up after {:?}", began.elapsed());

    // Created through A, uploaded through B, started through C.
    let mut batch_body = batch_campaign("multi-batch");
    batch_body["settings"] = serde_json::json!({ "speed": BATCH_SPEED });
    let batch = daemons[0].api.create(&batch_body).await.unwrap().id;
    let list = daemons[0].api.create(&list_campaign("multi-list", Some(LIST_SPEED))).await.unwrap().id;
    let doomed = daemons[0].api.create(&list_campaign("multi-cancelled", Some(LIST_SPEED))).await.unwrap().id;
    let t = Instant::now();
    let up = daemons[1].api.upload(&batch, "application/x-ndjson", ndjson_range(BATCH_FROM, BATCH)).await.unwrap();
    assert_eq!(up.accepted, BATCH);
    let ids: String = (0..LIST).map(|i| format!("{}\n", cid(i))).collect();
    let up = daemons[1].api.upload(&list, "text/plain", ids).await.unwrap();
    assert_eq!(up.accepted, LIST);
    let ids: String = (CANCELLED_FROM..CANCELLED_FROM + CANCELLED).map(|i| format!("{}\n", cid(i))).collect();
    assert_eq!(daemons[1].api.upload(&doomed, "text/plain", ids).await.unwrap().accepted, CANCELLED);
    eprintln!("uploaded {BATCH} + {LIST} recipients through B in {:?}", t.elapsed());
    {
        let all: Vec<&Daemon> = daemons.iter().collect();
        assert_eq!(agree(&all, &batch).await.recipients.total, BATCH);
        assert_eq!(agree(&all, &list).await.state, "draft");
    }
    let sending = Instant::now();
    daemons[2].api.act(&batch, "start").await.unwrap();
    daemons[2].api.act(&list, "start").await.unwrap();
    daemons[2].api.act(&doomed, "start").await.unwrap();
    {
        let all: Vec<&Daemon> = daemons.iter().collect();
        assert_eq!(agree(&all, &list).await.state, "running");
    }

    // A pause through A and a cancel through B reach every daemon within a second: from then
    // on none starts a chunk of either. Chunks already under way finish (once part of a chunk
    // is sent the rest follows), so deliveries after that second are bounded by what the
    // daemons held leased then: at most PACED_CHUNKS_LEASED (2) chunks of 1,000 each per
    // daemon and campaign; then they stop.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(cancelled_deliveries(&sim) > 0, "the campaign to cancel has not begun sending");
    daemons[0].api.act(&list, "pause").await.unwrap();
    daemons[1].api.act(&doomed, "cancel").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let at_pause = list_deliveries(&sim);
    let at_cancel = cancelled_deliveries(&sim);
    {
        let all: Vec<&Daemon> = daemons.iter().collect();
        assert_eq!(agree(&all, &list).await.state, "paused");
        assert_eq!(agree(&all, &doomed).await.state, "cancelled");
    }
    let settled = settled_after_stop("the pause", at_pause, || list_deliveries(&sim)).await;
    let cancelled_end = settled_after_stop("the cancel", at_cancel, || cancelled_deliveries(&sim)).await;
    assert!(cancelled_end < CANCELLED, "the cancel stopped nothing: {cancelled_end} of {CANCELLED} delivered");
    eprintln!(
        "paused: {at_pause} list deliveries a second after the pause, {settled} once the chunks under way finished"
    );
    eprintln!(
        "cancelled: {at_cancel} deliveries a second after the cancel, {cancelled_end} once the chunks under way finished (of {CANCELLED})"
    );
    daemons[1].api.act(&list, "resume").await.unwrap();

    // SIGKILL one daemon at a random point, once every daemon runs the list campaign again
    // (its shards then hold list chunks, some in flight, whose leases the others take over).
    let victim = rng.usize(..3);
    let after = Duration::from_millis(rng.u64(1_000..3_000));
    tokio::time::sleep(after).await;
    let mut sent_before_kill = Vec::new();
    for d in &daemons {
        sent_before_kill.push(recipients_sent(d).await);
    }
    let ledger_at_kill = sim.ledger().summary();
    let (batch_at_kill, list_at_kill) = (batch_deliveries(&sim), list_deliveries(&sim));
    daemons[victim].child.kill().unwrap(); // SIGKILL
    daemons[victim].child.wait().unwrap();
    let killed_at = Instant::now();
    eprintln!(
        "killed daemon {} {after:?} after the resume ({:?} after the start); recipients sent per daemon {sent_before_kill:?}; ledger {} deliveries",
        daemons[victim].name,
        sending.elapsed(),
        ledger_at_kill.deliveries
    );
    assert!(batch_at_kill < BATCH, "the batch was all sent before the kill: not a mid-campaign kill");
    assert!(list_at_kill < LIST, "the list was all sent before the kill: not a mid-campaign kill");
    assert!(sent_before_kill[victim] > 0.0, "the victim had sent nothing: {sent_before_kill:?}");
    eprintln!("at the kill: batch {batch_at_kill} of {BATCH}, list {list_at_kill} of {LIST} delivered");
    let dead = daemons.remove(victim);

    // The other two finish. The victim's chunks return a lease time (3 s) after the kill and
    // are sent then, not after the rest of the campaign; the rest costs the same per chunk
    // while they are out (no cost grows with the gap they leave). It takes 15-25 s here; the
    // minute allows for a slow machine (it took over 90 s while both were wrong).
    let survivors: Vec<&Daemon> = daemons.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (b, l) = loop {
        let b = survivors[0].api.campaign(&batch).await.unwrap();
        let l = survivors[0].api.campaign(&list).await.unwrap();
        if b.state == "completed" && l.state == "completed" {
            break (b, l);
        }
        assert!(Instant::now() < deadline, "campaigns did not finish within a minute of the kill: {b:#?} {l:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("both completed {:?} after the start, {:?} after the kill", sending.elapsed(), killed_at.elapsed());
    eprintln!("deliveries per second: {:?}", sim.ledger().timeline());
    agree(&survivors, &batch).await;
    agree(&survivors, &list).await;
    for id in [&batch, &list] {
        let (r0, r1) = (survivors[0].api.report(id).await.unwrap(), survivors[1].api.report(id).await.unwrap());
        let key = |r: &campaignd::protocol::ReportView| (r.results.clone(), r.delivered, r.failed, r.duration_seconds);
        assert_eq!(key(&r0), key(&r1), "the survivors' reports of {id} differ");
    }
    assert_eq!(b.progress.results.values().sum::<u64>(), BATCH, "{b:#?}");
    assert_eq!(l.progress.results.values().sum::<u64>(), LIST, "{l:#?}");

    let ledger = sim.ledger();
    for i in BATCH_FROM..BATCH_FROM + BATCH {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert_eq!(n, 1, "batch recipient {i} delivered {n} times");
    }
    let mut list_duplicates = 0;
    for i in 0..LIST {
        let n = ledger.count(&CompactCid::parse(&cid(i)).unwrap());
        assert!(n >= 1, "list recipient {i} was lost");
        list_duplicates += u64::from(n - 1);
    }
    let skipped = l.progress.results.get("skipped_after_crash").copied().unwrap_or(0);
    eprintln!(
        "list duplicates {list_duplicates}, replayed {}, skipped {skipped}; ledger {:?}",
        l.progress.replayed,
        ledger.summary()
    );
    assert!(
        list_duplicates <= l.progress.replayed,
        "{list_duplicates} duplicates but only {} replayed",
        l.progress.replayed
    );

    // More than one daemon sent: the victim's count before the kill, the others' at the end.
    let mut sent = Vec::new();
    for (i, before) in sent_before_kill.iter().enumerate() {
        if i == victim {
            sent.push(*before);
        } else {
            let d = &daemons[if i < victim { i } else { i - 1 }];
            sent.push(recipients_sent(d).await);
        }
    }
    eprintln!("recipients with a result per daemon (A, B, C): {sent:?}; whole test {:?}", began.elapsed());
    assert!(sent.iter().filter(|n| **n > 0.0).count() >= 2, "only one daemon sent: {sent:?}");
    drop(dead);
    drop(daemons);
    drop(nats);
}

/// The group's limit for the rate test, and the burst one bucket of that speed has.
const GROUP_SPEED: u32 = 3_000;
const GROUP_BURST: u64 = 1_000;
const RATE_LIST: u64 = 30_000;

/// What a group run shows: seconds from the start to completion, the simulator's deliveries per
/// second, and what each daemon sent.
struct GroupRun {
    secs: f64,
    timeline: Vec<u64>,
    sent: Vec<f64>,
}

/// Three daemons (configured with `extra`) send one list campaign of `n` recipients at `speed`.
async fn group_run(test: &str, extra: &[(&str, &str)], speed: Option<u32>, n: u64) -> Option<GroupRun> {
    let nats = NatsServer::start_or_skip(test)?;
    let sim = start_sim(SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let daemons: Vec<Daemon> =
        ["A", "B", "C"].into_iter().map(|d| start_daemon_with(d, dir.path(), &sim, &nats.url(), extra)).collect();
    all_healthy(&daemons).await;
    // Every daemon has heard the others' heartbeats (one a second) before the start.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let id = daemons[0].api.create(&list_campaign("group-rate", speed)).await.unwrap().id;
    let ids: String = (0..n).map(|i| format!("{}\n", cid(5_000_000 + i))).collect();
    daemons[0].api.upload(&id, "text/plain", ids).await.unwrap();
    let started = Instant::now();
    daemons[0].api.act(&id, "start").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if daemons[0].api.campaign(&id).await.unwrap().state == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "the campaign did not finish in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let timeline = sim.ledger().timeline();
    let mut sent = Vec::new();
    for d in &daemons {
        sent.push(recipients_sent(d).await);
    }
    assert_eq!(sim.ledger().summary().unique_cids, n, "everyone reached");
    drop(daemons);
    drop(nats);
    Some(GroupRun { secs, timeline, sent })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_together_keep_a_campaigns_speed_as_a_total() {
    let Some(run) = group_run("the three-daemon rate test", &[], Some(GROUP_SPEED), RATE_LIST).await else { return };
    let GroupRun { secs, timeline, sent } = run;
    let busiest = timeline.iter().copied().max().unwrap_or(0);
    eprintln!("{RATE_LIST} at {GROUP_SPEED}/s by three daemons in {secs:.1} s; busiest second {busiest}; per daemon {sent:?}; timeline {timeline:?}");
    assert!(
        busiest <= u64::from(GROUP_SPEED) + GROUP_BURST,
        "a second of {busiest} deliveries: over the group's limit"
    );
    assert!(sent.iter().all(|n| *n > 0.0), "every daemon sent: {sent:?}");
    // Not three times the speed: at a third each the whole takes about RATE_LIST / GROUP_SPEED.
    assert!(
        secs >= (RATE_LIST / u64::from(GROUP_SPEED)) as f64 * 0.8,
        "finished in {secs:.1} s: faster than the limit"
    );
}

/// The app's call budget for the calls test: each list call carries 1,000 cids, so the
/// simulator's deliveries per second are 1,000 times the calls that second.
const GROUP_CALLS: u64 = 12;
const CALLS_LIST: u64 = 72_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_together_keep_an_apps_calls_per_second_as_a_total() {
    let budget = format!("calls_per_second = {GROUP_CALLS}\n");
    let extra = [("calls_per_second = 1000\n", budget.as_str())];
    let Some(run) = group_run("the three-daemon calls test", &extra, None, CALLS_LIST).await else { return };
    let GroupRun { secs, timeline, sent } = run;
    let busiest_calls = timeline.iter().copied().max().unwrap_or(0).div_ceil(1_000);
    eprintln!(
        "{CALLS_LIST} recipients under {GROUP_CALLS} calls/s by three daemons in {secs:.1} s; busiest second \
         {busiest_calls} calls; per daemon {sent:?}; timeline {timeline:?}"
    );
    // The budget plus one burst of it (a governor bucket of n per second holds n); each daemon
    // alone would allow three times that.
    assert!(busiest_calls <= 2 * GROUP_CALLS, "a second of {busiest_calls} list calls: over the app's budget");
    assert!(sent.iter().all(|n| *n > 0.0), "every daemon sent: {sent:?}");
    let calls = CALLS_LIST / 1_000;
    assert!(
        secs >= (calls - GROUP_CALLS) as f64 / GROUP_CALLS as f64 * 0.8,
        "{calls} calls in {secs:.1} s: faster than {GROUP_CALLS} a second"
    );
}
