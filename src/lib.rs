//! campaignd sends push-notification campaigns to millions of devices through Getui (个推) and
//! WeCom (企业微信), durably and at a controlled speed.
//!
//! Modules follow the data flow of `DESIGN.md`, lower layers first; arrows only point down
//! (`tests/layers.rs` keeps it so, and lists the few older ties still to remove):
//!
//! 1. Ground floor, no I/O: [`secret`] (a string that never prints), [`clock`] (the wall clock
//!    in Unix milliseconds and seconds), [`dev`] (the published development credentials),
//!    [`percent`] (percent-decoding), [`domain`] (campaigns, templates, recipients, results,
//!    ids), [`protocol`] (the API's JSON shapes), [`notify`] (systemd notifications).
//! 2. [`wecom`] (WXBizMsgCrypt, the callback's XML and decisions), [`config`] (the TOML
//!    configuration, typed and validated), [`metrics`] (the Prometheus registry), [`render`]
//!    (a campaign's domain types into the vendors' wire values, in one tested place).
//! 3. [`serve`] (the HTTP accept loop), [`upstream`] (Getui and WeCom clients), [`store`] (the
//!    async `Store` trait and its sled implementation).
//! 4. [`simulator`] (faithful local stand-ins for the vendors, with delivery ledgers),
//!    [`client`] (the API's client for the CLI verbs).
//! 5. [`api`] (routes), [`dispatch`] (scheduler, shards, retries), [`retention`] (removes
//!    finished campaigns past their time).
//! 6. [`daemon`]: wires them and owns shutdown. Above it, the binary's `cli`.
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
pub mod render;
pub mod retention;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod store;
pub mod upstream;
pub mod wecom;
pub mod wire;
