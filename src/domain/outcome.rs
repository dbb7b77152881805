//! What happened to each recipient: the closed vocabulary of results that reports and the
//! `result` metric label use, and counters keyed by it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The result of one recipient. A closed set, so metric labels stay bounded. The names are the
/// vocabulary of Getui's push documents (the seed's result table); names the documents lack are
/// snake_case additions. README, "Results", maps every v2 status and code to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResultName {
    /// Delivered through Getui's online channel.
    #[serde(rename = "successed_online")]
    SuccessedOnline,
    /// Stored offline or handed to a vendor channel.
    #[serde(rename = "successed_offline")]
    SuccessedOffline,
    /// Accepted but dropped: an inactive device (no activity for 90 days).
    #[serde(rename = "successed_ignore")]
    SuccessedIgnore,
    /// Accepted with a status the documents do not list (added name).
    #[serde(rename = "successed_unknown")]
    SuccessedUnknown,
    /// The cid is wrong or foreign (20001 `target user is invalid`, or left out of the answer).
    #[serde(rename = "TokenMD5Error")]
    TargetInvalid,
    /// The request's parameters were refused (other 20001 answers, code 1).
    #[serde(rename = "Error")]
    ParamInvalid,
    /// The list task is unknown to the upstream (20001 `taskid is invalid`).
    #[serde(rename = "NullMsgCommon")]
    TaskNotFound,
    /// The list task was stopped.
    #[serde(rename = "TaskIdHasBeenCanceled")]
    TaskCancelled,
    /// A daily quota or total was exhausted (30004, 30006–30011).
    #[serde(rename = "PushTotalNumOverLimit")]
    QuotaExceeded,
    /// The app lacks a permission or is blacklisted (10002, 10004, 30000–30003, 30017; added name).
    #[serde(rename = "no_permission")]
    NoPermission,
    /// Rate-limit answers (10003, 10005, 30012–30015, 30018) outlasted the retry budget.
    #[serde(rename = "flow_exceeded")]
    RateLimited,
    /// Transient failures (5xx, no answer, 2, 30019) outlasted the retry budget.
    #[serde(rename = "SendError")]
    UpstreamUnavailable,
    /// The upstream kept refusing fresh tokens (10001).
    #[serde(rename = "sign_error")]
    AuthFailed,
    /// A list chunk maybe sent before a crash, not replayed under at-most-once (added name).
    #[serde(rename = "skipped_after_crash")]
    SkippedAfterCrash,
    /// Any other permanent answer.
    #[serde(rename = "OtherError")]
    Failed,
    /// WeCom accepted the application message for this member (added name).
    #[serde(rename = "sent")]
    Sent,
    /// WeCom listed the member in `invaliduser` (not in the app's visible range, or unknown),
    /// or refused the whole call with 81013.
    #[serde(rename = "invaliduser")]
    InvalidUser,
    /// The member opted out (on the app's suppression list) and was skipped (added name).
    #[serde(rename = "suppressed")]
    Suppressed,
}

impl ResultName {
    /// Every result, for zero-initialised metrics and reports.
    pub const ALL: [ResultName; 18] = [
        ResultName::SuccessedOnline,
        ResultName::SuccessedOffline,
        ResultName::SuccessedIgnore,
        ResultName::SuccessedUnknown,
        ResultName::TargetInvalid,
        ResultName::ParamInvalid,
        ResultName::TaskNotFound,
        ResultName::TaskCancelled,
        ResultName::QuotaExceeded,
        ResultName::NoPermission,
        ResultName::RateLimited,
        ResultName::UpstreamUnavailable,
        ResultName::AuthFailed,
        ResultName::SkippedAfterCrash,
        ResultName::Failed,
        ResultName::Sent,
        ResultName::InvalidUser,
        ResultName::Suppressed,
    ];

    /// The report and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultName::SuccessedOnline => "successed_online",
            ResultName::SuccessedOffline => "successed_offline",
            ResultName::SuccessedIgnore => "successed_ignore",
            ResultName::SuccessedUnknown => "successed_unknown",
            ResultName::TargetInvalid => "TokenMD5Error",
            ResultName::ParamInvalid => "Error",
            ResultName::TaskNotFound => "NullMsgCommon",
            ResultName::TaskCancelled => "TaskIdHasBeenCanceled",
            ResultName::QuotaExceeded => "PushTotalNumOverLimit",
            ResultName::NoPermission => "no_permission",
            ResultName::RateLimited => "flow_exceeded",
            ResultName::UpstreamUnavailable => "SendError",
            ResultName::AuthFailed => "sign_error",
            ResultName::SkippedAfterCrash => "skipped_after_crash",
            ResultName::Failed => "OtherError",
            ResultName::Sent => "sent",
            ResultName::InvalidUser => "invaliduser",
            ResultName::Suppressed => "suppressed",
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
                | ResultName::Sent
        )
    }
}

/// One call's recipients counted per result in a slot each: adding one is an index, where
/// [`Counts::add`] searches a map (a thousand searches per list call). Moved into `Counts`
/// once per result with [`Tally::add_to`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally([u64; ResultName::ALL.len()]);

impl Tally {
    /// Counts one recipient with result `r`.
    pub fn add(&mut self, r: ResultName) {
        // `ALL` lists the results in declaration order, so a result's discriminant is its slot.
        if let Some(n) = self.0.get_mut(r as usize) {
            *n += 1;
        }
    }

    /// Adds every count to `counts`.
    pub fn add_to(&self, counts: &mut Counts) {
        for (r, n) in ResultName::ALL.iter().zip(self.0) {
            counts.add(*r, n);
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
    fn names_are_unique_and_match_their_serde_form() {
        for (slot, r) in ResultName::ALL.iter().enumerate() {
            assert_eq!(*r as usize, slot, "ALL is in declaration order, so a Tally slot is the discriminant");
        }
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
