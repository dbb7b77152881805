//! The published development credentials: what the simulators accept and what the shipped
//! development configuration falls back to. None of them is a secret; never use them for a
//! real app. Kept here, below both `config` and `simulator`, so neither imports the other.

// Getui.

/// The well-known development AppId. Not a secret: printed at start and in the README.
pub const DEV_APP_ID: &str = "campaignd-dev-app";
/// The well-known development AppKey.
pub const DEV_APP_KEY: &str = "campaignd-dev-key";
/// The well-known development MasterSecret. It protects nothing; never use it for a
/// real app.
pub const DEV_MASTER_SECRET: &str = "campaignd-dev-master-secret";

// WeCom.

/// The development CorpID. Not a secret: printed in docs and tests.
pub const DEV_WECOM_CORP_ID: &str = "wwcampaignddev001";
/// The development AgentId.
pub const DEV_WECOM_AGENT_ID: i64 = 1000002;
/// The development application Secret. It protects nothing; never use it for a
/// real application.
pub const DEV_WECOM_SECRET: &str = "campaignd-dev-wecom-secret-0123456789abcdef";
/// The development callback Token that signs callbacks (for the simulator's callback player and the
/// daemon's callback endpoint in development).
pub const DEV_WECOM_CALLBACK_TOKEN: &str = "campaignddevcallback";
/// The development EncodingAESKey: 43 characters of `[A-Za-z0-9]`.
pub const DEV_WECOM_AES_KEY: &str = "campaigndDevWecomAesKey0123456789abcdefGHIJ";

// Tencent Cloud SMS: the documented example credentials of the API 3.0 signature page
// (shared/reference/getui-legacy-and-sms.md §3.1), and the simulator's app, signature and templates.

/// The development SecretId (Tencent's published example value).
pub const DEV_SMS_SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
/// The development SecretKey (Tencent's published example value). It protects nothing.
pub const DEV_SMS_SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
/// The development SmsSdkAppId (the example of the SendSms documents).
pub const DEV_SMS_SDK_APP_ID: &str = "1400006666";
/// The development signature (签名) content.
pub const DEV_SMS_SIGN_NAME: &str = "campaignd";
/// The simulator's approved templates: id and text with numbered placeholders.
pub const DEV_SMS_TEMPLATES: [(&str, &str); 2] = [
    ("1000001", "您好{1}，您有一条未读消息：{2}。打开App查看，回TD退订"),
    ("1234567", "尊敬的{1}，你的余额还剩{2}元，请尽快充值。"),
];

// Sealing of personal data at rest.

/// The development key for the `seal` module: 64 hex characters, the ASCII bytes of
/// `campaignd-dev-seal-key-PUBLIC!!!`. Published, so anything sealed with it is readable by
/// anyone: for the demo and tests only, never for real phone numbers.
pub const DEV_SEAL_KEY_HEX: &str = "63616d706169676e642d6465762d7365616c2d6b65792d5055424c4943212121";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_seal_key_is_32_nonzero_bytes_of_hex_and_says_what_it_is() {
        // `seal::SealKey::from_text` takes this form; `seal` tests open values with a copy of it.
        let bytes = hex::decode(DEV_SEAL_KEY_HEX).unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(bytes.iter().any(|&b| b != 0));
        assert_eq!(bytes, b"campaignd-dev-seal-key-PUBLIC!!!");
    }
}
