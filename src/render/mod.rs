//! Campaigns into the vendors' wire values: the one place where the domain's stored types meet
//! the wire's, so a vendor's format can change without touching a stored record.
//!
//! [`getui`] builds the v2 push bodies of a campaign (prepared once per run, then per recipient);
//! [`wecom`] builds the application message of `message/send`.

pub mod getui;
pub mod wecom;
