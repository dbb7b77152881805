//! `campaignd serve`: run the daemon until SIGTERM or Ctrl-C.

use std::path::Path;

use anyhow::Context;
use campaignd::config::Config;
use campaignd::daemon::Daemon;
use tokio::runtime::Runtime;

/// Loads the configuration, starts the daemon, and stops it gracefully on a signal.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    super::init_logging(&config.log.level);
    let rt = async_runtime(&config)?;
    rt.block_on(async move {
        let daemon = Daemon::build(&config, |k| std::env::var(k).ok()).await?;
        if config.api.dev_token.is_some() && std::env::var(config.api.tokens_env.as_deref().unwrap_or("")).is_err() {
            tracing::warn!(
                "accepting the published development API token; set {} for anything real",
                config.api.tokens_env.as_deref().unwrap_or("api.tokens_env")
            );
        }
        tracing::info!(listen = %daemon.local_addr(), store = %config.store.path.display(), "campaignd serving");
        tokio::spawn(super::signals::stop_on_signal(daemon.shutdown_token()));
        daemon.run().await?;
        Ok(())
    })
}

/// The daemon's runtime, with `server.workers` async worker threads (by default half the CPUs
/// this process may run on, as `taskset` or a cgroup limit them).
fn async_runtime(config: &Config) -> anyhow::Result<Runtime> {
    let cpus = campaignd::config::available_cpus();
    let workers = config.server.async_workers(cpus);
    tracing::debug!(workers, cpus, "starting the async runtime");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
