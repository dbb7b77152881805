//! The rules a parsed configuration must meet before the daemon starts: ranges, names, URLs,
//! and one channel table per app. Each failure names its key and says what to do.

use super::schema::{
    AppConfig, CallbackConfig, Channel, Config, GetuiAppConfig, ServerConfig, StoreBackend, WecomAppConfig,
};
use super::schema::{DEV_API_TOKEN, MAX_RECIPIENTS_LIMIT, MAX_RETENTION_DAYS};
use super::{invalid, ConfigError};

/// Bounds of `store.nats.lease_ms`: a lease shorter than a second is renewed faster than a KV
/// round trip is sure to take; one over ten minutes leaves a dead daemon's chunks that long.
const MIN_LEASE_MS: u64 = 1_000;
const MAX_LEASE_MS: u64 = 600_000;
use crate::dev::{DEV_MASTER_SECRET, DEV_WECOM_AES_KEY, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_SECRET};

// The SMS section's rules (issue 13), imported apart so the lines above stay as they were.
use super::schema::SmsAppConfig;
use crate::dev::DEV_SMS_SECRET_KEY;
use crate::wire::tencent_sms::template::{char_count, param_count, render, with_signature, SINGLE_SEGMENT_CHARS};
use crate::wire::tencent_sms::SendWindow;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty; try \"info\""));
        }
        self.validate_sections()?;
        self.server.validate()?;
        self.validate_legacy()?;
        if self.apps.is_empty() {
            return Err(invalid("apps", "define at least one app, e.g. [apps.main]"));
        }
        for (name, app) in &self.apps {
            validate_app_name(name)?;
            app.validate(name)?;
        }
        Ok(())
    }

    fn validate_legacy(&self) -> Result<(), ConfigError> {
        let l = &self.legacy;
        if let Some(url) = &l.public_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.bytes().all(|b| b.is_ascii_graphic())
                && !url.ends_with("/apiex.htm");
            if !ok {
                return Err(invalid(
                    "legacy.public_url",
                    "must be the http(s) base URL SDKs reach this daemon at, without /apiex.htm, e.g. \
                     https://push.example.com",
                ));
            }
        }
        if !(60..=30 * 86_400).contains(&l.token_ttl_s) {
            return Err(invalid("legacy.token_ttl_s", "must be within 60..=2592000 seconds"));
        }
        if !(1..=86_400).contains(&l.connect_skew_s) {
            return Err(invalid("legacy.connect_skew_s", "must be within 1..=86400 seconds"));
        }
        if !(100..=600_000).contains(&l.single_wait_ms) {
            return Err(invalid("legacy.single_wait_ms", "must be within 100..=600000 ms"));
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
        self.validate_seal_key()?;
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must name a directory"));
        }
        self.validate_nats()?;
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
}

impl Config {
    /// `store.seal_key_env` names a variable; `store.dev_seal_key` is only the published value.
    fn validate_seal_key(&self) -> Result<(), ConfigError> {
        if self.store.seal_key_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid("store.seal_key_env", "name an environment variable, or leave it out"));
        }
        if self.store.dev_seal_key.as_deref().is_some_and(|k| k != crate::dev::DEV_SEAL_KEY_HEX) {
            return Err(invalid(
                "store.dev_seal_key",
                "only the published development seal key may be written in the file; put a real key in the \
                 environment and name the variable in store.seal_key_env",
            ));
        }
        Ok(())
    }

    /// `[store.nats]`: required and complete when `store.backend = "nats"`, checked whenever
    /// present.
    fn validate_nats(&self) -> Result<(), ConfigError> {
        let nats = match (&self.store.nats, self.store.backend) {
            (Some(nats), _) => nats,
            (None, StoreBackend::Nats) => {
                return Err(invalid("store.nats.url", "store.backend = \"nats\" needs [store.nats] with url"))
            }
            (None, StoreBackend::Sled) => return Ok(()),
        };
        let urls: Vec<&str> = nats.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        if self.store.backend == StoreBackend::Nats && urls.is_empty() {
            return Err(invalid("store.nats.url", "name at least one NATS server, e.g. \"nats://127.0.0.1:4222\""));
        }
        if let Some(bad) = urls.iter().find(|u| u.contains(char::is_whitespace) || u.contains('@')) {
            return Err(invalid(
                "store.nats.url",
                format!(
                    "{bad:?} is not a server URL (credentials go in the variable named by store.nats.credentials_env)"
                ),
            ));
        }
        let prefix = &nats.stream_prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !prefix_ok {
            return Err(invalid("store.nats.stream_prefix", format!("{prefix:?} must be 1 to 32 of [A-Za-z0-9_-]")));
        }
        if !matches!(nats.replicas, 1 | 3) {
            return Err(invalid("store.nats.replicas", format!("{} must be 1 or 3", nats.replicas)));
        }
        if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&nats.lease_ms) {
            return Err(invalid(
                "store.nats.lease_ms",
                format!("{} must be {MIN_LEASE_MS} to {MAX_LEASE_MS} (ms)", nats.lease_ms),
            ));
        }
        if nats.credentials_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid("store.nats.credentials_env", "name an environment variable, or leave it out"));
        }
        Ok(())
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        if let Some(n) = self.workers.filter(|n| !(1..=1024).contains(n)) {
            return Err(invalid(
                "server.workers",
                format!("{n} is outside 1..=1024 (or leave it out for half the CPUs)"),
            ));
        }
        if self.callback_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(invalid("server.callback_listen", "must differ from server.listen (or be left out)"));
        }
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
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        self.validate_channel(name)?;
        // After the channel's table, which comes first in the file, so errors come in its order.
        match &self.sms {
            Some(sms) => sms.validate(name),
            None => Ok(()),
        }
    }

    fn validate_channel(&self, name: &str) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self, app: &str) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self, app: &str) -> Result<(), ConfigError> {
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

impl SmsAppConfig {
    pub(super) fn validate(&self, app: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("apps.{app}.sms.{k}");
        check_base_url(&key("base_url"), &self.base_url, "https://sms.tencentcloudapi.com")?;
        let plain = |v: &str| !v.trim().is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
        if !plain(&self.secret_id) {
            return Err(invalid(key("secret_id"), "must be the API key's SecretId from the Tencent Cloud console"));
        }
        check_dev_value(&key("dev_secret_key"), self.dev_secret_key.as_deref(), DEV_SMS_SECRET_KEY, "secret_key_env")?;
        if self.secret_key_env.is_none() && self.dev_secret_key.is_none() {
            return Err(invalid(key("secret_key_env"), "name the environment variable that holds the SecretKey"));
        }
        if self.sdk_app_id.is_empty() || !self.sdk_app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(key("sdk_app_id"), "must be the SmsSdkAppId, digits such as 1400006666"));
        }
        if self.sign_name.trim().is_empty() || self.sign_name.contains(['【', '】']) {
            return Err(invalid(key("sign_name"), "must be the approved signature's content, without 【】"));
        }
        if !plain(&self.region) {
            return Err(invalid(key("region"), "must be a region such as ap-guangzhou"));
        }
        if SendWindow::from_hhmm(&self.window_start, &self.window_end).is_none() {
            return Err(invalid(
                key("window_start"),
                format!(
                    "window_start {:?} and window_end {:?} must be HH:MM Beijing times with start before end",
                    self.window_start, self.window_end
                ),
            ));
        }
        for (k, v) in [("connect_timeout_ms", self.connect_timeout_ms), ("request_timeout_ms", self.request_timeout_ms)]
        {
            if !(1..=600_000).contains(&v) {
                return Err(invalid(key(k), format!("{v} is outside 1..=600000 ms")));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, t) in self.templates.iter().enumerate() {
            let at = key(&format!("templates[{i}]"));
            if !plain(&t.id) {
                return Err(invalid(format!("{at}.id"), "must be the template's id at Tencent"));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(invalid(format!("{at}.id"), format!("template id {:?} is defined twice", t.id)));
            }
            if t.text.trim().is_empty() {
                return Err(invalid(format!("{at}.text"), "must be the template's approved text"));
            }
            let params = param_count(&t.text).map_err(|e| invalid(format!("{at}.text"), e.to_string()))?;
            // With every value empty, the text is as short as it can be: if even that does not
            // fit one segment, no fallback text from this template ever will (§1.6: ≤ 70).
            let shortest = render(&t.text, &vec![String::new(); params]).unwrap_or_default();
            let chars = char_count(&with_signature(&self.sign_name, &shortest));
            if chars > SINGLE_SEGMENT_CHARS {
                return Err(invalid(
                    format!("{at}.text"),
                    format!(
                        "with the signature 【{}】 and no values it is already {chars} characters; a fallback \
                         text must fit in {SINGLE_SEGMENT_CHARS}",
                        self.sign_name
                    ),
                ));
            }
            if !t.legacy_vars.is_empty() && t.legacy_vars.len() != params {
                return Err(invalid(
                    format!("{at}.legacy_vars"),
                    format!(
                        "names {} variables but the text has {params} placeholders: give one name per {{n}}, in order",
                        t.legacy_vars.len()
                    ),
                ));
            }
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
    pub(super) fn validate(&self, app: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("apps.{app}.getui.{k}");
        check_base_url(&key("base_url"), &self.base_url, "https://restapi.getui.com/v2")?;
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
