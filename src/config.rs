//! The daemon's configuration: TOML on disk, typed and validated before anything starts.
//!
//! Every error names the key at fault. Secrets never live in the file: it names environment
//! variables that hold them. The one exception is the simulator's well-known development
//! master secret, accepted inline under `dev_master_secret` and refused for any other value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dev::{DEV_MASTER_SECRET, DEV_WECOM_AES_KEY, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_SECRET};
use crate::secret::Secret;
use crate::upstream::getui::GetuiSettings;
use crate::upstream::http::PoolSettings;
use crate::upstream::wecom::WecomSettings;
use crate::wecom::callback::{CallbackAgent, ReplyRule};
use crate::wecom::{MsgCrypt, ReplyMessage};

/// Where `serve`, `probe` and `check-config` look when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/campaignd.toml";

/// A configuration problem, naming the file or key so the reader knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (unknown key, wrong type).
    #[error("config file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line, column and key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config key `{key}`: {problem}")]
    Invalid {
        /// Dotted path of the key, e.g. `apps.main.getui.base_url`.
        key: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into() }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    pub server: ServerConfig,
    /// The on-disk store.
    pub store: StoreConfig,
    /// Who may use the control API.
    pub api: ApiConfig,
    /// How campaigns are sent.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Apps by name; the name is what campaigns and metric labels use.
    pub apps: BTreeMap<String, AppConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP API, `/metrics` and (unless `callback_listen` is set) the WeCom
    /// callback.
    pub listen: SocketAddr,
    /// When set, the WeCom callback (and `/healthz`) is served on this address only, apart
    /// from `/v1` and `/metrics`: the callback faces the internet, the rest should not.
    #[serde(default)]
    pub callback_listen: Option<SocketAddr>,
    /// Open connections per listener; further clients wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Deadline for reading a whole JSON or XML request body (campaign definitions, WeCom
    /// callbacks), ms; a slower client gets 408.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Longest silence while the server waits to read from a connection (between the bytes
    /// of any body, uploads included, and between keep-alive requests), ms; then it is closed.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

fn default_max_connections() -> usize {
    10_000
}

fn default_body_timeout_ms() -> u64 {
    30_000
}

fn default_idle_timeout_ms() -> u64 {
    30_000
}

impl ServerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid("server.max_connections", format!("{} is outside 1..=1000000", self.max_connections)));
        }
        for (key, v) in
            [("server.body_timeout_ms", self.body_timeout_ms), ("server.idle_timeout_ms", self.idle_timeout_ms)]
        {
            if !(100..=3_600_000).contains(&v) {
                return Err(invalid(key, format!("{v} is outside 100..=3600000 ms")));
            }
        }
        if self.callback_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(invalid("server.callback_listen", "must differ from server.listen (or be left out)"));
        }
        Ok(())
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the on-disk store.
    pub path: PathBuf,
    /// sled's page cache in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// Days a finished campaign is kept before retention removes it; 0 keeps them forever.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_cache_mb() -> u64 {
    64
}

fn default_retention_days() -> u32 {
    30
}

/// Longest `store.retention_days` (a hundred years; use 0 to keep campaigns forever).
const MAX_RETENTION_DAYS: u32 = 36_500;

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Environment variable holding the accepted bearer tokens, comma-separated.
    pub tokens_env: Option<String>,
    /// Development only: the published development token.
    pub dev_token: Option<String>,
}

/// The published development API token, accepted inline in the configuration.
pub const DEV_API_TOKEN: &str = "campaignd-dev-token";

/// `[dispatch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Shard tasks sending concurrently.
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Recipients per stored chunk (and per list push), 1..=1000; batch campaigns use ≤ 200.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// Attempts for a call failing transiently before its recipients are recorded as failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How often the scheduler looks for due and changed campaigns, ms.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How far ahead a campaign may be scheduled, days (Getui-held schedules: at most 7).
    #[serde(default = "default_horizon_days")]
    pub schedule_horizon_days: u32,
    /// Most recipients one campaign may hold; an upload that would pass it is refused whole.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            shards: default_shards(),
            chunk_size: default_chunk_size(),
            max_attempts: default_max_attempts(),
            poll_interval_ms: default_poll_ms(),
            schedule_horizon_days: default_horizon_days(),
            max_recipients: default_max_recipients(),
        }
    }
}

fn default_shards() -> usize {
    8
}
fn default_chunk_size() -> usize {
    1000
}
fn default_max_attempts() -> u32 {
    8
}
fn default_poll_ms() -> u64 {
    200
}
/// Upper bound of `dispatch.max_recipients`: a million chunks of 1000, far inside what a
/// request id can number.
const MAX_RECIPIENTS_LIMIT: u64 = 1_000_000_000;
fn default_max_recipients() -> u64 {
    50_000_000
}
fn default_horizon_days() -> u32 {
    7
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `campaignd=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: default_log_level() }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// The send channels an app can use (the domain's vocabulary; `channel = "getui"` in TOML).
pub use crate::domain::Channel;

/// `[apps.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Which vendor the app sends through.
    pub channel: Channel,
    /// API calls per second for this app, all shards together (unlimited when absent).
    #[serde(default)]
    pub calls_per_second: Option<u32>,
    /// Getui credentials and connection settings (required when `channel = "getui"`).
    pub getui: Option<GetuiAppConfig>,
    /// WeCom application settings (required when `channel = "wecom"`).
    pub wecom: Option<WecomAppConfig>,
}

/// `[apps.NAME.wecom]`: one WeCom self-built application (企业内部应用).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomAppConfig {
    /// Base URL up to `/cgi-bin` (real: `https://qyapi.weixin.qq.com/cgi-bin`).
    pub base_url: String,
    /// The company's CorpID (also the callback's receive id).
    pub corp_id: String,
    /// The application's AgentId.
    pub agent_id: i64,
    /// Environment variable holding the application's Secret.
    pub secret_env: Option<String>,
    /// Development only: the simulator's published Secret.
    pub dev_secret: Option<String>,
    /// TCP connect timeout, ms.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline of one HTTP exchange, ms.
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    /// Ask WeCom not to deliver the same content to a member twice within
    /// `duplicate_check_interval_s` (`enable_duplicate_check`), so a retried send is harmless.
    #[serde(default = "default_duplicate_check")]
    pub duplicate_check: bool,
    /// `duplicate_check_interval`, seconds (1..=14400; WeCom's default 1800).
    #[serde(default = "default_duplicate_check_interval")]
    pub duplicate_check_interval_s: u64,
    /// The encrypted callback at `/wecom/NAME/callback`; absent means no callback.
    pub callback: Option<CallbackConfig>,
}

/// `[apps.NAME.wecom.callback]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// Environment variable holding the callback Token.
    pub token_env: Option<String>,
    /// Development only: the simulator's published Token.
    pub dev_token: Option<String>,
    /// Environment variable holding the 43-character EncodingAESKey.
    pub aes_key_env: Option<String>,
    /// Development only: the simulator's published EncodingAESKey.
    pub dev_aes_key: Option<String>,
    /// Deliveries whose timestamp is further than this from now are refused, seconds.
    #[serde(default = "default_timestamp_window")]
    pub timestamp_window_s: u64,
    /// Text messages equal to one of these (trimmed, case-insensitive) opt the sender out.
    #[serde(default = "default_opt_out")]
    pub opt_out_keywords: Vec<String>,
    /// Text messages equal to one of these opt the sender back in.
    #[serde(default = "default_opt_in")]
    pub opt_in_keywords: Vec<String>,
    /// Passive replies to keywords and menu clicks, first match wins.
    #[serde(default)]
    pub replies: Vec<ReplyRuleConfig>,
}

/// One `[[apps.NAME.wecom.callback.replies]]` rule: a keyword or a menu key, and the reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRuleConfig {
    /// A text message containing this keyword.
    pub keyword: Option<String>,
    /// A menu click with this EventKey.
    pub click: Option<String>,
    /// What to answer.
    pub reply: ReplyMessage,
}

fn default_duplicate_check() -> bool {
    true
}
fn default_duplicate_check_interval() -> u64 {
    1800
}
fn default_timestamp_window() -> u64 {
    300
}
fn default_opt_out() -> Vec<String> {
    vec!["TD".into(), "退订".into()]
}
fn default_opt_in() -> Vec<String> {
    vec!["订阅".into()]
}

/// `[apps.NAME.getui]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetuiAppConfig {
    /// Base URL up to `/v2`.
    pub base_url: String,
    /// AppId from the Getui console.
    pub app_id: String,
    /// AppKey from the Getui console.
    pub app_key: String,
    /// Name of the environment variable holding the MasterSecret.
    pub master_secret_env: Option<String>,
    /// Development only: the simulator's published MasterSecret, written inline.
    pub dev_master_secret: Option<String>,
    /// TCP connect timeout, ms.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline of one HTTP exchange, ms.
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    /// Idle pooled connections close after this, ms.
    #[serde(default = "default_idle_ms")]
    pub pool_idle_timeout_ms: u64,
    /// Most idle connections kept to the upstream.
    #[serde(default = "default_max_idle")]
    pub max_idle_per_host: usize,
    /// Renew the token this many seconds before it expires.
    #[serde(default = "default_refresh_margin")]
    pub token_refresh_margin_s: u64,
}

fn default_connect_ms() -> u64 {
    5_000
}
fn default_request_ms() -> u64 {
    10_000
}
fn default_idle_ms() -> u64 {
    20_000
}
fn default_max_idle() -> usize {
    64
}
fn default_refresh_margin() -> u64 {
    3_600
}

impl Config {
    /// Reads, parses and validates a file, resolving secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty; try \"info\""));
        }
        self.validate_sections()?;
        self.server.validate()?;
        if self.apps.is_empty() {
            return Err(invalid("apps", "define at least one app, e.g. [apps.main]"));
        }
        for (name, app) in &self.apps {
            validate_app_name(name)?;
            app.validate(name)?;
        }
        Ok(())
    }

    fn validate_sections(&self) -> Result<(), ConfigError> {
        let d = &self.dispatch;
        if !(1..=256).contains(&d.shards) {
            return Err(invalid("dispatch.shards", format!("{} is outside 1..=256", d.shards)));
        }
        if !(1..=1000).contains(&d.chunk_size) {
            return Err(invalid(
                "dispatch.chunk_size",
                format!("{} is outside 1..=1000 (Getui takes at most 1000 cids a call)", d.chunk_size),
            ));
        }
        if d.max_attempts == 0 {
            return Err(invalid("dispatch.max_attempts", "must be at least 1"));
        }
        if !(10..=60_000).contains(&d.poll_interval_ms) {
            return Err(invalid("dispatch.poll_interval_ms", "must be within 10..=60000"));
        }
        if !(1..=365).contains(&d.schedule_horizon_days) {
            return Err(invalid("dispatch.schedule_horizon_days", "must be within 1..=365"));
        }
        if !(1..=MAX_RECIPIENTS_LIMIT).contains(&d.max_recipients) {
            return Err(invalid(
                "dispatch.max_recipients",
                format!("{} is outside 1..={MAX_RECIPIENTS_LIMIT}", d.max_recipients),
            ));
        }
        if !(8..=65_536).contains(&self.store.cache_mb) {
            return Err(invalid("store.cache_mb", "must be within 8..=65536"));
        }
        if self.store.retention_days > MAX_RETENTION_DAYS {
            return Err(invalid(
                "store.retention_days",
                format!("must be within 0..={MAX_RETENTION_DAYS} (0 keeps finished campaigns forever)"),
            ));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must name a directory"));
        }
        if let Some(dev) = &self.api.dev_token {
            if dev != DEV_API_TOKEN {
                return Err(invalid(
                    "api.dev_token",
                    "only the published development token may be written in the file; put real tokens in the \
                     environment and name the variable in api.tokens_env",
                ));
            }
        }
        if self.api.tokens_env.is_none() && self.api.dev_token.is_none() {
            return Err(invalid("api.tokens_env", "name the environment variable that holds the API tokens"));
        }
        Ok(())
    }

    /// The accepted API tokens: from the named variable (comma-separated) when set, else the
    /// development token.
    pub fn api_tokens(&self, env: impl Fn(&str) -> Option<String>) -> Result<Vec<Secret>, ConfigError> {
        if let Some(var) = &self.api.tokens_env {
            if let Some(v) = env(var) {
                let tokens: Vec<Secret> =
                    v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(Secret::new).collect();
                if tokens.iter().any(|t| t.expose().len() < 16) {
                    return Err(invalid(
                        "api.tokens_env",
                        format!("every token in {var} must be at least 16 characters"),
                    ));
                }
                if !tokens.is_empty() {
                    return Ok(tokens);
                }
            }
        }
        match (&self.api.dev_token, &self.api.tokens_env) {
            (Some(dev), _) => Ok(vec![Secret::new(dev.clone())]),
            (None, Some(var)) => Err(invalid(
                "api.tokens_env",
                format!("environment variable {var} is not set; export it with one or more comma-separated tokens"),
            )),
            (None, None) => Err(invalid("api.tokens_env", "missing")),
        }
    }

    /// The resolved client settings of app `name`, secret included.
    pub fn getui_settings(&self, name: &str) -> Result<GetuiSettings, ConfigError> {
        self.getui_settings_with_env(name, |k| std::env::var(k).ok())
    }

    /// Like [`Config::getui_settings`], reading variables through `env` (for tests).
    pub fn getui_settings_with_env(
        &self,
        name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<GetuiSettings, ConfigError> {
        let known = || self.apps.keys().cloned().collect::<Vec<_>>().join(", ");
        let app =
            self.apps.get(name).ok_or_else(|| invalid("apps", format!("no app named {name:?}; known: {}", known())))?;
        let g = app.getui.as_ref().ok_or_else(|| invalid(format!("apps.{name}.getui"), "missing"))?;
        Ok(GetuiSettings {
            base_url: g.base_url.clone(),
            app_id: g.app_id.clone(),
            app_key: g.app_key.clone(),
            master_secret: g.master_secret(name, env)?,
            request_timeout: Duration::from_millis(g.request_timeout_ms),
            token_refresh_margin: Duration::from_secs(g.token_refresh_margin_s),
            pool: PoolSettings {
                connect_timeout: Duration::from_millis(g.connect_timeout_ms),
                pool_idle_timeout: Duration::from_millis(g.pool_idle_timeout_ms),
                max_idle_per_host: g.max_idle_per_host,
            },
        })
    }

    /// The resolved WeCom client settings of app `name`, secret included.
    pub fn wecom_settings_with_env(
        &self,
        name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<WecomSettings, ConfigError> {
        let w = self.wecom_of(name)?;
        let key = format!("apps.{name}.wecom.secret_env");
        Ok(WecomSettings {
            base_url: w.base_url.clone(),
            corp_id: w.corp_id.clone(),
            agent_id: w.agent_id,
            secret: resolve_secret(&key, w.secret_env.as_deref(), w.dev_secret.as_deref(), &env, "the app's Secret")?,
            request_timeout: Duration::from_millis(w.request_timeout_ms),
            pool: PoolSettings {
                connect_timeout: Duration::from_millis(w.connect_timeout_ms),
                ..PoolSettings::default()
            },
        })
    }

    /// The callback agent of WeCom app `name`, if it has a callback.
    pub fn callback_agent_with_env(
        &self,
        name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<CallbackAgent>, ConfigError> {
        let w = self.wecom_of(name)?;
        let Some(c) = &w.callback else { return Ok(None) };
        let key = |k: &str| format!("apps.{name}.wecom.callback.{k}");
        let token =
            resolve_secret(&key("token_env"), c.token_env.as_deref(), c.dev_token.as_deref(), &env, "the Token")?;
        let aes = resolve_secret(
            &key("aes_key_env"),
            c.aes_key_env.as_deref(),
            c.dev_aes_key.as_deref(),
            &env,
            "the EncodingAESKey",
        )?;
        let crypt = MsgCrypt::new(token.expose(), aes.expose(), &w.corp_id)
            .map_err(|e| invalid(key("aes_key_env"), format!("the EncodingAESKey is not usable: {e}")))?;
        let replies = c
            .replies
            .iter()
            .map(|r| ReplyRule { keyword: r.keyword.clone(), click: r.click.clone(), reply: r.reply.clone() })
            .collect();
        Ok(Some(CallbackAgent {
            app: name.to_owned(),
            corp_id: w.corp_id.clone(),
            crypt,
            timestamp_window: Duration::from_secs(c.timestamp_window_s),
            opt_out_keywords: c.opt_out_keywords.clone(),
            opt_in_keywords: c.opt_in_keywords.clone(),
            replies,
        }))
    }

    /// How long WeCom should drop a repeated send of app `name`; `None` when its duplicate
    /// check is off.
    pub fn wecom_duplicate_check(&self, name: &str) -> Result<Option<Duration>, ConfigError> {
        let w = self.wecom_of(name)?;
        Ok(w.duplicate_check.then(|| Duration::from_secs(w.duplicate_check_interval_s)))
    }

    fn wecom_of(&self, name: &str) -> Result<&WecomAppConfig, ConfigError> {
        let app = self.apps.get(name).ok_or_else(|| invalid("apps", format!("no app named {name:?}")))?;
        app.wecom.as_ref().ok_or_else(|| invalid(format!("apps.{name}.wecom"), "missing"))
    }

    /// Checks that every app's secret can be resolved now, so a missing variable stops the
    /// daemon at start rather than at the first send.
    pub fn check_secrets(&self, env: impl Fn(&str) -> Option<String> + Copy) -> Result<(), ConfigError> {
        for (name, app) in &self.apps {
            match app.channel {
                Channel::Getui => drop(self.getui_settings_with_env(name, env)?),
                Channel::Wecom => {
                    self.wecom_settings_with_env(name, env)?;
                    self.callback_agent_with_env(name, env)?;
                }
            }
        }
        self.api_tokens(env)?;
        Ok(())
    }
}

/// App names become metric label values and URL segments: keep them short and plain.
fn validate_app_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("apps.{name}"), "app names are 1-32 of a-z, 0-9, '_' and '-', starting with a letter"))
    }
}

impl AppConfig {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        match (self.channel, &self.getui, &self.wecom) {
            (Channel::Getui, Some(g), None) => g.validate(name),
            (Channel::Wecom, None, Some(w)) => w.validate(name),
            (Channel::Getui, _, Some(_)) | (Channel::Wecom, Some(_), _) => Err(invalid(
                format!("apps.{name}"),
                "an app sends through one channel: keep only the table its `channel` names",
            )),
            (c, ..) => Err(invalid(
                format!("apps.{name}.{}", c.as_str()),
                format!("channel is {:?} but the [apps.NAME.{}] table is missing", c.as_str(), c.as_str()),
            )),
        }
    }
}

impl WecomAppConfig {
    fn validate(&self, app: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("apps.{app}.wecom.{k}");
        check_base_url(&key("base_url"), &self.base_url, "https://qyapi.weixin.qq.com/cgi-bin")?;
        if self.corp_id.trim().is_empty() {
            return Err(invalid(key("corp_id"), "must be the CorpID from the WeCom admin console"));
        }
        if self.agent_id <= 0 {
            return Err(invalid(key("agent_id"), "must be the application's AgentId, a positive number"));
        }
        check_dev_value(&key("dev_secret"), self.dev_secret.as_deref(), DEV_WECOM_SECRET, "secret_env")?;
        if self.secret_env.is_none() && self.dev_secret.is_none() {
            return Err(invalid(key("secret_env"), "name the environment variable that holds the app's Secret"));
        }
        for (k, v) in [("connect_timeout_ms", self.connect_timeout_ms), ("request_timeout_ms", self.request_timeout_ms)]
        {
            if !(1..=600_000).contains(&v) {
                return Err(invalid(key(k), format!("{v} is outside 1..=600000 ms")));
            }
        }
        let longest = u64::from(crate::wire::wecom::MAX_DUPLICATE_CHECK_SECS);
        if !(1..=longest).contains(&self.duplicate_check_interval_s) {
            let v = self.duplicate_check_interval_s;
            return Err(invalid(key("duplicate_check_interval_s"), format!("{v} is outside 1..={longest} seconds")));
        }
        match &self.callback {
            Some(c) => c.validate(app),
            None => Ok(()),
        }
    }
}

impl CallbackConfig {
    fn validate(&self, app: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("apps.{app}.wecom.callback.{k}");
        check_dev_value(&key("dev_token"), self.dev_token.as_deref(), DEV_WECOM_CALLBACK_TOKEN, "token_env")?;
        check_dev_value(&key("dev_aes_key"), self.dev_aes_key.as_deref(), DEV_WECOM_AES_KEY, "aes_key_env")?;
        if self.token_env.is_none() && self.dev_token.is_none() {
            return Err(invalid(key("token_env"), "name the environment variable that holds the callback Token"));
        }
        if self.aes_key_env.is_none() && self.dev_aes_key.is_none() {
            return Err(invalid(key("aes_key_env"), "name the environment variable that holds the EncodingAESKey"));
        }
        if !(1..=3_600).contains(&self.timestamp_window_s) {
            return Err(invalid(key("timestamp_window_s"), "must be within 1..=3600 seconds"));
        }
        for (i, r) in self.replies.iter().enumerate() {
            let at = key(&format!("replies[{i}]"));
            match (&r.keyword, &r.click) {
                (Some(k), None) | (None, Some(k)) if !k.trim().is_empty() => {}
                _ => return Err(invalid(at, "give exactly one non-empty `keyword` or `click`")),
            }
            r.reply.validate().map_err(|m| invalid(format!("{at}.reply"), m))?;
        }
        Ok(())
    }
}

/// Only the simulator's published development value may be written inline.
fn check_dev_value(key: &str, value: Option<&str>, published: &str, env_key: &str) -> Result<(), ConfigError> {
    match value {
        Some(v) if v != published => Err(invalid(
            key,
            format!(
                "only the simulator's published development value may be written in the file; put real secrets \
                 in the environment and name the variable in {env_key}"
            ),
        )),
        _ => Ok(()),
    }
}

/// A secret from the named variable when set, else the development value.
fn resolve_secret(
    key: &str,
    var: Option<&str>,
    dev: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Result<Secret, ConfigError> {
    if let Some(value) = var.and_then(env).filter(|v| !v.is_empty()) {
        return Ok(Secret::new(value));
    }
    match (dev, var) {
        (Some(d), _) => Ok(Secret::new(d)),
        (None, Some(v)) => Err(invalid(key, format!("environment variable {v} is not set; export it with {what}"))),
        (None, None) => Err(invalid(key, "missing")),
    }
}

fn check_base_url(key: &str, url: &str, real: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.parse::<hyper::Uri>().is_err() {
        return Err(invalid(key, format!("{url:?} is not an http(s) URL; the real one is {real}")));
    }
    if url.starts_with("http://") && !is_loopback_url(url) {
        return Err(invalid(key, "plain http is only allowed to a loopback simulator; use https"));
    }
    Ok(())
}

impl GetuiAppConfig {
    fn validate(&self, app: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("apps.{app}.getui.{k}");
        let url = &self.base_url;
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.parse::<hyper::Uri>().is_err() {
            return Err(invalid(
                key("base_url"),
                format!("{url:?} is not an http(s) URL; the real one is https://restapi.getui.com/v2"),
            ));
        }
        if url.starts_with("http://") && !is_loopback_url(url) {
            return Err(invalid(key("base_url"), "plain http is only allowed to a loopback simulator; use https"));
        }
        for (k, v) in [("app_id", &self.app_id), ("app_key", &self.app_key)] {
            if v.trim().is_empty() || v.contains('/') {
                return Err(invalid(key(k), "must be the non-empty value from the Getui console"));
            }
        }
        if self.master_secret_env.is_none() && self.dev_master_secret.is_none() {
            return Err(invalid(key("master_secret_env"), "name the environment variable that holds the MasterSecret"));
        }
        if let Some(dev) = &self.dev_master_secret {
            if dev != DEV_MASTER_SECRET {
                return Err(invalid(
                    key("dev_master_secret"),
                    "only the simulator's published development secret may be written in the file; \
                     put real secrets in the environment and name the variable in master_secret_env",
                ));
            }
        }
        for (k, v) in [("connect_timeout_ms", self.connect_timeout_ms), ("request_timeout_ms", self.request_timeout_ms)]
        {
            if !(1..=600_000).contains(&v) {
                return Err(invalid(key(k), format!("{v} is outside 1..=600000 ms")));
            }
        }
        if self.max_idle_per_host == 0 {
            return Err(invalid(key("max_idle_per_host"), "must be at least 1"));
        }
        Ok(())
    }

    /// The MasterSecret: from the named variable if it is set, else the development default.
    fn master_secret(&self, app: &str, env: impl Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
        if let Some(var) = &self.master_secret_env {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                return Ok(Secret::new(value));
            }
        }
        match (&self.dev_master_secret, &self.master_secret_env) {
            (Some(dev), _) => Ok(Secret::new(dev.clone())),
            (None, Some(var)) => Err(invalid(
                format!("apps.{app}.getui.master_secret_env"),
                format!("environment variable {var} is not set; export it with the app's MasterSecret"),
            )),
            (None, None) => Err(invalid(format!("apps.{app}.getui.master_secret_env"), "missing")),
        }
    }
}

/// True when the URL's host is exactly `localhost` or an IP literal in 127.0.0.0/8 or `::1`.
/// The host is parsed as an address, never matched by prefix: `127.evil.example` and
/// `127.0.0.1.nip.io` are names anyone can point anywhere.
fn is_loopback_url(url: &str) -> bool {
    let Some(host) = url.parse::<hyper::Uri>().ok().and_then(|u| u.host().map(str::to_owned)) else {
        return false;
    };
    if host == "localhost" {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
    bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../config/campaignd.toml");

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn shipped_config_is_valid_and_uses_the_dev_secret() {
        let cfg = parse(SHIPPED).unwrap();
        let s = cfg.getui_settings_with_env("main", |_| None).unwrap();
        assert_eq!(s.master_secret.expose(), DEV_MASTER_SECRET);
        assert_eq!(s.app_id, crate::dev::DEV_APP_ID);
    }

    #[test]
    fn environment_secret_wins() {
        let cfg = parse(SHIPPED).unwrap();
        let s = cfg.getui_settings_with_env("main", |_| Some("from-env".into())).unwrap();
        assert_eq!(s.master_secret.expose(), "from-env");
        assert!(!format!("{s:?}").contains("from-env"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let text = SHIPPED.replace("[log]", "[log]\ncolour = true");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn inline_real_secret_is_refused() {
        let text = SHIPPED
            .replace(&format!("dev_master_secret = \"{DEV_MASTER_SECRET}\""), "dev_master_secret = \"a-real-secret\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("apps.main.getui.dev_master_secret"), "{err}");
    }

    #[test]
    fn missing_env_secret_names_the_variable() {
        let text = SHIPPED.replace(&format!("dev_master_secret = \"{DEV_MASTER_SECRET}\""), "");
        let cfg = parse(&text).unwrap();
        let err = cfg.getui_settings_with_env("main", |_| None).unwrap_err().to_string();
        assert!(err.contains("CAMPAIGND_MAIN_MASTER_SECRET"), "{err}");
    }

    #[test]
    fn wecom_apps_resolve_their_agent_and_refuse_what_does_not_fit() {
        let cfg = parse(SHIPPED).unwrap();
        let agent = cfg.callback_agent_with_env("staff", |_| None).unwrap().expect("staff has a callback");
        assert_eq!((agent.corp_id.as_str(), agent.replies.len()), (crate::dev::DEV_WECOM_CORP_ID, 2));
        let s = cfg.wecom_settings_with_env("staff", |v| (v == "CAMPAIGND_STAFF_WECOM_SECRET").then(|| "env".into()));
        assert_eq!(s.unwrap().secret.expose(), "env", "the environment wins");
        let cases = [
            (SHIPPED.replace(DEV_WECOM_SECRET, "a-real-secret"), "apps.staff.wecom.dev_secret"),
            (SHIPPED.replace(DEV_WECOM_AES_KEY, "short"), "apps.staff.wecom.callback.dev_aes_key"),
            (SHIPPED.replace("agent_id = 1000002", "agent_id = 0"), "apps.staff.wecom.agent_id"),
            (SHIPPED.replace("timestamp_window_s = 300", "timestamp_window_s = 0"), "timestamp_window_s"),
            (SHIPPED.replace("keyword = \"帮助\"", "keyword = \"帮助\"\nclick = \"K\""), "replies[0]"),
            (SHIPPED.replace("channel = \"wecom\"", "channel = \"getui\""), "apps.staff"),
            (
                SHIPPED.replace("duplicate_check_interval_s = 1800", "duplicate_check_interval_s = 14401"),
                "apps.staff.wecom.duplicate_check_interval_s",
            ),
            (
                SHIPPED.replace("duplicate_check_interval_s = 1800", "duplicate_check_interval_s = 0"),
                "apps.staff.wecom.duplicate_check_interval_s",
            ),
            (SHIPPED.replace("duplicate_check = true", "duplicate_check = 1"), "duplicate_check"),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in {err}");
        }
        assert_eq!(cfg.wecom_duplicate_check("staff").unwrap(), Some(Duration::from_secs(1800)));
        let off = parse(&SHIPPED.replace("duplicate_check = true", "duplicate_check = false")).unwrap();
        assert_eq!(off.wecom_duplicate_check("staff").unwrap(), None);
        let unset = SHIPPED.replace("duplicate_check = true", "").replace("duplicate_check_interval_s = 1800", "");
        let defaults = parse(&unset).unwrap();
        assert_eq!(defaults.wecom_duplicate_check("staff").unwrap(), Some(Duration::from_secs(1800)), "on by default");
        let no_dev = SHIPPED.replace(&format!("dev_secret = \"{DEV_WECOM_SECRET}\""), "");
        let err = parse(&no_dev).unwrap().wecom_settings_with_env("staff", |_| None).unwrap_err().to_string();
        assert!(err.contains("CAMPAIGND_STAFF_WECOM_SECRET"), "{err}");
    }

    #[test]
    fn server_keys_have_defaults_and_are_checked() {
        let cfg = parse(SHIPPED).unwrap();
        let s = &cfg.server;
        assert_eq!(
            (s.max_connections, s.body_timeout_ms, s.idle_timeout_ms, s.callback_listen),
            (10_000, 30_000, 30_000, None)
        );
        let with = |extra: &str| {
            SHIPPED.replace("listen = \"127.0.0.1:8780\"", &format!("listen = \"127.0.0.1:8780\"\n{extra}"))
        };
        let cfg = parse(&with("callback_listen = \"0.0.0.0:8790\"\nmax_connections = 5")).unwrap();
        assert_eq!(
            (cfg.server.callback_listen, cfg.server.max_connections),
            (Some("0.0.0.0:8790".parse().unwrap()), 5)
        );
        for (extra, key) in [
            ("max_connections = 0", "server.max_connections"),
            ("body_timeout_ms = 5", "server.body_timeout_ms"),
            ("idle_timeout_ms = 0", "server.idle_timeout_ms"),
            ("callback_listen = \"127.0.0.1:8780\"", "server.callback_listen"),
            ("callback_listen = \"not an address\"", "callback_listen"),
        ] {
            let err = parse(&with(extra)).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in {err}");
        }
    }

    #[test]
    fn plain_http_is_only_for_loopback_addresses() {
        let with_url = |url: &str| SHIPPED.replace("http://127.0.0.1:8781/v2", url);
        for host in ["127.evil.example", "127.0.0.1.nip.io", "localhost.evil", "127.1", "[::ffff:127.0.0.1]"] {
            let err = parse(&with_url(&format!("http://{host}:8781/v2"))).unwrap_err().to_string();
            assert!(err.contains("apps.main.getui.base_url"), "{host} must be refused: {err}");
        }
        for host in ["[::1]", "127.0.0.2", "localhost", "127.255.0.9"] {
            let url = format!("http://{host}:8781/v2");
            assert!(parse(&with_url(&url)).is_ok(), "{host} is loopback and must be accepted");
        }
        let wecom = SHIPPED.replace("http://127.0.0.1:8781/cgi-bin", "http://127.evil.example/cgi-bin");
        let err = parse(&wecom).unwrap_err().to_string();
        assert!(err.contains("apps.staff.wecom.base_url"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (SHIPPED.replace("http://127.0.0.1:8781/v2", "ftp://x"), "apps.main.getui.base_url"),
            (SHIPPED.replace("http://127.0.0.1:8781/v2", "http://push.example.com/v2"), "apps.main.getui.base_url"),
            (
                SHIPPED.replace("[apps.main]", "[apps.Main]").replace("[apps.main.getui]", "[apps.Main.getui]"),
                "apps.Main",
            ),
            (SHIPPED.replace("request_timeout_ms = 10000", "request_timeout_ms = 0"), "request_timeout_ms"),
            (SHIPPED.replace("# max_recipients = 50000000", "max_recipients = 0"), "dispatch.max_recipients"),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in {err}");
        }
    }

    #[test]
    fn retention_days_has_a_default_and_a_bound() {
        assert_eq!(parse(SHIPPED).unwrap().store.retention_days, 30);
        let omitted = SHIPPED.replace("retention_days = 30", "");
        assert_eq!(parse(&omitted).unwrap().store.retention_days, 30, "the default");
        let forever = SHIPPED.replace("retention_days = 30", "retention_days = 0");
        assert_eq!(parse(&forever).unwrap().store.retention_days, 0);
        let err = parse(&SHIPPED.replace("retention_days = 30", "retention_days = 40000")).unwrap_err().to_string();
        assert!(err.contains("store.retention_days"), "{err}");
    }
}
