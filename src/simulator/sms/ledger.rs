//! The SMS simulator's ledger: every text the simulated gateway accepted, per phone number and
//! per template, served at `GET /_sim/sms/ledger` and `GET /_sim/sms/ledger/{phone}`.
//!
//! Texts are kept per number (the tests compare the texted set with the expected one), up to
//! [`MAX_TEXTS_PER_PHONE`] each; counts are kept whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::simulator::ledger::lock;

/// Texts remembered per number; later ones are counted, not kept.
pub const MAX_TEXTS_PER_PHONE: usize = 32;

/// `GET /_sim/sms/ledger`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SmsLedgerSummary {
    /// Texts accepted (one per number per call answered `Ok`).
    pub messages: u64,
    /// Distinct numbers that got at least one text.
    pub unique_phones: u64,
    /// Texts beyond the first per number.
    pub duplicates: u64,
    /// Texts accepted per template id.
    pub by_template: BTreeMap<String, u64>,
    /// Billed segments, the sum of `Fee`.
    pub fee: u64,
    /// `SendSms` calls refused as a whole (`Response.Error`).
    pub calls_refused: u64,
    /// Numbers refused inside accepted calls, by code.
    pub numbers_refused: BTreeMap<String, u64>,
    /// Status reports the callback receiver took (HTTP 200).
    pub reports_delivered: u64,
    /// Status reports lost: queue full, no answer or a non-200 answer.
    pub reports_dropped: u64,
}

/// `GET /_sim/sms/ledger/{phone}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PhoneTexts {
    /// The number, normalised to E.164.
    pub phone: String,
    /// Texts it received, signature included, oldest first.
    pub texts: Vec<String>,
    /// How many it received (may exceed `texts.len()`).
    pub count: u64,
}

#[derive(Default)]
struct State {
    phones: HashMap<String, (u64, Vec<String>)>,
    summary: SmsLedgerSummary,
}

/// The ledger.
#[derive(Default)]
pub struct SmsLedger {
    state: Mutex<State>,
}

impl SmsLedger {
    /// Records one accepted text to `phone` (E.164) from `template_id`.
    pub fn record_text(&self, phone: &str, template_id: &str, text: &str, fee: u32) {
        let mut st = lock(&self.state);
        let entry = st.phones.entry(phone.to_owned()).or_default();
        entry.0 += 1;
        let first = entry.0 == 1;
        if entry.1.len() < MAX_TEXTS_PER_PHONE {
            entry.1.push(text.to_owned());
        }
        let s = &mut st.summary;
        s.messages += 1;
        s.fee += u64::from(fee);
        if first {
            s.unique_phones += 1;
        } else {
            s.duplicates += 1;
        }
        *s.by_template.entry(template_id.to_owned()).or_default() += 1;
    }

    /// Counts a call refused as a whole.
    pub fn record_call_refused(&self) {
        lock(&self.state).summary.calls_refused += 1;
    }

    /// Counts one number refused with `code`.
    pub fn record_number_refused(&self, code: &str) {
        *lock(&self.state).summary.numbers_refused.entry(code.to_owned()).or_default() += 1;
    }

    /// Counts status reports delivered to or lost on the way to the callback URL.
    pub fn record_reports(&self, delivered: u64, dropped: u64) {
        let mut st = lock(&self.state);
        st.summary.reports_delivered += delivered;
        st.summary.reports_dropped += dropped;
    }

    /// The totals.
    pub fn summary(&self) -> SmsLedgerSummary {
        lock(&self.state).summary.clone()
    }

    /// What `phone` (E.164) received.
    pub fn texts_of(&self, phone: &str) -> PhoneTexts {
        let st = lock(&self.state);
        let (count, texts) = st.phones.get(phone).cloned().unwrap_or_default();
        PhoneTexts { phone: phone.to_owned(), texts, count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_messages_phones_duplicates_and_templates() {
        let l = SmsLedger::default();
        l.record_text("+8613800000001", "t1", "a", 1);
        l.record_text("+8613800000002", "t1", "b", 2);
        l.record_text("+8613800000001", "t2", "c", 1);
        l.record_call_refused();
        l.record_number_refused("LimitExceeded.PhoneNumberDailyLimit");
        let s = l.summary();
        assert_eq!((s.messages, s.unique_phones, s.duplicates, s.fee, s.calls_refused), (3, 2, 1, 4, 1));
        assert_eq!(s.by_template.get("t1"), Some(&2));
        assert_eq!(l.texts_of("+8613800000001").texts, ["a", "c"]);
        assert_eq!(l.texts_of("+8613900000000").count, 0);
    }
}
