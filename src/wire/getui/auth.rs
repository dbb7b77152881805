//! Getui authentication rules with no I/O: the request signature and when a token is due for
//! renewal. The client and the simulator both use them.

use sha2::{Digest, Sha256};

/// `sign` of `POST /auth`: lowercase hex SHA-256 of appkey + timestamp + mastersecret,
/// concatenated in that order with no separator.
pub fn sign(app_key: &str, timestamp_ms: &str, master_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_key.as_bytes());
    h.update(timestamp_ms.as_bytes());
    h.update(master_secret.as_bytes());
    hex::encode(h.finalize())
}

/// A token and the local times that matter for it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The value for the `token` header.
    pub value: std::sync::Arc<str>,
    /// When it was issued, local ms epoch.
    pub issued_ms: u64,
    /// When the upstream says it expires, ms epoch.
    pub expires_ms: u64,
}

impl Token {
    /// True when the token should be replaced before use at `now_ms`: within `margin_ms` of
    /// expiry, where the margin is capped at half the token's lifetime so that a short-lived
    /// token (as in tests) is not renewed on every call.
    pub fn needs_refresh(&self, now_ms: u64, margin_ms: u64) -> bool {
        let lifetime = self.expires_ms.saturating_sub(self.issued_ms);
        let margin = margin_ms.min(lifetime / 2);
        now_ms.saturating_add(margin) >= self.expires_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_sha256_of_the_concatenation() {
        // sha256("abc") is a well-known test vector (FIPS 180-2).
        assert_eq!(sign("a", "b", "c"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // Order matters: appkey, timestamp, mastersecret.
        assert_ne!(sign("key", "1700000000000", "secret"), sign("secret", "1700000000000", "key"));
        assert_eq!(sign("key", "1700000000000", "secret").len(), 64);
    }

    #[test]
    fn refresh_margin_is_capped_by_lifetime() {
        let day = 86_400_000;
        let t = Token { value: "t".into(), issued_ms: 0, expires_ms: day };
        let hour = 3_600_000;
        assert!(!t.needs_refresh(day - hour - 1, hour));
        assert!(t.needs_refresh(day - hour, hour));
        // A 10 s token with a 1 h margin is renewed after 5 s, not at once.
        let short = Token { value: "t".into(), issued_ms: 0, expires_ms: 10_000 };
        assert!(!short.needs_refresh(4_999, hour));
        assert!(short.needs_refresh(5_000, hour));
    }
}
