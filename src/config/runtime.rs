//! The settings the daemon's parts run with, resolved from the file and the environment: the
//! vendor clients' settings (secrets included), the WeCom callback agents and the SMS gateway.

use std::collections::HashMap;
use std::time::Duration;

use super::schema::{Config, ServerConfig, SmsAppConfig, WecomAppConfig};
use super::secrets::resolve_secret;
use super::{invalid, ConfigError};
use crate::domain::sms::AppSmsFacts;
use crate::secret::Secret;
use crate::wecom::callback::{CallbackAgent, ReplyRule};
use crate::wecom::MsgCrypt;
use crate::wire::tencent_sms::SendWindow;

/// Connection-level timeouts and pool size of a vendor client.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this; keep it below the server's keep-alive.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per host.
    pub max_idle_per_host: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(20),
            max_idle_per_host: 64,
        }
    }
}

impl ServerConfig {
    /// The async worker threads to start: `workers` when set, else half of `cpus`, at least
    /// one. Half, because the rest of the daemon's work runs on threads of its own (the
    /// store's writer, sled's IO pool, upload parsing on the blocking pool), and every extra
    /// async worker adds wakeups between threads: on a 2-CPU machine one worker spent 8–15%
    /// less CPU per recipient and id than two at the same throughput (README, "Operating it").
    pub fn async_workers(&self, cpus: usize) -> usize {
        self.workers.unwrap_or(cpus / 2).max(1)
    }
}

/// The CPUs this process may run on (as `taskset`, `CPUAffinity=` or a cgroup limit them).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Everything needed to talk to one Getui app.
#[derive(Debug, Clone)]
pub struct GetuiSettings {
    /// Base URL up to and including `/v2`, e.g. `https://restapi.getui.com/v2`.
    pub base_url: String,
    /// AppId (goes into the URL).
    pub app_id: String,
    /// AppKey (goes into the signature and the auth body).
    pub app_key: String,
    /// MasterSecret (signs; never sent, never logged).
    pub master_secret: Secret,
    /// Deadline for one HTTP exchange, answer body included.
    pub request_timeout: Duration,
    /// Renew the token this long before it expires (capped at half its lifetime).
    pub token_refresh_margin: Duration,
    /// Connection pool settings.
    pub pool: PoolSettings,
}

/// Everything needed to send as one WeCom application.
#[derive(Debug, Clone)]
pub struct WecomSettings {
    /// Base URL up to and including `/cgi-bin`, e.g. `https://qyapi.weixin.qq.com/cgi-bin`.
    pub base_url: String,
    /// CorpID (`ww...`).
    pub corp_id: String,
    /// The application's AgentId.
    pub agent_id: i64,
    /// The application's Secret (each app has its own; never logged).
    pub secret: Secret,
    /// Deadline for one HTTP exchange, answer body included.
    pub request_timeout: Duration,
    /// Connection pool settings.
    pub pool: PoolSettings,
}

/// Everything needed to call Tencent Cloud SMS for one app.
#[derive(Debug, Clone)]
pub struct TencentSmsSettings {
    /// Base URL; requests go to its `/` (real: `https://sms.tencentcloudapi.com`).
    pub base_url: String,
    /// The API key's SecretId.
    pub secret_id: String,
    /// The API key's SecretKey (signs; never sent, never logged).
    pub secret_key: Secret,
    /// `SmsSdkAppId`.
    pub sdk_app_id: String,
    /// `X-TC-Region`.
    pub region: String,
    /// Deadline for one HTTP exchange, answer body included.
    pub request_timeout: Duration,
    /// Connection pool settings.
    pub pool: PoolSettings,
}

impl Config {
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

    /// The resolved Tencent Cloud SMS client settings of app `name`, SecretKey included;
    /// `None` when the app has no `[apps.NAME.sms]`.
    pub fn sms_settings_with_env(
        &self,
        name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TencentSmsSettings>, ConfigError> {
        let Some(s) = self.sms_of(name)? else { return Ok(None) };
        let key = format!("apps.{name}.sms.secret_key_env");
        Ok(Some(TencentSmsSettings {
            base_url: s.base_url.clone(),
            secret_id: s.secret_id.clone(),
            secret_key: resolve_secret(
                &key,
                s.secret_key_env.as_deref(),
                s.dev_secret_key.as_deref(),
                &env,
                "the SecretKey",
            )?,
            sdk_app_id: s.sdk_app_id.clone(),
            region: s.region.clone(),
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            pool: PoolSettings {
                connect_timeout: Duration::from_millis(s.connect_timeout_ms),
                ..PoolSettings::default()
            },
        }))
    }

    /// The marketing window of app `name`'s texts: `None` when the app has no SMS section
    /// or its texts are not marketing texts.
    pub fn sms_window(&self, name: &str) -> Result<Option<SendWindow>, ConfigError> {
        let Some(s) = self.sms_of(name)? else { return Ok(None) };
        if !s.marketing {
            return Ok(None);
        }
        // Validation checked both times when the file was loaded.
        SendWindow::from_hhmm(&s.window_start, &s.window_end)
            .map(Some)
            .ok_or_else(|| invalid(format!("apps.{name}.sms.window_start"), "not a valid HH:MM window"))
    }

    /// What campaign validation needs of each app with an `[apps.NAME.sms]`: its sign name and
    /// templates. Apps without one are absent.
    pub fn sms_facts(&self) -> HashMap<String, AppSmsFacts> {
        let with_sms = self.apps.iter().filter_map(|(name, app)| Some((name, app.sms.as_ref()?)));
        with_sms
            .map(|(name, s)| {
                let templates = s.templates.iter().map(|t| (t.id.as_str(), t.text.as_str()));
                (name.clone(), AppSmsFacts::new(&s.sign_name, templates))
            })
            .collect()
    }

    /// The `[apps.NAME.sms]` table of app `name`, if any.
    pub fn sms_of(&self, name: &str) -> Result<Option<&SmsAppConfig>, ConfigError> {
        let app = self.apps.get(name).ok_or_else(|| invalid("apps", format!("no app named {name:?}")))?;
        Ok(app.sms.as_ref())
    }

    fn wecom_of(&self, name: &str) -> Result<&WecomAppConfig, ConfigError> {
        let app = self.apps.get(name).ok_or_else(|| invalid("apps", format!("no app named {name:?}")))?;
        app.wecom.as_ref().ok_or_else(|| invalid(format!("apps.{name}.wecom"), "missing"))
    }
}
