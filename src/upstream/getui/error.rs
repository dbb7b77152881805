//! What a Getui answer means for the caller: the error type and its classification.
//!
//! The dispatcher and the metrics ask it through [`ProviderError`] (class, result, code
//! label); nobody above this module matches on codes or message strings.

use std::time::Duration;

use crate::domain::ResultName;
pub use crate::upstream::AnswerClass;
use crate::upstream::{CodeLabel, FailedAt, ProviderError};

/// Classifies a Getui v2 business code (non-zero; 0 is success and 301 a redirect).
///
/// Codes come from the v2 code table (`reference/getui-v2.md` §5). Codes the table does not
/// know are treated as permanent so that an unknown answer never loops.
pub fn classify_code(code: i64) -> AnswerClass {
    match code {
        2 | 30019 => AnswerClass::Retryable,
        10003 | 10005 | 30012..=30015 | 30018 => AnswerClass::RateLimited,
        10001 => AnswerClass::ReAuth,
        _ => AnswerClass::Permanent,
    }
}

/// Classifies an HTTP status that came without a parsable Getui envelope.
pub fn classify_status(status: u16) -> AnswerClass {
    match status {
        500..=599 | 408 | 429 => AnswerClass::Retryable,
        _ => AnswerClass::Permanent,
    }
}

/// Everything that can go wrong when calling Getui.
#[derive(Debug, thiserror::Error)]
pub enum GetuiError {
    /// No answer: connect, TLS, reset, timeout. The request may or may not have been delivered.
    #[error("no answer from {endpoint}: {reason}")]
    Transport {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// Why there was no answer.
        reason: String,
        /// False when no connection could be made, so nothing was sent.
        request_sent: bool,
    },
    /// An HTTP status without a Getui envelope (a proxy's 502, a 404 for a wrong URL).
    #[error("{endpoint} answered HTTP {status} without a Getui body")]
    Http {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// A Getui envelope with a non-zero code.
    #[error("{endpoint} answered code {code}: {msg}")]
    Api {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// The business code.
        code: i64,
        /// The upstream's message.
        msg: String,
    },
    /// The answer could not be understood.
    #[error("{endpoint} answered something unreadable: {reason}")]
    Decode {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The request breaks a documented limit and was not sent.
    #[error("request to {endpoint} not sent: {reason}")]
    Invalid {
        /// Which endpoint would have been called.
        endpoint: &'static str,
        /// The limit it breaks.
        reason: String,
    },
}

impl ProviderError for GetuiError {
    /// Getui gives several refusals one code (20001) and tells them apart only in `msg`, so
    /// the text is read here and nowhere else.
    fn result(&self) -> ResultName {
        match self {
            GetuiError::Api { code, msg, .. } => match code {
                20001 if msg.contains("target user is invalid") => ResultName::TargetInvalid,
                20001 if msg.contains("taskid is invalid") => ResultName::TaskNotFound,
                20001 if msg.contains("has been stopped") => ResultName::TaskCancelled,
                20001 | 1 => ResultName::ParamInvalid,
                30004 | 30006..=30011 => ResultName::QuotaExceeded,
                10002 | 10004 | 30000..=30003 | 30017 => ResultName::NoPermission,
                _ => ResultName::Failed,
            },
            GetuiError::Invalid { .. } => ResultName::ParamInvalid,
            _ => ResultName::Failed,
        }
    }

    fn class(&self) -> AnswerClass {
        match self {
            GetuiError::Transport { .. } | GetuiError::Decode { .. } => AnswerClass::Retryable,
            GetuiError::Http { status, .. } => classify_status(*status),
            GetuiError::Api { code, .. } => classify_code(*code),
            GetuiError::Invalid { .. } => AnswerClass::Permanent,
        }
    }

    fn code_label(&self) -> CodeLabel {
        match self {
            GetuiError::Transport { .. } => CodeLabel::NoAnswer,
            GetuiError::Decode { .. } => CodeLabel::Unreadable,
            GetuiError::Http { status, .. } => CodeLabel::HttpStatus(*status),
            GetuiError::Api { code, .. } => CodeLabel::Vendor(*code),
            GetuiError::Invalid { .. } => CodeLabel::NotSent,
        }
    }

    fn endpoint(&self) -> &'static str {
        match self {
            GetuiError::Transport { endpoint, .. }
            | GetuiError::Http { endpoint, .. }
            | GetuiError::Api { endpoint, .. }
            | GetuiError::Decode { endpoint, .. }
            | GetuiError::Invalid { endpoint, .. } => endpoint,
        }
    }

    fn failed_at(&self) -> FailedAt {
        match self {
            GetuiError::Transport { request_sent: false, .. } | GetuiError::Invalid { .. } => FailedAt::NotSent,
            GetuiError::Transport { .. } | GetuiError::Decode { .. } => FailedAt::NoAnswer,
            GetuiError::Http { status, .. } => FailedAt::HttpStatus(*status),
            GetuiError::Api { .. } => FailedAt::VendorCode,
        }
    }

    /// Failures of `/auth` (also met inside a push call) deliver nothing.
    fn maybe_delivered(&self) -> bool {
        !self.endpoint().ends_with("/auth") && crate::upstream::maybe_delivered(self.failed_at())
    }
}

impl GetuiError {
    /// A suggested pause before retrying, by class: rate limits wait for the next window.
    pub fn suggested_backoff(&self) -> Option<Duration> {
        match self.class() {
            AnswerClass::RateLimited => Some(Duration::from_secs(1)),
            AnswerClass::Retryable => Some(Duration::from_millis(100)),
            AnswerClass::ReAuth | AnswerClass::Permanent => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_codes_map_to_results() {
        let api = |code, msg: &str| GetuiError::Api { endpoint: "POST /push/list/cid", code, msg: msg.into() };
        assert_eq!(api(20001, "target user is invalid").result(), ResultName::TargetInvalid);
        assert_eq!(api(20001, "title size over limit").result(), ResultName::ParamInvalid);
        assert_eq!(api(20001, "taskid is invalid").result(), ResultName::TaskNotFound);
        assert_eq!(api(20001, "taskid has been stopped").result(), ResultName::TaskCancelled);
        assert_eq!(api(30008, "").result(), ResultName::QuotaExceeded);
        assert_eq!(api(10002, "").result(), ResultName::NoPermission);
        assert_eq!(api(99999, "").result(), ResultName::Failed);
        let http = GetuiError::Http { endpoint: "POST /push/list/cid", status: 502 };
        assert_eq!(http.result(), ResultName::Failed);
    }

    #[test]
    fn codes_fall_in_the_documented_classes() {
        for code in [2, 30019] {
            assert_eq!(classify_code(code), AnswerClass::Retryable, "{code}");
        }
        for code in [10003, 10005, 30012, 30013, 30014, 30015, 30018] {
            assert_eq!(classify_code(code), AnswerClass::RateLimited, "{code}");
        }
        assert_eq!(classify_code(10001), AnswerClass::ReAuth);
        for code in [1, 404, 10002, 10004, 20001, 22001, 22002, 30003, 30007, 30008, 30009, 30010, 30016, 30017, 99999]
        {
            assert_eq!(classify_code(code), AnswerClass::Permanent, "{code}");
        }
    }

    #[test]
    fn transport_and_server_errors_are_retryable() {
        let t = GetuiError::Transport { endpoint: "POST /push/list/cid", reason: "reset".into(), request_sent: true };
        assert_eq!(t.class(), AnswerClass::Retryable);
        assert!(t.maybe_delivered());
        assert_eq!(t.code_label(), CodeLabel::NoAnswer);
        let refused =
            GetuiError::Transport { endpoint: "POST /push/list/cid", reason: "refused".into(), request_sent: false };
        assert_eq!((refused.class(), refused.maybe_delivered()), (AnswerClass::Retryable, false));
        let auth = GetuiError::Transport { endpoint: "POST /auth", reason: "reset".into(), request_sent: true };
        assert!(!auth.maybe_delivered());
        let h = GetuiError::Http { endpoint: "POST /push/list/cid", status: 503 };
        assert_eq!(h.class(), AnswerClass::Retryable);
        assert!(h.maybe_delivered(), "a 5xx may come after the push was processed");
        let limited = GetuiError::Api { endpoint: "POST /push/list/cid", code: 30015, msg: String::new() };
        assert!(!limited.maybe_delivered());
        let nf = GetuiError::Http { endpoint: "push_list_cid", status: 404 };
        assert_eq!(nf.class(), AnswerClass::Permanent);
    }

    #[test]
    fn locally_refused_requests_are_permanent() {
        let e = GetuiError::Invalid { endpoint: "push_single_batch_cid", reason: "201 messages".into() };
        assert_eq!(e.class(), AnswerClass::Permanent);
        assert_eq!(e.code_label(), CodeLabel::NotSent);
        assert!(e.suggested_backoff().is_none());
    }
}
