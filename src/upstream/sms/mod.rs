//! Tencent Cloud SMS as an outbound channel: `SendSms` with TC3-HMAC-SHA256 signing, for the
//! SMS fallback of issue 13.
//!
//! Same shape as the Getui and WeCom sides: the wire types, signing and codes live in
//! [`crate::wire::tencent_sms`]; here are an error type answering [`ProviderError`](crate::upstream::ProviderError)
//! and a pooled client. Facts come from `shared/reference/getui-legacy-and-sms.md` §3.1.

pub mod client;
pub mod error;

pub use crate::wire::tencent_sms::{SendSms, SendStatus, MAX_NUMBERS_PER_CALL};
pub use client::{SmsClientBuildError, TencentSmsClient, TencentSmsSettings};
pub use error::{number_outcome, result_for_code, NumberOutcome, SmsError, SEND_SMS};
