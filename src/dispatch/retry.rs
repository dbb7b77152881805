//! How long to wait before trying again, and when to stop: the retry policy as pure functions.

use std::time::Duration;

use crate::domain::ResultName;
use crate::upstream::{AnswerClass, ProviderError};

/// Retry limits and backoff shape.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for transient failures (5xx, transport, 2, 30019, 10001 after renewal).
    pub max_attempts: u32,
    /// Attempts while the upstream answers rate-limited.
    pub max_rate_limited: u32,
    /// First backoff.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_rate_limited: 40,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wait this long (for the app, when `app_wide`) and try again.
    RetryAfter {
        /// How long.
        wait: Duration,
        /// The whole app should pause (the upstream's frequency window is full).
        app_wide: bool,
    },
    /// Stop; every recipient of the call gets this result.
    GiveUp(ResultName),
}

/// Counts failures of one call and decides what follows each.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    transient: u32,
    rate_limited: u32,
}

impl Attempts {
    /// Judges the failure `e`; `jitter` in 0..1 spreads the waits of many shards.
    pub fn after(&mut self, e: &impl ProviderError, policy: &RetryPolicy, jitter: f64) -> Verdict {
        match e.class() {
            AnswerClass::Permanent => Verdict::GiveUp(e.result()),
            AnswerClass::RateLimited => {
                self.rate_limited += 1;
                if self.rate_limited >= policy.max_rate_limited {
                    return Verdict::GiveUp(ResultName::RateLimited);
                }
                // Frequency windows are per minute or per second: start at one second.
                let wait = backoff(Duration::from_secs(1), Duration::from_secs(30), self.rate_limited, jitter);
                Verdict::RetryAfter { wait, app_wide: true }
            }
            class @ (AnswerClass::Retryable | AnswerClass::ReAuth) => {
                self.transient += 1;
                if self.transient >= policy.max_attempts {
                    let r = if class == AnswerClass::ReAuth {
                        ResultName::AuthFailed
                    } else {
                        ResultName::UpstreamUnavailable
                    };
                    return Verdict::GiveUp(r);
                }
                Verdict::RetryAfter { wait: backoff(policy.base, policy.cap, self.transient, jitter), app_wide: false }
            }
        }
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, capped.
pub fn backoff(base: Duration, cap: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(cap);
    exp / 2 + exp.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::getui::GetuiError;

    fn api(code: i64, msg: &str) -> GetuiError {
        GetuiError::Api { endpoint: "POST /push/list/cid", code, msg: msg.into() }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = |n, j| backoff(Duration::from_millis(100), Duration::from_secs(10), n, j);
        assert_eq!(b(1, 0.0), Duration::from_millis(50));
        assert_eq!(b(1, 1.0), Duration::from_millis(100));
        assert_eq!(b(3, 0.0), Duration::from_millis(200));
        assert_eq!(b(30, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn transient_failures_give_up_after_the_budget() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let e = GetuiError::Http { endpoint: "x", status: 503 };
        assert!(matches!(a.after(&e, &policy, 0.5), Verdict::RetryAfter { app_wide: false, .. }));
        assert!(matches!(a.after(&e, &policy, 0.5), Verdict::RetryAfter { .. }));
        assert_eq!(a.after(&e, &policy, 0.5), Verdict::GiveUp(ResultName::UpstreamUnavailable));
    }

    #[test]
    fn rate_limits_pause_the_app_and_have_their_own_budget() {
        let policy = RetryPolicy { max_attempts: 1, max_rate_limited: 2, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let v = a.after(&api(10005, "too often"), &policy, 0.0);
        assert_eq!(v, Verdict::RetryAfter { wait: Duration::from_millis(500), app_wide: true });
        assert_eq!(a.after(&api(30015, ""), &policy, 0.0), Verdict::GiveUp(ResultName::RateLimited));
    }

    #[test]
    fn permanent_answers_map_to_results_without_retry() {
        let mut a = Attempts::default();
        let p = RetryPolicy::default();
        assert_eq!(a.after(&api(20001, "target user is invalid"), &p, 0.0), Verdict::GiveUp(ResultName::TargetInvalid));
        assert_eq!(a.after(&api(30008, ""), &p, 0.0), Verdict::GiveUp(ResultName::QuotaExceeded));
        assert_eq!(
            a.after(&api(10001, ""), &RetryPolicy { max_attempts: 1, ..p }, 0.0),
            Verdict::GiveUp(ResultName::AuthFailed)
        );
    }
}
