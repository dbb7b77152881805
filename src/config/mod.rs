//! The daemon's configuration: TOML on disk, typed and validated before anything starts.
//!
//! Every error names the key at fault. Secrets never live in the file: it names environment
//! variables that hold them. The one exception is the simulator's well-known development
//! master secret, accepted inline under `dev_master_secret` and refused for any other value.
//!
//! [`schema`] is the file's shape and defaults, [`validation`] the rules a loaded file must
//! meet, [`secrets`] where credentials come from, and [`runtime`] the settings handed to the
//! parts of the daemon (client settings with their secrets resolved).

mod schema;
mod secrets;
mod validation;

pub mod runtime;

use std::path::{Path, PathBuf};

pub use runtime::{available_cpus, GetuiSettings, PoolSettings, TencentSmsSettings, WecomSettings};
pub use schema::*;

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

pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into() }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::{DEV_MASTER_SECRET, DEV_WECOM_AES_KEY, DEV_WECOM_SECRET};
    use std::time::Duration;

    const SHIPPED: &str = include_str!("../../config/campaignd.toml");

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
    fn the_store_backend_is_sled_unless_nats_is_configured_completely() {
        let cfg = parse(SHIPPED).unwrap();
        assert_eq!(cfg.store.backend, StoreBackend::Sled, "sled stays the default");
        assert!(cfg.store.nats.is_none());
        let nats = |table: &str| {
            SHIPPED.replace("retention_days = 30\n", &format!("retention_days = 30\nbackend = \"nats\"\n{table}"))
        };
        let cfg = parse(&nats("[store.nats]\nurl = \"nats://127.0.0.1:4222, nats://127.0.0.1:4223\"\n")).unwrap();
        let n = cfg.store.nats.as_ref().unwrap();
        assert_eq!((cfg.store.backend, n.stream_prefix.as_str(), n.replicas), (StoreBackend::Nats, "campaignd", 1));
        assert_eq!(n.lease_ms, 30_000, "the ack wait defaults to 30 s");
        assert_eq!(cfg.nats_credentials(|_| None).unwrap(), None);
        for (table, key) in [
            ("", "store.nats.url"),
            ("[store.nats]\nreplicas = 1\n", "store.nats.url"),
            ("[store.nats]\nurl = \"nats://a:4222\"\nreplicas = 2\n", "store.nats.replicas"),
            ("[store.nats]\nurl = \"nats://a:4222\"\nstream_prefix = \"a.b\"\n", "store.nats.stream_prefix"),
            ("[store.nats]\nurl = \"nats://a:4222\"\nstream_prefix = \"\"\n", "store.nats.stream_prefix"),
            ("[store.nats]\nurl = \"nats://user:pw@a:4222\"\n", "store.nats.url"),
            ("[store.nats]\nurl = \"nats://a:4222\"\nlease_ms = 999\n", "store.nats.lease_ms"),
            ("[store.nats]\nurl = \"nats://a:4222\"\nlease_ms = 600001\n", "store.nats.lease_ms"),
        ] {
            let err = parse(&nats(table)).unwrap_err().to_string();
            assert!(err.contains(key), "{table:?}: {err}");
        }
        let text = nats("[store.nats]\nurl = \"nats://a:4222\"\ncredentials_env = \"NATS_TOKEN\"\n");
        let cfg = parse(&text).unwrap();
        let err = cfg.nats_credentials(|_| None).unwrap_err().to_string();
        assert!(err.contains("store.nats.credentials_env") && err.contains("NATS_TOKEN"), "{err}");
        let token = cfg.nats_credentials(|v| (v == "NATS_TOKEN").then(|| "s3cret".into())).unwrap().unwrap();
        assert_eq!(token.expose(), "s3cret");
        let err = parse(&SHIPPED.replace("retention_days = 30\n", "retention_days = 30\nbackend = \"redis\"\n"));
        assert!(err.unwrap_err().to_string().contains("backend"));
    }

    #[test]
    fn the_seal_key_comes_from_its_variable_else_the_dev_key_and_errors_name_the_key() {
        let cfg = parse(SHIPPED).unwrap();
        let dev = crate::seal::SealKey::from_text(crate::dev::DEV_SEAL_KEY_HEX).unwrap();
        let aad = crate::seal::aad(&["main", "cid"]);
        let sealed = dev.seal(b"+8613800000000", &aad);
        let shipped = cfg.seal_key(|_| None).unwrap().expect("the shipped config has the dev key");
        assert!(shipped.open(&sealed, &aad).is_ok(), "the shipped key is the published dev key");
        let real = "11".repeat(32);
        let from_env = cfg.seal_key(|v| (v == "CAMPAIGND_SEAL_KEY").then(|| real.clone())).unwrap().unwrap();
        assert!(from_env.open(&sealed, &aad).is_err(), "the variable wins over the dev key");
        let err = cfg.seal_key(|_| Some("not-a-key".into())).err().unwrap().to_string();
        assert!(err.contains("store.seal_key_env") && !err.contains("not-a-key"), "{err}");
        // Without the dev key, an unset variable is an error naming the key.
        let no_dev: String = SHIPPED.lines().filter(|l| !l.starts_with("dev_seal_key")).collect::<Vec<_>>().join("\n");
        let err = parse(&no_dev).unwrap().seal_key(|_| None).err().unwrap().to_string();
        assert!(err.contains("store.seal_key_env") && err.contains("CAMPAIGND_SEAL_KEY"), "{err}");
        // Only the published dev value may be written in the file.
        let other = SHIPPED.replace(crate::dev::DEV_SEAL_KEY_HEX, &"22".repeat(32));
        assert!(parse(&other).unwrap_err().to_string().contains("store.dev_seal_key"));
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
        let halves: Vec<usize> = [1, 2, 3, 8].iter().map(|&cpus| s.async_workers(cpus)).collect();
        assert_eq!(halves, [1, 1, 1, 4], "left out, half the CPUs and at least one");
        assert_eq!(parse(&with("workers = 3")).unwrap().server.async_workers(2), 3, "a set value wins");
        for (extra, key) in [
            ("max_connections = 0", "server.max_connections"),
            ("body_timeout_ms = 5", "server.body_timeout_ms"),
            ("idle_timeout_ms = 0", "server.idle_timeout_ms"),
            ("callback_listen = \"127.0.0.1:8780\"", "server.callback_listen"),
            ("callback_listen = \"not an address\"", "callback_listen"),
            ("workers = 0", "server.workers"),
            ("workers = 5000", "server.workers"),
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
                SHIPPED
                    .replace("[apps.main]", "[apps.Main]")
                    .replace("[apps.main.getui]", "[apps.Main.getui]")
                    .replace("[apps.main.sms", "[apps.Main.sms"),
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

    /// The shipped file without its `[apps.main.sms]` section (between its markers).
    fn without_sms() -> String {
        let (before, rest) = SHIPPED.split_once("# --- sms begin\n").expect("the sms section");
        let (_, after) = rest.split_once("# --- sms end\n").expect("its end");
        format!("{before}{after}")
    }

    #[test]
    fn the_shipped_sms_section_is_valid_and_resolves_its_settings() {
        let none = parse(&without_sms()).unwrap();
        assert!(none.sms_settings_with_env("main", |_| None).unwrap().is_none());
        assert!(none.sms_facts().is_empty());
        let text = SHIPPED.to_owned();
        let cfg = parse(&text).unwrap();
        let s = cfg.sms_settings_with_env("main", |_| None).unwrap().expect("an sms section");
        assert_eq!(s.secret_key.expose(), crate::dev::DEV_SMS_SECRET_KEY);
        assert_eq!(
            (s.secret_id.as_str(), s.sdk_app_id.as_str(), s.region.as_str()),
            (crate::dev::DEV_SMS_SECRET_ID, "1400006666", "ap-guangzhou")
        );
        let env = cfg.sms_settings_with_env("main", |v| (v == "CAMPAIGND_MAIN_SMS_SECRET_KEY").then(|| "env".into()));
        assert_eq!(env.unwrap().unwrap().secret_key.expose(), "env", "the environment wins");
        let sms = cfg.sms_of("main").unwrap().unwrap();
        assert_eq!(sms.templates.len(), 2);
        for (id, t) in crate::dev::DEV_SMS_TEMPLATES {
            assert!(sms.templates.iter().any(|c| c.id == id && c.text == t), "the simulator's template {id}");
        }
        assert_eq!(cfg.sms_window("main").unwrap(), Some(crate::wire::tencent_sms::SendWindow::default()));
        let off = parse(&text.replace("marketing = true", "marketing = false")).unwrap();
        assert_eq!(off.sms_window("main").unwrap(), None);
        let defaults = text.replace("region = \"ap-guangzhou\"\n", "").replace("window_start = \"08:00\"\n", "");
        assert_eq!(
            parse(&defaults).unwrap().sms_settings_with_env("main", |_| None).unwrap().unwrap().region,
            "ap-guangzhou"
        );
        cfg.check_secrets(|_| None).unwrap();
        // What campaign validation sees: main's sign name and templates, and no other app.
        let facts = cfg.sms_facts();
        assert_eq!(facts.keys().collect::<Vec<_>>(), ["main"]);
        let expected =
            crate::domain::sms::AppSmsFacts::new(crate::dev::DEV_SMS_SIGN_NAME, crate::dev::DEV_SMS_TEMPLATES);
        assert_eq!(facts["main"], expected);
        assert_eq!(facts["main"].templates["1234567"].placeholders, 2);
    }

    #[test]
    fn bad_sms_values_name_their_key() {
        let text = SHIPPED.to_owned();
        let cases = [
            (
                text.replace("base_url = \"http://127.0.0.1:8781\"", "base_url = \"http://sms.example.com\""),
                "apps.main.sms.base_url",
            ),
            (text.replace(crate::dev::DEV_SMS_SECRET_KEY, "a-real-key"), "apps.main.sms.dev_secret_key"),
            (text.replace("sdk_app_id = \"1400006666\"", "sdk_app_id = \"app\""), "apps.main.sms.sdk_app_id"),
            (text.replace("sign_name = \"campaignd\"", "sign_name = \"【campaignd】\""), "apps.main.sms.sign_name"),
            (text.replace("window_end = \"22:00\"", "window_end = \"07:00\""), "apps.main.sms.window_start"),
            (text.replace("id = \"1234567\"", "id = \"1000001\""), "apps.main.sms.templates[1].id"),
            (text.replace("你的余额还剩{2}元", "你的余额还剩{3}元"), "apps.main.sms.templates[1].text"),
            (
                text.replace("request_timeout_ms = 10000\n# Approved", "request_timeout_ms = 0\n# Approved"),
                "apps.main.sms.request_timeout_ms",
            ),
            (text.replace("id = \"1000001\"", "id = \"1000001\"\ncolour = 1"), "colour"),
            (text.replace("请尽快充值。", &"请尽快充值。".repeat(10)), "apps.main.sms.templates[1].text"),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in {err}");
        }
        let no_dev = text.replace(&format!("dev_secret_key = \"{}\"", crate::dev::DEV_SMS_SECRET_KEY), "");
        let err = parse(&no_dev).unwrap().check_secrets(|_| None).unwrap_err().to_string();
        assert!(err.contains("CAMPAIGND_MAIN_SMS_SECRET_KEY"), "{err}");
    }
}
