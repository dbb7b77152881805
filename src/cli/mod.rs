//! Command-line interface: one clap enum of verbs, one function per verb.

mod probe;
mod serve;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit code of verbs that a later release builds (EX_UNAVAILABLE from sysexits.h).
const EXIT_NOT_BUILT: u8 = 69;
/// Exit code for an invalid configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

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
    /// Run simulator and daemon in one process and send two sample campaigns
    /// (arrives with the durable pipeline).
    Demo(DemoArgs),
    /// Serve a local Getui RestAPI v2 simulator with a delivery ledger.
    Simulate(simulate::SimulateArgs),
    /// Sign in to an app's upstream and send one test push: checks URL and credentials.
    Probe(probe::ProbeArgs),
    /// Load and validate a configuration file, then print what it configures.
    CheckConfig(ConfigArg),
    /// Manage campaigns on a running daemon (arrives with the durable pipeline).
    #[command(subcommand)]
    Campaign(CampaignCommand),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Configuration file (TOML).
    #[arg(long, short, env = "CAMPAIGND_CONFIG", default_value = campaignd::config::DEFAULT_PATH)]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Recipients of the sample list campaign.
    #[arg(long, default_value_t = 1_000_000)]
    recipients: u64,
    /// Keep the store in this directory instead of a temporary one.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum CampaignCommand {
    /// Create a campaign from a JSON file.
    Create,
    /// Stream recipients into a draft campaign.
    Upload,
    /// Start a campaign.
    Start,
    /// Pause a running campaign.
    Pause,
    /// Resume a paused campaign.
    Resume,
    /// Cancel a campaign.
    Cancel,
    /// Show a campaign's progress.
    Status,
    /// Show a campaign's report.
    Report,
    /// List campaigns.
    List,
}

/// Parses the command line, runs the verb and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => run(simulate::run(args)),
        Command::Probe(args) => run(probe::run(args)),
        Command::CheckConfig(args) => check_config(&args.config),
        Command::Serve(args) => run(serve::run(&args.config)),
        Command::Demo(_) => not_built("demo"),
        Command::Campaign(_) => not_built("campaign"),
    }
}

fn run(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<campaignd::config::ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn not_built(verb: &str) -> ExitCode {
    eprintln!(
        "error: `campaignd {verb}` is not built yet: it arrives with the durable campaign pipeline \
         (issue #3).\nToday you can run `campaignd simulate` (a local Getui) and `campaignd probe` \
         (sign in and send one test push through it)."
    );
    ExitCode::from(EXIT_NOT_BUILT)
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let checked = campaignd::config::Config::load(path).and_then(|cfg| {
        cfg.check_secrets(|k| std::env::var(k).ok())?;
        Ok(cfg)
    });
    match checked {
        Ok(cfg) => {
            println!("{}: valid", path.display());
            println!("  listen    {}", cfg.server.listen);
            println!("  store     {}", cfg.store.path.display());
            for (name, app) in &cfg.apps {
                if let Some(g) = &app.getui {
                    println!("  app {name}: getui {} (app_id {})", g.base_url, g.app_id);
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
