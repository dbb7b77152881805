//! Upstream errors as the retry core reads them: each client's error answers for itself
//! through [`ProviderError`], and is described here as plain [`Failed`] data.

use super::decide::retry::{Failed, FailureClass};
use crate::upstream::{AnswerClass, ProviderError};

/// The failure `e` in the core's plain terms.
pub fn described(e: &impl ProviderError) -> Failed {
    let class = match e.class() {
        AnswerClass::Retryable => FailureClass::Retryable,
        AnswerClass::RateLimited => FailureClass::RateLimited,
        AnswerClass::ReAuth => FailureClass::ReAuth,
        AnswerClass::Permanent => FailureClass::Permanent(e.result()),
    };
    Failed { class, maybe_delivered: e.maybe_delivered() }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dispatch::decide::retry::{Attempts, RetryPolicy, Verdict};
    use crate::domain::ResultName;
    use crate::upstream::getui::GetuiError;

    fn api(code: i64, msg: &str) -> GetuiError {
        GetuiError::Api { endpoint: "POST /push/list/cid", code, msg: msg.into() }
    }

    fn class(e: &GetuiError) -> FailureClass {
        described(e).class
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
        assert!(described(&e).maybe_delivered, "a 5xx may have delivered");
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
