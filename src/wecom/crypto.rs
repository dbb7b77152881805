//! WXBizMsgCrypt: WeCom's message signature and AES-256-CBC envelope.
//!
//! Plaintext layout: 16 random bytes ‖ message length (u32, big-endian) ‖ message ‖ receive id,
//! padded PKCS#7-style to a multiple of **32** bytes, encrypted with AES-256-CBC whose IV is the
//! key's first 16 bytes, then base64. The signature is the hex SHA-1 of the sorted
//! concatenation of token, timestamp, nonce and the base64 text. Facts and pitfalls:
//! `shared/reference/wecom.md` §0–1.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// WeCom's padding block (not AES's 16).
const PAD_BLOCK: usize = 32;

/// EncodingAESKey's base64 has two spare bits in its last character that real keys set; the
/// official libraries ignore them, so this decoder does too.
const LENIENT: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));

/// The official libraries' error codes (PHP/Python numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// -40001: the signature does not match.
    #[error("signature does not match (-40001)")]
    ValidateSignature,
    /// -40002: the body could not be parsed.
    #[error("body could not be parsed (-40002)")]
    ParseXml,
    /// -40003: the signature could not be computed.
    #[error("signature could not be computed (-40003)")]
    ComputeSignature,
    /// -40004: the EncodingAESKey is not 43 base64 characters of a 32-byte key.
    #[error("EncodingAESKey is invalid (-40004)")]
    IllegalAesKey,
    /// -40005: the receive id (corp id) inside the message is not ours.
    #[error("receive id does not match (-40005)")]
    ValidateCorpid,
    /// -40006: encryption failed.
    #[error("encryption failed (-40006)")]
    EncryptAes,
    /// -40007: decryption failed (bad length or padding).
    #[error("decryption failed (-40007)")]
    DecryptAes,
    /// -40008: the decrypted buffer is malformed.
    #[error("decrypted buffer is malformed (-40008)")]
    IllegalBuffer,
    /// -40009: base64 encoding failed.
    #[error("base64 encoding failed (-40009)")]
    EncodeBase64,
    /// -40010: the ciphertext is not base64.
    #[error("ciphertext is not base64 (-40010)")]
    DecodeBase64,
    /// -40011: the reply XML could not be built.
    #[error("reply could not be built (-40011)")]
    GenReturnXml,
}

impl CryptError {
    /// The official library's numeric code.
    pub fn code(self) -> i32 {
        match self {
            CryptError::ValidateSignature => -40001,
            CryptError::ParseXml => -40002,
            CryptError::ComputeSignature => -40003,
            CryptError::IllegalAesKey => -40004,
            CryptError::ValidateCorpid => -40005,
            CryptError::EncryptAes => -40006,
            CryptError::DecryptAes => -40007,
            CryptError::IllegalBuffer => -40008,
            CryptError::EncodeBase64 => -40009,
            CryptError::DecodeBase64 => -40010,
            CryptError::GenReturnXml => -40011,
        }
    }
}

/// `msg_signature`: lowercase hex SHA-1 of the four strings sorted byte-wise and concatenated.
pub fn signature(token: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypted];
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// An encrypted, signed reply: the fields of the reply envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedReply {
    /// Base64 ciphertext (`<Encrypt>`).
    pub encrypt: String,
    /// Its signature (`<MsgSignature>`).
    pub msg_signature: String,
    /// `<TimeStamp>`.
    pub timestamp: String,
    /// `<Nonce>`.
    pub nonce: String,
}

impl EncryptedReply {
    /// The XML envelope WeCom expects as the body of a passive reply.
    pub fn to_xml(&self) -> String {
        format!(
            "<xml><Encrypt><![CDATA[{}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature>\
             <TimeStamp>{}</TimeStamp><Nonce><![CDATA[{}]]></Nonce></xml>",
            self.encrypt, self.msg_signature, self.timestamp, self.nonce
        )
    }
}

/// One agent's crypto: its token, AES key and expected receive id.
#[derive(Clone)]
pub struct MsgCrypt {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt").field("receive_id", &self.receive_id).finish_non_exhaustive()
    }
}

impl MsgCrypt {
    /// Decodes the 43-character EncodingAESKey. An empty `receive_id` skips the receive-id check.
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<MsgCrypt, CryptError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptError::IllegalAesKey);
        }
        let bytes = LENIENT.decode(format!("{encoding_aes_key}=")).map_err(|_| CryptError::IllegalAesKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptError::IllegalAesKey)?;
        Ok(MsgCrypt { token: token.to_owned(), key, receive_id: receive_id.to_owned() })
    }

    fn check_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<(), CryptError> {
        let expected = signature(&self.token, timestamp, nonce, encrypted);
        if bool::from(expected.as_bytes().ct_eq(msg_signature.to_ascii_lowercase().as_bytes())) {
            Ok(())
        } else {
            Err(CryptError::ValidateSignature)
        }
    }

    /// URL verification (GET): checks the signature over the (URL-decoded) echostr and returns
    /// the plaintext to answer, bare.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptError> {
        let plain = self.decrypt(msg_signature, timestamp, nonce, echostr)?;
        String::from_utf8(plain).map_err(|_| CryptError::IllegalBuffer)
    }

    /// Checks the signature and decrypts a message's `Encrypt` text.
    pub fn decrypt(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<Vec<u8>, CryptError> {
        self.check_signature(msg_signature, timestamp, nonce, encrypted)?;
        let mut buf = STANDARD.decode(encrypted.trim()).map_err(|_| CryptError::DecodeBase64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptError::DecryptAes);
        }
        let plain = Aes256CbcDec::new((&self.key).into(), self.key[..16].into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptError::DecryptAes)?;
        let unpadded = strip_padding(plain)?;
        let (msg, receive_id) = split_message(unpadded)?;
        if !self.receive_id.is_empty() && receive_id != self.receive_id.as_bytes() {
            return Err(CryptError::ValidateCorpid);
        }
        Ok(msg.to_vec())
    }

    /// Encrypts and signs a reply; `random16` is the random prefix (fresh for every message).
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        timestamp: &str,
        nonce: &str,
        random16: [u8; 16],
    ) -> Result<EncryptedReply, CryptError> {
        let len = u32::try_from(plaintext.len()).map_err(|_| CryptError::EncryptAes)?;
        let mut buf = Vec::with_capacity(20 + plaintext.len() + self.receive_id.len() + PAD_BLOCK);
        buf.extend_from_slice(&random16);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(plaintext);
        buf.extend_from_slice(self.receive_id.as_bytes());
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.resize(buf.len() + pad, pad as u8);
        let n = buf.len();
        let cipher = Aes256CbcEnc::new((&self.key).into(), self.key[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, n)
            .map_err(|_| CryptError::EncryptAes)?;
        let encrypt = STANDARD.encode(cipher);
        let msg_signature = signature(&self.token, timestamp, nonce, &encrypt);
        Ok(EncryptedReply { encrypt, msg_signature, timestamp: timestamp.to_owned(), nonce: nonce.to_owned() })
    }

    /// Like [`MsgCrypt::encrypt`] with a fresh random prefix.
    pub fn encrypt_random(&self, plaintext: &[u8], timestamp: &str, nonce: &str) -> Result<EncryptedReply, CryptError> {
        let mut random16 = [0u8; 16];
        for b in &mut random16 {
            *b = fastrand::alphanumeric() as u8;
        }
        self.encrypt(plaintext, timestamp, nonce, random16)
    }
}

/// Removes the 1..=32 padding bytes, all equal to their count.
fn strip_padding(buf: &[u8]) -> Result<&[u8], CryptError> {
    let pad = usize::from(*buf.last().ok_or(CryptError::IllegalBuffer)?);
    if pad == 0 || pad > PAD_BLOCK || pad > buf.len() || !buf[buf.len() - pad..].iter().all(|b| usize::from(*b) == pad)
    {
        return Err(CryptError::DecryptAes);
    }
    Ok(&buf[..buf.len() - pad])
}

/// Splits `random ‖ len ‖ msg ‖ receive_id` into the message and the receive id.
fn split_message(buf: &[u8]) -> Result<(&[u8], &[u8]), CryptError> {
    let len_bytes: [u8; 4] =
        buf.get(16..20).ok_or(CryptError::IllegalBuffer)?.try_into().map_err(|_| CryptError::IllegalBuffer)?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let end = 20usize.checked_add(len).filter(|e| *e <= buf.len()).ok_or(CryptError::IllegalBuffer)?;
    Ok((&buf[20..end], &buf[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";

    #[test]
    fn keys_must_be_43_characters_of_32_bytes() {
        assert_eq!(MsgCrypt::new("t", &KEY[..42], "x").unwrap_err(), CryptError::IllegalAesKey);
        assert_eq!(MsgCrypt::new("t", &format!("{}!", &KEY[..42]), "x").unwrap_err(), CryptError::IllegalAesKey);
        // The last character's spare bits are set in real keys; they are accepted.
        assert!(MsgCrypt::new("t", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "x").is_ok());
    }

    #[test]
    fn random_messages_round_trip() {
        let c = MsgCrypt::new("token", KEY, "corp123").unwrap();
        let mut rng = fastrand::Rng::with_seed(42);
        for _ in 0..500 {
            let len = rng.usize(0..300);
            let text: String = (0..len).map(|_| if rng.bool() { rng.alphanumeric() } else { '企' }).collect();
            let mut random16 = [0u8; 16];
            rng.fill(&mut random16);
            let ts = rng.u64(1_000_000_000..2_000_000_000).to_string();
            let nonce = rng.u32(..).to_string();
            let r = c.encrypt(text.as_bytes(), &ts, &nonce, random16).unwrap();
            assert_eq!(c.decrypt(&r.msg_signature, &ts, &nonce, &r.encrypt).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn padding_fills_whole_32_byte_blocks() {
        let c = MsgCrypt::new("token", KEY, "").unwrap();
        // 16 + 4 + 12 = 32 bytes: a full block of padding follows.
        let r = c.encrypt(&[b'a'; 12], "1", "2", [0; 16]).unwrap();
        assert_eq!(STANDARD.decode(&r.encrypt).unwrap().len(), 64);
        assert_eq!(c.decrypt(&r.msg_signature, "1", "2", &r.encrypt).unwrap(), vec![b'a'; 12]);
    }

    #[test]
    fn tampering_is_refused_with_the_right_code() {
        let c = MsgCrypt::new("token", KEY, "corp123").unwrap();
        let r = c.encrypt(b"hello", "1", "2", [7; 16]).unwrap();
        assert_eq!(c.decrypt("0000", "1", "2", &r.encrypt).unwrap_err().code(), -40001);
        let other = MsgCrypt::new("token", KEY, "another-corp").unwrap();
        assert_eq!(other.decrypt(&r.msg_signature, "1", "2", &r.encrypt).unwrap_err().code(), -40005);
        let sig = |e: &str| signature("token", "1", "2", e);
        assert_eq!(c.decrypt(&sig("@@@"), "1", "2", "@@@").unwrap_err().code(), -40010);
        let short = STANDARD.encode([1u8; 15]);
        assert_eq!(c.decrypt(&sig(&short), "1", "2", &short).unwrap_err().code(), -40007);
        // Flip a byte of the last block: the padding no longer checks out (or the length lies).
        let mut raw = STANDARD.decode(&r.encrypt).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x55;
        let bad = STANDARD.encode(&raw);
        assert!(matches!(c.decrypt(&sig(&bad), "1", "2", &bad).unwrap_err().code(), -40007 | -40008 | -40005));
    }

    #[test]
    fn split_refuses_lengths_past_the_end() {
        let mut buf = vec![0u8; 24];
        buf[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert_eq!(split_message(&buf).unwrap_err(), CryptError::IllegalBuffer);
        assert_eq!(split_message(&[0u8; 10]).unwrap_err(), CryptError::IllegalBuffer);
    }
}
