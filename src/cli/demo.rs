//! `campaignd demo`: the whole product in one process. A simulator and a daemon start on
//! loopback, two campaigns go through the real HTTP API (a list campaign of N recipients and a
//! personalised batch campaign), live progress bars show them, and at the end the report is
//! checked against the simulator's ledger. Then a WeCom act (opt-outs through the encrypted
//! callback) and an SMS-fallback act (`demo_sms`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use campaignd::client::{channel_body, ApiClient};
use campaignd::config::{Config, DEV_API_TOKEN};
use campaignd::daemon::Daemon;
use campaignd::protocol::CampaignView;
use campaignd::secret::Secret;
use campaignd::simulator::{CallbackPlayer, Inbound, LedgerSummary, Limits, SimConfig, Simulator};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Options of `campaignd demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Recipients of the list campaign (the batch campaign gets a twentieth, at least 1000).
    #[arg(long, default_value_t = 1_000_000)]
    recipients: u64,
    /// Keep the store in this directory instead of a temporary one.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Shards of the daemon.
    #[arg(long, default_value_t = 16)]
    shards: usize,
}

const SHIPPED: &str = include_str!("../../config/campaignd.toml");

/// The n-th demo cid; list and batch recipients use disjoint ranges.
fn demo_cid(n: u64) -> String {
    format!("{:016x}{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
}

/// Runs the demo; fails unless every recipient reached a result and the ledger agrees.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.recipients == 0 {
        bail!("--recipients must be at least 1");
    }
    super::init_logging("warn");
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let store = args.data.clone().unwrap_or_else(|| tmp.path().join("store"));
    // The simulator posts receipts and SMS delivery reports to the daemon, so the daemon's port
    // is chosen first.
    let port = free_port()?;
    let sim_config = demo_sim_config(port);
    let (shares, receipts) = (sim_config.shares, sim_config.receipts.clone());
    let sim = Simulator::bind("127.0.0.1:0".parse()?, sim_config).await.context("cannot start the simulator")?;
    let base_url = sim.getui_base_url();
    let wecom_url = sim.wecom_base_url();
    let sms_url = sim.sms_base_url();
    let sim = sim.spawn();
    let text = SHIPPED
        .replace("listen = \"127.0.0.1:8780\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("path = \"data\"", &format!("path = {:?}", store.display().to_string()))
        // Notification texts have no marketing window, so the demo texts at any hour.
        .replace("marketing = true", "marketing = false")
        .replace("http://127.0.0.1:8781/v2", &base_url)
        .replace("http://127.0.0.1:8781/cgi-bin", &wecom_url)
        .replace("\"http://127.0.0.1:8781\"", &format!("{sms_url:?}"))
        .replace("shards = 16\n", &format!("shards = {}\n", args.shards))
        .replace("calls_per_second = 1000", "# calls_per_second: unlimited in the demo");
    anyhow::ensure!(
        text.contains(&format!("\nshards = {}\n", args.shards)),
        "the shipped config has no `shards = 16` line"
    );
    let config = Config::from_toml(&text, "demo.toml".as_ref())?;
    let daemon = Daemon::build(&config, |_| None).await?;
    let addr = daemon.local_addr();
    let stop = daemon.shutdown_token();
    let daemon_task = tokio::spawn(daemon.run());
    println!("campaignd demo: simulator at {base_url}, daemon at http://{addr}, store {}", store.display());

    let api = ApiClient::new(&format!("http://{addr}"), Secret::new(DEV_API_TOKEN))?;
    let batch_n = (args.recipients / 20).max(1_000);
    let result = run_campaigns(&api, args.recipients, batch_n).await;
    let ledger = sim.ledger().summary();
    let wecom = match &result {
        Ok(_) => Some(run_wecom(&api, &format!("http://{addr}/wecom/staff/callback")).await),
        Err(_) => None,
    };
    let chunk_size = config.dispatch.chunk_size as u64;
    let sms = match &result {
        Ok(_) => Some(super::demo_sms::run_sms(&api, &sim, shares, &receipts, chunk_size, demo_cid).await),
        Err(_) => None,
    };
    stop.cancel();
    daemon_task.await.context("daemon task failed")??;
    sim.stop().await;
    let (list, batch, elapsed) = result?;
    print_table(&[&list, &batch], elapsed);
    println!("peak RSS of this process: {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    check(&list, &batch, &ledger)?;
    wecom.unwrap_or_else(|| Err(anyhow::anyhow!("the WeCom part did not run")))?;
    sms.unwrap_or_else(|| Err(anyhow::anyhow!("the SMS part did not run")))
}

/// The demo's simulator: no documented limits, receipts and SMS delivery reports posted to the
/// daemon on `port`, and no marketing window on the SMS gateway.
fn demo_sim_config(port: u16) -> SimConfig {
    let daemon = format!("http://127.0.0.1:{port}");
    let mut config = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    config.receipts.url = Some(format!("{daemon}/getui/main/receipts"));
    config.sms.reports.url = Some(format!("{daemon}/sms/main/status"));
    config.sms.marketing_window = None;
    config.sms.reports.fail_bp = 300; // a few undelivered texts, as carriers report them
    config
}

/// A loopback port nobody listens on now (the daemon binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(probe.local_addr()?.port())
}

/// Members of the demo's WeCom campaign.
const WECOM_MEMBERS: u64 = 2_000;

/// The WeCom act: two members opt out through the encrypted callback (a `TD` text and the
/// unsubscribe event), then a WeCom campaign to every member skips exactly them.
async fn run_wecom(api: &ApiClient, callback_url: &str) -> anyhow::Result<()> {
    let wecom = CallbackPlayer::dev(callback_url);
    let (status, echo) = wecom.verify_url("1616140317555161061").await?;
    if (status, echo.as_str()) != (200, "1616140317555161061") {
        bail!("WeCom URL verification failed: HTTP {status} {echo:?}");
    }
    let td = wecom.text("member00007", "TD").await?;
    let unsub = wecom.push("member00013", Inbound::Unsubscribe).await?;
    if td.reply.is_none() || unsub.status != 200 {
        bail!("the opt-out callbacks were not accepted: {td:?} {unsub:?}");
    }
    let campaign = api
        .create(&serde_json::json!({
            "name": "demo-wecom", "app": "staff",
            "message": {"wecom": {"msgtype": "textcard", "textcard": {
                "title": "Quarterly all-hands", "description": "Friday 15:00, main hall",
                "url": "https://example.com/all-hands", "btntxt": "详情"}}}
        }))
        .await?;
    let members: String =
        (0..WECOM_MEMBERS).map(|i| format!("member{i:05}\n")).chain(["left-former\n".into()]).collect();
    api.upload(&campaign.id, "text/plain", members).await?;
    api.act(&campaign.id, "start").await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let v = api.campaign(&campaign.id).await?;
        if matches!(v.state.as_str(), "completed" | "cancelled" | "failed") {
            break v;
        }
        if Instant::now() > deadline {
            bail!("the WeCom campaign did not finish within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = |name: &str| done.progress.results.get(name).copied().unwrap_or(0);
    println!(
        "\nWeCom: 2 members opted out through the encrypted callback; campaign {} to {} members: \
         sent {}, suppressed {}, invaliduser {}",
        done.state,
        WECOM_MEMBERS + 1,
        r("sent"),
        r("suppressed"),
        r("invaliduser")
    );
    if (r("sent"), r("suppressed"), r("invaliduser")) != (WECOM_MEMBERS - 2, 2, 1) {
        bail!("the WeCom campaign did not honour the opt-outs: {:?}", done.progress.results);
    }
    Ok(())
}

async fn run_campaigns(
    api: &ApiClient,
    list_n: u64,
    batch_n: u64,
) -> anyhow::Result<(CampaignView, CampaignView, Duration)> {
    let list = api
        .create(&serde_json::json!({
            "name": "demo-list", "app": "main", "mode": "list",
            "message": {"notification": {"title": "Spring sale", "body": "20% off today", "click_type": "url", "url": "https://example.com/sale"}},
            "settings": {"ttl_ms": 7_200_000, "group": "demo"}
        }))
        .await?;
    let batch = api
        .create(&serde_json::json!({
            "name": "demo-personal", "app": "main",
            "message": {"notification": {"title": "Hi ${name}", "body": "Your coupon ${code} is waiting"}},
            "settings": {"group": "demo"}
        }))
        .await?;
    let started = Instant::now();
    upload(api, &list.id, "text/plain", 0, list_n, |i| format!("{}\n", demo_cid(i))).await?;
    upload(api, &batch.id, "application/x-ndjson", 1 << 40, batch_n, |i| {
        format!("{{\"cid\":\"{}\",\"vars\":{{\"name\":\"user{i}\",\"code\":\"C{i:08}\"}}}}\n", demo_cid(i))
    })
    .await?;
    println!("uploaded {list_n} + {batch_n} recipients in {:.1} s", started.elapsed().as_secs_f64());
    let sending = Instant::now();
    api.act(&list.id, "start").await?;
    api.act(&batch.id, "start").await?;
    let (list, batch) = watch(api, &list.id, &batch.id).await?;
    Ok((list, batch, sending.elapsed()))
}

/// Streams `n` generated lines to a campaign without holding them in memory.
async fn upload(
    api: &ApiClient,
    id: &str,
    content_type: &str,
    from: u64,
    n: u64,
    line: impl Fn(u64) -> String + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, body) = channel_body(16);
    let producer = tokio::spawn(async move {
        let mut buf = String::with_capacity(64 * 1024);
        for i in from..from + n {
            buf.push_str(&line(i));
            if buf.len() >= 60 * 1024 && tx.send(Bytes::from(std::mem::take(&mut buf))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from(buf)).await;
    });
    let up = api.upload_stream(id, content_type, body).await?;
    let _ = producer.await;
    if up.accepted != n {
        bail!("upload to campaign {id} accepted {} of {n} recipients: {:?}", up.accepted, up.first_rejected);
    }
    Ok(())
}

/// Shows a progress bar per campaign until both end.
async fn watch(api: &ApiClient, list: &str, batch: &str) -> anyhow::Result<(CampaignView, CampaignView)> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>14} {bar:40.cyan/blue} {pos:>9}/{len:9} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let make = |name: &str| bars.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(name.to_owned()));
    let (lb, bb) = (make("list"), make("batch_single"));
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let l = api.campaign(list).await?;
        let b = api.campaign(batch).await?;
        for (bar, v) in [(&lb, &l), (&bb, &b)] {
            bar.set_length(v.recipients.total);
            bar.set_position(v.progress.sent);
            let eta = v.progress.eta_seconds.map(|s| format!(" eta {s}s")).unwrap_or_default();
            bar.set_message(format!("{} {:.0}/s{eta}", v.state, v.progress.rate_per_sec));
        }
        let done = |v: &CampaignView| matches!(v.state.as_str(), "completed" | "cancelled" | "failed");
        if done(&l) && done(&b) {
            lb.finish();
            bb.finish();
            return Ok((l, b));
        }
        if Instant::now() > deadline {
            bail!("the campaigns did not finish within an hour");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_table(campaigns: &[&CampaignView], elapsed: Duration) {
    let mut results: Vec<&String> = campaigns.iter().flat_map(|c| c.progress.results.keys()).collect();
    results.sort();
    results.dedup();
    println!();
    print!("{:<22}", "result");
    for c in campaigns {
        print!("{:>16}", c.name);
    }
    println!();
    for r in results {
        print!("{r:<22}");
        for c in campaigns {
            print!("{:>16}", c.progress.results.get(r).copied().unwrap_or(0));
        }
        println!();
    }
    print!("{:<22}", "total");
    for c in campaigns {
        print!("{:>16}", c.progress.sent);
    }
    println!();
    let total: u64 = campaigns.iter().map(|c| c.progress.sent).sum();
    let secs = elapsed.as_secs_f64();
    println!("\n{total} recipients in {secs:.2} s: {:.0} recipients/s", total as f64 / secs.max(1e-9));
}

/// Passes only if every recipient has a result and the ledger agrees with the reports.
fn check(list: &CampaignView, batch: &CampaignView, ledger: &LedgerSummary) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for c in [list, batch] {
        if c.state != "completed" {
            problems.push(format!("{} ended {}", c.name, c.state));
        }
        if c.progress.sent != c.recipients.total {
            problems
                .push(format!("{}: {} of {} recipients have a result", c.name, c.progress.sent, c.recipients.total));
        }
    }
    let delivered = |ep: &str| ledger.by_endpoint.get(ep).copied().unwrap_or(0);
    if delivered("push_list_cid") != list.recipients.total {
        problems.push(format!(
            "ledger: {} list deliveries for {} recipients",
            delivered("push_list_cid"),
            list.recipients.total
        ));
    }
    if delivered("push_single_batch_cid") != batch.recipients.total {
        problems.push(format!(
            "ledger: {} batch deliveries for {} recipients",
            delivered("push_single_batch_cid"),
            batch.recipients.total
        ));
    }
    if ledger.unique_cids != list.recipients.total + batch.recipients.total || ledger.duplicates != 0 {
        problems.push(format!("ledger: {} unique cids, {} duplicates", ledger.unique_cids, ledger.duplicates));
    }
    if problems.is_empty() {
        println!(
            "ledger agrees: {} deliveries to {} distinct devices, no duplicate, nobody missing",
            ledger.deliveries, ledger.unique_cids
        );
        return Ok(());
    }
    bail!("the demo found problems:\n  {}", problems.join("\n  "))
}

/// VmHWM from /proc (Linux): the largest resident set this process had.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{} MB", kb / 1024))
}
