//! The daemon: opens the store, builds the upstream clients, and runs the dispatcher and the
//! HTTP API until its shutdown token is cancelled. It owns shutdown: stop accepting, let the
//! shards settle their chunks, flush the store, close it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiSettings, ApiState};
use crate::config::{Channel, Config, ConfigError};
use crate::dispatch::{AppSender, DispatchSettings, Dispatcher, RetryPolicy, Upstream};
use crate::metrics::{Metrics, UpstreamObserver};
use crate::store::{SledStore, Store, StoreError, StoreSettings};
use crate::upstream::getui::GetuiClient;
use crate::upstream::http::ClientBuildError;
use crate::upstream::wecom::WecomClient;

/// Why the daemon could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is incomplete (a secret is missing).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An upstream client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
}

/// A daemon whose listener is bound and whose store is open, ready to run.
pub struct Daemon {
    listener: TcpListener,
    addr: SocketAddr,
    store: Arc<SledStore>,
    dispatcher: Dispatcher,
    api: Arc<ApiState>,
    shutdown: CancellationToken,
    /// `store.retention_days` (0: keep finished campaigns forever).
    retention_days: u32,
}

impl Daemon {
    /// Opens the store, builds the clients and binds the listener (port 0 picks a free port).
    /// Secrets are read through `env`.
    pub async fn build(config: &Config, env: impl Fn(&str) -> Option<String> + Copy) -> Result<Daemon, DaemonError> {
        let tokens = config.api_tokens(env)?;
        let metrics = Arc::new(Metrics::new());
        let mut apps = Vec::new();
        let mut agents = Vec::new();
        for (name, app) in &config.apps {
            let upstream = match app.channel {
                Channel::Getui => {
                    let observer = Arc::new(UpstreamObserver::new(name, metrics.clone()));
                    Upstream::Getui(GetuiClient::with_observer(
                        config.getui_settings_with_env(name, env)?,
                        Some(observer),
                    )?)
                }
                Channel::Wecom => {
                    agents.extend(config.callback_agent_with_env(name, env)?);
                    let observer = Arc::new(UpstreamObserver::new(name, metrics.clone()));
                    let client = WecomClient::new(config.wecom_settings_with_env(name, env)?)?;
                    Upstream::Wecom(client.with_observer(observer))
                }
            };
            apps.push(Arc::new(AppSender::new(name, upstream, app.calls_per_second, metrics.clone())));
        }
        let settings = StoreSettings { path: config.store.path.clone(), cache_bytes: config.store.cache_mb << 20 };
        // Opening replays sled's log and may wait up to ten seconds for a file lock.
        let store = tokio::task::spawn_blocking(move || SledStore::open(&settings))
            .await
            .map_err(|e| StoreError::Db(format!("the store could not be opened: {e}")))??;
        let shutdown = CancellationToken::new();
        let d = &config.dispatch;
        let settings = DispatchSettings {
            shards: d.shards,
            poll_interval: Duration::from_millis(d.poll_interval_ms),
            retry: RetryPolicy { max_attempts: d.max_attempts, ..RetryPolicy::default() },
        };
        let dyn_store: Arc<dyn Store> = store.clone();
        let dispatcher = Dispatcher::new(dyn_store.clone(), apps, metrics.clone(), settings, shutdown.clone());
        let channels: HashMap<String, &'static str> =
            config.apps.iter().map(|(name, app)| (name.clone(), app.channel.as_str())).collect();
        let api = Arc::new(ApiState::new(
            dyn_store,
            metrics,
            &tokens,
            channels,
            dispatcher.waker(),
            ApiSettings {
                chunk_size: d.chunk_size,
                schedule_horizon_ms: i64::from(d.schedule_horizon_days) * 86_400_000,
            },
            agents,
        ));
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| DaemonError::Bind { addr, source })?;
        let retention_days = config.store.retention_days;
        Ok(Daemon { listener, addr, store, dispatcher, api, shutdown, retention_days })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cancelling this token stops the daemon gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains and closes the store.
    pub async fn run(self) -> Result<(), DaemonError> {
        let dispatcher = tokio::spawn(self.dispatcher.run());
        let store: Arc<dyn Store> = self.store.clone();
        let retention = tokio::spawn(crate::retention::run(store, self.retention_days, self.shutdown.clone()));
        let api = self.api.clone();
        crate::notify::ready();
        crate::notify::spawn_watchdog(self.shutdown.clone());
        let stopping = self.shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            crate::notify::stopping();
        });
        crate::serve::serve(self.listener, move |req, peer| api::handle(api.clone(), req, peer), self.shutdown.clone())
            .await;
        let _ = dispatcher.await;
        let _ = retention.await;
        self.store.flush().await?;
        self.store.close().await?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}
