//! What can be wrong with a legacy SDK request, each error knowing the `result` string the
//! legacy answer carries, and the result strings themselves.

/// The `result` strings of legacy answers (reference §1.8), so no handler spells one twice.
pub mod results {
    /// Host discovery and most actions succeeded.
    pub const OK: &str = "ok";
    /// `connect` accepted the signature.
    pub const SUCCESS: &str = "success";
    /// Not authenticated (missing/unknown authToken) or a bad `connect` signature.
    pub const SIGN_ERROR: &str = "sign_error";
    /// Unknown or unsupported action.
    pub const ACTION_ERROR: &str = "action_error";
    /// Unknown appkey.
    pub const APPKEY_ERROR: &str = "appkey_error";
    /// Unknown appId.
    pub const APPID_ERROR: &str = "AppidError";
    /// The appId is not one of the appkey's.
    pub const APPID_NO_MATCH_APPKEY: &str = "AppidNoMatchAppKey";
    /// A malformed request.
    pub const ERROR: &str = "Error";
    /// A list push without targets.
    pub const TARGET_LIST_IS_NULL_OR_SIZE0: &str = "TargetListIsNullOrSize0";
    /// Anything else that failed.
    pub const OTHER_ERROR: &str = "OtherError";
    /// A request over a size limit.
    pub const DATA_TOO_BIG: &str = "data_too_big";
    /// Too many targets or items in one call.
    pub const TARGET_OVER_LIMIT: &str = "target overLimit";
    /// Too many calls.
    pub const TOO_FREQUENT: &str = "TooFrequent";
    /// A push without message content.
    pub const NULL_MSG_COMMON: &str = "NullMsgCommon";
    /// A cancelled task (the documented spelling).
    pub const TASK_ID_HAS_BEAN_CANCELED: &str = "TaskIdHasBeanCanceled";
    /// Per-cid status: delivered to an online device.
    pub const SUCCESSED_ONLINE: &str = "successed_online";
    /// Per-cid status: stored for an offline device.
    pub const SUCCESSED_OFFLINE: &str = "successed_offline";
    /// Per-cid status: inactive device, dropped.
    pub const SUCCESSED_IGNORE: &str = "successed_ignore";
    /// cid↔pn calls: the whole call succeeded (`result` and per-cid `code`).
    pub const PN_OK: &str = "0";
}

/// Why a legacy request could not be read; [`LegacyError::result`] gives the answer's `result`.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The body or a nested JSON string is not the expected JSON.
    #[error("{what} is not valid JSON: {source}")]
    Json {
        /// Which JSON (e.g. "the request body", "batch item 3").
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A field that must be base64 is not.
    #[error("{field} is not base64: {source}")]
    Base64 {
        /// The JSON field.
        field: &'static str,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },
    /// A field's bytes are not the expected protobuf message.
    #[error("{field} is not a valid protobuf {message}: {source}")]
    Protobuf {
        /// The JSON field.
        field: &'static str,
        /// The message type expected.
        message: &'static str,
        /// prost's complaint.
        #[source]
        source: prost::DecodeError,
    },
    /// A gzip body that does not inflate.
    #[error("the gzip body does not inflate: {0}")]
    Gzip(#[source] std::io::Error),
    /// Something is larger than campaignd accepts (a gzip bomb, a huge field).
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The cap, in bytes.
        limit: usize,
    },
    /// More items than one call may carry.
    #[error("{what}: {count} items, at most {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// The template cannot be rebuilt (broken action chain, bad condition, bad SMS info).
    #[error("template: {0}")]
    Template(String),
    /// A template kind campaignd cannot send through v2.
    #[error("unsupported template: {0}")]
    Unsupported(String),
}

impl LegacyError {
    /// The legacy `result` string the answer to this error carries.
    pub fn result(&self) -> &'static str {
        match self {
            LegacyError::TooLarge { .. } => results::DATA_TOO_BIG,
            LegacyError::TooMany { .. } => results::TARGET_OVER_LIMIT,
            LegacyError::Json { .. }
            | LegacyError::Base64 { .. }
            | LegacyError::Protobuf { .. }
            | LegacyError::Gzip(_)
            | LegacyError::Template(_)
            | LegacyError::Unsupported(_) => results::ERROR,
        }
    }
}
