//! WeChat Work (企业微信): the WXBizMsgCrypt scheme that protects callbacks and passive replies.
//! No I/O; the callback endpoint and the send channel build on it.

pub mod crypto;

pub use crypto::{signature, CryptError, EncryptedReply, MsgCrypt};
