//! The sled side of SMS fallback's state (see [`super::texting`]): texting states and their due
//! index, gateway serial numbers, and receipts. Written outside the writer thread (the
//! dispatcher's texting loop and the receipt and report endpoints, at modest rates), each call
//! flushed before it is answered; only a texting's finish goes through the writer, since it
//! also changes the campaign record.

use std::sync::{Arc, Mutex};

use super::texting::{due_key, parse_due_key, receipt_key, serial_key, texting_entry, texting_key, texting_value};
use super::{ReceiptKey, StoreError, TextingEntry};

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The trees, shared by clones.
#[derive(Clone)]
pub(super) struct TextingTrees {
    /// `campaign ‖ seq` → `due ‖ state`.
    pub texting: sled::Tree,
    /// `due ‖ campaign ‖ seq` → nothing.
    pub due: sled::Tree,
    /// `app \0 sid` → campaign (8 bytes).
    serials: sled::Tree,
    /// `app \0 taskid \0 cid` → receipt bits (1 byte).
    receipts: sled::Tree,
    /// Read-modify-writes of one process never interleave.
    lock: Arc<Mutex<()>>,
}

impl TextingTrees {
    pub(super) fn open(db: &sled::Db) -> Result<TextingTrees, StoreError> {
        let open = |name: &str| db.open_tree(name).map_err(db_err);
        Ok(TextingTrees {
            texting: open("texting")?,
            due: open("texting_due")?,
            serials: open("sms_serials")?,
            receipts: open("receipts")?,
            lock: Arc::new(Mutex::new(())),
        })
    }

    pub(super) fn stage(&self, entry: &TextingEntry) -> Result<bool, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = texting_key(entry.campaign, entry.seq);
        if self.texting.contains_key(key).map_err(db_err)? {
            return Ok(false);
        }
        // The index entry first: a crash between the two leaves an index entry without a
        // state, which `due` skips and removes.
        self.due.insert(due_key(entry.due_ms, entry.campaign, entry.seq), &[]).map_err(db_err)?;
        self.texting.insert(key, texting_value(entry)).map_err(db_err)?;
        self.flush()?;
        Ok(true)
    }

    pub(super) fn due(&self, now_ms: i64, max: usize) -> Result<Vec<TextingEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.due.range(..due_key(now_ms.saturating_add(1), 0, 0)) {
            let k = item.map_err(db_err)?.0;
            let Some((_, campaign, seq)) = parse_due_key(&k) else { continue };
            match self.texting.get(texting_key(campaign, seq)).map_err(db_err)? {
                Some(v) => out.extend(texting_entry(campaign, seq, &v, 1)),
                None => {
                    self.due.remove(k).map_err(db_err)?;
                }
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// One daemon owns a sled directory, so there is no other writer to race with: the
    /// revision only counts.
    pub(super) fn save(&self, entry: &TextingEntry) -> Result<u64, StoreError> {
        self.texting.insert(texting_key(entry.campaign, entry.seq), texting_value(entry)).map_err(db_err)?;
        self.flush()?;
        Ok(entry.revision + 1)
    }

    pub(super) fn note_serials(&self, app: &str, campaign: u64, sids: &[String]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for sid in sids {
            batch.insert(serial_key(app, sid), &campaign.to_be_bytes());
        }
        self.serials.apply_batch(batch).map_err(db_err)?;
        self.serials.flush().map_err(db_err)?;
        Ok(())
    }

    pub(super) fn take_serial(&self, app: &str, sid: &str) -> Result<Option<u64>, StoreError> {
        let Some(v) = self.serials.remove(serial_key(app, sid)).map_err(db_err)? else {
            return Ok(None);
        };
        self.serials.flush().map_err(db_err)?;
        Ok(v.as_ref().try_into().ok().map(u64::from_be_bytes))
    }

    pub(super) fn note_receipts(&self, app: &str, marks: &[(ReceiptKey, u8)]) -> Result<Vec<u8>, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut before = Vec::with_capacity(marks.len());
        let mut batch = sled::Batch::default();
        let mut pending = std::collections::HashMap::new();
        for (key, bits) in marks {
            let k = receipt_key(app, key);
            let held = match pending.get(&k) {
                Some(b) => *b,
                None => self.receipts.get(&k).map_err(db_err)?.and_then(|v| v.first().copied()).unwrap_or(0),
            };
            before.push(held);
            if held | bits != held {
                batch.insert(k.clone(), &[held | bits]);
                pending.insert(k, held | bits);
            }
        }
        if !pending.is_empty() {
            self.receipts.apply_batch(batch).map_err(db_err)?;
            self.receipts.flush().map_err(db_err)?;
        }
        Ok(before)
    }

    pub(super) fn receipt_marks(&self, app: &str, keys: &[ReceiptKey]) -> Result<Vec<u8>, StoreError> {
        keys.iter()
            .map(|k| {
                Ok(self
                    .receipts
                    .get(receipt_key(app, k))
                    .map_err(db_err)?
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.texting.flush().map_err(db_err)?;
        Ok(())
    }
}
