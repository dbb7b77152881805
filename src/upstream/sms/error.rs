//! What a Tencent Cloud SMS answer means for the caller: the error of a whole `SendSms` call,
//! and the outcome of each number of an accepted call, both classified once here.
//!
//! Codes are names (`LimitExceeded.PhoneNumberDailyLimit`), classified in
//! [`crate::wire::tencent_sms::codes`] after `shared/reference/getui-legacy-and-sms.md` §3.1;
//! this module maps those classes onto the shared [`AnswerClass`] and [`ResultName`]
//! vocabularies without adding to them.

use crate::domain::ResultName;
use crate::upstream::getui::error::classify_status;
use crate::upstream::{AnswerClass, CodeLabel, FailedAt, ProviderError};
use crate::wire::tencent_sms::codes::{self, CodeClass};
use crate::wire::tencent_sms::SendStatus;

/// Endpoint label of `SendSms` (one URL, `/`, the action travels in `X-TC-Action`).
pub const SEND_SMS: &str = "POST / SendSms";

/// The shared result name of a failure code, for a whole call or for one number.
///
/// Credentials and signatures → `sign_error`; daily caps and an empty balance →
/// `PushTotalNumOverLimit`; permissions → `no_permission`; a wrong or blacklisted number →
/// `TokenMD5Error` (the recipient's address is unusable, as a bad cid is); request-rate limits →
/// `flow_exceeded`; server faults → `SendError`; parameters, templates, signatures, content →
/// `Error`; anything else `OtherError`.
pub fn result_for_code(code: &str) -> ResultName {
    match code {
        codes::INCORRECT_PHONE_NUMBER | codes::PHONE_NUMBER_IN_BLACKLIST => ResultName::TargetInvalid,
        codes::INTERNAL_ERROR => ResultName::UpstreamUnavailable,
        "FailedOperation.InsufficientBalanceInSmsPackage" => ResultName::QuotaExceeded,
        c if c.starts_with("AuthFailure.") => ResultName::AuthFailed,
        c if c.starts_with("RequestLimitExceeded") => ResultName::RateLimited,
        c if c.starts_with("LimitExceeded.") && c != codes::PHONE_NUMBER_COUNT_LIMIT => ResultName::QuotaExceeded,
        c if c.starts_with("UnauthorizedOperation.") => ResultName::NoPermission,
        c if c.starts_with("InvalidParameter")
            || c.starts_with("MissingParameter")
            || c == codes::PHONE_NUMBER_COUNT_LIMIT
            || c == codes::SIGNATURE_INCORRECT_OR_UNAPPROVED
            || c == codes::TEMPLATE_INCORRECT_OR_UNAPPROVED
            || c == "FailedOperation.ContainSensitiveWord"
            || c == codes::INVALID_ACTION =>
        {
            ResultName::ParamInvalid
        }
        _ => ResultName::Failed,
    }
}

/// What happened to one number of a call the gateway accepted as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberOutcome {
    /// Accepted: a status report with `sid` = `serial_no` will follow.
    Sent {
        /// `SerialNo`, the status report's `sid`.
        serial_no: String,
        /// Billed segments.
        fee: u32,
    },
    /// A marketing text outside the send window: send it again when the window opens.
    WaitForWindow,
    /// Transient or rate-limited for this number: it may be sent again later.
    Retry {
        /// The code, for logs.
        code: String,
    },
    /// Will not be sent to this number (frequency caps, blacklist, wrong number, …).
    Final {
        /// The code, for the report (`sms_failed:<code>`).
        code: String,
        /// The shared result name.
        result: ResultName,
    },
}

/// Classifies one `SendStatusSet` entry.
pub fn number_outcome(status: &SendStatus) -> NumberOutcome {
    match codes::classify(&status.code) {
        CodeClass::Accepted => NumberOutcome::Sent { serial_no: status.serial_no.clone(), fee: status.fee },
        CodeClass::WaitForWindow => NumberOutcome::WaitForWindow,
        CodeClass::Retryable | CodeClass::RateLimited => NumberOutcome::Retry { code: status.code.clone() },
        CodeClass::NumberFinal | CodeClass::Permanent => {
            NumberOutcome::Final { code: status.code.clone(), result: result_for_code(&status.code) }
        }
    }
}

/// The bounded metric label of a code: its name when known, else `other`.
pub fn code_label_for(code: &str) -> CodeLabel {
    CodeLabel::Named(codes::known(code).unwrap_or("other"))
}

/// Everything that can go wrong with a `SendSms` call as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// No answer: connect, TLS, reset, timeout. The texts may or may not have gone out.
    #[error("no answer from {SEND_SMS}: {reason}")]
    Transport {
        /// Why there was no answer.
        reason: String,
        /// False when no connection could be made, so nothing was sent.
        request_sent: bool,
    },
    /// An HTTP status without Tencent's JSON body (a proxy's 502, a wrong base URL's 404).
    #[error("{SEND_SMS} answered HTTP {status} without a Tencent Cloud body")]
    Http {
        /// The HTTP status.
        status: u16,
    },
    /// `Response.Error`: the gateway refused the whole request.
    #[error("{SEND_SMS} answered {code}: {message} (RequestId {request_id})")]
    Api {
        /// `Response.Error.Code`.
        code: String,
        /// `Response.Error.Message` (for people; never matched on).
        message: String,
        /// `Response.RequestId`.
        request_id: String,
    },
    /// A 200 answer that is not the expected JSON.
    #[error("{SEND_SMS} answered something unreadable: {reason}")]
    Decode {
        /// What was wrong with it.
        reason: String,
    },
    /// The request breaks a documented limit and was not sent.
    #[error("request to {SEND_SMS} not sent: {reason}")]
    Invalid {
        /// What to fix.
        reason: String,
    },
}

impl SmsError {
    /// The wire class of a request-level code (`None` for failures without one), so a caller
    /// can tell a marketing-window refusal ([`CodeClass::WaitForWindow`]) from the rest.
    pub fn code_class(&self) -> Option<CodeClass> {
        match self {
            SmsError::Api { code, .. } => Some(codes::classify(code)),
            _ => None,
        }
    }
}

impl ProviderError for SmsError {
    /// A marketing-window refusal is `RateLimited` (wait, then retry); [`SmsError::code_class`]
    /// says how long is worth waiting.
    fn class(&self) -> AnswerClass {
        match self {
            SmsError::Transport { .. } | SmsError::Decode { .. } => AnswerClass::Retryable,
            SmsError::Http { status } => classify_status(*status),
            SmsError::Api { code, .. } => match codes::classify(code) {
                CodeClass::Retryable => AnswerClass::Retryable,
                CodeClass::RateLimited | CodeClass::WaitForWindow => AnswerClass::RateLimited,
                CodeClass::Accepted | CodeClass::NumberFinal | CodeClass::Permanent => AnswerClass::Permanent,
            },
            SmsError::Invalid { .. } => AnswerClass::Permanent,
        }
    }

    fn result(&self) -> ResultName {
        match self {
            SmsError::Api { code, .. } => result_for_code(code),
            SmsError::Invalid { .. } => ResultName::ParamInvalid,
            SmsError::Transport { .. } | SmsError::Http { .. } | SmsError::Decode { .. } => {
                ResultName::UpstreamUnavailable
            }
        }
    }

    fn code_label(&self) -> CodeLabel {
        match self {
            SmsError::Transport { .. } => CodeLabel::NoAnswer,
            SmsError::Http { status } => CodeLabel::HttpStatus(*status),
            SmsError::Api { code, .. } => code_label_for(code),
            SmsError::Decode { .. } => CodeLabel::Unreadable,
            SmsError::Invalid { .. } => CodeLabel::NotSent,
        }
    }

    fn endpoint(&self) -> &'static str {
        SEND_SMS
    }

    fn failed_at(&self) -> FailedAt {
        match self {
            SmsError::Transport { request_sent: false, .. } | SmsError::Invalid { .. } => FailedAt::NotSent,
            SmsError::Transport { .. } | SmsError::Decode { .. } => FailedAt::NoAnswer,
            SmsError::Http { status } => FailedAt::HttpStatus(*status),
            SmsError::Api { .. } => FailedAt::VendorCode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> SmsError {
        SmsError::Api { code: code.into(), message: String::new(), request_id: "r".into() }
    }

    #[test]
    fn request_level_codes_are_classified() {
        assert_eq!(api(codes::SIGNATURE_FAILURE).class(), AnswerClass::Permanent);
        assert_eq!(api(codes::SIGNATURE_FAILURE).result(), ResultName::AuthFailed);
        assert_eq!(api(codes::INTERNAL_ERROR).class(), AnswerClass::Retryable);
        assert_eq!(api("RequestLimitExceeded.UinLimitExceeded").class(), AnswerClass::RateLimited);
        assert_eq!(api(codes::MARKETING_SEND_TIME_CONSTRAINT).class(), AnswerClass::RateLimited);
        assert_eq!(api(codes::MARKETING_SEND_TIME_CONSTRAINT).code_class(), Some(CodeClass::WaitForWindow));
        assert_eq!(api(codes::PHONE_NUMBER_COUNT_LIMIT).result(), ResultName::ParamInvalid);
        assert_eq!(api(codes::SDK_APP_ID_NOT_EXIST).class(), AnswerClass::Permanent);
        assert_eq!(api("UnauthorizedOperation.ServiceSuspendDueToArrears").result(), ResultName::NoPermission);
        assert!(!api(codes::INTERNAL_ERROR).maybe_delivered());
    }

    #[test]
    fn labels_are_bounded_names() {
        assert_eq!(api(codes::PHONE_NUMBER_DAILY_LIMIT).code_label().metric_value(), codes::PHONE_NUMBER_DAILY_LIMIT);
        assert_eq!(api("Brand.New").code_label().metric_value(), "other");
        let lost = SmsError::Transport { reason: "reset".into(), request_sent: true };
        assert_eq!(
            (lost.class(), lost.maybe_delivered(), lost.code_label()),
            (AnswerClass::Retryable, true, CodeLabel::NoAnswer)
        );
        let refused = SmsError::Invalid { reason: "201 numbers".into() };
        assert_eq!(
            (refused.failed_at(), refused.code_label().metric_value().as_ref()),
            (FailedAt::NotSent, "not_sent")
        );
    }

    #[test]
    fn per_number_codes_become_outcomes() {
        let status =
            |code: &str| SendStatus { code: code.into(), serial_no: "s1".into(), fee: 2, ..SendStatus::default() };
        assert_eq!(number_outcome(&status("Ok")), NumberOutcome::Sent { serial_no: "s1".into(), fee: 2 });
        assert_eq!(number_outcome(&status(codes::MARKETING_SEND_TIME_CONSTRAINT)), NumberOutcome::WaitForWindow);
        assert!(matches!(number_outcome(&status(codes::INTERNAL_ERROR)), NumberOutcome::Retry { .. }));
        assert_eq!(
            number_outcome(&status(codes::PHONE_NUMBER_DAILY_LIMIT)),
            NumberOutcome::Final { code: codes::PHONE_NUMBER_DAILY_LIMIT.into(), result: ResultName::QuotaExceeded }
        );
        assert_eq!(
            number_outcome(&status(codes::INCORRECT_PHONE_NUMBER)),
            NumberOutcome::Final { code: codes::INCORRECT_PHONE_NUMBER.into(), result: ResultName::TargetInvalid }
        );
    }
}
