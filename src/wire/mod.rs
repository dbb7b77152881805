//! The vendors' formats as they travel, with their field rules and tables, and no I/O: what
//! both our clients and our simulators read and write, so a field name or a limit can only be
//! wrong in one place. Nothing here knows campaigns; the `render` module turns a campaign into
//! these types.

pub mod getui;
pub mod getui_legacy;
pub mod json_object;
pub mod tencent_sms;
pub mod wecom;
