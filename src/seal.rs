//! Sealing of personal data at rest (issue 13: phone numbers): AES-256-GCM with a fresh random
//! nonce per value and associated data that ties each value to the record it belongs to.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. The version byte
//! is also authenticated, so a later format can be told apart and an altered one fails.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

/// The format of values [`SealKey::seal`] writes.
pub const SEAL_VERSION: u8 = 1;
/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;

/// Why a key was refused or a value did not open. Messages never quote key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key text is neither 64 hex characters nor base64 of 32 bytes.
    #[error("seal key: {0}")]
    KeyText(String),
    /// Shorter than any sealed value.
    #[error("sealed value of {0} bytes is too short to be one (at least {SEAL_OVERHEAD})")]
    TooShort(usize),
    /// Written by a format this build does not know.
    #[error("sealed value has format {0}, this build reads format {SEAL_VERSION}")]
    UnknownVersion(u8),
    /// Wrong key, wrong associated data, or altered bytes: GCM cannot tell which.
    #[error("sealed value does not open: another key, another record, or altered bytes")]
    DoesNotOpen,
}

/// An AES-256-GCM key for values at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct SealKey {
    cipher: Aes256Gcm,
}

impl SealKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: &[u8; KEY_BYTES]) -> SealKey {
        SealKey { cipher: Aes256Gcm::new(key.into()) }
    }

    /// A key from text as an env var holds it: 64 hex characters, or base64 (standard or
    /// URL-safe, padded or not) of 32 bytes. Surrounding whitespace is ignored. A key of
    /// all-zero bytes is refused: it is a placeholder, not a key.
    pub fn from_text(text: &str) -> Result<SealKey, SealError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SealError::KeyText("is empty: give 64 hex characters or base64 of 32 bytes".into()));
        }
        let all_hex = text.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if all_hex && text.len() == 2 * KEY_BYTES {
            hex::decode(text).map_err(|_| SealError::KeyText("is not valid hex".into()))?
        } else if let Some(bytes) = decode_base64(text) {
            bytes
        } else if all_hex {
            return Err(SealError::KeyText(format!(
                "has {} hex characters; a key is exactly {} (32 bytes)",
                text.len(),
                2 * KEY_BYTES
            )));
        } else {
            return Err(SealError::KeyText(format!(
                "{} characters that are neither 64 hex characters nor base64: give 32 random bytes as \
                 64 hex characters or base64 (e.g. `openssl rand -hex 32`)",
                text.chars().count()
            )));
        };
        let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            SealError::KeyText(format!("decodes to {} bytes; AES-256 needs exactly {KEY_BYTES}", bytes.len()))
        })?;
        if key.iter().all(|&b| b == 0) {
            return Err(SealError::KeyText("is all zero bytes: generate a random key".into()));
        }
        Ok(SealKey::from_bytes(&key))
    }

    /// Seals `plaintext` bound to `aad` (see [`aad`]): the value opens only with this key and
    /// the same `aad`. Two seals of one value differ (a fresh random nonce each time).
    ///
    /// # Panics
    ///
    /// When the OS has no random source (a reused nonce would break GCM, so there is no safe
    /// fallback) or `plaintext` exceeds GCM's 64 GiB limit; neither happens for the short
    /// records sealed here.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the OS random source, needed for a fresh GCM nonce");
        let bound = versioned_aad(SEAL_VERSION, aad);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &bound })
            .expect("a plaintext under GCM's 64 GiB limit");
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value [`SealKey::seal`] wrote with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(SealError::TooShort(sealed.len()));
        }
        let (version, rest) = (sealed[0], &sealed[1..]);
        if version != SEAL_VERSION {
            return Err(SealError::UnknownVersion(version));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let bound = versioned_aad(version, aad);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &bound })
            .map_err(|_| SealError::DoesNotOpen)
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

/// Associated data from the parts that name a record, e.g. `aad(&["app-1", "cid-A"])` for the
/// phone bound to cid-A in app-1. Each part is length-prefixed, so `["ab", "c"]` and
/// `["a", "bc"]` differ.
pub fn aad(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        // A part longer than 4 GiB cannot occur in a key; saturate rather than wrap.
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

fn versioned_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + aad.len());
    out.push(version);
    out.extend_from_slice(aad);
    out
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published development key (`dev::DEV_SEAL_KEY_HEX`), repeated here because `dev`
    /// sits on the same floor and may not be imported.
    const DEV_KEY_HEX: &str = "63616d706169676e642d6465762d7365616c2d6b65792d5055424c4943212121";

    fn key() -> SealKey {
        SealKey::from_text(DEV_KEY_HEX).unwrap()
    }

    fn other_key() -> SealKey {
        SealKey::from_bytes(&[7u8; KEY_BYTES])
    }

    #[test]
    fn round_trip() {
        let a = aad(&["app-1", "cid-A"]);
        let sealed = key().seal(b"+8613800000000", &a);
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 14);
        assert_eq!(sealed[0], SEAL_VERSION);
        assert_eq!(key().open(&sealed, &a).unwrap(), b"+8613800000000");
        // The empty value round-trips too.
        assert_eq!(key().open(&key().seal(b"", &a), &a).unwrap(), b"");
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let a = aad(&["app-1", "cid-A"]);
        let (x, y) = (key().seal(b"+8613800000000", &a), key().seal(b"+8613800000000", &a));
        assert_ne!(x, y);
        assert_ne!(x[1..1 + NONCE_BYTES], y[1..1 + NONCE_BYTES]);
    }

    #[test]
    fn wrong_key_fails() {
        let a = aad(&["app-1", "cid-A"]);
        let sealed = key().seal(b"+8613800000000", &a);
        assert_eq!(other_key().open(&sealed, &a), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn value_copied_to_another_record_fails() {
        let sealed = key().seal(b"+8613800000000", &aad(&["app-1", "cid-A"]));
        assert_eq!(key().open(&sealed, &aad(&["app-1", "cid-B"])), Err(SealError::DoesNotOpen));
        assert_eq!(key().open(&sealed, &aad(&["app-2", "cid-A"])), Err(SealError::DoesNotOpen));
        // Length prefixes keep part boundaries: ("app-1c", "id-A") is another record.
        assert_eq!(key().open(&sealed, &aad(&["app-1c", "id-A"])), Err(SealError::DoesNotOpen));
        assert_ne!(aad(&["ab", "c"]), aad(&["a", "bc"]));
    }

    #[test]
    fn any_altered_byte_fails() {
        let a = aad(&["app-1", "cid-A"]);
        let sealed = key().seal(b"+8613800000000", &a);
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(key().open(&bad, &a), Err(SealError::DoesNotOpen), "byte {i}");
        }
        let mut bad = sealed.clone();
        bad[0] = 2;
        assert_eq!(key().open(&bad, &a), Err(SealError::UnknownVersion(2)));
        assert_eq!(key().open(&sealed[..sealed.len() - 1], &a), Err(SealError::DoesNotOpen));
        assert_eq!(key().open(&sealed[..SEAL_OVERHEAD - 1], &a), Err(SealError::TooShort(SEAL_OVERHEAD - 1)));
        assert_eq!(key().open(&[], &a), Err(SealError::TooShort(0)));
    }

    #[test]
    fn key_text_in_hex_or_base64() {
        let raw = [0x5au8; KEY_BYTES];
        let sealed = SealKey::from_bytes(&raw).seal(b"x", b"");
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        let url_no_pad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        for text in [hex::encode(raw), hex::encode_upper(raw), std, url_no_pad, format!("  {}\n", hex::encode(raw))] {
            let k = SealKey::from_text(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(k.open(&sealed, b"").unwrap(), b"x");
        }
        assert!(SealKey::from_text(DEV_KEY_HEX).is_ok());
    }

    #[test]
    fn bad_key_text_is_refused_with_a_clear_message() {
        let msg = |t: &str| SealKey::from_text(t).unwrap_err().to_string();
        assert!(msg("").contains("is empty"), "{}", msg(""));
        assert!(msg("   ").contains("is empty"));
        let short_hex = "ab".repeat(31);
        assert!(msg(&short_hex).contains("has 62 hex characters; a key is exactly 64"), "{}", msg(&short_hex));
        let b64_16 = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(msg(&b64_16).contains("decodes to 16 bytes"), "{}", msg(&b64_16));
        let not_b64 = "not a key at all!";
        assert!(msg(not_b64).contains("neither 64 hex characters nor base64"), "{}", msg(not_b64));
        assert!(msg(&"0".repeat(64)).contains("all zero"));
        // Messages never quote the text.
        let secretish = format!("{}zz", "c3".repeat(31));
        assert!(!msg(&secretish).contains("c3c3"), "{}", msg(&secretish));
    }

    #[test]
    fn debug_never_prints_the_key() {
        let k = key();
        let shown = format!("{k:?}");
        assert_eq!(shown, "SealKey([redacted])");
        assert!(!shown.contains("6361"));
    }
}
