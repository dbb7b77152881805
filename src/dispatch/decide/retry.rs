//! How long to wait before trying again, and when to stop: the retry policy as pure functions
//! over a failure's plain description.

use std::time::Duration;

use crate::domain::ResultName;

/// What a failed upstream call calls for, as the retry policy reads it (the shell maps each
/// upstream's own answer classes onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Transport error, 5xx, "service starting", "system busy": retry with backoff.
    Retryable,
    /// The upstream's frequency or quota window is full: pause the app and retry.
    RateLimited,
    /// The token was refused even after a fresh one: retry, and give up as `auth_failed`.
    ReAuth,
    /// Fails again however often it is sent: every recipient gets this result.
    Permanent(ResultName),
}

impl FailureClass {
    /// The class's stable name, as the `retries_total` reason label spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retryable => "retryable",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ReAuth => "reauth",
            FailureClass::Permanent(_) => "permanent",
        }
    }
}

/// One failed attempt, in plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// What it calls for.
    pub class: FailureClass,
    /// The request may have reached its recipients although the call failed.
    pub maybe_delivered: bool,
}

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

/// The first wait after a rate-limit answer: frequency windows are per minute or per second.
pub const RATE_LIMIT_BASE: Duration = Duration::from_secs(1);
/// The longest wait between rate-limited attempts.
pub const RATE_LIMIT_CAP: Duration = Duration::from_secs(30);

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
    /// Judges the failure of class `class`; `jitter` in 0..1 spreads the waits of many shards.
    pub fn after(&mut self, class: FailureClass, policy: &RetryPolicy, jitter: f64) -> Verdict {
        match class {
            FailureClass::Permanent(result) => Verdict::GiveUp(result),
            FailureClass::RateLimited => {
                self.rate_limited += 1;
                if self.rate_limited >= policy.max_rate_limited {
                    return Verdict::GiveUp(ResultName::RateLimited);
                }
                let wait = backoff(RATE_LIMIT_BASE, RATE_LIMIT_CAP, self.rate_limited, jitter);
                Verdict::RetryAfter { wait, app_wide: true }
            }
            FailureClass::Retryable | FailureClass::ReAuth => {
                self.transient += 1;
                if self.transient >= policy.max_attempts {
                    let r = if class == FailureClass::ReAuth {
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = |n, j| backoff(Duration::from_millis(100), Duration::from_secs(10), n, j);
        assert_eq!(b(1, 0.0), Duration::from_millis(50));
        assert_eq!(b(1, 1.0), Duration::from_millis(100));
        assert_eq!(b(3, 0.0), Duration::from_millis(200));
        assert_eq!(b(30, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn equal_jitter_keeps_every_wait_between_half_and_all_of_the_step() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_secs(10));
        for attempt in 1..=12 {
            let step = base.saturating_mul(1 << (attempt - 1)).min(cap);
            for jitter in [0.0, 0.25, 0.5, 0.99, 1.0, -3.0, 7.0] {
                let wait = backoff(base, cap, attempt, jitter);
                assert!(wait >= step / 2 && wait <= step, "attempt {attempt}, jitter {jitter}: {wait:?}");
            }
        }
    }

    #[test]
    fn transient_failures_back_off_twice_as_long_each_time_until_the_budget_is_spent() {
        let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let waits: Vec<Verdict> = (0..5).map(|_| a.after(FailureClass::Retryable, &policy, 0.0)).collect();
        let retry = |ms| Verdict::RetryAfter { wait: Duration::from_millis(ms), app_wide: false };
        assert_eq!(
            waits,
            [retry(50), retry(100), retry(200), retry(400), Verdict::GiveUp(ResultName::UpstreamUnavailable)]
        );
    }

    #[test]
    fn transient_waits_stop_growing_at_the_cap() {
        let policy = RetryPolicy { max_attempts: 100, cap: Duration::from_secs(1), ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let last = (0..20).map(|_| a.after(FailureClass::Retryable, &policy, 1.0)).last();
        assert_eq!(last, Some(Verdict::RetryAfter { wait: Duration::from_secs(1), app_wide: false }));
    }

    #[test]
    fn rate_limits_pause_the_whole_app_from_one_second_on_their_own_budget() {
        let policy = RetryPolicy { max_attempts: 1, max_rate_limited: 4, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        let pause = |ms| Verdict::RetryAfter { wait: Duration::from_millis(ms), app_wide: true };
        assert_eq!(a.after(FailureClass::RateLimited, &policy, 0.0), pause(500));
        assert_eq!(a.after(FailureClass::RateLimited, &policy, 1.0), pause(2000));
        // A transient failure in between spends the other budget (of one), not this one.
        assert_eq!(a.after(FailureClass::Retryable, &policy, 0.0), Verdict::GiveUp(ResultName::UpstreamUnavailable));
        assert_eq!(a.after(FailureClass::RateLimited, &policy, 0.0), pause(2000));
        assert_eq!(a.after(FailureClass::RateLimited, &policy, 0.0), Verdict::GiveUp(ResultName::RateLimited));
    }

    #[test]
    fn a_token_refused_until_the_budget_is_spent_gives_up_as_auth_failed() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let mut a = Attempts::default();
        assert!(matches!(a.after(FailureClass::ReAuth, &policy, 0.5), Verdict::RetryAfter { app_wide: false, .. }));
        assert!(matches!(a.after(FailureClass::ReAuth, &policy, 0.5), Verdict::RetryAfter { app_wide: false, .. }));
        assert_eq!(a.after(FailureClass::ReAuth, &policy, 0.5), Verdict::GiveUp(ResultName::AuthFailed));
    }

    #[test]
    fn permanent_failures_give_up_at_once_with_their_own_result() {
        let mut a = Attempts::default();
        let class = FailureClass::Permanent(ResultName::TargetInvalid);
        assert_eq!(a.after(class, &RetryPolicy::default(), 0.0), Verdict::GiveUp(ResultName::TargetInvalid));
    }
}
