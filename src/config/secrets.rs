//! Where credentials come from: the environment variable a key names, or, for the simulator
//! only, its published development value. A missing variable is reported by name.

use super::schema::{Channel, Config, GetuiAppConfig};
use super::{invalid, ConfigError};
use crate::seal::SealKey;
use crate::secret::Secret;

impl Config {
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

    /// Checks that every app's secret can be resolved now, so a missing variable stops the
    /// daemon at start rather than at the first send.
    pub fn check_secrets(&self, env: impl Fn(&str) -> Option<String> + Copy) -> Result<(), ConfigError> {
        for (name, app) in &self.apps {
            self.sms_settings_with_env(name, env)?;
            match app.channel {
                Channel::Getui => drop(self.getui_settings_with_env(name, env)?),
                Channel::Wecom => {
                    self.wecom_settings_with_env(name, env)?;
                    self.callback_agent_with_env(name, env)?;
                }
            }
        }
        self.api_tokens(env)?;
        self.nats_credentials(env)?;
        self.seal_key(env)?;
        Ok(())
    }

    /// The key that seals phone numbers at rest: from the variable `store.seal_key_env` names
    /// when it is set, else the development key; `None` when neither is configured (bindings
    /// are then refused). A variable that is named but unset, or holds no valid key, is an
    /// error naming the key (never quoting its value).
    pub fn seal_key(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<SealKey>, ConfigError> {
        let from_env = self.store.seal_key_env.as_deref().and_then(|var| env(var).map(|v| (var, v)));
        if let Some((var, value)) = from_env.filter(|(_, v)| !v.trim().is_empty()) {
            return SealKey::from_text(&value)
                .map(Some)
                .map_err(|e| invalid("store.seal_key_env", format!("environment variable {var}: {e}")));
        }
        match (&self.store.dev_seal_key, &self.store.seal_key_env) {
            (Some(dev), _) => {
                SealKey::from_text(dev).map(Some).map_err(|e| invalid("store.dev_seal_key", e.to_string()))
            }
            (None, Some(var)) => Err(invalid(
                "store.seal_key_env",
                format!(
                    "environment variable {var} is not set; export it with a 32-byte key (64 hex characters, \
                     e.g. from `openssl rand -hex 32`)"
                ),
            )),
            (None, None) => Ok(None),
        }
    }

    /// The NATS token (or `user:password`) from the variable `store.nats.credentials_env`
    /// names; `None` when no variable is named (a server without authentication).
    pub fn nats_credentials(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<Secret>, ConfigError> {
        let Some(var) = self.store.nats.as_ref().and_then(|n| n.credentials_env.as_deref()) else {
            return Ok(None);
        };
        match env(var).filter(|v| !v.trim().is_empty()) {
            Some(v) => Ok(Some(Secret::new(v.trim().to_owned()))),
            None => Err(invalid(
                "store.nats.credentials_env",
                format!("environment variable {var} is not set; export the NATS token (or user:password) in it"),
            )),
        }
    }
}

/// A secret from the named variable when set, else the development value.
pub(super) fn resolve_secret(
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

impl GetuiAppConfig {
    /// The MasterSecret: from the named variable if it is set, else the development default.
    pub(super) fn master_secret(&self, app: &str, env: impl Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
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
