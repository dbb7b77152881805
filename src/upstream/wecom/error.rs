//! What a WeCom answer means for the caller: the error type and its classification.
//!
//! The dispatcher treats both vendors alike, so WeCom failures map onto Getui's
//! [`AnswerClass`]; codes and message strings stay inside this module.

use std::time::Duration;

use crate::domain::ResultName;
use crate::upstream::getui::error::classify_status;
use crate::upstream::{AnswerClass, CodeLabel, FailedAt, ProviderError};

/// Endpoint label of `gettoken`.
pub const GETTOKEN: &str = "GET /cgi-bin/gettoken";
/// Endpoint label of `message/send`.
pub const MESSAGE_SEND: &str = "POST /cgi-bin/message/send";

/// Classifies a non-zero WeCom `errcode` returned by `endpoint` (`shared/reference/wecom.md` §4.4).
///
/// 40001 means "invalid secret" from `gettoken` (a configuration error) but, as on the WeChat
/// MP API, "token no longer valid" when a call made with a token we were just given answers
/// it; only the second case is worth a fresh token. Unknown codes are permanent so that an
/// unexpected answer never loops.
pub fn classify_code(endpoint: &str, code: i64) -> AnswerClass {
    match code {
        -1 => AnswerClass::Retryable,
        45009 | 45033 => AnswerClass::RateLimited,
        42001 | 40014 => AnswerClass::ReAuth,
        40001 if endpoint != GETTOKEN => AnswerClass::ReAuth,
        _ => AnswerClass::Permanent,
    }
}

/// Everything that can go wrong when calling WeCom.
#[derive(Debug, thiserror::Error)]
pub enum WecomError {
    /// No answer: connect, TLS, reset, timeout. The message may or may not have been delivered.
    #[error("no answer from {endpoint}: {reason}")]
    Transport {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// Why there was no answer.
        reason: String,
        /// False when no connection could be made, so nothing was sent.
        request_sent: bool,
    },
    /// An HTTP status without a WeCom JSON body (a proxy's 502, a 404 for a wrong base URL).
    #[error("{endpoint} answered HTTP {status} without a WeCom body")]
    Http {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// A WeCom answer with a non-zero `errcode`.
    #[error("{endpoint} answered errcode {code}: {msg}")]
    Api {
        /// Which endpoint was called.
        endpoint: &'static str,
        /// The `errcode`.
        code: i64,
        /// The `errmsg` (for people; never matched on).
        msg: String,
    },
    /// A 200 answer that is not the expected JSON.
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
        /// What to fix.
        reason: String,
    },
}

impl ProviderError for WecomError {
    fn result(&self) -> ResultName {
        match self {
            WecomError::Api { code, .. } => match code {
                81013 => ResultName::InvalidUser,
                40056 | 48002 | 60011 | 60020 => ResultName::NoPermission,
                40001 | 40013 | 40091 | 41004 => ResultName::AuthFailed,
                40008 | 40058 | 44004 | 45002 | 45008 | 47001 | 82001 => ResultName::ParamInvalid,
                _ => ResultName::Failed,
            },
            WecomError::Invalid { .. } => ResultName::ParamInvalid,
            _ => ResultName::Failed,
        }
    }

    fn class(&self) -> AnswerClass {
        match self {
            WecomError::Transport { .. } | WecomError::Decode { .. } => AnswerClass::Retryable,
            WecomError::Http { status, .. } => classify_status(*status),
            WecomError::Api { endpoint, code, .. } => classify_code(endpoint, *code),
            WecomError::Invalid { .. } => AnswerClass::Permanent,
        }
    }

    fn code_label(&self) -> CodeLabel {
        match self {
            WecomError::Transport { .. } => CodeLabel::NoAnswer,
            WecomError::Http { status, .. } => CodeLabel::HttpStatus(*status),
            WecomError::Api { code, .. } => CodeLabel::Vendor(*code),
            WecomError::Decode { .. } => CodeLabel::Unreadable,
            WecomError::Invalid { .. } => CodeLabel::NotSent,
        }
    }

    fn endpoint(&self) -> &'static str {
        match self {
            WecomError::Transport { endpoint, .. }
            | WecomError::Http { endpoint, .. }
            | WecomError::Api { endpoint, .. }
            | WecomError::Decode { endpoint, .. }
            | WecomError::Invalid { endpoint, .. } => endpoint,
        }
    }

    fn failed_at(&self) -> FailedAt {
        match self {
            WecomError::Transport { request_sent: false, .. } | WecomError::Invalid { .. } => FailedAt::NotSent,
            WecomError::Transport { .. } | WecomError::Decode { .. } => FailedAt::NoAnswer,
            WecomError::Http { status, .. } => FailedAt::HttpStatus(*status),
            WecomError::Api { .. } => FailedAt::VendorCode,
        }
    }

    /// A blind retry could deliver twice unless the duplicate check catches it; `gettoken`
    /// failures deliver nothing.
    fn maybe_delivered(&self) -> bool {
        self.endpoint() == MESSAGE_SEND && crate::upstream::maybe_delivered(self.failed_at())
    }
}

impl WecomError {
    /// A suggested pause before retrying. WeCom blocks a per-minute limit for 60 s; a
    /// concurrency refusal clears as soon as other calls finish.
    pub fn suggested_backoff(&self) -> Option<Duration> {
        match (self, self.class()) {
            (WecomError::Api { code: 45033, .. }, _) => Some(Duration::from_secs(1)),
            (_, AnswerClass::RateLimited) => Some(Duration::from_secs(60)),
            (_, AnswerClass::Retryable) => Some(Duration::from_millis(200)),
            (_, AnswerClass::ReAuth | AnswerClass::Permanent) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(endpoint: &'static str, code: i64) -> WecomError {
        WecomError::Api { endpoint, code, msg: String::new() }
    }

    #[test]
    fn permanent_codes_map_to_member_results() {
        assert_eq!(api(MESSAGE_SEND, 81013).result(), ResultName::InvalidUser);
        assert_eq!(api(MESSAGE_SEND, 60020).result(), ResultName::NoPermission);
        assert_eq!(api(MESSAGE_SEND, 40013).result(), ResultName::AuthFailed);
        assert_eq!(api(MESSAGE_SEND, 44004).result(), ResultName::ParamInvalid);
        assert_eq!(api(MESSAGE_SEND, 99999).result(), ResultName::Failed);
    }

    #[test]
    fn codes_fall_in_the_documented_classes() {
        assert_eq!(api(MESSAGE_SEND, -1).class(), AnswerClass::Retryable);
        for code in [45009, 45033] {
            assert_eq!(api(MESSAGE_SEND, code).class(), AnswerClass::RateLimited, "{code}");
        }
        for code in [42001, 40014, 40001] {
            assert_eq!(api(MESSAGE_SEND, code).class(), AnswerClass::ReAuth, "{code}");
        }
        for code in [40001, 40013, 40091, 41004] {
            assert_eq!(api(GETTOKEN, code).class(), AnswerClass::Permanent, "{code}");
        }
        for code in [40008, 40056, 41001, 44004, 45002, 45008, 48002, 60011, 60020, 81013, 82001, 99999] {
            assert_eq!(api(MESSAGE_SEND, code).class(), AnswerClass::Permanent, "{code}");
        }
    }

    #[test]
    fn no_answer_is_retryable_and_labelled() {
        let t = WecomError::Transport { endpoint: MESSAGE_SEND, reason: "reset".into(), request_sent: true };
        assert_eq!(
            (t.class(), t.code_label().to_string().as_str(), t.maybe_delivered()),
            (AnswerClass::Retryable, "transport", true)
        );
        let g = WecomError::Transport { endpoint: GETTOKEN, reason: "reset".into(), request_sent: true };
        assert!(!g.maybe_delivered());
        let refused = WecomError::Transport { endpoint: MESSAGE_SEND, reason: "refused".into(), request_sent: false };
        assert_eq!((refused.class(), refused.maybe_delivered()), (AnswerClass::Retryable, false));
        let h = WecomError::Http { endpoint: MESSAGE_SEND, status: 502 };
        assert_eq!((h.class(), h.code_label().to_string().as_str()), (AnswerClass::Retryable, "http_502"));
        assert!(h.maybe_delivered(), "a 5xx may come after the send was processed");
        assert!(!api(MESSAGE_SEND, 45009).maybe_delivered());
        assert!(!api(MESSAGE_SEND, -1).maybe_delivered());
        let nf = WecomError::Http { endpoint: MESSAGE_SEND, status: 404 };
        assert_eq!(nf.class(), AnswerClass::Permanent);
        assert_eq!(api(MESSAGE_SEND, 45009).code_label().to_string(), "45009");
        assert_eq!(api(MESSAGE_SEND, 45009).suggested_backoff(), Some(Duration::from_secs(60)));
        assert_eq!(api(MESSAGE_SEND, 45033).suggested_backoff(), Some(Duration::from_secs(1)));
        let inv = WecomError::Invalid { endpoint: MESSAGE_SEND, reason: "1001 users".into() };
        assert_eq!((inv.class(), inv.code_label().to_string().as_str()), (AnswerClass::Permanent, "invalid"));
        assert!(inv.suggested_backoff().is_none());
    }
}
