//! The daemon: opens the store, builds the upstream clients, and runs the dispatcher and the
//! HTTP API until its shutdown token is cancelled. It owns shutdown: stop accepting, let the
//! shards settle their chunks, flush the store, close it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiSettings, ApiState, LegacyApp, LegacyIngress};
use crate::config::{Channel, Config, ConfigError, StoreBackend};
use crate::dispatch::{new_member_id, AppSender, DispatchSettings, Dispatcher, RetryPolicy, SmsGateway, Upstream};
use crate::metrics::{Metrics, UpstreamObserver};
use crate::seal::SealKey;
use crate::serve::ConnectionLimits;
use crate::store::{NatsSettings, NatsStore, PatientStore, SledStore, Store, StoreError, StoreSettings};
use crate::upstream::getui::GetuiClient;
use crate::upstream::http::ClientBuildError;
use crate::upstream::sms::{SmsClientBuildError, TencentSmsClient};
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
    /// An SMS gateway client could not be built.
    #[error(transparent)]
    Sms(#[from] SmsClientBuildError),
}

/// App `name`'s SMS gateway for fallback texts, when it has an `[apps.NAME.sms]`.
fn sms_gateway(
    config: &Config,
    name: &str,
    env: impl Fn(&str) -> Option<String>,
    seal: Option<SealKey>,
    metrics: &Arc<Metrics>,
) -> Result<Option<SmsGateway>, DaemonError> {
    let Some(settings) = config.sms_settings_with_env(name, env)? else { return Ok(None) };
    let Some(section) = config.sms_of(name)? else { return Ok(None) };
    let observer = Arc::new(UpstreamObserver::new(name, metrics.clone()));
    // The outcomes the failure-share alert divides exist from the start, at 0, so a rate over
    // them has two samples as soon as the first texts go out.
    for result in ["sent", "delivered", "failed"] {
        metrics.sms_total.with_label_values(&[name, result]);
    }
    Ok(Some(SmsGateway::new(
        TencentSmsClient::new(settings)?.with_observer(observer),
        section.sign_name.clone(),
        section.templates.iter().map(|t| (t.id.clone(), t.text.clone())).collect(),
        config.sms_window(name)?,
        seal,
    )))
}

/// Binds `addr` and returns the listener with its actual address (port 0 picks a free port).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), DaemonError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| DaemonError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// Longest one dispatcher call waits for a lost NATS to come back before it fails as it would
/// have at once (see `store::PatientStore`); shutdown ends the wait sooner.
const NATS_OUTAGE_PATIENCE: Duration = Duration::from_secs(3600);

/// The opened store, of the backend `store.backend` names.
enum OpenStore {
    Sled(Arc<SledStore>),
    Nats(Arc<NatsStore>),
}

impl OpenStore {
    /// Opens the configured backend.
    async fn open(config: &Config, env: impl Fn(&str) -> Option<String>) -> Result<OpenStore, DaemonError> {
        match (config.store.backend, &config.store.nats) {
            (StoreBackend::Nats, Some(nats)) => {
                let settings = NatsSettings {
                    url: nats.url.clone(),
                    stream_prefix: nats.stream_prefix.clone(),
                    replicas: nats.replicas,
                    credentials: config.nats_credentials(env)?,
                };
                Ok(OpenStore::Nats(NatsStore::open(&settings).await?))
            }
            _ => {
                let settings =
                    StoreSettings { path: config.store.path.clone(), cache_bytes: config.store.cache_mb << 20 };
                // Opening replays sled's log and may wait up to ten seconds for a file lock.
                let store = tokio::task::spawn_blocking(move || SledStore::open(&settings))
                    .await
                    .map_err(|e| StoreError::Db(format!("the store could not be opened: {e}")))??;
                Ok(OpenStore::Sled(store))
            }
        }
    }

    fn shared(&self) -> Arc<dyn Store> {
        match self {
            OpenStore::Sled(s) => s.clone(),
            OpenStore::Nats(s) => s.clone(),
        }
    }

    /// The store as the dispatcher uses it: on NATS, its calls wait out an outage (up to
    /// [`NATS_OUTAGE_PATIENCE`]), which pauses dispatch until NATS is back.
    fn for_dispatch(&self, shutdown: &CancellationToken) -> Arc<dyn Store> {
        match self {
            OpenStore::Sled(s) => s.clone(),
            OpenStore::Nats(s) => PatientStore::wrap(s.clone(), NATS_OUTAGE_PATIENCE, shutdown.clone()),
        }
    }

    /// Flushes and, for sled, stops the writer thread.
    async fn close(&self) -> Result<(), StoreError> {
        match self {
            OpenStore::Sled(s) => {
                s.flush().await?;
                s.close().await
            }
            OpenStore::Nats(s) => s.flush().await,
        }
    }
}

/// A daemon whose listener is bound and whose store is open, ready to run.
pub struct Daemon {
    listener: TcpListener,
    addr: SocketAddr,
    /// The WeCom callback's own listener (`server.callback_listen`), when configured.
    callback: Option<(TcpListener, SocketAddr)>,
    limits: ConnectionLimits,
    store: OpenStore,
    dispatcher: Dispatcher,
    api: Arc<ApiState>,
    shutdown: CancellationToken,
    /// `store.retention_days` (0: keep finished campaigns forever).
    retention_days: u32,
}

/// The legacy SDK ingress of the configuration, answering host discovery with `public_url`
/// or, by default, the address of the listener that serves it.
fn legacy_ingress(
    config: &Config,
    serving: SocketAddr,
    apps: HashMap<String, LegacyApp>,
    metrics: &Metrics,
) -> LegacyIngress {
    // The series of the dashboard's panel exist from the start, at 0.
    for result in ["success", "sign_error"] {
        metrics.legacy_requests_total.with_label_values(&["connect", result]);
    }
    let l = &config.legacy;
    LegacyIngress {
        public_url: l
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{serving}"))
            .trim_end_matches('/')
            .to_owned(),
        token_ttl: Duration::from_secs(l.token_ttl_s),
        connect_skew: Duration::from_secs(l.connect_skew_s),
        single_wait: Duration::from_millis(l.single_wait_ms),
        apps,
    }
}

/// One Getui app as the legacy SDK knows it, with its SMS templates' legacy variable names.
fn legacy_app(config: &Config, name: &str, settings: &crate::config::GetuiSettings) -> LegacyApp {
    let templates = config.apps.get(name).and_then(|a| a.sms.as_ref()).map(|s| s.templates.as_slice()).unwrap_or(&[]);
    LegacyApp {
        name: name.to_owned(),
        app_key: settings.app_key.clone(),
        app_id: settings.app_id.clone(),
        master_secret: settings.master_secret.clone(),
        sms_vars: templates
            .iter()
            .filter(|t| !t.legacy_vars.is_empty())
            .map(|t| (t.id.clone(), t.legacy_vars.clone()))
            .collect(),
    }
}

impl Daemon {
    /// Opens the store, builds the clients and binds the listener (port 0 picks a free port).
    /// Secrets are read through `env`.
    pub async fn build(config: &Config, env: impl Fn(&str) -> Option<String> + Copy) -> Result<Daemon, DaemonError> {
        let tokens = config.api_tokens(env)?;
        let seal_key = config.seal_key(env)?;
        let metrics = Arc::new(Metrics::new());
        let mut apps = Vec::new();
        let mut agents = Vec::new();
        let mut receipt_secrets = HashMap::new();
        let mut legacy_apps = HashMap::new();
        for (name, app) in &config.apps {
            let upstream = match app.channel {
                Channel::Getui => {
                    let observer = Arc::new(UpstreamObserver::new(name, metrics.clone()));
                    let settings = config.getui_settings_with_env(name, env)?;
                    // Receipt lines are signed with the same AppId and MasterSecret, and the
                    // legacy SDK authenticates with the AppKey and MasterSecret.
                    receipt_secrets.insert(name.clone(), (settings.app_id.clone(), settings.master_secret.clone()));
                    legacy_apps.insert(settings.app_key.clone(), legacy_app(config, name, &settings));
                    Upstream::Getui(GetuiClient::with_observer(settings, Some(observer))?)
                }
                Channel::Wecom => {
                    agents.extend(config.callback_agent_with_env(name, env)?);
                    let observer = Arc::new(UpstreamObserver::new(name, metrics.clone()));
                    let client = WecomClient::new(config.wecom_settings_with_env(name, env)?)?.with_observer(observer);
                    match config.wecom_duplicate_check(name)? {
                        Some(interval) => Upstream::Wecom(client.with_duplicate_check(interval)),
                        None => Upstream::Wecom(client),
                    }
                }
            };
            let sms = sms_gateway(config, name, env, seal_key.clone(), &metrics)?;
            apps.push(Arc::new(AppSender::new(name, upstream, app.calls_per_second, metrics.clone()).with_sms(sms)));
        }
        let store = OpenStore::open(config, env).await?;
        let shutdown = CancellationToken::new();
        let d = &config.dispatch;
        let lease_ms = config.store.nats.as_ref().map_or(crate::config::DEFAULT_LEASE_MS, |n| n.lease_ms);
        let settings = DispatchSettings {
            shards: d.shards,
            poll_interval: Duration::from_millis(d.poll_interval_ms),
            retry: RetryPolicy { max_attempts: d.max_attempts, ..RetryPolicy::default() },
            // Fresh at every start: the holder name of this daemon's chunk leases.
            member: new_member_id(),
            lease: Duration::from_millis(lease_ms),
        };
        let dyn_store: Arc<dyn Store> = store.shared();
        let dispatcher =
            Dispatcher::new(store.for_dispatch(&shutdown), apps, metrics.clone(), settings, shutdown.clone());
        let (listener, addr) = bind(config.server.listen).await?;
        let callback = match config.server.callback_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let legacy = legacy_ingress(config, callback.as_ref().map_or(addr, |(_, a)| *a), legacy_apps, &metrics);
        let channels: HashMap<String, Channel> =
            config.apps.iter().map(|(name, app)| (name.clone(), app.channel)).collect();
        let api = Arc::new(
            ApiState::new(
                dyn_store,
                metrics,
                &tokens,
                channels,
                dispatcher.waker(),
                ApiSettings {
                    chunk_size: d.chunk_size,
                    schedule_horizon_ms: i64::from(d.schedule_horizon_days) * 86_400_000,
                    max_recipients: d.max_recipients,
                },
                agents,
            )
            .with_body_timeout(Duration::from_millis(config.server.body_timeout_ms))
            .with_seal_key(seal_key)
            .with_upload_spill_dir(upload_spill_dir(&config.store.path))
            .with_sms(config.sms_facts())
            .with_receipt_secrets(receipt_secrets)
            .with_legacy(legacy),
        );
        let limits = ConnectionLimits {
            max_connections: config.server.max_connections,
            idle_timeout: Some(Duration::from_millis(config.server.idle_timeout_ms)),
        };
        let retention_days = config.store.retention_days;
        Ok(Daemon { listener, addr, callback, limits, store, dispatcher, api, shutdown, retention_days })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the WeCom callback's own listener, when `server.callback_listen` is set.
    pub fn callback_addr(&self) -> Option<SocketAddr> {
        self.callback.as_ref().map(|(_, addr)| *addr)
    }

    /// Cancelling this token stops the daemon gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains and closes the store.
    pub async fn run(self) -> Result<(), DaemonError> {
        let dispatcher = tokio::spawn(self.dispatcher.run());
        let store: Arc<dyn Store> = self.store.shared();
        let retention = tokio::spawn(crate::retention::run(store, self.retention_days, self.shutdown.clone()));
        let api = self.api.clone();
        api.follow_shutdown(self.shutdown.clone());
        crate::notify::ready();
        crate::notify::spawn_watchdog(self.shutdown.clone());
        let stopping = self.shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            crate::notify::stopping();
        });
        let main_face = if self.callback.is_some() { api::Face::Control } else { api::Face::All };
        let callback = self.callback.map(|(listener, _)| {
            let api = api.clone();
            let handler = move |req, peer| api::handle_on(api::Face::Callback, api.clone(), req, peer);
            tokio::spawn(crate::serve::serve_limited(listener, handler, self.shutdown.clone(), self.limits))
        });
        let handler = move |req, peer| api::handle_on(main_face, api.clone(), req, peer);
        crate::serve::serve_limited(self.listener, handler, self.shutdown.clone(), self.limits).await;
        if let Some(task) = callback {
            let _ = task.await;
        }
        let _ = dispatcher.await;
        let _ = retention.await;
        self.store.close().await?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Where uploads spill their cids for the duplicate check: inside the store's directory, on
/// the same disk (sled leaves files it does not know alone, as it does the identity file).
fn upload_spill_dir(store: &std::path::Path) -> std::path::PathBuf {
    store.join("upload-spill")
}
