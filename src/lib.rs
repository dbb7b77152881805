//! campaignd sends push-notification campaigns to millions of devices through Getui (个推) and
//! WeCom (企业微信), durably and at a controlled speed; Tencent Cloud SMS is its SMS gateway.
//!
//! Modules follow the data flow of `DESIGN.md`, lower layers first; arrows only point down
//! (`tests/layers.rs` keeps it so: no upward import, no cycle, not even among the files of one
//! folder):
//!
//! 1. Ground floor, no I/O and no knowledge of campaigns: [`secret`] (a string that never
//!    prints), [`clock`] (the wall clock in Unix milliseconds and seconds), [`dev`] (the
//!    published development credentials), [`percent`] (percent-decoding), [`notify`] (systemd
//!    notifications), [`seal`] (AES-256-GCM for personal data at rest), [`wire`] (the vendors'
//!    formats as they travel, their field rules and region tables).
//! 2. [`domain`] (campaigns, templates, recipients, results, ids, in domain types only: this is
//!    what the store keeps) and [`protocol`] (the API's JSON shapes).
//! 3. [`render`] (a campaign into each vendor's wire values, in one tested place per vendor),
//!    [`wecom`] (WXBizMsgCrypt, the callback's XML and decisions), [`config`] (the TOML
//!    configuration: schema, validation, secrets, runtime settings), [`metrics`] (the
//!    Prometheus registry and the one `code` label vocabulary).
//! 4. [`serve`] (the HTTP accept loop), [`upstream`] (Getui, WeCom and Tencent Cloud SMS
//!    clients; each error type answers its class, result and code label through
//!    `ProviderError`), [`store`] (the async `Store` trait and its sled implementation).
//! 5. [`simulator`] (faithful local stand-ins for the vendors, with delivery ledgers),
//!    [`client`] (the API's client for the CLI verbs).
//! 6. [`api`] (routes), [`dispatch`] (an I/O-free core of decisions, `dispatch::decide`, in an
//!    async shell of scheduler, runners and shards), [`retention`] (removes finished campaigns
//!    past their time).
//! 7. [`daemon`]: wires them and owns shutdown. Above it, the binary's `cli`.
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
pub mod seal;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod store;
pub mod upstream;
pub mod wecom;
pub mod wire;
