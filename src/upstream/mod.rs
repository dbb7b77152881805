//! Clients of the push vendors. Each vendor gets a folder with its wire types, its error
//! classification and its client; all of them share the pooled HTTP client of [`http`].

pub mod getui;
pub mod http;
pub mod wecom;
