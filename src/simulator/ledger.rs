//! The simulator's delivery ledger: who received how many pushes, in compact memory.
//!
//! A "delivery" is a push the simulated upstream accepted for a cid (whatever its status).
//! Cids are kept as 16-byte keys in sharded maps (about 20 bytes each, so 10 million cids fit
//! in roughly 300 MB), never as one `String` per cid. Repeated request_ids that the upstream
//! dropped are counted separately, and a per-second timeline lets tests check pacing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::domain::CompactCid;

const SHARDS: usize = 64;

/// Every delivery, counted per cid, per endpoint and per second.
pub struct Ledger {
    shards: Vec<Mutex<HashMap<[u8; 16], u32>>>,
    deliveries: AtomicU64,
    unique: AtomicU64,
    dropped_repeats: AtomicU64,
    by_endpoint: Mutex<BTreeMap<&'static str, u64>>,
    timeline: Mutex<Vec<u64>>,
    started: Instant,
}

/// `GET /_sim/ledger`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LedgerSummary {
    /// Deliveries in all.
    pub deliveries: u64,
    /// Distinct cids that received at least one.
    pub unique_cids: u64,
    /// Deliveries beyond the first per cid.
    pub duplicates: u64,
    /// Pushes answered but not delivered because their request_id was seen before.
    pub dropped_repeats: u64,
    /// Deliveries per endpoint name.
    pub by_endpoint: BTreeMap<String, u64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            deliveries: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            dropped_repeats: AtomicU64::new(0),
            by_endpoint: Mutex::new(BTreeMap::new()),
            timeline: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }
}

impl Ledger {
    /// Records one delivery to each cid through `endpoint`.
    pub fn record<'a>(&self, endpoint: &'static str, cids: impl IntoIterator<Item = &'a CompactCid>) {
        let mut n = 0u64;
        let mut new = 0u64;
        for cid in cids {
            let mut shard = lock(&self.shards[usize::from(cid.0[15]) % SHARDS]);
            let count = shard.entry(cid.0).or_insert(0);
            if *count == 0 {
                new += 1;
            }
            *count = count.saturating_add(1);
            n += 1;
        }
        if n == 0 {
            return;
        }
        self.deliveries.fetch_add(n, Ordering::Relaxed);
        self.unique.fetch_add(new, Ordering::Relaxed);
        *lock(&self.by_endpoint).entry(endpoint).or_insert(0) += n;
        let second = usize::try_from(self.started.elapsed().as_secs()).unwrap_or(usize::MAX);
        let mut timeline = lock(&self.timeline);
        if timeline.len() <= second {
            timeline.resize(second + 1, 0);
        }
        timeline[second] += n;
    }

    /// Counts a push dropped because its request_id repeated an earlier one.
    pub fn record_dropped_repeat(&self) {
        self.dropped_repeats.fetch_add(1, Ordering::Relaxed);
    }

    /// How many deliveries `cid` received.
    pub fn count(&self, cid: &CompactCid) -> u32 {
        lock(&self.shards[usize::from(cid.0[15]) % SHARDS]).get(&cid.0).copied().unwrap_or(0)
    }

    /// The totals.
    pub fn summary(&self) -> LedgerSummary {
        let deliveries = self.deliveries.load(Ordering::Relaxed);
        let unique_cids = self.unique.load(Ordering::Relaxed);
        LedgerSummary {
            deliveries,
            unique_cids,
            duplicates: deliveries.saturating_sub(unique_cids),
            dropped_repeats: self.dropped_repeats.load(Ordering::Relaxed),
            by_endpoint: lock(&self.by_endpoint).iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    /// Deliveries in each whole second since the simulator started.
    pub fn timeline(&self) -> Vec<u64> {
        lock(&self.timeline).clone()
    }
}

/// A poisoned lock only means another request panicked mid-update of a counter; the counts
/// stay usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> CompactCid {
        let mut b = [0u8; 16];
        b[15] = n;
        b[0] = n.wrapping_mul(7);
        CompactCid(b)
    }

    #[test]
    fn counts_unique_and_duplicate_deliveries() {
        let l = Ledger::default();
        l.record("push_list_cid", [cid(1), cid(2), cid(3)].iter());
        l.record("push_single_batch_cid", [cid(2)].iter());
        l.record_dropped_repeat();
        let s = l.summary();
        assert_eq!((s.deliveries, s.unique_cids, s.duplicates, s.dropped_repeats), (4, 3, 1, 1));
        assert_eq!(s.by_endpoint["push_list_cid"], 3);
        assert_eq!(s.by_endpoint["push_single_batch_cid"], 1);
        assert_eq!(l.count(&cid(2)), 2);
        assert_eq!(l.count(&cid(9)), 0);
        assert_eq!(l.timeline().iter().sum::<u64>(), 4);
    }
}
