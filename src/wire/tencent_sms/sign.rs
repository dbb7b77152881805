//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, as pure functions: the
//! canonical request, the string to sign, the derived key and the `Authorization` header.
//! The client signs with them and the simulator recomputes them over the body it received.
//!
//! Source: `shared/reference/getui-legacy-and-sms.md` §3.1 ("Signing"), with both of its test
//! vectors as unit tests. Only what SendSms needs is modelled: `POST /` with no query string,
//! signed headers `content-type;host`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name, first word of the `Authorization` header and of the string to sign.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The headers covered by the signature, as the header lists them.
pub const SIGNED_HEADERS: &str = "content-type;host";
/// Last element of the credential scope.
pub const TERMINATOR: &str = "tc3_request";

type HmacSha256 = Hmac<Sha256>;

/// What a request is signed over.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// The `Host` header, e.g. `sms.tencentcloudapi.com` (lower-cased and trimmed when signed).
    pub host: &'a str,
    /// The `Content-Type` header exactly as sent, e.g. `application/json`.
    pub content_type: &'a str,
    /// `X-TC-Timestamp`, Unix seconds.
    pub timestamp: i64,
    /// The service name of the credential scope, `sms` here (`cvm` in the official example).
    pub service: &'a str,
    /// The request body, exact bytes.
    pub body: &'a [u8],
}

/// Every intermediate value of one signature, so tests and the simulator's error messages can
/// show where two sides differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Lowercase hex SHA-256 of the body.
    pub payload_hash: String,
    /// Lowercase hex SHA-256 of the canonical request.
    pub canonical_request_hash: String,
    /// `YYYY-MM-DD/service/tc3_request`.
    pub credential_scope: String,
    /// Lowercase hex HMAC of the string to sign.
    pub signature: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The canonical request of a `POST /` with no query string: method, URI, query, the two
/// signed headers (names and values lower-cased and trimmed), the signed-header list and the
/// payload hash, joined by newlines.
pub fn canonical_request(content_type: &str, host: &str, body: &[u8]) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{}",
        content_type.trim().to_lowercase(),
        host.trim().to_lowercase(),
        sha256_hex(body)
    )
}

/// The UTC date (not Beijing's) of a Unix timestamp, `YYYY-MM-DD`; `None` out of range.
pub fn utc_date(timestamp: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(timestamp).ok()?;
    Some(format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
}

/// `Date/service/tc3_request`.
pub fn credential_scope(date: &str, service: &str) -> String {
    format!("{date}/{service}/{TERMINATOR}")
}

/// `TC3-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(timestamp: i64, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{timestamp}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The derived signing key: HMAC chain over `"TC3" + SecretKey`, the date, the service and
/// `tc3_request`.
pub fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Signs `input` with `secret_key`; `None` only for a timestamp outside the calendar.
pub fn sign(secret_key: &str, input: &SigningInput<'_>) -> Option<Signed> {
    let date = utc_date(input.timestamp)?;
    let scope = credential_scope(&date, input.service);
    let canonical = canonical_request(input.content_type, input.host, input.body);
    let to_sign = string_to_sign(input.timestamp, &scope, &canonical);
    let key = signing_key(secret_key, &date, input.service);
    Some(Signed {
        payload_hash: sha256_hex(input.body),
        canonical_request_hash: sha256_hex(canonical.as_bytes()),
        credential_scope: scope,
        signature: hex::encode(hmac_sha256(&key, to_sign.as_bytes())),
    })
}

/// The `Authorization` header value.
pub fn authorization(secret_id: &str, signed: &Signed) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{}, SignedHeaders={SIGNED_HEADERS}, Signature={}",
        signed.credential_scope, signed.signature
    )
}

/// The parts of a received `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The SecretId of the credential.
    pub secret_id: String,
    /// The credential scope's date, `YYYY-MM-DD`.
    pub date: String,
    /// The credential scope's service.
    pub service: String,
    /// The signed-header list.
    pub signed_headers: String,
    /// The hex signature.
    pub signature: String,
}

/// Reads `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=…, Signature=…`;
/// `None` when it does not have that shape.
pub fn parse_authorization(header: &str) -> Option<ParsedAuthorization> {
    let rest = header.trim().strip_prefix(ALGORITHM)?.trim_start();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => return None,
        }
    }
    let mut scope = credential?.splitn(4, '/');
    let (secret_id, date, service, terminator) = (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    if terminator != TERMINATOR || secret_id.is_empty() {
        return None;
    }
    Some(ParsedAuthorization {
        secret_id: secret_id.to_owned(),
        date: date.to_owned(),
        service: service.to_owned(),
        signed_headers: signed_headers?.to_owned(),
        signature: signature?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    /// §3.1, first vector: the official CVM example.
    #[test]
    fn official_cvm_example_vector() {
        let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let input = SigningInput {
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            timestamp: 1551113065,
            service: "cvm",
            body,
        };
        let signed = sign(EXAMPLE_SECRET_KEY, &input).unwrap();
        assert_eq!(signed.payload_hash, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
        assert_eq!(signed.canonical_request_hash, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
        assert_eq!(signed.credential_scope, "2019-02-25/cvm/tc3_request");
        assert_eq!(signed.signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
    }

    /// §3.1, second vector: a SendSms request.
    #[test]
    fn send_sms_vector() {
        let body = r#"{"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1234567","TemplateParamSet":["张三","12"],"SessionContext":"campaign-1:cid-A"}"#;
        let input = SigningInput {
            host: "sms.tencentcloudapi.com",
            content_type: "application/json",
            timestamp: 1764547200,
            service: "sms",
            body: body.as_bytes(),
        };
        let signed = sign(EXAMPLE_SECRET_KEY, &input).unwrap();
        assert_eq!(signed.payload_hash, "07424b8a54ebb4bafa0567687ec6b93cd32367f425a3f1cd16d3c3dcb4b96048");
        assert_eq!(signed.canonical_request_hash, "ad81de1acd4077006b2fbbaf9a67470d1ba3ba9d8d52b41ae0b727174f31ba0d");
        assert_eq!(signed.signature, "af3cdf7d4b0233eff6ceee3e73c3642bb16c1d95bfca0a35a43432c9e166b915");
        let header = authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", &signed);
        assert_eq!(
            header,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2025-12-01/sms/tc3_request, \
             SignedHeaders=content-type;host, Signature=af3cdf7d4b0233eff6ceee3e73c3642bb16c1d95bfca0a35a43432c9e166b915"
        );
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(
            (parsed.secret_id.as_str(), parsed.date.as_str(), parsed.service.as_str()),
            ("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "2025-12-01", "sms")
        );
        assert_eq!(
            (parsed.signed_headers.as_str(), parsed.signature.as_str()),
            (SIGNED_HEADERS, signed.signature.as_str())
        );
    }

    #[test]
    fn the_date_is_utc_and_bad_headers_do_not_parse() {
        // 2025-12-01 23:30 UTC is already the 2nd in Beijing; the scope keeps the UTC date.
        assert_eq!(utc_date(1764547200 + 23 * 3600 + 1800).as_deref(), Some("2025-12-01"));
        assert!(utc_date(i64::MAX).is_none());
        for bad in [
            "",
            "HMAC x",
            "TC3-HMAC-SHA256 Credential=id/2025-12-01/sms, SignedHeaders=a, Signature=b",
            "TC3-HMAC-SHA256 Credential=id/2025-12-01/sms/tc3_request, SignedHeaders=a",
            "TC3-HMAC-SHA256 Credential=/2025-12-01/sms/tc3_request, SignedHeaders=a, Signature=b",
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad:?}");
        }
    }
}
