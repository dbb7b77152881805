//! Getui (个推) RestAPI v2: wire types, answer classification, signing and the client.

pub mod auth;
pub mod checks;
pub mod client;
pub mod error;
pub mod regions;
pub mod wire;

pub use client::{GetuiClient, GetuiSettings, PushOutcome};
pub use error::{AnswerClass, GetuiError};
