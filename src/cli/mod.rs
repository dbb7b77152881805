//! Command-line interface: one clap enum of verbs, one function per verb.

mod campaign;
mod demo;
mod demo_sms;
mod probe;
mod serve;
mod signals;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use campaignd::daemon::DaemonError;
use clap::{Args, Parser, Subcommand};

/// Exit code for an invalid configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Exit code for a service the daemon needs being unreachable, e.g. NATS (EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

/// campaignd: durable push-notification campaigns through Getui.
///
/// Run the local Getui simulator with `campaignd simulate`, then check the shipped
/// configuration against it with `campaignd probe`.
#[derive(Debug, Parser)]
#[command(name = "campaignd", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: HTTP API, dispatcher and store. Stops gracefully on SIGTERM or Ctrl-C.
    Serve(ConfigArg),
    /// Run simulator and daemon in one process, send a list campaign of N recipients and a
    /// personalised batch campaign through the real HTTP API, show live progress, and check
    /// the simulator's ledger against the report.
    Demo(demo::DemoArgs),
    /// Serve a local Getui RestAPI v2 and WeCom API with delivery ledgers; `simulate callback`
    /// plays the WeCom server against a daemon's callback URL.
    Simulate(simulate::SimulateArgs),
    /// Sign in to an app's upstream and send one test push: checks URL and credentials.
    Probe(probe::ProbeArgs),
    /// Load and validate a configuration file, then print what it configures.
    CheckConfig(ConfigArg),
    /// Manage campaigns on a running daemon: create, upload, start, pause, resume, cancel,
    /// status, report, list, delete. The token comes from CAMPAIGND_TOKEN (default: the
    /// development token of the shipped configuration).
    Campaign(campaign::CampaignArgs),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Configuration file (TOML).
    #[arg(long, short, env = "CAMPAIGND_CONFIG", default_value = campaignd::config::DEFAULT_PATH)]
    config: PathBuf,
}

/// Parses the command line, runs the verb and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => run(simulate::run(args)),
        Command::Probe(args) => run(probe::run(args)),
        Command::CheckConfig(args) => check_config(&args.config),
        Command::Serve(args) => run(serve::run(&args.config)),
        Command::Demo(args) => run(demo::run(args)),
        Command::Campaign(args) => run(campaign::run(args)),
    }
}

/// Lets a verb that only prints end quietly when its reader leaves (`check-config | head`), as
/// Unix tools do: Rust starts with SIGPIPE ignored, which turns that into a panic in
/// `println!`. Only for verbs that open no socket: a server or HTTP client must outlive a peer
/// that hangs up (a vectored socket write has no MSG_NOSIGNAL).
fn end_quietly_when_stdout_closes() {
    // SAFETY: `signal` only sets this process's disposition of SIGPIPE back to the default; no
    // handler runs, and nothing in a printing verb depends on SIGPIPE being ignored.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let unavailable = matches!(
                e.downcast_ref::<DaemonError>(),
                Some(DaemonError::Store(campaignd::store::StoreError::Unavailable { .. }))
            );
            if e.downcast_ref::<campaignd::config::ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else if unavailable {
                ExitCode::from(EXIT_UNAVAILABLE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    end_quietly_when_stdout_closes();
    let checked = campaignd::config::Config::load(path).and_then(|cfg| {
        cfg.check_secrets(|k| std::env::var(k).ok())?;
        Ok(cfg)
    });
    match checked {
        Ok(cfg) => {
            println!("{}: valid", path.display());
            println!("  listen    {}", cfg.server.listen);
            let callback_at = cfg.server.callback_listen.unwrap_or(cfg.server.listen);
            match cfg.server.callback_listen {
                Some(addr) => println!("  callback  {addr} (WeCom callback and /healthz only; not on listen)"),
                None => println!("  callback  on listen (set server.callback_listen to serve it apart)"),
            }
            println!(
                "  limits    {} connections, body {} ms, idle {} ms",
                cfg.server.max_connections, cfg.server.body_timeout_ms, cfg.server.idle_timeout_ms
            );
            let cpus = campaignd::config::available_cpus();
            let workers = cfg.server.async_workers(cpus);
            match cfg.server.workers {
                Some(_) => println!("  workers   {workers} async worker thread(s) (server.workers)"),
                None => println!("  workers   {workers} async worker thread(s): half of the {cpus} CPU(s) available"),
            }
            match (&cfg.store.backend, &cfg.store.nats) {
                (campaignd::config::StoreBackend::Nats, Some(n)) => {
                    println!("  store     nats {} (prefix {}, {} replica(s))", n.url, n.stream_prefix, n.replicas);
                    println!("  identity  kept in NATS ({}_meta); /readyz shows it", n.stream_prefix);
                }
                _ => {
                    println!("  store     {}", cfg.store.path.display());
                    match campaignd::store::read_identity_file(&cfg.store.path) {
                        Some(id) => println!("  identity  {id} (carried by every request id this store sends)"),
                        None => println!("  identity  none yet: the daemon draws one when it first opens the store"),
                    }
                }
            }
            for (name, app) in &cfg.apps {
                if let Some(g) = &app.getui {
                    println!("  app {name}: getui {} (app_id {})", g.base_url, g.app_id);
                }
                if let Some(w) = &app.wecom {
                    println!("  app {name}: wecom {} (corp {}, agent {})", w.base_url, w.corp_id, w.agent_id);
                    if w.callback.is_some() {
                        println!("    callback at http://{callback_at}/wecom/{name}/callback");
                    }
                }
                if let Some(s) = &app.sms {
                    let ids: Vec<&str> = s.templates.iter().map(|t| t.id.as_str()).collect();
                    println!(
                        "    sms fallback via {} (sign 【{}】, templates {})",
                        s.base_url,
                        s.sign_name,
                        ids.join(", ")
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Starts the tracing subscriber: `RUST_LOG` if set, else `default_filter`, to stderr.
fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
