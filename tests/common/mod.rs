//! Helpers shared by the integration tests: start simulators on ephemeral ports, build clients
//! for them, and talk raw HTTP when a test must bypass the client's own checks.

#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::metrics::{CallObserver, CodeLabel};
use campaignd::secret::Secret;
use campaignd::simulator::{self, RunningSimulator, SimConfig, Simulator};
use campaignd::upstream::getui::{GetuiClient, GetuiSettings};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use http_body_util::Full;

/// Starts a simulator with `config` on 127.0.0.1:0.
pub async fn start_sim(config: SimConfig) -> RunningSimulator {
    let sim = Simulator::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind simulator");
    sim.spawn()
}

/// Client settings for a simulator's development app.
pub fn settings_for(base_url: &str) -> GetuiSettings {
    GetuiSettings {
        base_url: base_url.to_owned(),
        app_id: simulator::DEV_APP_ID.into(),
        app_key: simulator::DEV_APP_KEY.into(),
        master_secret: Secret::new(simulator::DEV_MASTER_SECRET),
        request_timeout: Duration::from_secs(5),
        token_refresh_margin: Duration::from_secs(3600),
        pool: PoolSettings::default(),
    }
}

/// Every (endpoint, code) the client reported, in order, the code as the metric labels it
/// (`not_sent` and `other` read as `i64::MIN`).
#[derive(Default)]
pub struct Calls(Mutex<Vec<(&'static str, i64)>>);

impl CallObserver for Calls {
    fn observe(&self, endpoint: &'static str, code: CodeLabel, _elapsed: Duration) {
        let code = code.metric_value().parse().unwrap_or(i64::MIN);
        self.0.lock().unwrap().push((endpoint, code));
    }
}

impl Calls {
    pub fn list(&self) -> Vec<(&'static str, i64)> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, endpoint: &str) -> usize {
        self.list().iter().filter(|(e, _)| *e == endpoint).count()
    }
}

/// A client for `sim` that reports its calls.
pub fn client_for(sim: &RunningSimulator) -> (GetuiClient, Arc<Calls>) {
    client_with(settings_for(&sim.getui_base_url()))
}

/// A client with the given settings that reports its calls.
pub fn client_with(settings: GetuiSettings) -> (GetuiClient, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let client = GetuiClient::with_observer(settings, Some(calls.clone() as Arc<dyn CallObserver>)).unwrap();
    (client, calls)
}

/// The n-th test cid: 32 lowercase hex digits, spread over the id space.
pub fn cid(n: u64) -> String {
    format!("{:016x}{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
}

/// Sends a raw request and returns the HTTP status and the parsed JSON body.
pub async fn raw(method: &str, url: &str, token: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    try_raw(method, url, token, body).await.expect("request")
}

/// Like [`raw`], with connection failures returned instead of panicking.
pub async fn try_raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let client = build_client(&PoolSettings::default()).unwrap();
    let mut req = hyper::Request::builder().method(method).uri(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("token", t);
    }
    let req = req.body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap()))).unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = read_body(resp.into_body()).await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
}

/// The body of a GET of `url` as text; `None` when nothing answered.
pub async fn get_text(url: &str) -> Option<String> {
    let client = build_client(&PoolSettings::default()).ok()?;
    let req = hyper::Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let resp = client.request(req).await.ok()?;
    let bytes = read_body(resp.into_body()).await.ok()?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// Signs in with raw HTTP and returns the token.
pub async fn raw_token(base: &str) -> String {
    let ts = now_ms().to_string();
    let sign = campaignd::wire::getui::auth::sign(simulator::DEV_APP_KEY, &ts, simulator::DEV_MASTER_SECRET);
    let (status, body) = raw(
        "POST",
        &format!("{base}/{}/auth", simulator::DEV_APP_ID),
        None,
        serde_json::json!({"sign": sign, "timestamp": ts, "appkey": simulator::DEV_APP_KEY}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["token"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Waiting on conditions rather than sleeping and hoping.

/// Time between two polls of [`eventually`].
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Time between two readings of [`settled`].
pub const SETTLE_EVERY: Duration = Duration::from_millis(50);

/// How many equal readings in a row [`settled`] takes for "no longer moving".
pub const SETTLED_READINGS: usize = 5;

/// Polls `probe` until it answers `Ok`, every [`POLL_EVERY`], for at most `limit` and at most
/// `limit / POLL_EVERY + 1` polls; panics naming `what` and the last `Err` reading otherwise.
pub async fn eventually<T, E, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    let max_polls = limit.as_millis() / POLL_EVERY.as_millis() + 1;
    let mut polls = 0;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        polls += 1;
        assert!(
            polls < max_polls && Instant::now() < deadline,
            "timed out after {limit:?} ({polls} polls) waiting for {what}; last reading {last:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `read` until it answers the same `Some` value [`SETTLED_READINGS`] times in a row
/// (`None` means "cannot have settled yet", e.g. work is still in flight) and answers that
/// value; every [`SETTLE_EVERY`], for at most `limit` and `limit / SETTLE_EVERY + 1` readings.
pub async fn settled<T, F, Fut>(what: &str, limit: Duration, mut read: F) -> T
where
    T: PartialEq + Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    let max_polls = limit.as_millis() / SETTLE_EVERY.as_millis() + 1;
    let (mut last, mut streak, mut polls) = (None, 0, 0);
    loop {
        let now = read().await;
        streak = if now.is_some() && now == last { streak + 1 } else { 1 };
        last = now;
        if streak >= SETTLED_READINGS {
            if let Some(v) = last {
                return v;
            }
        }
        polls += 1;
        assert!(
            polls < max_polls && Instant::now() < deadline,
            "timed out after {limit:?} ({polls} polls) waiting for {what} to settle; last reading {last:?}, \
             {streak} in a row"
        );
        tokio::time::sleep(SETTLE_EVERY).await;
    }
}

/// Reads `read` every 100 ms for `window` and panics, naming `what`, the first time it is
/// not `expected`: the observation a "nothing moves" claim rests on.
pub async fn stays<T, F, Fut>(what: &str, expected: &T, window: Duration, mut read: F)
where
    T: PartialEq + Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let every = Duration::from_millis(100);
    let until = Instant::now() + window;
    while Instant::now() < until {
        tokio::time::sleep(every).await;
        let now = read().await;
        assert_eq!(&now, expected, "{what}");
    }
}

pub fn now_ms() -> u64 {
    campaignd::clock::now_ms_u64()
}

// ---------------------------------------------------------------------------------------------
// The whole daemon: simulator + daemon on ephemeral ports, a temporary store, an API client.

use campaignd::client::ApiClient;
use campaignd::config::Config;
use campaignd::daemon::Daemon;
use campaignd::protocol::CampaignView;

/// The shipped configuration, the base every test config starts from.
pub const SHIPPED_CONFIG: &str = include_str!("../../config/campaignd.toml");

/// The development API token of the shipped configuration.
pub const DEV_TOKEN: &str = "campaignd-dev-token";

/// A configuration for a daemon on port 0 with its store in `store_dir`, sending to `base_url`.
pub fn config_text(base_url: &str, store_dir: &std::path::Path, extra: &[(&str, &str)]) -> String {
    let mut text = SHIPPED_CONFIG
        .replace("listen = \"127.0.0.1:8780\"", "listen = \"127.0.0.1:0\"")
        .replace("path = \"data\"", &format!("path = {:?}", store_dir.display().to_string()))
        .replace("http://127.0.0.1:8781/v2", base_url)
        .replace("http://127.0.0.1:8781/cgi-bin", &base_url.replace("/v2", "/cgi-bin"))
        .replace("\"http://127.0.0.1:8781\"", &format!("{:?}", base_url.trim_end_matches("/v2")));
    for (from, to) in extra {
        assert!(text.contains(from), "config has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// A running daemon and simulator.
pub struct TestApp {
    pub api: ApiClient,
    pub sim: RunningSimulator,
    pub addr: std::net::SocketAddr,
    pub store_dir: tempfile::TempDir,
    config: Config,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Builds and starts a daemon; returns its address, shutdown token and task.
async fn start_daemon(
    config: &Config,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken, tokio::task::JoinHandle<()>) {
    let daemon = Daemon::build(config, |_| None).await.expect("daemon starts");
    let addr = daemon.local_addr();
    let shutdown = daemon.shutdown_token();
    let task = tokio::spawn(async move { daemon.run().await.expect("daemon stops cleanly") });
    (addr, shutdown, task)
}

/// Starts a simulator with `sim` and a daemon configured with `extra` replacements.
pub async fn spawn_app_with(sim: SimConfig, extra: &[(&str, &str)]) -> TestApp {
    let sim = start_sim(sim).await;
    let store_dir = tempfile::tempdir().unwrap();
    let text = config_text(&sim.getui_base_url(), store_dir.path(), extra);
    let config = Config::from_toml(&text, std::path::Path::new("test.toml")).expect("test config is valid");
    let (addr, shutdown, task) = start_daemon(&config).await;
    let api = ApiClient::new(&format!("http://{addr}"), Secret::new(DEV_TOKEN)).unwrap();
    TestApp { api, sim, addr, store_dir, config, shutdown, task: Some(task) }
}

/// A daemon and simulator with the defaults (documented limits off, so tests are not capped).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(SimConfig { limits: campaignd::simulator::Limits::unlimited(), ..SimConfig::default() }, &[]).await
}

impl TestApp {
    /// Stops the daemon gracefully and starts a new one on the same store and simulator.
    pub async fn restart(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        let (addr, shutdown, task) = start_daemon(&self.config).await;
        self.api = ApiClient::new(&format!("http://{addr}"), Secret::new(DEV_TOKEN)).unwrap();
        self.addr = addr;
        self.shutdown = shutdown;
        self.task = Some(task);
    }

    /// Cancels the daemon's shutdown token (as SIGTERM does) and waits up to `limit` for it to
    /// stop; false if it is still running then. [`TestApp::restart`] starts it again.
    pub async fn stop_within(&mut self, limit: Duration) -> bool {
        self.shutdown.cancel();
        let Some(task) = self.task.as_mut() else { return true };
        match tokio::time::timeout(limit, task).await {
            Ok(joined) => {
                joined.expect("daemon stops cleanly");
                self.task = None;
                true
            }
            Err(_) => false,
        }
    }

    /// Stops the daemon, puts its store aside as the README's recovery advice says, and starts
    /// a new daemon on an empty store against the same simulator.
    pub async fn reset_store(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        let fresh = tempfile::tempdir().unwrap();
        self.config.store.path = fresh.path().to_path_buf();
        self.store_dir = fresh;
        let (addr, shutdown, task) = start_daemon(&self.config).await;
        self.api = ApiClient::new(&format!("http://{addr}"), Secret::new(DEV_TOKEN)).unwrap();
        self.addr = addr;
        self.shutdown = shutdown;
        self.task = Some(task);
    }

    /// The store identity `/readyz` reports.
    pub async fn store_identity(&self) -> String {
        let (status, body) = raw("GET", &format!("http://{}/readyz", self.addr), None, serde_json::Value::Null).await;
        assert_eq!(status, 200, "{body}");
        body["store_identity"].as_str().expect("readyz names the store identity").to_owned()
    }

    /// Stops the daemon gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Creates a campaign from JSON and returns its id.
    pub async fn create(&self, body: serde_json::Value) -> String {
        self.api.create(&body).await.expect("campaign created").id
    }

    /// Uploads `n` cids starting at `from` as text.
    pub async fn upload_range(&self, id: &str, from: u64, n: u64) {
        let mut text = String::with_capacity((n as usize) * 33);
        for i in from..from + n {
            text.push_str(&cid(i));
            text.push('\n');
        }
        let up = self.api.upload(id, "text/plain", text).await.expect("upload accepted");
        assert_eq!(up.accepted, n);
    }

    /// Polls the campaign until `done` holds or `secs` pass.
    pub async fn wait_for(&self, id: &str, secs: u64, done: impl Fn(&CampaignView) -> bool) -> CampaignView {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.api.campaign(id).await.expect("status");
            if done(&v) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "timed out; campaign is {v:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        get_text(&format!("http://{}/metrics", self.addr)).await.expect("/metrics answers with text")
    }

    /// The value of the exported series written exactly `series` (name and labels), if any.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Waits until the campaign reaches a final state.
    pub async fn wait_final(&self, id: &str, secs: u64) -> CampaignView {
        self.wait_for(id, secs, |v| matches!(v.state.as_str(), "completed" | "cancelled" | "failed")).await
    }

    /// Like [`TestApp::wait_final`], but a status call that fails (the store briefly
    /// unavailable: NATS lost, a cluster electing leaders) reads as "not yet".
    pub async fn wait_final_through_outages(&self, id: &str, secs: u64) -> CampaignView {
        let final_state = |v: &CampaignView| matches!(v.state.as_str(), "completed" | "cancelled" | "failed");
        eventually(&format!("campaign {id} to finish"), Duration::from_secs(secs), || async {
            match self.api.campaign(id).await {
                Ok(v) if final_state(&v) => Ok(v),
                Ok(v) => Err(format!("{} with {:?}", v.state, v.progress.results)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// `/readyz`'s status and body; `None` when nothing answered.
    pub async fn readyz(&self) -> Option<(u16, serde_json::Value)> {
        try_raw("GET", &format!("http://{}/readyz", self.addr), None, serde_json::Value::Null).await.ok()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A daemon with its own callback listener (`server.callback_listen`), for tests of which
/// paths each listener serves. Stops when dropped.
pub struct SplitListeners {
    pub main: std::net::SocketAddr,
    pub edge: std::net::SocketAddr,
    pub sim: RunningSimulator,
    _store: tempfile::TempDir,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SplitListeners {
    /// Starts a simulator and a daemon whose callbacks listen on a second port.
    pub async fn start() -> SplitListeners {
        let sim = start_sim(SimConfig::default()).await;
        let store = tempfile::tempdir().unwrap();
        let extra = [("# callback_listen = \"0.0.0.0:8790\"", "callback_listen = \"127.0.0.1:0\"")];
        let text = config_text(&sim.getui_base_url(), store.path(), &extra);
        let config = Config::from_toml(&text, std::path::Path::new("test.toml")).unwrap();
        let daemon = Daemon::build(&config, |_| None).await.unwrap();
        let (main, edge) = (daemon.local_addr(), daemon.callback_addr().expect("a callback listener"));
        assert_ne!(main, edge);
        let shutdown = daemon.shutdown_token();
        let task = tokio::spawn(async move { daemon.run().await.expect("daemon stops cleanly") });
        SplitListeners { main, edge, sim, _store: store, shutdown, task: Some(task) }
    }

    /// Stops the daemon gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for SplitListeners {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon as a child process of the real binary, for SIGKILL tests.

/// A `campaignd serve` child process, killed (SIGKILL) when dropped.
pub struct ChildDaemon(pub std::process::Child);

impl ChildDaemon {
    /// Starts `campaignd serve --config CONFIG` (warnings to this test's stderr).
    pub fn start(config: &std::path::Path) -> ChildDaemon {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_campaignd"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn daemon");
        ChildDaemon(child)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 30 s) until the daemon behind `api` answers.
pub async fn wait_healthy(api: &ApiClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.list().await.is_err() {
        assert!(Instant::now() < deadline, "daemon did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes a configuration for a child daemon on a free port, its store under `dir`, sending to
/// `base_url` with `extra` replacements; answers the file, a client for that daemon and its
/// base URL.
pub fn child_config(
    base_url: &str,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (std::path::PathBuf, ApiClient, String) {
    let port = free_port();
    let text = config_text(base_url, &dir.join("store"), extra)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
    let config = dir.join("campaignd.toml");
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let api = ApiClient::new(&base, Secret::new(DEV_TOKEN)).unwrap();
    (config, api, base)
}

/// A free loopback port (nothing listens on it a moment later, usually).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A list campaign body.
pub fn list_campaign(name: &str, speed: Option<u32>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": name, "app": "main", "mode": "list",
        "message": {"notification": {"title": "Spring sale", "body": "20% off today", "click_type": "url", "url": "https://example.com/sale"}},
        "settings": {"ttl_ms": 7_200_000, "group": "spring-ab"}
    });
    if let Some(s) = speed {
        v["settings"]["speed"] = s.into();
    }
    v
}

/// A list campaign's spec as a store takes it: [`list_campaign`] validated as the API would,
/// its app on Getui.
pub fn list_spec(name: &str) -> campaignd::domain::CampaignSpec {
    use campaignd::domain::campaign::{CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
    let req: CreateCampaign = serde_json::from_value(list_campaign(name, None)).unwrap();
    let rules = Validation {
        app_channel: &|_| Some(campaignd::domain::Channel::Getui),
        now_ms: now_ms() as i64,
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    };
    req.validate(&rules).unwrap()
}

/// A personalised batch_single campaign body.
pub fn batch_campaign(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "app": "main",
        "message": {"notification": {"title": "Hi ${name}", "body": "Your code is ${code}"}},
    })
}

/// NDJSON lines with vars for cids `from..from+n`.
pub fn ndjson_range(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| format!("{{\"cid\":\"{}\",\"vars\":{{\"name\":\"user{i}\",\"code\":{i}}}}}\n", cid(i)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A JetStream server for the NATS backend: a `nats-server` process on a free loopback port with
// its storage in a temporary directory, killed when dropped.

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A running `nats-server -js` on 127.0.0.1, stopped (by its own process id) when dropped.
pub struct NatsServer {
    child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one, or answers `None` after saying why the caller skips: without `nats-server`
    /// on PATH. Under `CI=true` a missing `nats-server` fails instead (`.ci/run` installs it).
    pub fn start_or_skip(what: &str) -> Option<NatsServer> {
        if !on_path("nats-server") {
            assert!(std::env::var("CI").is_err(), "CI must have nats-server: .ci/run installs Debian's nats-server");
            eprintln!("SKIPPED {what}: nats-server not installed (apt-get install nats-server)");
            return None;
        }
        Some(NatsServer::start())
    }

    /// Starts a server and waits (up to 20 s) until it says it is ready.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn_nats(&NatsServer::args(port, dir.path()), &dir.path().join("nats.log"), 0);
        NatsServer { child, port, dir }
    }

    /// The command line of a standalone server on `port` with its storage under `dir`.
    fn args(port: u16, dir: &std::path::Path) -> Vec<String> {
        let js = dir.join("js").display().to_string();
        let log = dir.join("nats.log").display().to_string();
        ["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd", &js, "-l", &log].map(str::to_owned).to_vec()
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. Its port and storage
    /// stay, for [`NatsServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and storage directory (after
    /// [`NatsServer::kill`]) and waits, up to 20 s, until it says it is ready. Its log is
    /// appended to, so readiness is a new "Server is ready" line.
    pub fn restart(&mut self) {
        let log = self.dir.path().join("nats.log");
        let seen = ready_lines(&log);
        self.child = spawn_nats(&NatsServer::args(self.port, self.dir.path()), &log, seen);
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Store settings on this server under `prefix`.
    pub fn settings(&self, prefix: &str) -> campaignd::store::NatsSettings {
        campaignd::store::NatsSettings {
            url: self.url(),
            stream_prefix: prefix.to_owned(),
            replicas: 1,
            credentials: None,
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times the server logging to `log` said it was ready.
fn ready_lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().matches("Server is ready").count()
}

/// Spawns `nats-server args` (its log at `log`, which held `seen` ready lines before) and
/// waits up to 20 s for one more "Server is ready" line.
fn spawn_nats(args: &[String], log: &std::path::Path, seen: usize) -> std::process::Child {
    let mut child = std::process::Command::new("nats-server")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready_lines(log) <= seen {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nats-server did not get ready in 20 s: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

// ---------------------------------------------------------------------------------------------
// A JetStream cluster: `nats-server` processes on loopback ports, routed to each other, each
// with its own storage directory; killed when dropped.

/// One server of a [`NatsCluster`].
pub struct ClusterNode {
    /// `n1`, `n2`, …: its `server_name`, as `/jsz` names the meta leader.
    pub name: String,
    /// Client port.
    pub port: u16,
    /// Monitoring port (`/jsz`).
    pub monitor: u16,
    /// `None` once killed.
    child: Option<std::process::Child>,
}

/// A running JetStream cluster named `c` on 127.0.0.1.
pub struct NatsCluster {
    pub nodes: Vec<ClusterNode>,
    pub dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` servers, or answers `None` after saying why the caller skips (no
    /// `nats-server` on PATH; under `CI=true` that fails instead).
    pub fn start_or_skip(what: &str, n: usize) -> Option<NatsCluster> {
        if !on_path("nats-server") {
            assert!(std::env::var("CI").is_err(), "CI must have nats-server: .ci/run installs Debian's nats-server");
            eprintln!("SKIPPED {what}: nats-server not installed (apt-get install nats-server)");
            return None;
        }
        Some(NatsCluster::start(n))
    }

    /// Starts `n` servers routed to each other and waits (up to 30 s) until all of them name
    /// the same JetStream meta leader: before that, creating a replicated stream fails.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, route, _)| format!("nats://127.0.0.1:{route}")).collect();
        let mut cluster = NatsCluster { nodes: Vec::new(), dir };
        for (i, (port, route, monitor)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let others: Vec<&str> =
                routes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, r)| r.as_str()).collect();
            let base = cluster.dir.path();
            let log = base.join(format!("{name}.log"));
            let args: Vec<String> = [
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &monitor.to_string(),
                "--server_name",
                &name,
                "--cluster_name",
                "c",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &others.join(","),
                "-sd",
                &base.join(&name).display().to_string(),
                "-l",
                &log.display().to_string(),
            ]
            .map(str::to_owned)
            .to_vec();
            let child = spawn_nats(&args, &log, 0);
            cluster.nodes.push(ClusterNode { name, port: *port, monitor: *monitor, child: Some(child) });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.agreed_leader().is_none() {
            assert!(Instant::now() < deadline, "the JetStream cluster elected no meta leader in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Every node's client URL, comma-separated (killed ones too: seeds are configuration).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    /// The meta leader every live node names, when they agree.
    pub fn agreed_leader(&self) -> Option<String> {
        let mut leaders = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| jsz_leader(n.monitor));
        let first = leaders.next()??;
        leaders.all(|l| l.as_deref() == Some(first.as_str())).then_some(first)
    }

    /// The live node a client named `client` (its `ConnectOptions::name`) is connected to,
    /// from each node's `/connz`.
    pub fn serving(&self, client: &str) -> Option<String> {
        let mut live = self.nodes.iter().filter(|n| n.child.is_some());
        live.find(|n| {
            let connz = monitoring(n.monitor, "/connz").unwrap_or_default();
            let conns = connz["connections"].as_array().cloned().unwrap_or_default();
            conns.iter().any(|c| c["name"] == client)
        })
        .map(|n| n.name.clone())
    }

    /// Kills node `name` with SIGKILL and reaps it.
    pub fn kill(&mut self, name: &str) {
        let node = self.nodes.iter_mut().find(|n| n.name == name).expect("a node of that name");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The meta leader a server's `/jsz` names (`meta_cluster.leader`), if it answers within 2 s
/// and names one.
fn jsz_leader(monitor: u16) -> Option<String> {
    let v = monitoring(monitor, "/jsz")?;
    v["meta_cluster"]["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_owned)
}

/// A monitoring endpoint's JSON, if the server answers within 2 s.
fn monitoring(monitor: u16, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], monitor));
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

/// Every file under `dir`, read whole: what a test searches for data that must not be on disk.
pub fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(b) = std::fs::read(&path) {
            out.extend(b);
        }
    }
    out
}
