//! `campaignd campaign ...`: the control API from the command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use campaignd::client::{channel_body, ApiClient};
use campaignd::config::DEV_API_TOKEN;
use campaignd::protocol::{CampaignView, GroupReportView, ReportView};
use campaignd::secret::Secret;
use clap::{Args, Subcommand, ValueEnum};
use tokio::io::AsyncReadExt;

/// Options shared by every campaign verb.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The daemon's API address.
    #[arg(long, env = "CAMPAIGND_SERVER", default_value = "http://127.0.0.1:8780", global = true)]
    server: String,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Create a draft campaign from a JSON definition (see README, "Campaigns").
    Create {
        /// The definition file, or `-` for standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Stream recipients into a draft campaign: one cid a line, or NDJSON {"cid", "vars"}.
    Upload {
        /// Campaign id.
        id: String,
        /// The recipients file.
        #[arg(long, short)]
        file: PathBuf,
        /// Line format; by default NDJSON for .ndjson/.jsonl files, text otherwise.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Start a draft campaign (now, or at its schedule time).
    Start {
        /// Campaign id.
        id: String,
    },
    /// Pause a running campaign.
    Pause {
        /// Campaign id.
        id: String,
    },
    /// Resume a paused campaign.
    Resume {
        /// Campaign id.
        id: String,
    },
    /// Cancel a campaign for good.
    Cancel {
        /// Campaign id.
        id: String,
    },
    /// Show a campaign's state and progress.
    Status {
        /// Campaign id.
        id: String,
        /// Refresh every second until the campaign ends.
        #[arg(long)]
        watch: bool,
    },
    /// Show a campaign's report: results per code, duration, rate.
    Report {
        /// Campaign id.
        id: String,
    },
    /// Put a task group's campaigns side by side (the A/B view): results per campaign.
    GroupReport {
        /// Task group name.
        group: String,
    },
    /// List every campaign (fetched page by page), or only those in one state.
    List {
        /// Only campaigns in this state (draft, scheduled, running, paused, completed,
        /// cancelled, failed).
        #[arg(long)]
        state: Option<String>,
    },
    /// List the members of a WeCom app who opted out (by callback or by an operator).
    Suppressions {
        /// The WeCom app's name.
        app: String,
    },
    /// Opt a WeCom member out of the app's campaigns.
    Suppress {
        /// The WeCom app's name.
        app: String,
        /// Member id.
        user: String,
    },
    /// Lift a member's opt-out.
    Unsuppress {
        /// The WeCom app's name.
        app: String,
        /// Member id.
        user: String,
    },
    /// Bind cids of a Getui app to phone numbers, for SMS fallback (短信补量).
    ///
    /// Within an app a phone belongs to one cid: binding it to another cid unbinds the first
    /// (which then answers code 7). Numbers are CN mobiles (13800000000, +86...) or E.164
    /// (+44...); the daemon stores them sealed (AES-256-GCM) and only ever shows them masked.
    /// Per-cid codes: 0 bound, 1 not a cid (32 hex digits), 5 cid empty, 6 phone empty or not a
    /// number, 8 the daemon failed (try again). A number given with --phone shows in the shell
    /// history and the process list: prefer --file for real numbers.
    Bind {
        /// The Getui app's name.
        #[arg(long)]
        app: String,
        /// The cid (with --phone).
        #[arg(long, requires = "phone", conflicts_with = "file")]
        cid: Option<String>,
        /// The phone number (with --cid).
        #[arg(long, requires = "cid")]
        phone: Option<String>,
        /// A file of `cid,phone` lines, sent 50 pairs a call (for large lists use `import`).
        #[arg(long, short, required_unless_present = "cid")]
        file: Option<PathBuf>,
    },
    /// Remove the phone numbers bound to cids (code 0 removed, 7 none was bound).
    Unbind {
        /// The Getui app's name.
        #[arg(long)]
        app: String,
        /// The cids, at most 50.
        #[arg(required = true, num_args = 1..=50)]
        cids: Vec<String>,
    },
    /// Show the masked number (138****5678) bound to each cid, or code 7 when none is.
    Query {
        /// The Getui app's name.
        #[arg(long)]
        app: String,
        /// The cids, at most 50.
        #[arg(required = true, num_args = 1..=50)]
        cids: Vec<String>,
    },
    /// Stream a file of bindings of any size: CSV `cid,phone` lines (a `cid,phone` header is
    /// skipped) or NDJSON `{"cid": "...", "phone": "..."}`. Bad lines are counted and the first
    /// are listed by number; the rest are bound. Binding is idempotent: if the import breaks
    /// off, send the whole file again.
    Import {
        /// The Getui app's name.
        #[arg(long)]
        app: String,
        /// The file.
        file: PathBuf,
        /// Line format; by default NDJSON for .ndjson/.jsonl files, CSV otherwise.
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
    },
    /// Delete a draft or scheduled campaign.
    Delete {
        /// Campaign id.
        id: String,
    },
    /// Stop a campaign's SMS fallback (the seed's stop_sms): texts not yet sent are skipped,
    /// those already sent stay sent. The pushes are not affected.
    SmsStop {
        /// Campaign id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    /// `cid,phone` a line.
    Csv,
    /// `{"cid": "...", "phone": "..."}` a line.
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One cid a line.
    Text,
    /// One JSON object a line: {"cid": "...", "vars": {...}}.
    Ndjson,
}

/// Runs one campaign verb against the daemon.
pub fn run(args: CampaignArgs) -> anyhow::Result<()> {
    let token = std::env::var("CAMPAIGND_TOKEN").unwrap_or_else(|_| DEV_API_TOKEN.to_owned());
    let api = ApiClient::new(&args.server, Secret::new(token))?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(verb(&api, args.verb, args.json))
}

async fn verb(api: &ApiClient, verb: Verb, json: bool) -> anyhow::Result<()> {
    match verb {
        Verb::Create { file } => {
            let text = read_input(&file).await?;
            let body: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
            let v = api.create(&body).await?;
            show(json, &v, || println!("created campaign {} ({}, {})", v.id, v.mode, v.state))
        }
        Verb::Upload { id, file, format } => upload(api, &id, &file, format, json).await,
        Verb::Start { id } => act(api, &id, "start", json).await,
        Verb::Pause { id } => act(api, &id, "pause", json).await,
        Verb::Resume { id } => act(api, &id, "resume", json).await,
        Verb::Cancel { id } => act(api, &id, "cancel", json).await,
        Verb::SmsStop { id } => act(api, &id, "sms/stop", json).await,
        Verb::Status { id, watch } => status(api, &id, watch, json).await,
        Verb::Report { id } => {
            let r = api.report(&id).await?;
            show(json, &r, || print_report(&r))
        }
        Verb::List { state } => {
            let all = api.list_in(state.as_deref()).await?;
            show(json, &all, || {
                println!("{:>6}  {:<12} {:<10} {:>12} {:>12}  name", "id", "mode", "state", "recipients", "sent");
                for v in &all {
                    println!(
                        "{:>6}  {:<12} {:<10} {:>12} {:>12}  {}",
                        v.id, v.mode, v.state, v.recipients.total, v.progress.sent, v.name
                    );
                }
            })
        }
        Verb::Delete { id } => {
            api.delete(&id).await?;
            println!("deleted campaign {id}");
            Ok(())
        }
        Verb::GroupReport { group } => {
            let g = api.group_report(&group).await?;
            show(json, &g, || print_group(&g))
        }
        Verb::Suppressions { app } => suppressions(api, &app, json).await,
        Verb::Bind { app, cid, phone, file } => {
            let pairs = match (cid, phone, file) {
                (Some(c), Some(p), _) => vec![(c, p)],
                (_, _, Some(f)) => read_pairs(&f).await?,
                _ => anyhow::bail!("give --cid and --phone, or --file"),
            };
            for call in pairs.chunks(50) {
                let a = api.bind_phones(&app, call).await?;
                show(json, &a, || print_bind_answer(&a))?;
            }
            Ok(())
        }
        Verb::Unbind { app, cids } => {
            let a = api.unbind_phones(&app, &cids).await?;
            show(json, &a, || print_bind_answer(&a))
        }
        Verb::Query { app, cids } => {
            let a = api.query_phones(&app, &cids).await?;
            show(json, &a, || print_bind_answer(&a))
        }
        Verb::Import { app, file, format } => import(api, &app, &file, format, json).await,
        Verb::Suppress { app, user } => {
            api.set_suppressed(&app, &user, true).await?;
            println!("{user} will be skipped by {app}'s campaigns");
            Ok(())
        }
        Verb::Unsuppress { app, user } => {
            api.set_suppressed(&app, &user, false).await?;
            println!("{user} receives {app}'s campaigns again");
            Ok(())
        }
    }
}

/// `cid,phone` lines of a small file (blank lines and a `cid,...` header skipped).
async fn read_pairs(file: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text = read_input(file).await?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.to_ascii_lowercase().starts_with("cid,")) {
            continue;
        }
        // The line is not quoted back: it holds a phone number.
        let (c, p) =
            line.split_once(',').with_context(|| format!("{} line {}: not cid,phone", file.display(), i + 1))?;
        pairs.push((c.trim().to_owned(), p.trim().to_owned()));
    }
    Ok(pairs)
}

/// One line per cid: its code, what the code means, and the masked number of a query.
fn print_bind_answer(a: &campaignd::protocol::BindAnswerView) {
    for r in &a.batch_ret {
        let meaning = match r.code {
            0 => "ok",
            1 => "not a cid",
            5 => "cid empty",
            6 => "phone empty or not a number",
            7 => "not bound",
            _ => "failed",
        };
        let pn = r.pn.as_deref().unwrap_or("");
        let why = r.reason.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
        println!("{:<34} {} {meaning} {pn}{why}", r.cid, r.code);
    }
}

async fn import(
    api: &ApiClient,
    app: &str,
    file: &PathBuf,
    format: Option<ImportFormat>,
    json: bool,
) -> anyhow::Result<()> {
    let format = format.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
        Some("ndjson" | "jsonl") => ImportFormat::Ndjson,
        _ => ImportFormat::Csv,
    });
    let content_type = if format == ImportFormat::Ndjson { "application/x-ndjson" } else { "text/csv" };
    let mut f = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
    let (tx, body) = channel_body(8);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                return Ok::<_, std::io::Error>(());
            }
        }
    });
    let answer = api.import_phones(app, content_type, body).await;
    reader.await.context("reading the file failed")??;
    let v = answer?;
    show(json, &v, || {
        println!(
            "{} lines: bound {}, of which {} moved a phone off another cid; {} bad lines",
            v.lines, v.bound, v.replaced, v.bad_lines
        );
        for r in &v.first_bad {
            println!("  line {}: {}", r.line, r.reason);
        }
    })
}

/// Prints every page of an app's suppression list.
async fn suppressions(api: &ApiClient, app: &str, json: bool) -> anyhow::Result<()> {
    let mut after = String::new();
    loop {
        let page = api.suppressions(app, &after, 1000).await?;
        show(json, &page, || {
            for u in &page.users {
                println!("{:<40} {:<12} {}", u.user, u.reason, u.since);
            }
        })?;
        match page.next_after {
            Some(next) => after = next,
            None => return Ok(()),
        }
    }
}

/// Results as rows, the group's campaigns as columns.
fn print_group(g: &GroupReportView) {
    let mut rows: Vec<&String> = g.results.keys().collect();
    rows.sort();
    println!("group {}", g.group);
    print!("{:<22}", "result");
    for r in &g.campaigns {
        print!("{:>16}", format!("{} #{}", r.campaign.name, r.campaign.id));
    }
    println!();
    for row in rows {
        print!("{row:<22}");
        for r in &g.campaigns {
            print!("{:>16}", r.results.get(row).copied().unwrap_or(0));
        }
        println!();
    }
    let upstream = |r: &ReportView, f: fn(&campaignd::protocol::UpstreamCounts) -> u64| {
        r.campaign.upstream.as_ref().map_or("-".to_owned(), |u| f(u).to_string())
    };
    if g.campaigns.iter().any(|r| r.campaign.upstream.is_some()) {
        for (name, f) in [
            ("getui target_num", (|u| u.target_num) as fn(&campaignd::protocol::UpstreamCounts) -> u64),
            ("getui receive_num", |u| u.receive_num),
            ("getui display_num", |u| u.display_num),
            ("getui click_num", |u| u.click_num),
        ] {
            print!("{name:<22}");
            for r in &g.campaigns {
                print!("{:>16}", upstream(r, f));
            }
            println!();
        }
    }
}

fn show<T: serde::Serialize>(json: bool, v: &T, human: impl FnOnce()) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        human();
    }
    Ok(())
}

async fn read_input(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        tokio::io::stdin().read_to_string(&mut s).await?;
        return Ok(s);
    }
    tokio::fs::read_to_string(file).await.with_context(|| format!("cannot read {}", file.display()))
}

async fn act(api: &ApiClient, id: &str, action: &str, json: bool) -> anyhow::Result<()> {
    let v = api.act(id, action).await?;
    show(json, &v, || println!("campaign {} is {}", v.id, v.state))
}

async fn upload(api: &ApiClient, id: &str, file: &PathBuf, format: Option<Format>, json: bool) -> anyhow::Result<()> {
    let format = format.unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
        Some("ndjson" | "jsonl") => Format::Ndjson,
        _ => Format::Text,
    });
    let content_type = if format == Format::Ndjson { "application/x-ndjson" } else { "text/plain" };
    let mut f = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
    let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (tx, body) = channel_body(8);
    let reader_bar = bar.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            reader_bar.inc(n as u64);
            if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                return Ok(());
            }
        }
    });
    let answer = api.upload_stream(id, content_type, body).await;
    bar.finish_and_clear();
    reader.await.context("reading the file failed")??;
    let up = answer?;
    show(json, &up, || {
        println!(
            "accepted {}, duplicates {}, rejected {}; the campaign now has {} recipients",
            up.accepted, up.duplicates, up.rejected, up.campaign_total
        );
        for r in &up.first_rejected {
            println!("  line {}: {}", r.line, r.reason);
        }
        if up.rejected as usize > up.first_rejected.len() {
            println!("  ... and {} more rejected lines", up.rejected as usize - up.first_rejected.len());
        }
    })
}

async fn status(api: &ApiClient, id: &str, watch: bool, json: bool) -> anyhow::Result<()> {
    loop {
        let v = api.campaign(id).await?;
        show(json, &v, || print_status(&v))?;
        if !watch || matches!(v.state.as_str(), "completed" | "cancelled" | "failed" | "draft") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_status(v: &CampaignView) {
    let p = &v.progress;
    let eta = p.eta_seconds.map(|s| format!(", eta {s}s")).unwrap_or_default();
    println!(
        "campaign {} \"{}\" ({}): {} — {}/{} sent, {} pending, {:.0}/s{eta}",
        v.id, v.name, v.mode, v.state, p.sent, v.recipients.total, p.pending, p.rate_per_sec
    );
    for (result, n) in &p.results {
        println!("  {result:<22} {n:>12}");
    }
    if let Some(at) = &v.schedule_at {
        let via = v.schedule_via.as_deref().unwrap_or("daemon");
        println!("  scheduled for {at} (held by the {via}); created {}; send_result {}", v.created_at, v.send_result);
    }
    if let Some(u) = &v.upstream {
        println!(
            "  getui counts: target {}, received {}, displayed {}, clicked {} (as of {})",
            u.target_num, u.receive_num, u.display_num, u.click_num, u.fetched_at
        );
    }
    if let Some(w) = &v.withdrawal {
        println!("  scheduled task at getui: {w}");
    }
    if let Some(f) = &v.failure {
        println!("  failure: {f}");
    }
}

fn print_report(r: &ReportView) {
    print_status(&r.campaign);
    println!(
        "  delivered {}, failed {}, {:.1} s, {:.0} recipients/s, replayed {}",
        r.delivered, r.failed, r.duration_seconds, r.recipients_per_sec, r.campaign.progress.replayed
    );
    if let Some(s) = &r.sms {
        println!(
            "  sms fallback: reached {}, clicked {}, texted {}, delivered {}, failed {:?}, skipped {:?}, maybe sent {}, replayed {}{}",
            s.reached,
            s.clicked,
            s.sms_sent,
            s.sms_delivered,
            s.sms_failed,
            s.sms_skipped,
            s.sms_maybe_sent,
            s.sms_replayed,
            if s.stopped { " (stopped)" } else { "" }
        );
    }
}
