//! SMS fallback's texting through a real daemon, the simulated Getui and the simulated Tencent
//! Cloud SMS gateway over loopback (issue 13 point 4): the texted set is exactly the bound
//! recipients the push did not reach, the gateway's delivery reports mark each text delivered
//! or failed once, `sms/stop` before the texts are due skips them all, and a daemon killed
//! with SIGKILL while texting texts nobody twice under `at_most_once` and only counted
//! duplicates under `at_least_once`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::client::{channel_body, ApiClient};
use campaignd::domain::CompactCid;
use campaignd::simulator::{
    arrives_after, clicks, plain_status, report_fails, FaultProfile, Limits, ReceiptSimConfig, ReportSettings,
    RunningSimulator, SimConfig, SmsSimConfig, StatusShares,
};
use common::{
    child_config, cid, free_port, ndjson_range, spawn_app_with, start_sim, wait_healthy, ChildDaemon, TestApp,
};

const APP: &str = "main";
/// Online by the simulator's status draw: about half.
const SHARES: StatusShares = StatusShares { online_bp: 5_000, offline_bp: 3_000 };
/// Notification texts (no marketing window), so the tests run at any hour.
const NO_WINDOW: (&str, &str) = ("marketing = true", "marketing = false");

fn sim_config(profile: FaultProfile) -> SimConfig {
    SimConfig {
        limits: Limits::unlimited(),
        shares: SHARES,
        profile,
        sms: SmsSimConfig { marketing_window: None, ..SmsSimConfig::default() },
        ..SimConfig::default()
    }
}

/// The `n`-th test phone, 11-digit CN mobile.
fn phone(n: u64) -> String {
    format!("137{n:08}")
}

fn e164(n: u64) -> String {
    format!("+86{}", phone(n))
}

/// What the simulated Getui answers for recipient `n`.
fn online(n: u64) -> bool {
    plain_status(&CompactCid::parse(&cid(n)).expect("a cid"), SHARES) == "successed_online"
}

/// A batch_single campaign texting after `after_ms` with the shipped template 1000001, whose
/// first parameter is `first` (a `${var}` makes one call per recipient).
fn campaign(name: &str, after_ms: u64, replay: &str, first: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "app": APP,
        "message": {"notification": {"title": "Hi ${name}", "body": "Your code is ${code}"}},
        "settings": {
            "ttl_ms": 7_200_000, "replay": replay,
            "sms_fallback": {"template_id": "1000001", "params": [first, "新品上架"], "after_ms": after_ms}
        }
    })
}

async fn import(api: &ApiClient, ns: impl Iterator<Item = u64>) {
    let body: String = ns.map(|n| format!("{{\"cid\":\"{}\",\"phone\":\"{}\"}}\n", cid(n), phone(n))).collect();
    let (tx, chunked) = channel_body(4);
    tx.send(Bytes::from(body)).await.unwrap();
    drop(tx);
    api.import_phones(APP, "application/x-ndjson", chunked).await.expect("bindings imported");
}

/// The sum of `campaignd_sms_total{app="main"}` over every per-recipient outcome of the texting
/// (`replayed` counts resends, not recipients; `delivered` and `failed` are counted again by
/// the delivery reports of texts already counted `sent`, and no test here has a text refused
/// at send time).
fn settled_recipients(metrics: &str) -> u64 {
    let outcome = |l: &str| ["replayed", "delivered", "\"failed\""].iter().all(|r| !l.contains(r));
    metrics
        .lines()
        .filter(|l| l.starts_with("campaignd_sms_total{") && l.contains("app=\"main\"") && outcome(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn metric_of(metrics: &str, result: &str) -> u64 {
    let series = format!("campaignd_sms_total{{app=\"main\",result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok()).unwrap_or(0.0) as u64
}

async fn wait_settled(app: &TestApp, n: u64, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = app.metrics_text().await;
        if settled_recipients(&m) >= n {
            return m;
        }
        assert!(Instant::now() < deadline, "texting did not settle {n} recipients: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many texts each of the phones of recipients `ns` got.
fn texts(sim: &RunningSimulator, ns: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
    let ledger = sim.sms_ledger();
    ns.map(|n| (n, ledger.texts_of(&e164(n)).count)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_texted_set_is_exactly_the_bound_recipients_the_push_did_not_reach() {
    const N: u64 = 2_000;
    const AFTER_MS: u64 = 1_500;
    /// Share of texts the simulated gateway reports undelivered.
    const FAIL_BP: u16 = 2_000;
    // The simulator posts receipts and delivery reports to the daemon, so the daemon's port is
    // chosen first.
    let port = free_port();
    let mut sim = sim_config(FaultProfile::clean());
    sim.receipts = ReceiptSimConfig {
        url: Some(format!("http://127.0.0.1:{port}/getui/main/receipts")),
        return_spread: Duration::from_millis(300),
        ..ReceiptSimConfig::default()
    };
    sim.sms.reports = ReportSettings {
        url: Some(format!("http://127.0.0.1:{port}/sms/main/status")),
        delay: Duration::from_millis(200),
        fail_bp: FAIL_BP,
        ..ReportSettings::default()
    };
    let receipts = sim.receipts.clone();
    let listen = format!("listen = \"127.0.0.1:{port}\"");
    let app = spawn_app_with(sim, &[NO_WINDOW, ("listen = \"127.0.0.1:0\"", &listen)]).await;
    let bound = || (0..N).filter(|n| n % 3 == 0);
    import(&app.api, bound()).await;
    let id = app.create(campaign("texting", AFTER_MS, "at_least_once", "${name}")).await;
    app.api.upload(&id, "application/x-ndjson", ndjson_range(0, N)).await.unwrap();
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 60).await;
    let metrics = wait_settled(&app, N, 60).await;

    // Reached: online at once, or offline and back (its arrival receipt posted) before the
    // texts were due; computed from the simulator's device data.
    let c = |n: u64| CompactCid::parse(&cid(n)).expect("a cid");
    let arrived = |n: u64| arrives_after(&c(n), plain_status(&c(n), SHARES), &receipts);
    let reached = |n: u64| arrived(n).is_some_and(|d| d < Duration::from_millis(AFTER_MS) / 2);
    let expected: BTreeSet<u64> = bound().filter(|n| !reached(*n)).collect();
    let texted: BTreeSet<u64> = texts(&app.sim, bound()).into_iter().filter(|(_, c)| *c > 0).map(|(n, _)| n).collect();
    assert_eq!(texted, expected, "texted = bound ∧ not reached");
    assert!(texts(&app.sim, bound()).iter().all(|(_, c)| *c <= 1), "nobody texted twice");
    assert!(
        expected.iter().any(|n| plain_status(&c(*n), SHARES) == "successed_offline"),
        "some offline never came back"
    );
    assert!(bound().any(|n| !online(n) && reached(n)), "some were reached by receipt only");
    assert_eq!(app.sim.sms_ledger().summary().messages, expected.len() as u64);
    assert_eq!(metric_of(&metrics, "sent"), expected.len() as u64);

    // The report's second dimension agrees.
    let sms = app.api.report(&id).await.unwrap().sms.expect("the report has an sms section");
    assert_eq!(sms.reached, (0..N).filter(|n| reached(*n)).count() as u64, "{sms:?}");
    let clicked = (0..N).filter(|n| reached(*n) && clicks(&c(*n), &receipts)).count() as u64;
    assert_eq!(sms.clicked, clicked, "{sms:?}");
    assert_eq!(sms.sms_sent, expected.len() as u64);
    assert_eq!(sms.sms_skipped.get("no_binding").copied(), Some(N - sms.reached - expected.len() as u64));
    // The text carries the recipient's own variable, and the signature.
    let first = *expected.iter().next().expect("someone was texted");
    let got = app.sim.sms_ledger().texts_of(&e164(first)).texts;
    assert_eq!(got, [format!("【campaignd】您好user{first}，您有一条未读消息：新品上架。打开App查看，回TD退订")]);

    // Tencent's delivery reports, posted by the simulated gateway, mark each text once:
    // delivered, or failed under the report's errmsg; the numbers it fails are known up front.
    let failing = expected.iter().filter(|n| report_fails(&e164(**n), FAIL_BP)).count() as u64;
    assert!(failing > 0 && failing < expected.len() as u64, "{failing} of {} fail", expected.len());
    let sms = common::eventually("every text reported", Duration::from_secs(30), || async {
        let sms = app.api.report(&id).await.unwrap().sms.expect("an sms section");
        if sms.sms_delivered + sms.sms_failed.values().sum::<u64>() >= sms.sms_sent {
            Ok(sms)
        } else {
            Err(sms)
        }
    })
    .await;
    assert_eq!(sms.sms_delivered, expected.len() as u64 - failing, "{sms:?}");
    assert_eq!(sms.sms_failed.get("UNDELIV").copied(), Some(failing), "{sms:?}");
    let metrics = app.metrics_text().await;
    assert_eq!(metric_of(&metrics, "delivered"), expected.len() as u64 - failing);
    assert!(bound().all(|n| !metrics.contains(&phone(n))), "a phone number in the metrics");
    assert_eq!(app.sim.sms_ledger().summary().reports_delivered, expected.len() as u64, "each report posted once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_stop_before_the_texts_are_due_skips_them_all() {
    const N: u64 = 600;
    let app = spawn_app_with(sim_config(FaultProfile::clean()), &[NO_WINDOW]).await;
    let bound = || (0..N).filter(|n| n % 2 == 0);
    import(&app.api, bound()).await;
    // Due 10 s after the push: ample time to stop them first.
    let id = app.create(campaign("stopped", 10_000, "at_least_once", "会员")).await;
    app.api.upload(&id, "application/x-ndjson", ndjson_range(0, N)).await.unwrap();
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 60).await;
    let stopped = app.api.act(&id, "sms/stop").await.expect("sms/stop answers the campaign");
    assert_eq!(stopped.sms.as_ref().map(|s| s.stopped), Some(true), "{stopped:?}");
    wait_settled(&app, N, 60).await;
    // Everyone the push did not reach is skipped as stopped, bound or not: the stop is decided
    // before the bindings are looked at.
    let unreached = (0..N).filter(|n| !online(*n)).count() as u64;
    let sms = app.api.report(&id).await.unwrap().sms.expect("an sms section");
    assert_eq!(sms.sms_skipped.get("stopped").copied(), Some(unreached), "{sms:?}");
    assert_eq!(sms.sms_sent, 0, "{sms:?}");
    assert_eq!(app.sim.sms_ledger().summary().messages, 0, "nobody texted");
    app.stop().await;
}

/// The same on the NATS backend: texting states, receipts' bits, serials and the texting lease
/// live in JetStream KV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texting_works_the_same_on_the_nats_backend() {
    const N: u64 = 600;
    let Some(nats) = common::NatsServer::start_or_skip("texting on NATS") else { return };
    let store = format!(
        "retention_days = 30\nbackend = \"nats\"\n[store.nats]\nurl = \"{}\"\nstream_prefix = \"texting\"\n",
        nats.url()
    );
    let app = spawn_app_with(sim_config(FaultProfile::clean()), &[NO_WINDOW, ("retention_days = 30\n", &store)]).await;
    let bound = || (0..N).filter(|n| n % 2 == 0);
    import(&app.api, bound()).await;
    let id = app.create(campaign("texting-nats", 300, "at_most_once", "会员")).await;
    app.api.upload(&id, "application/x-ndjson", ndjson_range(0, N)).await.unwrap();
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 60).await;
    wait_settled(&app, N, 60).await;
    let expected: BTreeSet<u64> = bound().filter(|n| !online(*n)).collect();
    let texted: BTreeSet<u64> = texts(&app.sim, bound()).into_iter().filter(|(_, c)| *c > 0).map(|(n, _)| n).collect();
    assert_eq!(texted, expected, "texted = bound ∧ not reached");
    let sms = app.api.report(&id).await.unwrap().sms.expect("an sms section");
    assert_eq!(sms.sms_sent, expected.len() as u64, "{sms:?}");
    let no_binding = sms.sms_skipped.get("no_binding").copied().unwrap_or(0);
    assert_eq!(sms.reached + sms.sms_sent + no_binding, N, "every recipient has one outcome: {sms:?}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// SIGKILL while texting: the daemon as a child process, the simulators in this process.

/// Texts `N` bound, half-unreached recipients, kills the daemon once the gateway has taken
/// some of them, restarts it and waits for the rest; answers (texts per unreached recipient,
/// the restarted daemon's metrics).
async fn kill_while_texting(replay: &str) -> (Vec<(u64, u64)>, String) {
    const N: u64 = 3_000;
    // Every answer takes 60 ms, so the texting (calls of 200 numbers) spans several calls to
    // land a kill in.
    let slow = FaultProfile { latency_base: Duration::from_millis(60), ..FaultProfile::clean() };
    let sim = start_sim(sim_config(slow)).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, api, base) = child_config(&sim.getui_base_url(), dir.path(), &[NO_WINDOW]);

    let mut daemon = ChildDaemon::start(&config);
    wait_healthy(&api).await;
    import(&api, 0..N).await;
    let id = api.create(&campaign(&format!("kill-{replay}"), 200, replay, "会员")).await.unwrap().id;
    api.upload(&id, "application/x-ndjson", ndjson_range(0, N)).await.unwrap();
    api.act(&id, "start").await.unwrap();
    let unreached: Vec<u64> = (0..N).filter(|n| !online(*n)).collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seed = fastrand::Rng::new();
    let kill_at = seed.u64(1..unreached.len() as u64 / 2);
    while sim.sms_ledger().summary().messages < kill_at {
        assert!(Instant::now() < deadline, "texting never began: {:?}", sim.sms_ledger().summary());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.kill();
    eprintln!("{replay}: killed after {} texts", sim.sms_ledger().summary().messages);
    daemon = ChildDaemon::start(&config);
    wait_healthy(&api).await;

    let port_metrics = format!("{base}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let m = common::get_text(&port_metrics).await.unwrap_or_default();
        let done = texts(&sim, unreached.iter().copied()).iter().all(|(_, c)| *c > 0);
        let counted = metric_of(&m, "sent") + metric_of(&m, "maybe_sent");
        if done || (replay == "at_most_once" && counted > 0 && settled_ok(&sim, &unreached, &m)) {
            break m;
        }
        assert!(Instant::now() < deadline, "texting did not finish: {:?}", sim.sms_ledger().summary());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(daemon);
    (texts(&sim, unreached.into_iter()), metrics)
}

/// Under `at_most_once`: everyone unreached was texted or counted maybe-sent.
fn settled_ok(sim: &RunningSimulator, unreached: &[u64], metrics: &str) -> bool {
    let texted = texts(sim, unreached.iter().copied()).iter().filter(|(_, c)| *c > 0).count() as u64;
    texted + metric_of(metrics, "maybe_sent") >= unreached.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_texting_texts_nobody_twice_under_at_most_once() {
    let (texts, metrics) = kill_while_texting("at_most_once").await;
    let twice: Vec<_> = texts.iter().filter(|(_, c)| *c > 1).collect();
    assert!(twice.is_empty(), "texted twice: {twice:?}");
    let missed = texts.iter().filter(|(_, c)| *c == 0).count() as u64;
    eprintln!("at_most_once: missed {missed}, maybe_sent {}", metric_of(&metrics, "maybe_sent"));
    assert!(missed <= metric_of(&metrics, "maybe_sent"), "only the calls in flight may be missed: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_texting_duplicates_only_what_is_counted_replayed_under_at_least_once() {
    let (texts, metrics) = kill_while_texting("at_least_once").await;
    assert!(texts.iter().all(|(_, c)| *c > 0), "everyone unreached was texted");
    let duplicates: u64 = texts.iter().map(|(_, c)| c - 1).sum();
    let replayed = metric_of(&metrics, "replayed");
    eprintln!("at_least_once: duplicates {duplicates}, replayed {replayed}");
    assert!(duplicates <= replayed, "{duplicates} duplicates but {replayed} replayed");
    // The gateway refuses a resend of the same text within 30 s: that number got the first.
    assert_eq!(metric_of(&metrics, "failed"), 0, "{metrics}");
}
