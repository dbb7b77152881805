//! campaignd sends push-notification campaigns to millions of devices through Getui (个推),
//! durably and at a controlled speed.
//!
//! Modules follow the data flow of `DESIGN.md`, lower layers first; arrows only point down:
//!
//! - [`clock`]: the wall clock as Unix epoch milliseconds and seconds.
//! - [`dev`]: the published development credentials of the simulators and the dev config.
//! - [`domain`]: recipient ids and request ids; no I/O.
//! - [`config`]: the TOML configuration, typed and validated; secrets from the environment.
//! - [`percent`]: percent-decoding of paths and query values.
//! - [`secret`]: a string that never prints.
//! - [`serve`]: the HTTP accept loop shared by the API and the simulators.
//! - [`upstream`]: vendor clients (Getui RestAPI v2) over one pooled HTTPS client.
//! - [`simulator`]: faithful local stand-ins for the vendors, with a delivery ledger.
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dev;
pub mod dispatch;
pub mod domain;
pub mod metrics;
pub mod notify;
pub mod percent;
pub mod protocol;
pub mod retention;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod store;
pub mod upstream;
pub mod wecom;
