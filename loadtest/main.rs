//! campaignd's load test: starts (or points at) a simulator and a daemon, enqueues one campaign
//! of N recipients through the real API, sends it, and prints a one-line JSON summary.
//!
//! It fails (exit 1) only on lost recipients or on more ledger duplicates than the campaign's
//! report counts as `replayed` (every retry that may repeat a delivery is counted there; a
//! batch_single retry repeats nothing, so there it means no duplicate at all), never on a
//! timing.
//! Run `cargo run --release --bin loadtest -- --help` for the options.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use campaignd::client::{channel_body, ApiClient};
use campaignd::config::DEV_API_TOKEN;
use campaignd::secret::Secret;
use campaignd::simulator::LedgerSummary;
use clap::{Parser, ValueEnum};

mod ceiling;

/// Load-test a daemon and simulator with one campaign of N recipients.
#[derive(Debug, Parser)]
#[command(name = "loadtest", about, long_about = None)]
struct Args {
    /// Recipients of the campaign.
    #[arg(long, default_value_t = 200_000)]
    recipients: u64,
    /// Send mode.
    #[arg(long, value_enum, default_value_t = Mode::List)]
    mode: Mode,
    /// Shards of the daemon it starts.
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// Campaign speed, messages/s (default: unlimited).
    #[arg(long)]
    speed: Option<u32>,
    /// Fault profile of the simulator it starts (clean, realistic, flaky, ratelimited, chaos).
    #[arg(long, default_value = "clean")]
    profile: String,
    /// Use this running daemon (e.g. http://127.0.0.1:8780) instead of starting one.
    #[arg(long, requires = "simulator")]
    daemon: Option<String>,
    /// Use this running simulator (e.g. http://127.0.0.1:8781) instead of starting one.
    #[arg(long, requires = "daemon")]
    simulator: Option<String>,
    /// PID of the running daemon, to report its peak RSS.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// The campaignd binary (default: next to this one).
    #[arg(long)]
    campaignd: Option<std::path::PathBuf>,
    /// Shape of the generated cids: `random` (spread over the id space) or `sequential`
    /// (`%032x` of consecutive numbers, as hand-made test lists are).
    #[arg(long, value_enum, default_value_t = Ids::Random)]
    ids: Ids,
    /// Store backend of the daemons it starts: the embedded `sled`, or `nats` (JetStream: a
    /// `nats-server -js` from PATH is started on a free port unless --nats-url is given).
    #[arg(long, value_enum, default_value_t = Backend::Sled)]
    backend: Backend,
    /// Daemons to start on one NATS store (more than one needs --backend nats). The campaign is
    /// created, uploaded and watched through the first; every daemon sends.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    daemons: u32,
    /// A running NATS server with JetStream (e.g. nats://127.0.0.1:4222) for --backend nats.
    #[arg(long)]
    nats_url: Option<String>,
    /// Recipients of the raw-ceiling run that follows the campaign: the load test sends
    /// pre-built 1000-cid `/push/list/cid` bodies straight to the simulator (default: as many as
    /// the campaign, at most 2,000,000, under `--profile clean`; 0 skips it). Under a fault
    /// profile the simulator's injected errors would cut it short, so it is skipped by default.
    #[arg(long)]
    ceiling_recipients: Option<u64>,
    /// Keep-alive connections of the raw-ceiling run (default: the daemon's shards).
    #[arg(long)]
    ceiling_connections: Option<usize>,
    /// Restart the daemon (SIGTERM, then start it again on the same store) once this share of
    /// the recipients has been delivered, and report how long the new process took to its next
    /// upstream call (`restart_to_next_call_ms`). Sled and one daemon only.
    #[arg(long, value_parser = parse_share)]
    restart_at: Option<f64>,
    /// Run the daemons it starts on these CPUs only, through `taskset -c` (util-linux), e.g.
    /// `1` or `0,2-3`; their threads then wake each other without crossing cores (see the
    /// README's Performance section). Default: wherever the kernel schedules them.
    #[arg(long, value_parser = parse_cpu_list, conflicts_with = "daemon")]
    daemon_cpus: Option<String>,
}

/// A CPU list as `taskset -c` takes it: numbers and ranges, comma-separated.
fn parse_cpu_list(s: &str) -> Result<String, String> {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let item = |i: &str| match i.split_once('-') {
        Some((a, b)) => number(a) && number(b),
        None => number(i),
    };
    if s.split(',').all(item) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a CPU list (numbers and ranges, e.g. 1 or 0,2-3)"))
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.3)")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sled,
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ids {
    Random,
    Sequential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    List,
    BatchSingle,
}

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run(args))) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The processes under test.
struct Fleet {
    /// The daemons this run started, with the config each was started from (stopped first).
    daemons: Vec<(Reaped, std::path::PathBuf)>,
    /// The simulator and NATS server, if this run started them: held to be reaped on drop.
    _helpers: Vec<Reaped>,
    daemon_url: String,
    /// Every daemon's API address, `daemon_url` first.
    daemon_urls: Vec<String>,
    sim_url: String,
    /// Every daemon process to measure (given by --daemon-pid when the daemon is not ours).
    daemon_pids: Vec<u32>,
    sim_pid: Option<u32>,
    bin: Option<std::path::PathBuf>,
    /// `--daemon-cpus`, for a restarted daemon too.
    daemon_cpus: Option<String>,
}

impl Fleet {
    fn start(args: &Args, dir: &std::path::Path) -> anyhow::Result<Fleet> {
        if let (Some(d), Some(s)) = (&args.daemon, &args.simulator) {
            return Ok(Fleet {
                daemons: Vec::new(),
                _helpers: Vec::new(),
                daemon_url: d.clone(),
                daemon_urls: vec![d.clone()],
                sim_url: s.clone(),
                daemon_pids: args.daemon_pid.into_iter().collect(),
                sim_pid: None,
                bin: None,
                daemon_cpus: None,
            });
        }
        let bin = match &args.campaignd {
            Some(p) => p.clone(),
            None => std::env::current_exe()?.with_file_name("campaignd"),
        };
        let mut helpers = Vec::new();
        let (sim, sim_url) = start_simulator(&bin, &args.profile)?;
        let sim_pid = Some(sim.0.id());
        helpers.push(sim);
        let store = match args.backend {
            Backend::Sled => Store::Sled,
            Backend::Nats => Store::Nats(match &args.nats_url {
                Some(url) => url.clone(),
                None => {
                    let (server, url) = start_nats(dir)?;
                    helpers.push(server);
                    url
                }
            }),
        };
        let mut daemons = Vec::new();
        let mut urls = Vec::new();
        for n in 0..args.daemons {
            let (config, url) = write_config(&dir.join(format!("d{n}")), &sim_url, args.shards, &store)?;
            daemons.push((spawn_daemon(&bin, &config, args.daemon_cpus.as_deref())?, config));
            urls.push(url);
        }
        let daemon_pids = daemons.iter().map(|(d, _)| d.0.id()).collect();
        Ok(Fleet {
            daemons,
            _helpers: helpers,
            daemon_url: urls[0].clone(),
            daemon_urls: urls,
            sim_url,
            daemon_pids,
            sim_pid,
            bin: Some(bin),
            daemon_cpus: args.daemon_cpus.clone(),
        })
    }

    /// CPU seconds of every daemon process so far.
    fn daemon_cpu(&self) -> Option<f64> {
        let per: Vec<f64> = self.daemon_pids.iter().filter_map(|p| cpu_seconds(*p)).collect();
        (!per.is_empty()).then(|| per.iter().sum())
    }

    /// CPU seconds of each daemon process so far, in start order.
    fn each_daemon_cpu(&self) -> Vec<Option<f64>> {
        self.daemon_pids.iter().map(|p| cpu_seconds(*p)).collect()
    }

    fn sim_cpu(&self) -> Option<f64> {
        self.sim_pid.and_then(cpu_seconds)
    }

    /// Stops the first daemon with SIGTERM and starts it again on the same store. Returns the
    /// CPU seconds and peak RSS (MB) the stopped process had used.
    fn restart_first_daemon(&mut self) -> anyhow::Result<(f64, Option<u64>)> {
        let bin = self.bin.clone().context("--restart-at needs a daemon this run starts")?;
        let (old, config) = self.daemons.first_mut().context("--restart-at needs a daemon this run starts")?;
        let pid = old.0.id();
        let (cpu, rss) = (cpu_seconds(pid).unwrap_or(0.0), peak_rss_mb(pid));
        // SAFETY: kill(2) on the PID of our own child, which has not been waited for yet.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        old.0.wait()?;
        *old = spawn_daemon(&bin, config, self.daemon_cpus.as_deref())?;
        self.daemon_pids[0] = old.0.id();
        Ok((cpu, rss))
    }
}

/// Daemon CPU, simulator CPU and wall-clock time at one instant.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    daemon_cpu: Option<f64>,
    sim_cpu: Option<f64>,
}

impl Mark {
    fn now(fleet: &Fleet, retired_cpu: f64) -> Mark {
        Mark { at: Instant::now(), daemon_cpu: fleet.daemon_cpu().map(|c| c + retired_cpu), sim_cpu: fleet.sim_cpu() }
    }

    /// Microseconds of daemon CPU per unit between `self` and `later`.
    fn daemon_us_per(&self, later: &Mark, units: u64) -> Option<f64> {
        Some(round2((later.daemon_cpu? - self.daemon_cpu?) * 1e6 / units.max(1) as f64))
    }

    fn sim_us_per(&self, later: &Mark, units: u64) -> Option<f64> {
        Some(round2((later.sim_cpu? - self.sim_cpu?) * 1e6 / units.max(1) as f64))
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.daemons > 1 && args.backend == Backend::Sled {
        bail!("--daemons {} needs --backend nats: a sled store belongs to one daemon", args.daemons);
    }
    if args.restart_at.is_some() && (args.daemons > 1 || args.daemon.is_some()) {
        bail!("--restart-at restarts the one daemon this run starts: drop --daemons/--daemon");
    }
    let dir = tempfile::tempdir()?;
    let mut fleet = Fleet::start(&args, dir.path())?;
    let api = ApiClient::new(
        &fleet.daemon_url,
        Secret::new(std::env::var("CAMPAIGND_TOKEN").unwrap_or(DEV_API_TOKEN.into())),
    )?;
    wait_ready(&api, &mut fleet).await?;
    let before = ledger(&fleet.sim_url).await?;
    let body = campaign_body(args.mode, args.speed);
    let id = api.create(&body).await?.id;
    // Disjoint cid ranges per run, so repeated runs against one simulator do not collide.
    let base = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64) << 20;
    let ready = Mark::now(&fleet, 0.0);
    upload(&api, &id, args.mode, args.ids, base, args.recipients).await?;
    let uploaded = Mark::now(&fleet, 0.0);
    let uploaded_wall = std::time::SystemTime::now();
    let each_at_upload = fleet.each_daemon_cpu();
    let timeline_start = timeline(&fleet.sim_url).await?.len();
    api.act(&id, "start").await?;
    let mut retired_cpu = 0.0;
    let mut retired_rss = None;
    let mut restart_ms = None;
    let view = loop {
        if let (Some(share), None) = (args.restart_at, restart_ms) {
            let delivered = ledger(&fleet.sim_url).await?.deliveries - before.deliveries;
            if delivered as f64 >= share * args.recipients as f64 {
                let (cpu, rss) = fleet.restart_first_daemon()?;
                retired_cpu += cpu;
                retired_rss = rss;
                restart_ms = Some(time_to_next_delivery(&fleet.sim_url).await?);
                wait_ready(&api, &mut fleet).await?;
            }
        }
        let v = api.campaign(&id).await?;
        if matches!(v.state.as_str(), "completed" | "cancelled" | "failed") {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(if args.restart_at.is_some() { 20 } else { 100 })).await;
    };
    let dispatched = Mark::now(&fleet, retired_cpu);
    let metrics = metrics_text(&fleet.daemon_url).await.unwrap_or_default();
    let per_second = timeline(&fleet.sim_url).await?;
    let peak_rss_mb = fleet.daemon_pids.iter().filter_map(|p| peak_rss_mb(*p)).chain(retired_rss).max();
    let per_daemon_cpu: Vec<f64> = fleet.daemon_pids.iter().filter_map(|p| cpu_seconds(*p)).collect();
    let each = per_daemon_dispatch(&fleet, &each_at_upload, restart_ms.is_some()).await;
    let after = ledger(&fleet.sim_url).await?;
    let unique = after.unique_cids - before.unique_cids;
    let duplicates = after.duplicates - before.duplicates;
    let lost = args.recipients.saturating_sub(unique);
    // The ceiling is a measurement beside the verdict: its failure is reported, not fatal.
    let (ceiling, ceiling_error) = match run_ceiling(&args, &fleet, base).await {
        Ok(c) => (c, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let n = args.recipients;
    let upload_secs = (uploaded.at - ready.at).as_secs_f64();
    // The campaign's own finish time ends the dispatch; the poll above sees it up to 100 ms
    // late, a tenth of a 1M-recipient dispatch.
    let dispatch_secs = seconds_until(view.finished_at.as_deref(), uploaded_wall)
        .unwrap_or((dispatched.at - uploaded.at).as_secs_f64());
    let dispatch_rate = n as f64 / dispatch_secs;
    let pacing = args.speed.map(|s| pacing(&per_second[timeline_start.saturating_sub(1)..], s));
    let summary = serde_json::json!({
        "recipients": n,
        "mode": match args.mode { Mode::List => "list", Mode::BatchSingle => "batch_single" },
        "state": view.state,
        "seconds": round(upload_secs + dispatch_secs),
        "ids": match args.ids { Ids::Random => "random", Ids::Sequential => "sequential" },
        "upload_seconds": round(upload_secs),
        "upload_ids_per_sec": round(n as f64 / upload_secs),
        "upload_cpu_us_per_id": ready.daemon_us_per(&uploaded, n),
        "dispatch_recipients_per_sec": round(dispatch_rate),
        "dispatch_cpu_us_per_recipient": uploaded.daemon_us_per(&dispatched, n),
        "sim_cpu_us_per_recipient": uploaded.sim_us_per(&dispatched, n),
        "raw_ceiling_recipients_per_sec": ceiling.as_ref().map(|c| round(c.0.recipients_per_sec())),
        "raw_ceiling_sim_cpu_us_per_recipient": ceiling.as_ref().and_then(|c| c.1),
        "raw_ceiling_error": ceiling_error,
        "ceiling_ratio": ceiling.as_ref().map(|c| (dispatch_rate / c.0.recipients_per_sec() * 1000.0).round() / 1000.0),
        "speed": args.speed,
        "rate_max_1s": pacing.map(|p| p.0),
        "rate_mean_error_pct": pacing.map(|p| p.1),
        "restart_to_next_call_ms": restart_ms,
        "p50_chunk_ms": quantile_ms(&metrics, 0.50),
        "p99_chunk_ms": quantile_ms(&metrics, 0.99),
        "peak_rss_mb": peak_rss_mb,
        "daemon_cpu_seconds": dispatched.daemon_cpu.map(|c| (c * 1000.0).round() / 1000.0),
        "daemon_cpu_us_per_recipient": dispatched.daemon_cpu.map(|c| round2(c * 1e6 / n.max(1) as f64)),
        "lost": lost,
        "duplicates": duplicates,
        "replayed": view.progress.replayed,
        "shards": args.shards,
        "profile": args.profile,
        "backend": match args.backend { Backend::Sled => "sled", Backend::Nats => "nats" },
        "daemons": args.daemons,
        "daemon_cpus": args.daemon_cpus,
        "per_daemon_cpu_seconds": per_daemon_cpu.iter().map(|c| (c * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        "per_daemon_cpu_us_per_recipient": per_daemon_cpu.iter().map(|c| round(c * 1e6 / n.max(1) as f64)).collect::<Vec<_>>(),
        "per_daemon_recipients": each.iter().map(|d| d.recipients).collect::<Vec<_>>(),
        "per_daemon_dispatch_cpu_seconds": each.iter().map(|d| d.cpu.map(|c| (c * 1000.0).round() / 1000.0)).collect::<Vec<_>>(),
        "per_daemon_dispatch_cpu_us_per_recipient": each.iter().map(DaemonShare::us_per_recipient).collect::<Vec<_>>(),
    });
    println!("{summary}");
    drop(fleet);
    if duplicates > view.progress.replayed {
        eprintln!(
            "loadtest: {duplicates} duplicate deliveries but the report counts {} replayed",
            view.progress.replayed
        );
    }
    Ok(lost == 0 && duplicates <= view.progress.replayed && view.state == "completed")
}

/// One daemon's part of the dispatch phase.
struct DaemonShare {
    /// Recipients it has a result for (the sum of its `campaignd_recipients_total`).
    recipients: Option<u64>,
    /// CPU seconds it used from the end of the upload to the end of the campaign.
    cpu: Option<f64>,
}

impl DaemonShare {
    /// Its dispatch CPU per recipient it sent itself: how scaling is judged.
    fn us_per_recipient(&self) -> Option<f64> {
        let n = self.recipients.filter(|n| *n > 0)?;
        Some(round2(self.cpu? * 1e6 / n as f64))
    }
}

/// Each daemon's dispatch share (CPU unknown for a daemon restarted meanwhile).
async fn per_daemon_dispatch(fleet: &Fleet, at_upload: &[Option<f64>], restarted: bool) -> Vec<DaemonShare> {
    let now = fleet.each_daemon_cpu();
    let mut shares = Vec::new();
    for (i, url) in fleet.daemon_urls.iter().enumerate() {
        let text = metrics_text(url).await.unwrap_or_default();
        let sent: f64 = text
            .lines()
            .filter(|l| l.starts_with("campaignd_recipients_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let cpu = match (now.get(i).copied().flatten(), at_upload.get(i).copied().flatten()) {
            (Some(end), Some(start)) if !(restarted && i == 0) => Some(end - start),
            _ => None,
        };
        shares.push(DaemonShare { recipients: (!text.is_empty()).then_some(sent as u64), cpu });
    }
    shares
}

/// The raw-ceiling run and the simulator CPU it cost per recipient.
async fn run_ceiling(args: &Args, fleet: &Fleet, base: u64) -> anyhow::Result<Option<(ceiling::Ceiling, Option<f64>)>> {
    let default = if args.profile == "clean" { args.recipients.min(2_000_000) } else { 0 };
    let n = args.ceiling_recipients.unwrap_or(default);
    if n == 0 {
        return Ok(None);
    }
    let connections = args.ceiling_connections.unwrap_or(args.shards);
    // Past the campaign's range, so the ceiling's cids are new to the simulator too.
    let first = base + args.recipients;
    let encode = move |i: u64, out: &mut [u8; 32]| match args.ids {
        Ids::Random => encode_cid(first + i, out),
        Ids::Sequential => encode_sequential_cid(first + i, out),
    };
    let sim_before = fleet.sim_cpu();
    let c = ceiling::measure(&fleet.sim_url, connections, n, encode).await?;
    let sim_us = sim_before.zip(fleet.sim_cpu()).map(|(a, b)| round2((b - a) * 1e6 / n as f64));
    Ok(Some((c, sim_us)))
}

/// The highest one-second count and the error of the mean rate against `speed`, in percent,
/// over the seconds a campaign sent in. The first and the last sending second are partial, so
/// the mean is taken between them (or over all of them when there are fewer than three).
fn pacing(per_second: &[u64], speed: u32) -> (u64, f64) {
    let sending: Vec<u64> = {
        let first = per_second.iter().position(|&c| c > 0).unwrap_or(0);
        let last = per_second.iter().rposition(|&c| c > 0).unwrap_or(0);
        per_second.get(first..=last).unwrap_or_default().to_vec()
    };
    let max = sending.iter().copied().max().unwrap_or(0);
    let whole = if sending.len() >= 3 { &sending[1..sending.len() - 1] } else { &sending[..] };
    let mean = whole.iter().sum::<u64>() as f64 / whole.len().max(1) as f64;
    (max, round((mean - f64::from(speed)) * 100.0 / f64::from(speed.max(1))))
}

/// Seconds from `from` to the RFC 3339 time `at`, when there is one and it is later.
fn seconds_until(at: Option<&str>, from: std::time::SystemTime) -> Option<f64> {
    let at = time::OffsetDateTime::parse(at?, &time::format_description::well_known::Rfc3339).ok()?;
    Some(std::time::SystemTime::from(at).duration_since(from).ok()?.as_secs_f64())
}

/// Milliseconds until the simulator's ledger next grows.
async fn time_to_next_delivery(sim_url: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let from = ledger(sim_url).await?.deliveries;
    let deadline = started + Duration::from_secs(60);
    while ledger(sim_url).await?.deliveries == from {
        if Instant::now() > deadline {
            bail!("the restarted daemon made no upstream call within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(round(started.elapsed().as_secs_f64() * 1000.0))
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Per-unit CPU figures are compared against targets of tenths of a microsecond.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn campaign_body(mode: Mode, speed: Option<u32>) -> serde_json::Value {
    let message = match mode {
        Mode::List => serde_json::json!({"notification": {"title": "Load test", "body": "Same for everyone"}}),
        Mode::BatchSingle => serde_json::json!({"notification": {"title": "Hi ${name}", "body": "Your code ${code}"}}),
    };
    let mode = match mode {
        Mode::List => "list",
        Mode::BatchSingle => "batch_single",
    };
    let mut v = serde_json::json!({"name": "loadtest", "app": "main", "mode": mode, "message": message});
    if let Some(s) = speed {
        v["settings"] = serde_json::json!({"speed": s});
    }
    v
}

/// Streams generated recipients; nothing is held in memory beyond one 64 KiB buffer.
async fn upload(api: &ApiClient, id: &str, mode: Mode, ids: Ids, base: u64, n: u64) -> anyhow::Result<()> {
    let (tx, body) = channel_body(32);
    let producer = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(72 * 1024);
        let mut hex = [0u8; 32];
        for i in 0..n {
            let id = base + i;
            match ids {
                Ids::Random => encode_cid(id, &mut hex),
                Ids::Sequential => encode_sequential_cid(id, &mut hex),
            }
            match mode {
                Mode::List => {
                    buf.extend_from_slice(&hex);
                    buf.push(b'\n');
                }
                Mode::BatchSingle => {
                    buf.extend_from_slice(b"{\"cid\":\"");
                    buf.extend_from_slice(&hex);
                    buf.extend_from_slice(format!("\",\"vars\":{{\"name\":\"u{i}\",\"code\":{i}}}}}\n").as_bytes());
                }
            }
            if buf.len() >= 64 * 1024
                && tx.send(Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(72 * 1024)))).await.is_err()
            {
                return;
            }
        }
        let _ = tx.send(Bytes::from(buf)).await;
    });
    let ct = if mode == Mode::List { "text/plain" } else { "application/x-ndjson" };
    let up = api.upload_stream(id, ct, body).await?;
    producer.await?;
    if up.accepted != n {
        bail!("the daemon accepted {} of {n} recipients: {:?}", up.accepted, up.first_rejected);
    }
    Ok(())
}

/// A well-spread 32-hex-digit cid for `n`.
fn encode_cid(n: u64, out: &mut [u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hi = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, word) in [hi, n].iter().enumerate() {
        for j in 0..16 {
            out[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
}

/// `n` as 32 hex digits, zero-padded: consecutive `n` give cids that differ only in their last
/// digits, the shape that once sent every cid to one bucket of the duplicate filter.
fn encode_sequential_cid(n: u64, out: &mut [u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out[..16].fill(b'0');
    for j in 0..16 {
        out[16 + j] = HEX[((n >> (60 - 4 * j)) & 0xf) as usize];
    }
}

fn start_simulator(bin: &std::path::Path, profile: &str) -> anyhow::Result<(Reaped, String)> {
    let mut child = Command::new(bin)
        .args(["simulate", "--listen", "127.0.0.1:0", "--limits", "none", "--profile", profile])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("no simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let child = Reaped(child);
    while let Some(line) = lines.next().transpose()? {
        if let Some(url) = line.trim().strip_prefix("base_url") {
            let url = url.trim().trim_end_matches("/v2").to_owned();
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, url));
        }
    }
    bail!("the simulator exited before printing its address")
}

/// Where the daemons keep their campaigns.
enum Store {
    Sled,
    /// A NATS server's URL; every daemon shares one stream prefix.
    Nats(String),
}

/// Starts `nats-server -js` on a free loopback port with its storage under `dir`.
fn start_nats(dir: &std::path::Path) -> anyhow::Result<(Reaped, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nats-server (install Debian's nats-server, or give --nats-url)")?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not listen on {url} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((Reaped(child), url))
}

/// Writes a daemon's configuration under `dir` (the shipped one, pointed at the simulator and
/// a free port) and returns its path and the daemon's URL.
fn write_config(
    dir: &std::path::Path,
    sim_url: &str,
    shards: usize,
    store: &Store,
) -> anyhow::Result<(std::path::PathBuf, String)> {
    std::fs::create_dir_all(dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let shipped = include_str!("../config/campaignd.toml");
    let text = shipped
        .replace("127.0.0.1:8780", &format!("127.0.0.1:{port}"))
        .replace("path = \"data\"", &format!("path = {:?}", dir.join("store").display().to_string()))
        .replace("http://127.0.0.1:8781/v2", &format!("{sim_url}/v2"))
        .replace("shards = 16\n", &format!("shards = {shards}\n"))
        .replace("calls_per_second = 1000", "# calls_per_second: unlimited in the load test");
    let text = match store {
        Store::Sled => text,
        Store::Nats(url) => text.replace(
            "# backend = \"sled\"\n",
            &format!("backend = \"nats\"\n[store.nats]\nurl = \"{url}\"\nstream_prefix = \"loadtest\"\n"),
        ),
    };
    // The replacements above are of the shipped text: one that stopped matching must not pass
    // unnoticed as a run on the wrong shard count.
    anyhow::ensure!(text.contains(&format!("\nshards = {shards}\n")), "the shipped config has no `shards = 16` line");
    let config = dir.join("campaignd.toml");
    std::fs::write(&config, text)?;
    Ok((config, format!("http://127.0.0.1:{port}")))
}

/// Starts `campaignd serve`; with `cpus`, through `taskset -c`, which sets the CPUs and then
/// becomes the daemon (same PID, so its CPU and memory are measured as usual).
fn spawn_daemon(bin: &std::path::Path, config: &std::path::Path, cpus: Option<&str>) -> anyhow::Result<Reaped> {
    let mut command = match cpus {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus]).arg(bin);
            taskset
        }
        None => Command::new(bin),
    };
    let child = command
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| match cpus {
            Some(_) => format!("cannot start {} under taskset (util-linux) for --daemon-cpus", bin.display()),
            None => format!("cannot start {}", bin.display()),
        })?;
    Ok(Reaped(child))
}

/// Waits for the first daemon's API; fails at once when a daemon this run started has exited.
async fn wait_ready(api: &ApiClient, fleet: &mut Fleet) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (daemon, _) in &mut fleet.daemons {
            if let Some(status) = daemon.0.try_wait()? {
                bail!("a daemon exited ({status}) before answering; its error is above");
            }
        }
        match api.list().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => bail!("the daemon did not answer: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn get_text(url: &str) -> anyhow::Result<String> {
    let client = campaignd::upstream::http::build_client(&Default::default())?;
    let resp = client.request(hyper::Request::get(url).body(Default::default())?).await?;
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.map_err(anyhow::Error::msg)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn ledger(sim_url: &str) -> anyhow::Result<LedgerSummary> {
    let text = get_text(&format!("{sim_url}/_sim/ledger")).await?;
    serde_json::from_str(&text).context("the simulator's ledger is unreadable")
}

async fn timeline(sim_url: &str) -> anyhow::Result<Vec<u64>> {
    #[derive(serde::Deserialize)]
    struct Timeline {
        per_second: Vec<u64>,
    }
    let text = get_text(&format!("{sim_url}/_sim/timeline")).await?;
    Ok(serde_json::from_str::<Timeline>(&text).context("the simulator's timeline is unreadable")?.per_second)
}

async fn metrics_text(daemon_url: &str) -> anyhow::Result<String> {
    get_text(&format!("{daemon_url}/metrics")).await
}

/// A quantile of `campaignd_chunk_duration_seconds` in ms, interpolated within its bucket
/// the way Prometheus's histogram_quantile does.
fn quantile_ms(metrics: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("campaignd_chunk_duration_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(round(prev.0 * 1000.0));
            }
            let within = if count > prev.1 { (rank - prev.1) / (count - prev.1) } else { 0.0 };
            return Some(round((prev.0 + (le - prev.0) * within) * 1000.0));
        }
        prev = (le, count);
    }
    None
}

/// CPU seconds (user + system) the process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn a_cpu_list_is_numbers_and_ranges_and_nothing_else() {
        for good in ["1", "0,2-3", "10-11,4"] {
            assert_eq!(parse_cpu_list(good).as_deref(), Ok(good));
        }
        for bad in ["", "1,", "a", "1-", "-2", "1 2", "0x1", "1;rm"] {
            let err = parse_cpu_list(bad).expect_err(bad);
            assert!(err.contains("not a CPU list"), "{err}");
        }
    }
}
