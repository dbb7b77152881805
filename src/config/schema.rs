//! The configuration file's shape: every table and key, its type and its default. Nothing
//! here checks values: the sibling `validation` module does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::wecom::ReplyMessage;

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
    /// The legacy Getui SDK ingress (`POST /apiex.htm`).
    #[serde(default)]
    pub legacy: LegacyConfig,
}

/// `[legacy]`: how the legacy Getui SDK ingress answers. It is always served; SDKs authenticate
/// with a Getui app's AppKey and MasterSecret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyConfig {
    /// Base URL at which SDKs reach this daemon (e.g. `https://push.example.com`); host discovery
    /// answers `{public_url}/apiex.htm`. Default: `http://` and the address of the listener
    /// serving the ingress (`server.callback_listen` when set, else `server.listen`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Lifetime of a `connect` token, s; an SDK whose token ran out connects again.
    #[serde(default = "default_legacy_token_ttl_s")]
    pub token_ttl_s: u64,
    /// Largest difference between a `connect` call's timestamp and this machine's clock, s.
    #[serde(default = "default_legacy_connect_skew_s")]
    pub connect_skew_s: u64,
    /// How long `pushMessageToSingle` waits for its push to be sent before answering
    /// `successed_async` (it is sent all the same), ms.
    #[serde(default = "default_legacy_single_wait_ms")]
    pub single_wait_ms: u64,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            public_url: None,
            token_ttl_s: default_legacy_token_ttl_s(),
            connect_skew_s: default_legacy_connect_skew_s(),
            single_wait_ms: default_legacy_single_wait_ms(),
        }
    }
}

fn default_legacy_token_ttl_s() -> u64 {
    86_400
}

fn default_legacy_connect_skew_s() -> u64 {
    600
}

fn default_legacy_single_wait_ms() -> u64 {
    30_000
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
    /// Async worker threads running the API and the dispatcher; when left out, half the CPUs
    /// this process may run on, at least one (see [`ServerConfig::async_workers`]).
    #[serde(default)]
    pub workers: Option<usize>,
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
    /// Which backend holds the campaigns: the embedded sled database at `path` (the default)
    /// or NATS JetStream (`[store.nats]`), which several daemons can share.
    #[serde(default)]
    pub backend: StoreBackend,
    /// `[store.nats]`: required when `backend = "nats"`.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// Name of the environment variable holding the AES-256-GCM key that seals phone numbers
    /// at rest (64 hex characters or base64 of 32 bytes). Without a key, cid↔phone bindings
    /// are refused.
    #[serde(default)]
    pub seal_key_env: Option<String>,
    /// Development only: the published development seal key (`dev::DEV_SEAL_KEY_HEX`),
    /// written inline; used when the variable of `seal_key_env` is unset.
    #[serde(default)]
    pub dev_seal_key: Option<String>,
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded sled database in `store.path`.
    #[default]
    Sled,
    /// NATS JetStream streams and KV buckets (`[store.nats]`).
    Nats,
}

/// `[store.nats]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Seed URLs of the NATS servers, comma-separated (`nats://127.0.0.1:4222,nats://…`).
    #[serde(default)]
    pub url: String,
    /// Start of every stream, bucket and subject name, so several deployments can share one
    /// NATS account; `[A-Za-z0-9_-]+`.
    #[serde(default = "default_stream_prefix")]
    pub stream_prefix: String,
    /// Copies JetStream keeps of each stream and bucket: 1, or 3 on a cluster.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Environment variable holding the NATS token (or `user:password`); the secret itself
    /// never goes in the file.
    #[serde(default)]
    pub credentials_env: Option<String>,
    /// How long a daemon's lease on a chunk lasts unless renewed (the ack wait): a daemon that
    /// dies mid-send leaves its chunks to the others after this long. 1000..=600000 ms.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
}

/// Default of `store.nats.lease_ms`: a dead daemon's chunks return after half a minute, and a
/// live one renews its leases every 10 s, so only a NATS stall that long costs it a lease.
pub const DEFAULT_LEASE_MS: u64 = 30_000;

fn default_lease_ms() -> u64 {
    DEFAULT_LEASE_MS
}

fn default_stream_prefix() -> String {
    "campaignd".to_owned()
}

fn default_replicas() -> usize {
    1
}

fn default_cache_mb() -> u64 {
    16
}

fn default_retention_days() -> u32 {
    30
}

/// Longest `store.retention_days` (a hundred years; use 0 to keep campaigns forever).
pub(super) const MAX_RETENTION_DAYS: u32 = 36_500;

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
    16
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
pub(super) const MAX_RECIPIENTS_LIMIT: u64 = 1_000_000_000;
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
    /// SMS fallback through Tencent Cloud SMS (optional).
    pub sms: Option<SmsAppConfig>,
}

/// `[apps.NAME.sms]`: the Tencent Cloud SMS application an app texts through, its signature,
/// its approved templates and when marketing texts may go out
/// (`shared/reference/getui-legacy-and-sms.md` §3.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsAppConfig {
    /// Base URL of the API (real: `https://sms.tencentcloudapi.com`); requests go to its `/`.
    pub base_url: String,
    /// The API key's SecretId (not secret: it travels in every request).
    pub secret_id: String,
    /// Environment variable holding the SecretKey.
    pub secret_key_env: Option<String>,
    /// Development only: the simulator's published SecretKey.
    pub dev_secret_key: Option<String>,
    /// The SMS application, `SmsSdkAppId` (e.g. `1400006666`).
    pub sdk_app_id: String,
    /// The approved signature's content, `SignName`; shown as `【…】` and counted in the text.
    pub sign_name: String,
    /// `X-TC-Region`.
    #[serde(default = "default_sms_region")]
    pub region: String,
    /// True when the texts are marketing texts, which only go out within the window below.
    #[serde(default = "default_true")]
    pub marketing: bool,
    /// Beijing time (Asia/Shanghai) from which marketing texts may go out, `HH:MM`.
    #[serde(default = "default_window_start")]
    pub window_start: String,
    /// Beijing time from which marketing texts may no longer go out, `HH:MM`.
    #[serde(default = "default_window_end")]
    pub window_end: String,
    /// TCP connect timeout, ms.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline of one HTTP exchange, ms.
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    /// The approved templates campaigns may name.
    #[serde(default)]
    pub templates: Vec<SmsTemplateConfig>,
}

/// One `[[apps.NAME.sms.templates]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsTemplateConfig {
    /// The template's id at Tencent (`TemplateId`).
    pub id: String,
    /// Its approved text with numbered placeholders `{1}`, `{2}`…, without the signature.
    pub text: String,
    /// The legacy SDK's variable names for `{1}`, `{2}`, … in order (its `smsContent` is a map
    /// of names to values, e.g. `["name", "money"]`); legacy pushes naming a template without
    /// them get `smsResult: error`.
    #[serde(default)]
    pub legacy_vars: Vec<String>,
}

fn default_sms_region() -> String {
    crate::wire::tencent_sms::DEFAULT_REGION.into()
}
fn default_true() -> bool {
    true
}
fn default_window_start() -> String {
    "08:00".into()
}
fn default_window_end() -> String {
    "22:00".into()
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
