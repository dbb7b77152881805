//! The WeCom simulator's ledger: which member received how many application messages.
//!
//! Member ids are case-insensitive upstream, so they are lower-cased and then kept as 128-bit
//! hashes in sharded maps (about 20 bytes per member), which bounds memory for large audiences
//! the same way the Getui ledger does.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::simulator::ledger::lock;

const SHARDS: usize = 32;

/// Counters of the simulated WeCom app.
pub struct WecomLedger {
    shards: Vec<Mutex<HashMap<[u8; 16], u32>>>,
    deliveries: AtomicU64,
    unique: AtomicU64,
    calls: AtomicU64,
    refused: AtomicU64,
    gettoken_calls: AtomicU64,
    tokens_issued: AtomicU64,
    dropped_repeats: AtomicU64,
    invalid_recipients: AtomicU64,
}

/// `GET /_sim/wecom/ledger`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WecomLedgerSummary {
    /// `message/send` calls answered with errcode 0, duplicate-check drops included (81013 is
    /// not counted: nothing was sent).
    pub calls: u64,
    /// `message/send` calls answered with a non-zero errcode.
    pub refused: u64,
    /// `gettoken` calls, successful or not.
    pub gettoken_calls: u64,
    /// Distinct tokens handed out.
    pub tokens_issued: u64,
    /// Messages delivered, one per member per call.
    pub deliveries: u64,
    /// Distinct members that received at least one message.
    pub unique: u64,
    /// Deliveries beyond the first per member.
    pub duplicates: u64,
    /// Members not delivered to because the duplicate check matched: the same content
    /// reached them within the interval.
    pub dropped_repeats: u64,
    /// Recipients reported back in `invaliduser`.
    pub invalid_recipients: u64,
}

impl Default for WecomLedger {
    fn default() -> Self {
        WecomLedger {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            deliveries: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            gettoken_calls: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            dropped_repeats: AtomicU64::new(0),
            invalid_recipients: AtomicU64::new(0),
        }
    }
}

impl WecomLedger {
    /// Records one accepted call delivering to `users` and skipping `invalid` recipients.
    pub fn record_call<'a>(&self, users: impl IntoIterator<Item = &'a str>, invalid: usize) {
        let (mut n, mut new) = (0u64, 0u64);
        for user in users {
            let key = user_key(user);
            let mut shard = lock(&self.shards[usize::from(key[0]) % SHARDS]);
            let count = shard.entry(key).or_insert(0);
            if *count == 0 {
                new += 1;
            }
            *count = count.saturating_add(1);
            n += 1;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.deliveries.fetch_add(n, Ordering::Relaxed);
        self.unique.fetch_add(new, Ordering::Relaxed);
        self.add_invalid(invalid);
    }

    /// Counts a `message/send` answered with an error.
    pub fn record_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts recipients reported invalid (also by 81013 answers).
    pub fn add_invalid(&self, n: usize) {
        self.invalid_recipients.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts a `gettoken` call, and whether it handed out a new token.
    pub fn record_gettoken(&self, issued_new: bool) {
        self.gettoken_calls.fetch_add(1, Ordering::Relaxed);
        if issued_new {
            self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts members an accepted call did not deliver to because the duplicate check matched
    /// (the call itself is counted by [`WecomLedger::record_call`]).
    pub fn add_dropped_repeats(&self, n: usize) {
        self.dropped_repeats.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How many messages `user` received (case-insensitive).
    pub fn count(&self, user: &str) -> u32 {
        let key = user_key(user);
        lock(&self.shards[usize::from(key[0]) % SHARDS]).get(&key).copied().unwrap_or(0)
    }

    /// The totals.
    pub fn summary(&self) -> WecomLedgerSummary {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let deliveries = load(&self.deliveries);
        let unique = load(&self.unique);
        WecomLedgerSummary {
            calls: load(&self.calls),
            refused: load(&self.refused),
            gettoken_calls: load(&self.gettoken_calls),
            tokens_issued: load(&self.tokens_issued),
            deliveries,
            unique,
            duplicates: deliveries.saturating_sub(unique),
            dropped_repeats: load(&self.dropped_repeats),
            invalid_recipients: load(&self.invalid_recipients),
        }
    }
}

/// 128 bits from two differently seeded SipHash runs over the lower-cased id.
pub(super) fn user_key(user: &str) -> [u8; 16] {
    key128(&user.to_lowercase())
}

/// 128 bits of two seeded SipHash runs: collisions among millions of keys are negligible.
pub(super) fn key128(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (half, seed) in out.chunks_exact_mut(8).zip([0x7765_636f_6d31u64, 0x6c65_6467_6572]) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        s.hash(&mut h);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_members_case_insensitively() {
        let l = WecomLedger::default();
        l.record_call(["Alice", "bob"], 1);
        l.record_call(["alice"], 0);
        l.record_refused();
        l.record_gettoken(true);
        l.record_gettoken(false);
        let s = l.summary();
        assert_eq!((s.calls, s.refused, s.deliveries, s.unique, s.duplicates), (2, 1, 3, 2, 1));
        assert_eq!((s.gettoken_calls, s.tokens_issued, s.invalid_recipients), (2, 1, 1));
        assert_eq!((l.count("ALICE"), l.count("bob"), l.count("carol")), (2, 1, 0));
    }
}
