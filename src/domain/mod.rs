//! Domain types with no I/O: recipients, request ids, campaigns and their state machine,
//! message templates, the vocabulary of results, phone numbers and the SMS fallback rules.
//!
//! Types here parse rather than validate: holding a [`CompactCid`], a [`RequestId`] or a
//! [`CampaignSpec`] means the value already obeys the rules.

pub mod campaign;
pub(crate) mod ids;
pub mod legacy;
pub mod message;
pub mod outcome;
pub mod phone;
pub mod recipient;
pub mod sms;
pub mod texting;

pub use campaign::{Action, CampaignSpec, CampaignState, Mode, Replay};
pub use ids::{ChunkRequestIds, CompactCid, RequestId, RequestIdError, RequestKey, StoreIdentity};
pub use outcome::{Counts, ResultName, Tally};
pub use phone::{PhoneError, PhoneNumber};

/// The send channels an app can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Getui RestAPI v2.
    Getui,
    /// WeChat Work application messages.
    Wecom,
}

impl Channel {
    /// The name campaigns and metric labels use.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Getui => "getui",
            Channel::Wecom => "wecom",
        }
    }
}

/// A field of a request that breaks a rule, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `settings.ttl_ms`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}
