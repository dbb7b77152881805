//! Domain types with no I/O: recipient ids and request ids.
//!
//! Types here parse rather than validate: holding a [`CompactCid`] or a [`RequestId`] means the
//! value already obeys the upstream's rules.

pub(crate) mod ids;

pub use ids::{CompactCid, RequestId, RequestIdError};
