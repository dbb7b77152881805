//! The Getui (个推) RestAPI v2 client and its answer classification; the wire types, field
//! rules and signing it uses live in [`crate::wire::getui`].

pub mod client;
pub mod error;

pub use client::{GetuiClient, GetuiSettings, PushOutcome};
pub use error::{AnswerClass, GetuiError};
