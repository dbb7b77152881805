//! Clients of the push vendors and the SMS gateway. Each vendor gets a folder with its error type and its client
//! (the wire types are in [`crate::wire`]); all of them share the pooled HTTP client of
//! [`http`] and one vocabulary of failures, [`ProviderError`], that the dispatcher and the
//! metrics ask and never look behind.

pub mod getui;
pub mod http;
pub mod sms;
pub mod wecom;

use crate::domain::ResultName;
pub use crate::metrics::CodeLabel;

/// What every provider's error answers, each in one place: the dispatcher asks for the class,
/// the recipients' result and whether a retry could repeat a delivery; the metrics ask for
/// the code label. Codes and message texts stay inside the provider's module.
pub trait ProviderError: std::error::Error + Send + Sync + 'static {
    /// What the caller should do about it.
    fn class(&self) -> AnswerClass;
    /// The result of each recipient of a call that ended with this error, when permanent.
    fn result(&self) -> ResultName;
    /// The `code` label to count the exchange under.
    fn code_label(&self) -> CodeLabel;
    /// The endpoint label of the exchange.
    fn endpoint(&self) -> &'static str;
    /// How far the failed request got.
    fn failed_at(&self) -> FailedAt;
    /// True when the request may have reached its recipients although it failed, so a retry
    /// the upstream cannot recognise as a repeat may deliver twice ([`maybe_delivered`]).
    fn maybe_delivered(&self) -> bool {
        maybe_delivered(self.failed_at())
    }
}

/// What the caller should do with a failed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerClass {
    /// Transient: transport error, 5xx, "service starting" (2), "system busy" (30019, WeCom −1).
    /// Retry later with backoff; a request_id makes the retry safe.
    Retryable,
    /// The upstream's frequency or quota window is full (Getui 10003, 10005, 30012–30015,
    /// 30018; WeCom 45009, 45033). Slow the app's bucket and retry later.
    RateLimited,
    /// The token is wrong or expired (Getui 10001, WeCom 42001/40014) even after one fresh token:
    /// authenticate again.
    ReAuth,
    /// Will fail again however often it is sent (bad parameters, quotas, permissions).
    /// Record it per recipient; never retry.
    Permanent,
}

impl AnswerClass {
    /// A short stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerClass::Retryable => "retryable",
            AnswerClass::RateLimited => "rate_limited",
            AnswerClass::ReAuth => "reauth",
            AnswerClass::Permanent => "permanent",
        }
    }
}

/// How far a failed exchange got, as far as the caller can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedAt {
    /// Nothing left this process: no connection could be made (refused, DNS, TLS handshake),
    /// or the request broke a documented limit and was never sent.
    NotSent,
    /// The request was, or may have been, written but no readable answer came back: the
    /// connection closed or reset, the deadline passed, or a 200 answer was unreadable.
    NoAnswer,
    /// An HTTP status came back without the vendor's body.
    HttpStatus(u16),
    /// The vendor answered with an error code: it looked at the request and refused it whole.
    VendorCode,
}

/// True when a failed request may nonetheless have reached its recipients, so a retry that
/// the upstream cannot recognise as a repeat may deliver twice.
///
/// A 5xx may come from a proxy before the upstream saw anything or from the upstream after
/// it acted, and the caller cannot tell which, so it counts as maybe delivered. A 4xx or a
/// vendor code (rate limits included) says the request was refused, so nothing went out.
pub fn maybe_delivered(at: FailedAt) -> bool {
    match at {
        FailedAt::NotSent | FailedAt::VendorCode => false,
        FailedAt::NoAnswer => true,
        FailedAt::HttpStatus(status) => (500..=599).contains(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lost_answers_and_server_errors_may_have_delivered() {
        assert!(maybe_delivered(FailedAt::NoAnswer));
        for status in [500, 502, 503, 504] {
            assert!(maybe_delivered(FailedAt::HttpStatus(status)), "{status}");
        }
        assert!(!maybe_delivered(FailedAt::NotSent));
        assert!(!maybe_delivered(FailedAt::VendorCode));
        for status in [400, 401, 403, 404, 408, 429] {
            assert!(!maybe_delivered(FailedAt::HttpStatus(status)), "{status}");
        }
    }
}
