//! One upstream call with its retries, as a state machine: the shell reports each attempt it
//! is about to make and each failure it got; the plan answers how many recipients to count as
//! replayed before the attempt, and after a failure whether to wait, pause the app or give up.

use std::time::Duration;

use super::retry::{Attempts, Failed, RetryPolicy, Verdict};
use crate::domain::ResultName;

/// What keeps a retried call from reaching its recipients twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatGuard {
    /// The upstream drops a repeated request_id (batch_single messages, the list task, app
    /// pushes), so a retry never delivers twice and is not counted as a repeat.
    RequestId,
    /// Nothing does (`/push/list/cid`, WeCom without its duplicate check): a retry after a
    /// failure that may have delivered may reach these recipients again.
    Unguarded {
        /// Recipients of the call.
        recipients: u64,
    },
    /// WeCom's duplicate check drops an identical send made within `window` of the first.
    Window {
        /// Recipients of the call.
        recipients: u64,
        /// The `duplicate_check_interval` the sends carry.
        window: Duration,
    },
}

impl RepeatGuard {
    /// A WeCom send of `recipients` members: it carries no request id; only the duplicate
    /// check, when on (`window`), drops a repeat.
    pub fn wecom(recipients: usize, window: Option<Duration>) -> RepeatGuard {
        let recipients = recipients as u64;
        match window {
            Some(window) => RepeatGuard::Window { recipients, window },
            None => RepeatGuard::Unguarded { recipients },
        }
    }

    /// Whether a retry after a maybe-delivered failure is a possible repeat at all.
    pub fn counts_repeats(self) -> bool {
        self != RepeatGuard::RequestId
    }

    /// Recipients a retry made `since_first` after the call's first attempt may reach twice.
    pub fn exposed(self, since_first: Duration) -> u64 {
        match self {
            RepeatGuard::RequestId => 0,
            RepeatGuard::Unguarded { recipients } => recipients,
            RepeatGuard::Window { recipients, window } if since_first >= window => recipients,
            RepeatGuard::Window { .. } => 0,
        }
    }
}

/// The `retries_total` reason of a retry that may repeat a delivery.
pub const MAYBE_DELIVERED: &str = "maybe_delivered";

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Wait this long, then attempt again (this call only).
    Wait {
        /// How long.
        wait: Duration,
        /// The `retries_total` reason label.
        reason: &'static str,
    },
    /// Pause every call of the app this long (the app's wait then holds this call too), and
    /// attempt again.
    PauseApp {
        /// How long.
        wait: Duration,
        /// The `retries_total` reason label.
        reason: &'static str,
    },
    /// Stop; every recipient of the call gets this result.
    GiveUp(ResultName),
}

/// The retry state of one call.
#[derive(Debug, Clone)]
pub struct CallPlan {
    guard: RepeatGuard,
    attempts: Attempts,
    /// The last failure may have delivered, and the guard does not drop a repeat.
    repeats_maybe_delivered: bool,
}

impl CallPlan {
    /// A call whose retries `guard` protects (or not) from delivering twice.
    pub fn new(guard: RepeatGuard) -> CallPlan {
        CallPlan { guard, attempts: Attempts::default(), repeats_maybe_delivered: false }
    }

    /// An attempt is about to go, `since_first` after the call's first one (zero for the
    /// first): the recipients to count as replayed just before it (0 when it repeats nothing).
    pub fn sending(&self, since_first: Duration) -> u64 {
        if self.repeats_maybe_delivered {
            self.guard.exposed(since_first)
        } else {
            0
        }
    }

    /// The attempt failed with `failed`; `jitter` in 0..1 spreads the waits of many shards.
    pub fn failed(&mut self, failed: Failed, policy: &RetryPolicy, jitter: f64) -> Retry {
        match self.attempts.after(failed.class, policy, jitter) {
            Verdict::GiveUp(result) => Retry::GiveUp(result),
            Verdict::RetryAfter { wait, app_wide } => {
                self.repeats_maybe_delivered = self.guard.counts_repeats() && failed.maybe_delivered;
                let reason = if self.repeats_maybe_delivered { MAYBE_DELIVERED } else { failed.class.as_str() };
                if app_wide {
                    Retry::PauseApp { wait, reason }
                } else {
                    Retry::Wait { wait, reason }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::retry::FailureClass;
    use super::*;

    const LOST: Failed = Failed { class: FailureClass::Retryable, maybe_delivered: true };
    const REFUSED: Failed = Failed { class: FailureClass::Retryable, maybe_delivered: false };
    const LIMITED: Failed = Failed { class: FailureClass::RateLimited, maybe_delivered: false };

    fn wait(ms: u64, reason: &'static str) -> Retry {
        Retry::Wait { wait: Duration::from_millis(ms), reason }
    }

    /// Drives `plan` through `failures`, returning (replayed before each attempt, what followed
    /// each failure), with `gap` between attempts.
    fn script(plan: &mut CallPlan, failures: &[Failed], gap: Duration, policy: &RetryPolicy) -> (Vec<u64>, Vec<Retry>) {
        let (mut replayed, mut retries) = (Vec::new(), Vec::new());
        for (i, f) in failures.iter().enumerate() {
            replayed.push(plan.sending(gap * i as u32));
            retries.push(plan.failed(*f, policy, 0.0));
        }
        (replayed, retries)
    }

    #[test]
    fn repeats_are_exposed_only_where_nothing_upstream_drops_them() {
        let window = Duration::from_secs(1800);
        assert!(!RepeatGuard::RequestId.counts_repeats());
        assert_eq!(RepeatGuard::RequestId.exposed(Duration::from_secs(5)), 0);
        let unguarded = RepeatGuard::Unguarded { recipients: 1000 };
        assert!(unguarded.counts_repeats());
        assert_eq!(unguarded.exposed(Duration::ZERO), 1000);
        let checked = RepeatGuard::Window { recipients: 1000, window };
        assert!(checked.counts_repeats());
        assert_eq!(checked.exposed(Duration::from_secs(10)), 0);
        assert_eq!(checked.exposed(window), 1000, "past the window WeCom delivers the repeat");
    }

    #[test]
    fn a_wecom_send_is_guarded_by_its_duplicate_check_window_only_when_it_is_on() {
        let window = Duration::from_secs(60);
        assert_eq!(RepeatGuard::wecom(7, Some(window)), RepeatGuard::Window { recipients: 7, window });
        assert_eq!(RepeatGuard::wecom(7, None), RepeatGuard::Unguarded { recipients: 7 });
    }

    #[test]
    fn a_lost_answer_on_an_unguarded_call_counts_its_recipients_replayed_before_each_resend() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let mut plan = CallPlan::new(RepeatGuard::Unguarded { recipients: 1000 });
        let (replayed, retries) = script(&mut plan, &[LOST, LOST], Duration::from_millis(100), &policy);
        assert_eq!(replayed, [0, 1000], "the first attempt repeats nothing");
        assert_eq!(retries, [wait(50, MAYBE_DELIVERED), wait(100, MAYBE_DELIVERED)]);
        assert_eq!(plan.sending(Duration::from_millis(200)), 1000);
        assert_eq!(plan.failed(LOST, &policy, 0.0), Retry::GiveUp(ResultName::UpstreamUnavailable));
    }

    #[test]
    fn a_refused_request_is_retried_under_its_class_and_counts_nothing_replayed() {
        let mut plan = CallPlan::new(RepeatGuard::Unguarded { recipients: 1000 });
        let (replayed, retries) = script(&mut plan, &[REFUSED, REFUSED], Duration::ZERO, &RetryPolicy::default());
        assert_eq!(replayed, [0, 0]);
        assert_eq!(retries, [wait(50, "retryable"), wait(100, "retryable")]);
        assert_eq!(plan.sending(Duration::ZERO), 0);
    }

    #[test]
    fn only_the_attempt_right_after_a_maybe_delivered_failure_counts_as_replayed() {
        let mut plan = CallPlan::new(RepeatGuard::Unguarded { recipients: 10 });
        let (replayed, _) = script(&mut plan, &[LOST, REFUSED, LOST], Duration::ZERO, &RetryPolicy::default());
        assert_eq!(replayed, [0, 10, 0]);
        assert_eq!(plan.sending(Duration::ZERO), 10);
    }

    #[test]
    fn request_id_guarded_retries_of_a_lost_answer_are_retryable_not_replayed() {
        let mut plan = CallPlan::new(RepeatGuard::RequestId);
        let (replayed, retries) = script(&mut plan, &[LOST, LOST], Duration::from_secs(3600), &RetryPolicy::default());
        assert_eq!(replayed, [0, 0]);
        assert_eq!(retries, [wait(50, "retryable"), wait(100, "retryable")]);
    }

    #[test]
    fn a_wecom_resend_counts_as_replayed_only_once_the_duplicate_check_window_has_passed() {
        let window = Duration::from_secs(1);
        let mut plan = CallPlan::new(RepeatGuard::Window { recipients: 5, window });
        assert_eq!(plan.sending(Duration::ZERO), 0);
        assert_eq!(plan.failed(LOST, &RetryPolicy::default(), 0.0), wait(50, MAYBE_DELIVERED));
        assert_eq!(plan.sending(Duration::from_millis(999)), 0, "within the window WeCom drops it");
        assert_eq!(plan.sending(window), 5, "from the window on WeCom delivers it again");
    }

    #[test]
    fn rate_limit_answers_pause_the_app_and_end_as_rate_limited() {
        let policy = RetryPolicy { max_rate_limited: 3, ..RetryPolicy::default() };
        let mut plan = CallPlan::new(RepeatGuard::Unguarded { recipients: 3 });
        let (replayed, retries) = script(&mut plan, &[LIMITED, LIMITED, LIMITED], Duration::ZERO, &policy);
        let pause = |ms| Retry::PauseApp { wait: Duration::from_millis(ms), reason: "rate_limited" };
        assert_eq!(replayed, [0, 0, 0], "a rate-limit answer delivered nothing");
        assert_eq!(retries, [pause(500), pause(1000), Retry::GiveUp(ResultName::RateLimited)]);
    }

    #[test]
    fn a_refused_token_retries_as_reauth_and_ends_as_auth_failed() {
        let reauth = Failed { class: FailureClass::ReAuth, maybe_delivered: false };
        let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let mut plan = CallPlan::new(RepeatGuard::RequestId);
        assert_eq!(plan.failed(reauth, &policy, 0.0), wait(50, "reauth"));
        assert_eq!(plan.failed(reauth, &policy, 0.0), Retry::GiveUp(ResultName::AuthFailed));
    }

    #[test]
    fn a_permanent_answer_gives_up_at_once_even_if_it_may_have_delivered() {
        let mut plan = CallPlan::new(RepeatGuard::Unguarded { recipients: 3 });
        let failed = Failed { class: FailureClass::Permanent(ResultName::QuotaExceeded), maybe_delivered: true };
        assert_eq!(plan.failed(failed, &RetryPolicy::default(), 0.0), Retry::GiveUp(ResultName::QuotaExceeded));
    }
}
