//! WeChat Work (企业微信): the WXBizMsgCrypt scheme that protects callbacks and passive replies,
//! and the XML inside them. No I/O; the callback endpoint and the send channel build on it.

pub mod callback;
pub mod crypto;
pub mod message;
pub mod reply;

pub use crypto::{signature, CryptError, EncryptedReply, MsgCrypt};
pub use message::{parse_envelope, parse_inbound, Envelope, Event, Inbound, InboundKind, XmlError};
pub use reply::{reply_xml, Article, ReplyMessage};
