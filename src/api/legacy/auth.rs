//! The legacy SDK's authentication: `connect` checks `md5(appkey + timeStamp + masterSecret)`
//! and answers a token; every other call carries it, and a missing, foreign or expired one is
//! answered `sign_error`, on which the SDKs connect again and replay the call.
//!
//! Tokens are signed, not stored: `{expiry in s, hex}.{HMAC-SHA256 of the AppKey and expiry
//! under the MasterSecret}`, so every daemon sharing a store accepts another's, a restart
//! keeps them valid, and a changed MasterSecret ends them all.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Call, LegacyApp, LegacyIngress, Refusal};
use crate::clock::now_ms;
use crate::wire::getui_legacy::connect_sign;
use crate::wire::getui_legacy::request::{Connect, Envelope};

/// `connect`: checks the sign and the clock, answers a token.
pub(super) fn connect(ingress: &LegacyIngress, call: &Call) -> Result<Value, Refusal> {
    let c: Connect = call.parse()?;
    let app = ingress
        .apps
        .get(&c.appkey)
        .ok_or_else(|| Refusal::new("appkey_error", format!("no Getui app has AppKey {:?}", c.appkey)))?;
    let expected = connect_sign(&c.appkey, c.time_stamp, app.master_secret.expose());
    if !bool::from(expected.as_bytes().ct_eq(c.sign.to_ascii_lowercase().as_bytes())) {
        return Err(Refusal::new("sign_error", "the sign is not md5(appkey + timeStamp + masterSecret)"));
    }
    let skew_ms = i64::try_from(ingress.connect_skew.as_millis()).unwrap_or(i64::MAX);
    if (now_ms() - c.time_stamp).abs() > skew_ms {
        return Err(Refusal::new(
            "sign_error",
            format!("timeStamp is more than {} s away from this server's clock", ingress.connect_skew.as_secs()),
        ));
    }
    let expiry_s = now_ms() / 1000 + i64::try_from(ingress.token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    Ok(json!({"result": "success", "authtoken": token(app, &c.appkey, expiry_s)}))
}

/// The app whose valid token the call carries.
pub(super) fn verify<'a>(ingress: &'a LegacyIngress, envelope: &Envelope) -> Result<&'a LegacyApp, Refusal> {
    let appkey = envelope.appkey.as_str();
    let app = ingress
        .apps
        .get(appkey)
        .ok_or_else(|| Refusal::new("appkey_error", format!("no Getui app has AppKey {appkey:?}")))?;
    let presented = envelope.auth_token.as_deref().unwrap_or_default();
    if token_valid(app, appkey, presented, now_ms() / 1000) {
        Ok(app)
    } else {
        Err(Refusal::new("sign_error", "no valid authToken: connect first"))
    }
}

fn mac(app: &LegacyApp, appkey: &str, expiry_s: i64) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(app.master_secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(b"campaignd legacy token\0");
    m.update(appkey.as_bytes());
    m.update(&expiry_s.to_be_bytes());
    hex::encode(&m.finalize().into_bytes()[..16])
}

fn token(app: &LegacyApp, appkey: &str, expiry_s: i64) -> String {
    format!("{expiry_s:x}.{}", mac(app, appkey, expiry_s))
}

fn token_valid(app: &LegacyApp, appkey: &str, token: &str, now_s: i64) -> bool {
    let Some((expiry, presented)) = token.split_once('.') else { return false };
    let Ok(expiry_s) = i64::from_str_radix(expiry, 16) else { return false };
    expiry_s > now_s && bool::from(mac(app, appkey, expiry_s).as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn app(secret: &str) -> LegacyApp {
        LegacyApp {
            name: "main".into(),
            app_key: "AK_test".into(),
            app_id: "AID".into(),
            master_secret: Secret::new(secret),
            sms_vars: Default::default(),
        }
    }

    #[test]
    fn tokens_are_valid_for_their_app_until_they_expire() {
        let a = app("MS_test");
        let t = token(&a, "AK_test", 1_000);
        assert!(token_valid(&a, "AK_test", &t, 999));
        assert!(!token_valid(&a, "AK_test", &t, 1_000), "expired");
        assert!(!token_valid(&a, "AK_other", &t, 999), "another AppKey");
        assert!(!token_valid(&app("MS_new"), "AK_test", &t, 999), "a changed MasterSecret ends it");
        let forged = format!("{:x}.{}", 9_999, t.split_once('.').unwrap().1);
        assert!(!token_valid(&a, "AK_test", &forged, 999), "a later expiry needs a new MAC");
        for junk in ["", ".", "zz.00", "3e8", "3e8.", "3e8.00"] {
            assert!(!token_valid(&a, "AK_test", junk, 0), "{junk:?}");
        }
    }
}
