//! WeCom (企业微信) as an outbound channel: application messages to member ids.
//!
//! Same shape as the Getui side: the wire types live in [`crate::wire::wecom`]; here are an error type classified into the
//! shared [`AnswerClass`](crate::upstream::AnswerClass), and a pooled client that keeps
//! its access token fresh. Facts come from `shared/reference/wecom.md` §4.

pub mod client;
pub mod error;

pub use crate::wire::wecom::{AppMessage, NewsArticle, MAX_USERS_PER_SEND};
pub use client::{SendOutcome, WecomClient, WecomSettings};
pub use error::WecomError;
