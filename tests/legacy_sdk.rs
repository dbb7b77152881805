//! The legacy Getui SDK ingress (issue 14) driven by the unmodified PyPI SDK
//! `gt-push-sdk==4.1.1.2`: each scenario script in `tests/legacy_sdk/` follows the vendor's
//! examples against a real daemon (in this process) and the built-in simulators, and the test
//! then checks what reached the simulators' ledgers, not only what the SDK was told.
//!
//! The SDK lives in a virtualenv that `.ci/run` builds at `target/legacy-sdk-venv` and names in
//! `CAMPAIGND_LEGACY_SDK_PYTHON`. Without it a test says it was skipped; under `CI` it fails.
//! By hand: `bash .ci/run` once (or its "legacy Getui SDK" block), then
//! `cargo test --test legacy_sdk -- --nocapture` prints every SDK answer and ledger check.
//!
//! A last test sends bad input over raw HTTP (no SDK): each is answered 200 with a legacy
//! `result` string, nothing is stored and the daemon stays healthy.
//!
//! The whole file takes about a minute: the app scenario waits for its scheduled push (the
//! next whole minute at least 20 s away) to fire. Every script runs under a deadline and is
//! killed past it; daemon ports that the SDK's host pool would mangle (`:80…`, `:443…`,
//! getui-legacy-and-sms.md §1.9 quirk 7) are not used.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use campaignd::domain::CompactCid;
use campaignd::simulator::{
    self, Limits, RunningSimulator, SimConfig, SmsSimConfig, DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_SECRET,
};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use common::{cid, settled, spawn_app_with, stays, TestApp, DEV_TOKEN};
use http_body_util::Full;
use md5::{Digest, Md5};
use serde_json::{json, Value};

/// Notification texts (no marketing window), so the SMS scenario runs at any hour.
const NO_WINDOW: (&str, &str) = ("marketing = true", "marketing = false");

// ---------------------------------------------------------------------------------------------
// The SDK and its scripts.

/// The Python that has the SDK, and the scripts' directory.
struct Sdk {
    python: PathBuf,
    scripts: PathBuf,
}

/// The SDK's Python: `CAMPAIGND_LEGACY_SDK_PYTHON`, else `target/legacy-sdk-venv/bin/python`;
/// `None` (after saying the test is skipped) when neither imports the SDK. Under `CI` a
/// missing SDK fails the test.
fn sdk(test: &str) -> Option<Sdk> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("CAMPAIGND_LEGACY_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/legacy-sdk-venv/bin/python"));
    let imports = Command::new(&python)
        .args(["-c", "import gt_push_sdk, requests, six"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !imports {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have the legacy Getui SDK: .ci/run installs gt-push-sdk 4.1.1.2 in target/legacy-sdk-venv \
             and exports CAMPAIGND_LEGACY_SDK_PYTHON (tried {})",
            python.display()
        );
        eprintln!(
            "SKIPPED {test}: no Python with gt-push-sdk 4.1.1.2 at {} (run the \"legacy Getui SDK\" block of \
             .ci/run, or set CAMPAIGND_LEGACY_SDK_PYTHON)",
            python.display()
        );
        return None;
    }
    Some(Sdk { python, scripts: manifest.join("tests/legacy_sdk") })
}

/// A script's process, killed (by its own id) if the test gives up on it.
struct ScriptProcess(std::process::Child);

impl Drop for ScriptProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// What a script printed: its JSON lines, exit status and how long it took.
struct ScriptRun {
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
    status: Option<std::process::ExitStatus>,
    took: Duration,
}

/// Runs `script` with `env` (and the app's HOST, APPKEY, MASTERSECRET, APPID) for at most
/// `limit`, off the runtime's worker threads (the daemon serves it from this runtime).
fn run_blocking(
    sdk: &Sdk,
    script: &str,
    args: &[String],
    host: &str,
    env: &[(String, String)],
    limit: Duration,
    dir: &Path,
) -> ScriptRun {
    let stem = std::iter::once(script.trim_end_matches(".py"))
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-");
    let (out_path, err_path) = (dir.join(format!("{stem}.out")), dir.join(format!("{stem}.err")));
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            let mut all = vec![sdk.scripts.clone()];
            all.extend(std::env::split_paths(&p));
            std::env::join_paths(all).unwrap()
        }
        _ => sdk.scripts.clone().into_os_string(),
    };
    let mut cmd = Command::new(&sdk.python);
    cmd.arg(sdk.scripts.join(script))
        .args(args)
        .current_dir(dir)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("HOST", host)
        .env("APPKEY", DEV_APP_KEY)
        .env("MASTERSECRET", DEV_MASTER_SECRET)
        .env("APPID", DEV_APP_ID)
        // Quirk 8: a fallback to the default hosts must never reach the real Getui.
        .env("gexin_default_domainurl", host)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for proxy in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = ScriptProcess(cmd.spawn().expect("start the SDK's Python"));
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None; // dropping `child` kills it
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let lines = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    ScriptRun { lines, stdout, stderr, status, took: started.elapsed() }
}

/// A daemon and simulators on loopback, and the SDK to drive them.
struct Legacy {
    app: TestApp,
    /// The URL the scripts are given as HOST: `http://127.0.0.1:{port}/apiex.htm`.
    host: String,
    sdk: Sdk,
    dir: tempfile::TempDir,
    /// DEVIATION lines of scripts that exited 2, reported by [`Legacy::finish`].
    deviations: std::sync::Mutex<Vec<String>>,
}

/// Whether the SDK's host pool would mangle `url`: it strips `:(80|443)` by regex, so a port
/// beginning with 80 or 443 (8080, 44312, …) loses digits (quirk 7).
fn mangled_by_sdk(url: &str) -> bool {
    url.contains(":80") || url.contains(":443")
}

impl Legacy {
    /// Starts the simulators with `sim` and a daemon with `extra` config replacements, on a port
    /// the SDK's host pool leaves alone (another ephemeral port otherwise).
    async fn start(sdk: Sdk, sim: SimConfig, extra: &[(&str, &str)]) -> Legacy {
        for _ in 0..10 {
            let app = spawn_app_with(sim.clone(), extra).await;
            let host = format!("http://{}/apiex.htm", app.addr);
            if mangled_by_sdk(&host) {
                app.stop().await;
                continue;
            }
            let (dir, deviations) = (tempfile::tempdir().unwrap(), Default::default());
            return Legacy { app, host, sdk, dir, deviations };
        }
        panic!("ten ephemeral ports in a row began with 80 or 443");
    }

    /// Like [`Legacy::start`], on a fixed free port, so that [`TestApp::restart`] brings the
    /// daemon back where the SDK's host list points.
    async fn start_on_fixed_port(sdk: Sdk, sim: SimConfig) -> Legacy {
        let port = (0..100)
            .map(|_| common::free_port())
            .find(|p| !mangled_by_sdk(&format!("http://127.0.0.1:{p}/")))
            .expect("a free port the SDK's host pool leaves alone");
        let listen = format!("listen = \"127.0.0.1:{port}\"");
        let app = spawn_app_with(sim, &[("listen = \"127.0.0.1:0\"", &listen)]).await;
        let host = format!("http://{}/apiex.htm", app.addr);
        let (dir, deviations) = (tempfile::tempdir().unwrap(), Default::default());
        Legacy { app, host, sdk, dir, deviations }
    }

    fn sim(&self) -> &RunningSimulator {
        &self.app.sim
    }

    /// Runs a scenario script, prints what it printed, and answers its JSON lines; fails the
    /// test (showing its stderr) when it exits 1 (an answer broke the protocol), crashes or
    /// outlives `limit`. Exit 2 (answers deviated from the vendor's documentation, the
    /// scenario completed) is kept for [`Legacy::finish`], so the ledger checks still run.
    async fn run(&self, script: &str, env: &[(&str, String)], limit: Duration) -> Vec<Value> {
        self.run_args(script, &[], env, limit).await
    }

    /// [`Legacy::run`] with command-line arguments.
    async fn run_args(&self, script: &str, args: &[&str], env: &[(&str, String)], limit: Duration) -> Vec<Value> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let (python, scripts) = (self.sdk.python.clone(), self.sdk.scripts.clone());
        let (host, dir, name) = (self.host.clone(), self.dir.path().to_path_buf(), script.to_owned());
        let run = tokio::task::spawn_blocking(move || {
            run_blocking(&Sdk { python, scripts }, &name, &args, &host, &env, limit, &dir)
        })
        .await
        .unwrap();
        for line in run.stdout.lines() {
            println!("[sdk {script}] {line}");
        }
        println!("[sdk {script}] took {:.1} s", run.took.as_secs_f64());
        match run.status {
            Some(s) if s.success() => run.lines,
            Some(s) if s.code() == Some(2) => {
                let mut deviations = self.deviations.lock().unwrap();
                for l in run.lines.iter().filter(|l| l["step"] == "DEVIATION") {
                    deviations.push(format!("{script}: {}", l["why"].as_str().unwrap_or_default()));
                }
                run.lines
            }
            Some(s) => {
                panic!("{script} exited with {s} (an SDK answer broke the protocol):\n{}\n{}", run.stdout, run.stderr)
            }
            None => panic!("{script} did not finish within {limit:?} and was killed:\n{}\n{}", run.stdout, run.stderr),
        }
    }

    /// Fails the test if a script reported deviations.
    fn finish(&self) {
        let deviations = self.deviations.lock().unwrap();
        assert!(
            deviations.is_empty(),
            "SDK answers deviated from the vendor's documentation:\n{}",
            deviations.join("\n")
        );
    }

    /// A file in the scratch directory holding `cids`, one a line.
    fn cids_file(&self, name: &str, cids: &[String]) -> String {
        let path = self.dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        for c in cids {
            writeln!(f, "{c}").unwrap();
        }
        path.display().to_string()
    }

    /// `GET /v1/campaigns` as JSON (every campaign; the tests make few).
    async fn campaigns(&self) -> Vec<Value> {
        let (status, body) = api(&self.app, "GET", "/v1/campaigns?limit=1000", None).await;
        assert_eq!(status, 200, "{body}");
        body["campaigns"].as_array().cloned().unwrap_or_default()
    }

    /// The one campaign whose JSON carries the SDK's id `id` (contentId or taskId) as a value.
    async fn campaign_of(&self, id: &str) -> Value {
        let all = self.campaigns().await;
        let found: Vec<&Value> = all.iter().filter(|c| holds_string(c, id)).collect();
        assert_eq!(found.len(), 1, "one campaign should name {id:?}; /v1/campaigns is {}", pretty(&all));
        found[0].clone()
    }
}

/// Whether `v` holds the string `s` anywhere.
fn holds_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(t) => t == s,
        Value::Array(a) => a.iter().any(|x| holds_string(x, s)),
        Value::Object(o) => o.values().any(|x| holds_string(x, s)),
        _ => false,
    }
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// The answer of the script line whose step is `step`.
fn answer<'a>(lines: &'a [Value], step: &str) -> &'a Value {
    lines.iter().find(|l| l["step"] == step).unwrap_or_else(|| panic!("no {step} line in {lines:?}"))
}

/// A call to the daemon's own API with the development bearer token.
async fn api(app: &TestApp, method: &str, path_and_query: &str, body: Option<Value>) -> (u16, Value) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{}{path_and_query}", app.addr))
        .header("authorization", format!("Bearer {DEV_TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await.expect("API answers").unwrap();
    let status = resp.status().as_u16();
    let bytes = read_body(resp.into_body()).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A simulator's `/_sim/...` JSON.
async fn sim_json(sim: &RunningSimulator, path: &str) -> (u16, Value) {
    common::raw("GET", &format!("http://{}/_sim/{path}", sim.local_addr()), None, Value::Null).await
}

fn compact(c: &str) -> CompactCid {
    CompactCid::parse(c).expect("a 32-hex cid")
}

/// A JSON object of string pairs, in order.
fn object(pairs: &[(&str, &str)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect())
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// The delivery ledger once it stops moving.
async fn settled_ledger(sim: &RunningSimulator, what: &str, secs: u64) -> simulator::LedgerSummary {
    let ledger = sim.ledger().clone();
    settled(what, Duration::from_secs(secs), || {
        let ledger = ledger.clone();
        async move { Some(ledger.summary()) }
    })
    .await
}

/// The ledger once it holds `n` unique cids and stops moving.
async fn ledger_reaching(sim: &RunningSimulator, n: u64, secs: u64) -> simulator::LedgerSummary {
    let ledger = sim.ledger().clone();
    settled(&format!("the ledger to hold {n} cids"), Duration::from_secs(secs), || {
        let ledger = ledger.clone();
        async move {
            let s = ledger.summary();
            (s.unique_cids >= n).then_some(s)
        }
    })
    .await
}

fn unlimited() -> SimConfig {
    SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// a. One single push, then the vendor's retry with the same requestId: one taskId, one
/// delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_push_retried_with_its_request_id_reaches_the_cid_once() {
    let Some(sdk) = sdk("single") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let target = cid(1);
    let lines = t.run("single.py", &[("CID", target.clone())], Duration::from_secs(90)).await;
    let first = &answer(&lines, "push_single")["answer"];
    assert_eq!(first["taskId"], answer(&lines, "push_single_again")["answer"]["taskId"]);

    let summary = settled_ledger(t.sim(), "the ledger", 10).await;
    let count = t.sim().ledger().count(&compact(&target));
    println!("[ledger single] {target}: {count} delivery; summary {}", serde_json::to_string(&summary).unwrap());
    assert_eq!(count, 1, "the cid got exactly one delivery");
    assert_eq!((summary.deliveries, summary.duplicates), (1, 0));
    stays("one delivery", &1, Duration::from_secs(1), || async { t.sim().ledger().count(&compact(&target)) }).await;

    let task = first["taskId"].as_str().unwrap();
    let campaign = t.campaign_of(task).await;
    println!("[daemon single] {}", serde_json::to_string(&campaign).unwrap());
    assert_eq!(campaign["origin"], "legacy", "{campaign}");
    let legacy = t.campaigns().await.into_iter().filter(|c| c["origin"] == "legacy").count();
    assert_eq!(legacy, 1, "the retry made no second campaign");
    t.finish();
}

/// b. getContentId with a task group, then pushMessageToList of 2 500 cids in three calls with
/// needDetails: every cid reached once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_push_of_2500_cids_in_three_calls_reaches_each_once() {
    let Some(sdk) = sdk("list") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let cids: Vec<String> = (10_000..12_500).map(cid).collect();
    let file = t.cids_file("list.cids", &cids);
    let lines =
        t.run("list.py", &[("CIDS_FILE", file), ("GROUP", "group-name".into())], Duration::from_secs(180)).await;
    let calls = lines.iter().filter(|l| l["step"] == "push_list").count();
    assert_eq!(calls, 3, "1000 + 1000 + 500");

    let summary = ledger_reaching(t.sim(), 2_500, 120).await;
    println!("[ledger list] {}", serde_json::to_string(&summary).unwrap());
    let ledger = t.sim().ledger();
    let counts: Vec<u32> = cids.iter().map(|c| ledger.count(&compact(c))).collect();
    let once = counts.iter().filter(|n| **n == 1).count();
    println!("[ledger list] {once} of {} cids reached exactly once", cids.len());
    assert_eq!((summary.unique_cids, summary.duplicates, summary.deliveries), (2_500, 0, 2_500));
    assert_eq!(once, cids.len());

    let content_id = answer(&lines, "get_content_id")["answer"]["contentId"].as_str().unwrap().to_owned();
    let campaigns = t.campaigns().await;
    let legacy: Vec<&Value> = campaigns.iter().filter(|c| c["origin"] == "legacy").collect();
    println!("[daemon list] {}", serde_json::to_string(&legacy).unwrap());
    assert!(legacy.iter().any(|c| holds_string(c, &content_id)), "a campaign names {content_id}");
    assert!(legacy.iter().all(|c| c["mode"] == "list"), "{legacy:?}");
    t.finish();
}

/// The cities, tag and phone type of `tests/legacy_sdk/app.py`.
const CITIES: [&str; 3] = ["33010000", "51010000", "上海"];

/// How many devices of the simulated population `city && !tag && phoneType` selects.
async fn expected_app_reach(sim: &RunningSimulator) -> u64 {
    use campaignd::wire::getui::regions;
    let (status, devices) = sim_json(sim, "devices").await;
    assert_eq!(status, 200);
    let codes: Vec<String> = CITIES.iter().map(|c| regions::resolve(c).expect("a known region")).collect();
    let reached = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            let region = d["region"].as_str().unwrap();
            let tags = d["custom_tag"].as_array().unwrap();
            codes.iter().any(|c| regions::covers(c, region))
                && !tags.iter().any(|t| t == "tagtest")
                && d["phone_type"] == "android"
        })
        .count();
    reached as u64
}

/// A condition as (key, values, opt).
type Cond = (String, Vec<String>, String);

/// The conditions of a campaign or a v2 body as (key, values, opt) triples, whatever the opt
/// field is called.
fn conditions(list: &Value) -> Vec<Cond> {
    let mut got: Vec<Cond> = list
        .as_array()
        .unwrap_or_else(|| panic!("conditions are a list: {list}"))
        .iter()
        .map(|c| {
            let values = c["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
            let opt = ["opt", "opt_type", "optType"].iter().find_map(|k| c.get(*k)).cloned().unwrap_or(Value::Null);
            let opt = match opt {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string(),
            };
            (c["key"].as_str().unwrap().to_owned(), values, opt)
        })
        .collect();
    got.sort();
    got
}

fn expected_conditions() -> Vec<Cond> {
    let mut want = vec![
        ("region".to_owned(), CITIES.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(), "or".to_owned()),
        ("custom_tag".to_owned(), vec!["tagtest".to_owned()], "not".to_owned()),
        ("phone_type".to_owned(), vec!["android".to_owned()], "or".to_owned()),
    ];
    want.sort();
    want
}

/// Conditions compared as the simulator reads them: phone types in any case, regions by the
/// code they resolve to (the SDK's `上海` goes to Getui as its province code).
fn same_conditions(got: &[Cond]) -> bool {
    use campaignd::wire::getui::regions;
    let normal = |v: &[Cond]| -> Vec<Cond> {
        let mut all: Vec<Cond> = v
            .iter()
            .map(|(k, vals, o)| {
                let mut vals: Vec<String> = vals
                    .iter()
                    .map(|x| {
                        if k == "region" {
                            regions::resolve(x).unwrap_or_else(|| x.clone())
                        } else {
                            x.to_lowercase()
                        }
                    })
                    .collect();
                vals.sort();
                (k.clone(), vals, o.clone())
            })
            .collect();
        all.sort();
        all
    };
    normal(got) == normal(&expected_conditions())
}

fn rfc3339_ms(text: &str) -> u64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The last `/push/tag` body the simulator received, checked to carry the conditions.
async fn last_tag_push(sim: &RunningSimulator, what: &str) -> Value {
    let (status, body) = sim_json(sim, "last/push/tag").await;
    assert_eq!(status, 200, "the simulator saw a /push/tag call: {body}");
    println!("[sim app] last /push/tag body ({what}) {}", serde_json::to_string(&body).unwrap());
    let sent = conditions(&body["audience"]["tag"]);
    assert!(same_conditions(&sent), "the /push/tag conditions {sent:?}, expected {:?}", expected_conditions());
    body
}

/// c. pushMessageToApp with `city && !tag && phoneType`, once with pushTime and speed (a
/// scheduled campaign, due the next whole minute at least 20 s away so the test sees it fire)
/// and once without: one /push/tag fan-out each, with the conditions, reaching exactly the
/// matching devices of the simulated population.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_push_with_conditions_is_scheduled_and_fans_out_once_when_sent() {
    let Some(sdk) = sdk("app") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let env = [("PUSH_AHEAD_S", "60".to_owned()), ("PUSH_AT_LEAST_S", "20".to_owned())];
    let lines = t.run("app.py", &env, Duration::from_secs(90)).await;
    let scheduled_line = answer(&lines, "push_app_scheduled");
    let scheduled_id = scheduled_line["answer"]["contentId"].as_str().unwrap().to_owned();
    let push_time_ms = scheduled_line["pushTimeMs"].as_u64().unwrap();
    let now_id = answer(&lines, "push_app_now")["answer"]["contentId"].as_str().unwrap().to_owned();

    // The scheduled one: a legacy app campaign due at pushTime (Beijing time).
    let scheduled = t.campaign_of(&scheduled_id).await;
    println!("[daemon app scheduled] {}", serde_json::to_string(&scheduled).unwrap());
    assert_eq!((&scheduled["origin"], &scheduled["mode"]), (&json!("legacy"), &json!("app")), "{scheduled}");
    // Held by the daemon (`scheduled`), or sent at once with Getui's schedule_time.
    let held = scheduled["state"] == "scheduled" || scheduled["send_result"] == "scheduled_upstream";
    assert!(held, "the campaign waits for pushTime: {scheduled}");
    let at = rfc3339_ms(scheduled["schedule_at"].as_str().expect("schedule_at"));
    assert_eq!(at, push_time_ms, "schedule_at is the pushTime read as Beijing time");
    assert_eq!(scheduled["speed"], 100, "{scheduled}");
    // The campaign view shows no audience today; its conditions are checked when it fires.
    if let Some(audience) = scheduled.get("audience").filter(|a| !a.is_null()) {
        let got = conditions(&audience["conditions"]);
        assert!(same_conditions(&got), "conditions {got:?}, expected {:?}", expected_conditions());
    }

    // The immediate one: exactly the matching devices, once each, through one /push/tag.
    let expected = expected_app_reach(t.sim()).await;
    assert!(expected > 0);
    let summary = ledger_reaching(t.sim(), expected, 15).await;
    println!(
        "[ledger app] expected reach {expected}; after the immediate push {}",
        serde_json::to_string(&summary).unwrap()
    );
    assert_eq!(summary.by_endpoint.get("push_tag"), Some(&expected), "one /push/tag fan-out: {summary:?}");
    assert_eq!((summary.deliveries, summary.duplicates), (expected, 0), "{summary:?}");
    last_tag_push(t.sim(), "the immediate push").await;
    let now = t.campaign_of(&now_id).await;
    println!("[daemon app now] {}", serde_json::to_string(&now).unwrap());
    assert_eq!((&now["origin"], &now["mode"]), (&json!("legacy"), &json!("app")), "{now}");
    assert_eq!(now["speed"], 100, "{now}");

    // The scheduled one fires at pushTime: a second fan-out to the same devices.
    let wait = push_time_ms.saturating_sub(common::now_ms()) / 1000 + 30;
    let ledger = t.sim().ledger().clone();
    let fired = settled("the scheduled app push to fire", Duration::from_secs(wait), || {
        let ledger = ledger.clone();
        async move {
            let s = ledger.summary();
            (s.deliveries >= 2 * expected).then_some(s)
        }
    })
    .await;
    let fired_at = common::now_ms();
    println!(
        "[ledger app] after pushTime (+{} ms): {}",
        fired_at.saturating_sub(push_time_ms),
        serde_json::to_string(&fired).unwrap()
    );
    assert!(fired_at >= push_time_ms, "it did not fire before pushTime");
    assert_eq!(fired.by_endpoint.get("push_tag"), Some(&(2 * expected)), "one more /push/tag fan-out: {fired:?}");
    assert_eq!((fired.unique_cids, fired.deliveries), (expected, 2 * expected), "{fired:?}");
    last_tag_push(t.sim(), "the scheduled push").await;
    let done = t.campaign_of(&scheduled_id).await;
    println!("[daemon app scheduled, fired] {}", serde_json::to_string(&done).unwrap());
    assert_ne!(done["state"], "scheduled", "{done}");
    t.finish();
}

/// d. BatchImpl(appKey, push) with 300 single messages, submit() and retry(): every seqId ok,
/// every cid reached once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_of_300_submitted_and_retried_reaches_each_cid_once() {
    let Some(sdk) = sdk("batch") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let cids: Vec<String> = (20_000..20_300).map(cid).collect();
    let file = t.cids_file("batch.cids", &cids);
    t.run("batch.py", &[("CIDS_FILE", file)], Duration::from_secs(120)).await;

    let summary = ledger_reaching(t.sim(), 300, 60).await;
    println!("[ledger batch] {}", serde_json::to_string(&summary).unwrap());
    let ledger = t.sim().ledger();
    let once = cids.iter().filter(|c| ledger.count(&compact(c)) == 1).count();
    println!("[ledger batch] {once} of {} cids reached exactly once after the retry", cids.len());
    assert_eq!((summary.unique_cids, summary.duplicates, summary.deliveries), (300, 0, 300));
    assert_eq!(once, 300);

    // Each cid got its own message's payload (batch.py sends {"legacy":"batch","n":i} to the
    // i-th cid), as far as the simulator's last batch call shows.
    let (status, body) = sim_json(t.sim(), "last/push/single/batch/cid").await;
    assert_eq!(status, 200, "{body}");
    let msgs = body["msg_list"].as_array().unwrap_or_else(|| panic!("msg_list in {body}"));
    let mut wrong = Vec::new();
    for m in msgs {
        let to = m["audience"]["cid"][0].as_str().unwrap_or_default();
        let n = cids.iter().position(|c| c == to).unwrap_or_else(|| panic!("{to} is not one of the batch's cids"));
        let payload = m["push_message"]["transmission"].as_str().unwrap_or_default();
        if payload != format!("{{\"legacy\":\"batch\",\"n\":{n}}}") {
            wrong.push(format!("{to} (item {n}) got {payload:?}"));
        }
    }
    println!("[sim batch] last batch call: {} messages, {} with another item's payload", msgs.len(), wrong.len());
    assert!(wrong.is_empty(), "payloads went to the wrong cids: {wrong:?}");
    t.finish();
}

/// The vendor's retries after a daemon restart (same store, same port): pushMessageToSingle
/// with its requestId and BatchImpl.retry() get the taskIds of before, and nothing is sent
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_batch_retried_after_a_daemon_restart_are_not_sent_again() {
    let Some(sdk) = sdk("restart") else { return };
    let mut t = Legacy::start_on_fixed_port(sdk, unlimited()).await;
    let single = cid(60_000);
    let cids: Vec<String> = (60_001..60_051).map(cid).collect();
    let env = [
        ("CID", single.clone()),
        ("CIDS_FILE", t.cids_file("restart.cids", &cids)),
        ("STATE_FILE", t.dir.path().join("restart.json").display().to_string()),
    ];
    t.run_args("restart.py", &["first"], &env, Duration::from_secs(90)).await;
    let before = ledger_reaching(t.sim(), 51, 60).await;
    println!("[ledger restart] before the restart {}", serde_json::to_string(&before).unwrap());
    assert_eq!((before.unique_cids, before.duplicates), (51, 0), "{before:?}");
    let campaigns = t.campaigns().await.len();

    let addr = t.app.addr;
    t.app.restart().await;
    assert_eq!(t.app.addr, addr, "the daemon is back on its port");
    t.run_args("restart.py", &["again"], &env, Duration::from_secs(90)).await;
    let after = settled_ledger(t.sim(), "the ledger after the retries", 10).await;
    println!("[ledger restart] after the retries {}", serde_json::to_string(&after).unwrap());
    assert_eq!((after.unique_cids, after.deliveries, after.duplicates), (51, 51, 0), "{after:?}");
    assert_eq!(t.sim().ledger().count(&compact(&single)), 1);
    assert_eq!(t.campaigns().await.len(), campaigns, "the retries made no new campaign");
    t.finish();
}

/// e. A scheduled app push is described by getScheduleTask and withdrawn by delScheduleTask;
/// one due within the minute cannot be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_task_is_described_and_deleted_but_not_within_its_last_minute() {
    let Some(sdk) = sdk("schedule") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let lines = t.run("schedule.py", &[("FAR_AHEAD_S", "600".into())], Duration::from_secs(120)).await;
    let far_id = answer(&lines, "push_app_far")["answer"]["contentId"].as_str().unwrap().to_owned();
    let near_id = answer(&lines, "push_app_near")["answer"]["contentId"].as_str().unwrap().to_owned();

    let far = t.campaign_of(&far_id).await;
    println!("[daemon schedule far] {}", serde_json::to_string(&far).unwrap());
    assert_eq!(far["origin"], "legacy", "{far}");
    assert_eq!(far["state"], "cancelled", "delScheduleTask cancelled it: {far}");
    let near = t.campaign_of(&near_id).await;
    println!("[daemon schedule near] {}", serde_json::to_string(&near).unwrap());
    assert_ne!(near["state"], "cancelled", "the refused delete left it due: {near}");
    let summary = t.sim().ledger().summary();
    println!("[ledger schedule] {}", serde_json::to_string(&summary).unwrap());
    t.finish();
}

/// f. bindCidPn / queryCidPn / unbindCidPn with the per-cid codes 0, 5, 6 and 7; the daemon's
/// own API sees the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cid_pn_bind_query_unbind_answer_the_documented_codes() {
    let Some(sdk) = sdk("bind") else { return };
    let t = Legacy::start(sdk, unlimited(), &[]).await;
    let (cid1, cid2, cid3) = (cid(30_001), cid(30_002), cid(30_003));
    let (phone1, phone2) = ("13800000001", "13800000002");
    let (status, body) =
        api(&t.app, "PUT", "/v1/apps/main/cid-pn", Some(object(&[(&cid1, phone1), (&cid2, phone2)]))).await;
    assert_eq!(status, 200, "{body}");
    let env = [
        ("CID1", cid1.clone()),
        ("CID2", cid2.clone()),
        ("CID3", cid3.clone()),
        ("PHONE1", phone1.to_owned()),
        ("PHONE2", phone2.to_owned()),
    ];
    t.run("bind.py", &env, Duration::from_secs(90)).await;

    let (status, body) = api(&t.app, "GET", &format!("/v1/apps/main/cid-pn?cids={cid1},{cid2}"), None).await;
    println!("[daemon bind] /v1 query after the SDK's unbind: {}", serde_json::to_string(&body).unwrap());
    assert_eq!(status, 200, "{body}");
    let codes: Vec<(String, u64)> = body["batchRet"]
        .as_array()
        .unwrap_or_else(|| panic!("batchRet in {body}"))
        .iter()
        .map(|r| (r["cid"].as_str().unwrap().to_owned(), r["code"].as_u64().unwrap()))
        .collect();
    assert_eq!(codes, [(cid1, 7), (cid2, 0)], "the SDK's unbind reached the daemon's store");
    t.finish();
}

/// g. SMS fallback from the SDK: a bound number, a TransmissionTemplate with setSmsInfo to a
/// device the simulator holds offline: smsResult accept, then exactly one text with the
/// template's parameters in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_info_of_a_single_push_texts_the_offline_bound_number_once() {
    let Some(sdk) = sdk("sms") else { return };
    let sim = SimConfig {
        limits: Limits::unlimited(),
        sms: SmsSimConfig { marketing_window: None, ..SmsSimConfig::default() },
        ..SimConfig::default()
    };
    let t = Legacy::start(sdk, sim, &[NO_WINDOW]).await;
    // Two devices the simulator reports offline, not coming back.
    let mut offline = Vec::new();
    for n in 40_000..40_400 {
        let (_, view) = sim_json(t.sim(), &format!("device/{}", cid(n))).await;
        if view["status"] == "successed_offline" && view["returns_after_ms"].is_null() {
            println!("[sim sms] device {}", serde_json::to_string(&view).unwrap());
            offline.push(cid(n));
        }
        if offline.len() == 2 {
            break;
        }
    }
    let [target, other] = <[String; 2]>::try_from(offline).expect("two offline devices among 400 cids");
    let (phone, phone2) = ("13800138000", "13800138001");
    let (status, body) =
        api(&t.app, "PUT", "/v1/apps/main/cid-pn", Some(object(&[(&target, phone), (&other, phone2)]))).await;
    assert_eq!(status, 200, "{body}");

    let env = [
        ("CID", target.clone()),
        ("PHONE", phone.to_owned()),
        ("OFFLINE_MS", "3000".to_owned()),
        ("CID2", other.clone()),
        ("PHONE2", phone2.to_owned()),
    ];
    let lines = t.run("sms.py", &env, Duration::from_secs(90)).await;
    assert_eq!(answer(&lines, "push_single_sms")["answer"]["smsResult"], "accept");
    assert_eq!(answer(&lines, "push_single_sms_unknown_template")["answer"]["smsResult"], "error");

    let sms = t.sim().sms_ledger().clone();
    let texts = settled("the text to +8613800138000", Duration::from_secs(60), || {
        let sms = sms.clone();
        async move {
            let got = sms.texts_of("+8613800138000");
            (got.count >= 1).then_some(got)
        }
    })
    .await;
    println!("[sms ledger] {}", serde_json::to_string(&texts).unwrap());
    println!("[sms ledger] summary {}", serde_json::to_string(&sms.summary()).unwrap());
    assert_eq!(texts.count, 1, "exactly one text: {texts:?}");
    let text = &texts.texts[0];
    assert!(text.contains("尊敬的张三，你的余额还剩12元"), "template 1234567 with [\"张三\", \"12\"] in order: {text}");
    stays("one text", &1, Duration::from_secs(2), || async { sms.texts_of("+8613800138000").count }).await;
    let push = t.sim().ledger().count(&compact(&target));
    assert_eq!(push, 1, "the push reached the simulated Getui once");
    // The unknown template: the push went out all the same, and nobody was texted for it.
    assert_eq!(t.sim().ledger().count(&compact(&other)), 1, "the push with a bad SMS template went out");
    assert_eq!(sms.texts_of("+8613800138001").count, 0, "no text for an unknown template");
    assert_eq!(sms.summary().messages, 1, "one text in all");
    t.finish();
}

// ---------------------------------------------------------------------------------------------
// Bad input over raw HTTP.

/// A POST of `body` to `url` with `headers`; the status and the body as JSON (Null if not).
async fn post_bytes(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value, String) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let mut req = hyper::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await.expect("an answer").unwrap();
    let status = resp.status().as_u16();
    let bytes = read_body(resp.into_body()).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), text)
}

/// The capture's `clientData` (getui-legacy-and-sms.md §1.6): a TransmissionTemplate of appKey
/// `AK_test`, appId `AID_test`.
const FOREIGN_CLIENT_DATA: &str = "CgASC3B1c2htZXNzYWdlGgAiB0FLX3Rlc3QqCEFJRF90ZXN0MgA6BFgBaAFCBwgBEAAYrk5CGQiuThADGGTiCADqCAYKABIAGgDwCAD4CGRCBAhkEAdKAFAEYiwKBTEwMDAwEg4KBG5hbWUSBuW8oOS4iRILCgVtb25leRICMTIY4NQDIAAoAA==";

/// A pushMessageToSingleAction body as the SDK sends it, with `client_data` and `token`.
fn single_body(client_data: &str, token: Option<&str>) -> Value {
    let mut v = json!({
        "requestId": "bad-input-0001", "action": "pushMessageToSingleAction", "appkey": DEV_APP_KEY,
        "clientData": client_data, "transmissionContent": "x", "isOffline": true, "offlineExpireTime": 3_600_000,
        "pushNetWorkType": 0, "appId": DEV_APP_ID, "clientId": cid(50_000), "alias": "", "type": 2,
        "pushType": "TransmissionMsg", "version": "4.1.1.2"
    });
    if let Some(t) = token {
        v["authToken"] = t.into();
    }
    v
}

/// One bad request: its name, extra headers, body, and the `result` it must get.
type BadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);

/// `campaignd_legacy_requests_total` summed per `result` label.
fn legacy_counts(metrics: &str) -> std::collections::BTreeMap<String, f64> {
    let mut per_result = std::collections::BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("campaignd_legacy_requests_total{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else { continue };
        let result = labels.split("result=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_owned();
        *per_result.entry(result).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    per_result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_legacy_input_is_answered_with_a_result_string_and_stores_nothing() {
    let app = spawn_app_with(unlimited(), &[]).await;
    let url = format!("http://{}/apiex.htm", app.addr);
    let json_post = |body: Value| {
        let url = url.clone();
        async move { post_bytes(&url, &[("Gt-Action", "x")], serde_json::to_vec(&body).unwrap()).await }
    };

    // What the SDK needs first: host discovery naming this daemon, and a connect.
    let (status, found, _) = json_post(json!({"action": "getOSPushDomailUrlListAction", "appkey": DEV_APP_KEY})).await;
    println!("[raw] discovery: {status} {found}");
    assert_eq!((status, &found["result"]), (200, &json!("ok")), "{found}");
    assert_eq!(found["osList"][0], url, "discovery names this daemon's /apiex.htm");
    let (_, serviceex, _) = post_bytes(
        &format!("http://{}/serviceex", app.addr),
        &[],
        serde_json::to_vec(&json!({"action": "getOSPushDomailUrlListAction", "appkey": DEV_APP_KEY})).unwrap(),
    )
    .await;
    assert_eq!(serviceex["result"], "ok", "/serviceex is the same handler: {serviceex}");
    let connect = |appkey: &str, secret: &str| {
        let ts = common::now_ms();
        json!({"action": "connect", "appkey": appkey, "timeStamp": ts,
               "sign": md5_hex(&format!("{appkey}{ts}{secret}")), "version": "4.1.1.2"})
    };
    let (status, connected, _) = json_post(connect(DEV_APP_KEY, DEV_MASTER_SECRET)).await;
    println!("[raw] connect: {status} {connected}");
    assert_eq!(connected["result"], "success", "{connected}");
    let token = connected["authtoken"].as_str().expect("authtoken").to_owned();

    let before = api(&app, "GET", "/v1/campaigns?limit=1000", None).await;
    let metrics_before = legacy_counts(&app.metrics_text().await);

    let b64 = base64::engine::general_purpose::STANDARD;
    let truncated = b64.encode(&b64.decode(FOREIGN_CLIENT_DATA).unwrap()[..20]);
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..50 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    };
    println!("[raw] gzip bomb: 50 MiB of zeros in {} bytes", bomb.len());
    let mut stale = single_body(FOREIGN_CLIENT_DATA, Some("stale-token-0000"));
    stale["requestId"] = "bad-input-0002".into();
    let cases: Vec<BadCase> = vec![
        ("malformed JSON", vec![], br#"{"action":"pushMessageToSingleAction","appkey":"#.to_vec(), "Error"),
        (
            "clientData not base64",
            vec![],
            serde_json::to_vec(&single_body("!!not base64!!", Some(&token))).unwrap(),
            "Error",
        ),
        ("truncated protobuf", vec![], serde_json::to_vec(&single_body(&truncated, Some(&token))).unwrap(), "Error"),
        // data_too_big: the legacy result for an oversized body (tests/hostile_clients.rs too).
        (
            "gzip bomb",
            vec![("Content-Encoding", "gzip"), ("Gt-Action", "pushMessageToListAction")],
            bomb,
            "data_too_big",
        ),
        (
            "gzip body that is not gzip",
            vec![("Content-Encoding", "gzip")],
            serde_json::to_vec(&json!({"action": "pushMessageToListAction"})).unwrap(),
            "Error",
        ),
        (
            "connect with an unknown appkey",
            vec![],
            serde_json::to_vec(&connect("nobody-key", "x")).unwrap(),
            "appkey_error",
        ),
        (
            "connect with a wrong sign",
            vec![],
            serde_json::to_vec(&connect(DEV_APP_KEY, "wrong-secret")).unwrap(),
            "sign_error",
        ),
        ("no authToken", vec![], serde_json::to_vec(&single_body(FOREIGN_CLIENT_DATA, None)).unwrap(), "sign_error"),
        ("a stale authToken", vec![], serde_json::to_vec(&stale).unwrap(), "sign_error"),
        (
            "clientData of another appKey",
            vec![],
            serde_json::to_vec(&single_body(FOREIGN_CLIENT_DATA, Some(&token))).unwrap(),
            "AppidNoMatchAppKey",
        ),
        (
            "an unknown action",
            vec![],
            serde_json::to_vec(&json!({"action": "frobnicateAction", "appkey": DEV_APP_KEY, "version": "4.1.1.2",
                "authToken": &token}))
            .unwrap(),
            "action_error",
        ),
    ];
    let mut want: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for (name, headers, body, expected) in cases {
        let started = Instant::now();
        let (status, answer, text) = post_bytes(&url, &headers, body).await;
        let took = started.elapsed();
        println!("[raw] {name}: HTTP {status} {text} ({:.0} ms); expected {expected}", took.as_secs_f64() * 1e3);
        *want.entry(expected.to_owned()).or_insert(0.0) += 1.0;
        if status != 200 || answer["result"] != expected {
            failures.push(format!("{name}: HTTP {status} {text}, expected 200 with result {expected}"));
        }
    }

    // Nothing stored, still healthy, and every refusal counted.
    let after = api(&app, "GET", "/v1/campaigns?limit=1000", None).await;
    assert_eq!(before, after, "bad input stored nothing");
    let (status, _) = common::raw("GET", &format!("http://{}/healthz", app.addr), None, Value::Null).await;
    assert_eq!(status, 200, "the daemon is still healthy");
    let (_, again, _) = json_post(connect(DEV_APP_KEY, DEV_MASTER_SECRET)).await;
    assert_eq!(again["result"], "success", "it still connects: {again}");
    let metrics = app.metrics_text().await;
    for line in metrics.lines().filter(|l| l.starts_with("campaignd_legacy_requests_total")) {
        println!("[metrics] {line}");
    }
    let counted = legacy_counts(&metrics);
    for (result, n) in &want {
        let moved = counted.get(result).copied().unwrap_or(0.0) - metrics_before.get(result).copied().unwrap_or(0.0);
        if moved < *n {
            failures
                .push(format!("campaignd_legacy_requests_total{{result={result:?}}} moved by {moved}, expected {n}"));
        }
    }
    assert!(failures.is_empty(), "bad input answered wrongly:\n{}", failures.join("\n"));
    assert_eq!(app.sim.ledger().summary().deliveries, 0, "nothing was sent");
}
