//! Upstream errors as the retry core reads them: each client's error is classified by its own
//! module ([`AnswerClass`]), and described here as plain [`Failed`] data.

use super::decide::retry::{Failed, FailureClass};
use crate::domain::ResultName;
use crate::upstream::getui::GetuiError;
use crate::upstream::wecom::WecomError;
use crate::upstream::AnswerClass;

/// A failed upstream call as the retry policy sees it: what to do, and which result its
/// recipients get when it is permanent.
pub trait Failure: std::fmt::Display {
    /// Retry, slow down, re-authenticate or give up.
    fn class(&self) -> AnswerClass;
    /// The recipients' result when the failure is permanent.
    fn permanent_result(&self) -> ResultName;
    /// The request may have reached its recipients although the call failed.
    fn maybe_delivered(&self) -> bool;

    /// The failure in the core's plain terms.
    fn described(&self) -> Failed {
        let class = match self.class() {
            AnswerClass::Retryable => FailureClass::Retryable,
            AnswerClass::RateLimited => FailureClass::RateLimited,
            AnswerClass::ReAuth => FailureClass::ReAuth,
            AnswerClass::Permanent => FailureClass::Permanent(self.permanent_result()),
        };
        Failed { class, maybe_delivered: self.maybe_delivered() }
    }
}

impl Failure for GetuiError {
    fn class(&self) -> AnswerClass {
        GetuiError::class(self)
    }

    fn permanent_result(&self) -> ResultName {
        self.result()
    }

    fn maybe_delivered(&self) -> bool {
        GetuiError::maybe_delivered(self)
    }
}

impl Failure for WecomError {
    fn class(&self) -> AnswerClass {
        WecomError::class(self)
    }

    fn permanent_result(&self) -> ResultName {
        self.result()
    }

    fn maybe_delivered(&self) -> bool {
        WecomError::maybe_delivered(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dispatch::decide::retry::{Attempts, RetryPolicy, Verdict};

    fn api(code: i64, msg: &str) -> GetuiError {
        GetuiError::Api { endpoint: "POST /push/list/cid", code, msg: msg.into() }
    }

    fn class(e: &GetuiError) -> FailureClass {
        e.described().class
    }

    #[test]
    fn every_answer_class_keeps_its_retries_total_reason() {
        for (answer, failure) in [
            (AnswerClass::Retryable, FailureClass::Retryable),
            (AnswerClass::RateLimited, FailureClass::RateLimited),
            (AnswerClass::ReAuth, FailureClass::ReAuth),
            (AnswerClass::Permanent, FailureClass::Permanent(ResultName::Failed)),
        ] {
            assert_eq!(answer.as_str(), failure.as_str());
        }
    }

    #[test]
    fn transient_failures_give_up_after_the_budget() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let e = GetuiError::Http { endpoint: "x", status: 503 };
        assert!(e.described().maybe_delivered, "a 5xx may have delivered");
        assert!(matches!(a.after(class(&e), &policy, 0.5), Verdict::RetryAfter { app_wide: false, .. }));
        assert!(matches!(a.after(class(&e), &policy, 0.5), Verdict::RetryAfter { .. }));
        assert_eq!(a.after(class(&e), &policy, 0.5), Verdict::GiveUp(ResultName::UpstreamUnavailable));
    }

    #[test]
    fn rate_limits_pause_the_app_and_have_their_own_budget() {
        let policy = RetryPolicy { max_attempts: 1, max_rate_limited: 2, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let v = a.after(class(&api(10005, "too often")), &policy, 0.0);
        assert_eq!(v, Verdict::RetryAfter { wait: Duration::from_millis(500), app_wide: true });
        assert_eq!(a.after(class(&api(30015, "")), &policy, 0.0), Verdict::GiveUp(ResultName::RateLimited));
    }

    #[test]
    fn permanent_answers_map_to_results_without_retry() {
        let mut a = Attempts::default();
        let p = RetryPolicy::default();
        let invalid = class(&api(20001, "target user is invalid"));
        assert_eq!(a.after(invalid, &p, 0.0), Verdict::GiveUp(ResultName::TargetInvalid));
        assert_eq!(a.after(class(&api(30008, "")), &p, 0.0), Verdict::GiveUp(ResultName::QuotaExceeded));
        assert_eq!(
            a.after(class(&api(10001, "")), &RetryPolicy { max_attempts: 1, ..p }, 0.0),
            Verdict::GiveUp(ResultName::AuthFailed)
        );
    }
}
