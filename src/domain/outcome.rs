//! What happened to each recipient: the closed vocabulary of results that reports and the
//! `result` metric label use, and counters keyed by it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The result of one recipient. A closed set, so metric labels stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultName {
    /// Delivered through Getui's online channel.
    SuccessedOnline,
    /// Stored offline or handed to a vendor channel.
    SuccessedOffline,
    /// Accepted but not sent: the device was inactive for 90 days.
    SuccessedIgnore,
    /// The upstream accepted the message but named no status for this recipient.
    SuccessedUnknown,
    /// The id is not a valid target (20001 `target user is invalid`, or left out of the answer).
    TargetInvalid,
    /// The upstream refused the request's parameters (other 20001 answers).
    ParamInvalid,
    /// A daily quota or total was exhausted (30007–30010 and similar).
    QuotaExceeded,
    /// The app lacks a permission or is blacklisted (10002, 10004, 30000–30003, 30017).
    NoPermission,
    /// Rate-limited answers persisted beyond the retry budget.
    RateLimited,
    /// Transient failures (5xx, transport, 2, 30019) persisted beyond the retry budget.
    UpstreamUnavailable,
    /// The upstream kept refusing fresh tokens (10001).
    AuthFailed,
    /// A list chunk that may or may not have been sent when the daemon died, not replayed
    /// because the campaign asked for at-most-once.
    SkippedAfterCrash,
    /// Any other permanent upstream answer.
    Failed,
}

impl ResultName {
    /// Every result, for zero-initialised metrics and reports.
    pub const ALL: [ResultName; 13] = [
        ResultName::SuccessedOnline,
        ResultName::SuccessedOffline,
        ResultName::SuccessedIgnore,
        ResultName::SuccessedUnknown,
        ResultName::TargetInvalid,
        ResultName::ParamInvalid,
        ResultName::QuotaExceeded,
        ResultName::NoPermission,
        ResultName::RateLimited,
        ResultName::UpstreamUnavailable,
        ResultName::AuthFailed,
        ResultName::SkippedAfterCrash,
        ResultName::Failed,
    ];

    /// The wire and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultName::SuccessedOnline => "successed_online",
            ResultName::SuccessedOffline => "successed_offline",
            ResultName::SuccessedIgnore => "successed_ignore",
            ResultName::SuccessedUnknown => "successed_unknown",
            ResultName::TargetInvalid => "target_invalid",
            ResultName::ParamInvalid => "param_invalid",
            ResultName::QuotaExceeded => "quota_exceeded",
            ResultName::NoPermission => "no_permission",
            ResultName::RateLimited => "rate_limited",
            ResultName::UpstreamUnavailable => "upstream_unavailable",
            ResultName::AuthFailed => "auth_failed",
            ResultName::SkippedAfterCrash => "skipped_after_crash",
            ResultName::Failed => "failed",
        }
    }

    /// True for results where the upstream took the message.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            ResultName::SuccessedOnline
                | ResultName::SuccessedOffline
                | ResultName::SuccessedIgnore
                | ResultName::SuccessedUnknown
        )
    }

    /// The result of a recipient whose request ended with a permanent Getui `code` and `msg`.
    pub fn for_permanent_code(code: i64, msg: &str) -> ResultName {
        match code {
            20001 if msg.contains("target user is invalid") => ResultName::TargetInvalid,
            20001 | 1 => ResultName::ParamInvalid,
            30004 | 30006..=30011 => ResultName::QuotaExceeded,
            10002 | 10004 | 30000..=30003 | 30017 => ResultName::NoPermission,
            _ => ResultName::Failed,
        }
    }
}

/// Recipients counted per result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts(pub BTreeMap<ResultName, u64>);

impl Counts {
    /// Adds `n` recipients with result `r`.
    pub fn add(&mut self, r: ResultName, n: u64) {
        if n > 0 {
            *self.0.entry(r).or_insert(0) += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (r, n) in &other.0 {
            self.add(*r, *n);
        }
    }

    /// Recipients counted in all.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The count of one result.
    pub fn get(&self, r: ResultName) -> u64 {
        self.0.get(&r).copied().unwrap_or(0)
    }

    /// Results as `name → count`, for JSON answers.
    pub fn named(&self) -> BTreeMap<&'static str, u64> {
        self.0.iter().map(|(r, n)| (r.as_str(), *n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_codes_map_to_results() {
        assert_eq!(ResultName::for_permanent_code(20001, "target user is invalid"), ResultName::TargetInvalid);
        assert_eq!(ResultName::for_permanent_code(20001, "title size over limit"), ResultName::ParamInvalid);
        assert_eq!(ResultName::for_permanent_code(30008, ""), ResultName::QuotaExceeded);
        assert_eq!(ResultName::for_permanent_code(10002, ""), ResultName::NoPermission);
        assert_eq!(ResultName::for_permanent_code(99999, ""), ResultName::Failed);
    }

    #[test]
    fn names_are_unique_and_snake_case() {
        let names: std::collections::BTreeSet<_> = ResultName::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), ResultName::ALL.len());
        for r in ResultName::ALL {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.as_str()));
        }
    }

    #[test]
    fn counts_merge_and_total() {
        let mut a = Counts::default();
        a.add(ResultName::SuccessedOnline, 3);
        a.add(ResultName::TargetInvalid, 0);
        let mut b = Counts::default();
        b.add(ResultName::SuccessedOnline, 2);
        b.add(ResultName::Failed, 1);
        a.merge(&b);
        assert_eq!((a.get(ResultName::SuccessedOnline), a.total(), a.0.len()), (5, 6, 2));
    }
}
