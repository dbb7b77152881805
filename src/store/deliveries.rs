//! The bounded, durable record of WeCom callback deliveries already handled, so that WeCom's
//! retry of a delivery is recognised even after a restart.
//!
//! Two trees: `delivery_seen` maps a delivery key to when it was noted, and `delivery_order`
//! holds `time ‖ key`, oldest first, so trimming to the window is a scan from the front.
//! Writes are rare (human message rates) and short; they run on a blocking thread, serialised
//! by one lock so the entry count stays exact.

use std::sync::{Arc, Mutex};

use super::{DeliveryWindow, StoreError};

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The delivery record. Cheap to clone: the trees and the count are shared.
#[derive(Clone)]
pub(super) struct Deliveries {
    seen: sled::Tree,
    order: sled::Tree,
    /// Entries in `seen`; holding it serialises every change.
    count: Arc<Mutex<usize>>,
}

impl Deliveries {
    /// Opens the two trees; counting the entries is cheap because the window bounds them.
    pub(super) fn open(db: &sled::Db) -> Result<Deliveries, StoreError> {
        let seen = db.open_tree("delivery_seen").map_err(db_err)?;
        let order = db.open_tree("delivery_order").map_err(db_err)?;
        let count = Arc::new(Mutex::new(seen.len()));
        Ok(Deliveries { seen, order, count })
    }

    /// True the first time `key` is noted within `window`; blocking.
    pub(super) fn first(&self, key: &str, now_ms: i64, window: DeliveryWindow) -> Result<bool, StoreError> {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        self.trim(&mut count, now_ms, window)?;
        if self.seen.contains_key(key).map_err(db_err)? {
            return Ok(false);
        }
        // The order entry goes first: a crash between the two leaves an orphan that trimming
        // removes, never a `seen` entry that nothing would ever trim.
        self.order.insert(order_key(now_ms, key), &[]).map_err(db_err)?;
        self.seen.insert(key, &time_bytes(now_ms)).map_err(db_err)?;
        *count += 1;
        Ok(true)
    }

    /// Whether `key` is noted; blocking.
    pub(super) fn contains(&self, key: &str) -> Result<bool, StoreError> {
        self.seen.contains_key(key).map_err(db_err)
    }

    /// Deliveries remembered now.
    pub(super) fn len(&self) -> usize {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the record is on disk.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        self.seen.flush_async().await.map_err(db_err).map(drop)
    }

    /// Drops entries older than the window, and the oldest ones until one more fits.
    fn trim(&self, count: &mut usize, now_ms: i64, window: DeliveryWindow) -> Result<(), StoreError> {
        let oldest_kept = now_ms.saturating_sub(window.max_age_ms);
        for item in self.order.iter() {
            let (k, _) = item.map_err(db_err)?;
            let at = time_of(&k);
            if at >= oldest_kept && *count < window.max_entries {
                break;
            }
            self.order.remove(&k).map_err(db_err)?;
            let key = k.get(8..).unwrap_or_default();
            // Only the entry this order row describes: a key forgotten and noted again has a
            // newer row of its own.
            if self.seen.get(key).map_err(db_err)?.is_some_and(|v| time_of(&v) == at) {
                self.seen.remove(key).map_err(db_err)?;
                *count = count.saturating_sub(1);
            }
        }
        Ok(())
    }
}

/// `time ‖ key`, so the tree iterates oldest first.
fn order_key(at_ms: i64, key: &str) -> Vec<u8> {
    let mut k = time_bytes(at_ms).to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// A time as 8 big-endian bytes with the sign bit flipped, so that times sort as numbers.
fn time_bytes(at_ms: i64) -> [u8; 8] {
    ((at_ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time at the front of an order key, or a stored `seen` value.
fn time_of(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    if let Some(head) = bytes.get(..8) {
        b.copy_from_slice(head);
    }
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}
