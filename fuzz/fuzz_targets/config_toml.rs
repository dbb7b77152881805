//! The configuration loader: `Config::from_toml` (TOML, schema, validation), then every
//! per-app resolution the daemon makes before it binds anything (`Daemon::build`): API tokens,
//! the seal key, Getui, WeCom, callback and SMS settings, windows and facts, secrets read
//! through an empty environment. Building the HTTP clients is left out (no parsing there).
#![no_main]

use std::path::Path;

use campaignd::config::Config;
use campaignd::domain::Channel;
use libfuzzer_sys::fuzz_target;

fn no_env(_: &str) -> Option<String> {
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_toml(text, Path::new("fuzz.toml")) else { return };
    let _ = config.api_tokens(no_env);
    let _ = config.seal_key(no_env);
    let _ = config.check_secrets(no_env);
    let _ = config.nats_credentials(no_env);
    let _ = config.sms_facts();
    for (name, app) in &config.apps {
        match app.channel {
            Channel::Getui => {
                let _ = config.getui_settings_with_env(name, no_env);
            }
            Channel::Wecom => {
                let _ = config.wecom_settings_with_env(name, no_env);
                let _ = config.callback_agent_with_env(name, no_env);
                let _ = config.wecom_duplicate_check(name);
            }
        }
        let _ = config.sms_settings_with_env(name, no_env);
        let _ = config.sms_window(name);
        let _ = config.sms_of(name);
    }
});
