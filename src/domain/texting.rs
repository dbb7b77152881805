//! What became of each recipient of an SMS-fallback campaign on the second channel (issue 13):
//! the per-campaign tally shown in reports, and the reasons a recipient was not texted.
//!
//! A recipient ends in one of `reached` (by the push answer or an arrival receipt),
//! `sms_sent` (then `sms_delivered` or `sms_failed:<code>` when the gateway reports),
//! `sms_failed:<code>` (refused at send time), `sms_maybe_sent` (the call's answer was lost and
//! `at_most_once` forbids a resend) or `sms_skipped:<reason>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a recipient was not texted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// No phone number bound to the cid when the text was due.
    NoBinding,
    /// The push reached the device (answer `successed_online` or an arrival receipt).
    Reached,
    /// The rendered text is over one SMS segment.
    TooLong,
    /// `POST /v1/campaigns/{id}/sms/stop` came first.
    Stopped,
    /// The bound number no longer opens with the store's key (a key change), or is invalid.
    Unreadable,
    /// The cid was bound through the legacy SDK, which sends only md5(phone), and no binding
    /// imported with the real number matched it: there is no number to text.
    NoNumber,
}

impl SkipReason {
    /// The label in reports and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoBinding => "no_binding",
            SkipReason::Reached => "reached",
            SkipReason::TooLong => "too_long",
            SkipReason::Stopped => "stopped",
            SkipReason::Unreadable => "unreadable_binding",
            SkipReason::NoNumber => "no_number",
        }
    }
}

/// The second dimension of a campaign's report: recipients per SMS-fallback outcome. Kept in
/// the campaign record; every field adds up, so tallies of chunks merge by addition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsTally {
    /// Recipients reached by the push: `successed_online` or an arrival receipt before the text
    /// was due.
    #[serde(default)]
    pub reached: u64,
    /// Recipients with a click receipt when their text was due.
    #[serde(default)]
    pub clicked: u64,
    /// Numbers the gateway accepted.
    #[serde(default)]
    pub sent: u64,
    /// Accepted texts the gateway reported delivered.
    #[serde(default)]
    pub delivered: u64,
    /// Texts refused at send time or reported undelivered, by code.
    #[serde(default)]
    pub failed: BTreeMap<String, u64>,
    /// Recipients not texted, by reason ([`SkipReason::as_str`]).
    #[serde(default)]
    pub skipped: BTreeMap<String, u64>,
    /// Recipients of a call whose answer was lost, not sent again (`at_most_once`).
    #[serde(default)]
    pub maybe_sent: u64,
    /// Recipients of a call sent again after its answer was lost (`at_least_once`): each may
    /// have got the text twice.
    #[serde(default)]
    pub replayed: u64,
    /// Chunks whose texting is finished.
    #[serde(default)]
    pub chunks_done: u64,
}

impl SmsTally {
    /// Adds `n` recipients skipped for `reason`.
    pub fn skip(&mut self, reason: SkipReason, n: u64) {
        if reason == SkipReason::Reached {
            self.reached += n;
        }
        add(&mut self.skipped, reason.as_str(), n);
    }

    /// Adds `n` texts failed with `code`.
    pub fn fail(&mut self, code: &str, n: u64) {
        add(&mut self.failed, code, n);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &SmsTally) {
        self.reached += other.reached;
        self.clicked += other.clicked;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.maybe_sent += other.maybe_sent;
        self.replayed += other.replayed;
        self.chunks_done += other.chunks_done;
        for (code, n) in &other.failed {
            add(&mut self.failed, code, *n);
        }
        for (reason, n) in &other.skipped {
            add(&mut self.skipped, reason, *n);
        }
    }

    /// True when nothing is counted.
    pub fn is_empty(&self) -> bool {
        *self == SmsTally::default()
    }
}

/// What the receipts of one (taskid, cid) showed, as bits kept by the store.
pub mod receipt_bits {
    use crate::wire::getui::receipt::{ActionKind, ReceiptLine};

    /// The message arrived (an arrival action).
    pub const ARRIVED: u8 = 1;
    /// The notification was shown.
    pub const SHOWN: u8 = 2;
    /// The notification was clicked.
    pub const CLICKED: u8 = 4;

    /// The bits one verified line adds: none for a failure code or an action that proves
    /// nothing (custom, unknown).
    pub fn of(line: &ReceiptLine) -> u8 {
        if !line.is_arrival_evidence() {
            return 0;
        }
        match line.kind() {
            ActionKind::Arrival => ARRIVED,
            ActionKind::Shown => SHOWN,
            ActionKind::Clicked => CLICKED,
            ActionKind::Custom | ActionKind::Other => 0,
        }
    }

    /// True when `bits` prove the message reached the device: a shown or clicked notification
    /// arrived first.
    pub fn reached(bits: u8) -> bool {
        bits & (ARRIVED | SHOWN | CLICKED) != 0
    }
}

fn add(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if n > 0 {
        *map.entry(key.to_owned()).or_insert(0) += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_by_addition_and_a_reached_skip_counts_as_reached() {
        let mut a = SmsTally::default();
        a.skip(SkipReason::Reached, 3);
        a.skip(SkipReason::NoBinding, 2);
        a.fail("LimitExceeded.PhoneNumberDailyLimit", 1);
        let mut b = a.clone();
        b.sent = 4;
        b.merge(&a);
        assert_eq!(b.reached, 6);
        assert_eq!(b.skipped["reached"], 6);
        assert_eq!(b.skipped["no_binding"], 4);
        assert_eq!(b.failed["LimitExceeded.PhoneNumberDailyLimit"], 2);
        assert_eq!(b.sent, 4);
        assert!(SmsTally::default().is_empty());
        a.fail("x", 0);
        assert!(!a.failed.contains_key("x"), "zero counts leave no key");
    }
}
