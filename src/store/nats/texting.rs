//! The NATS side of SMS fallback's state (see [`crate::store::texting`]): texting states in the
//! `texting` bucket (`{id}.{seq}` → `due ‖ state`, revision-checked so that two daemons never
//! both move one texting on), gateway serial numbers in `serials`, receipt bits in `receipts`.
//!
//! Finding the due states lists the bucket's keys: its cost follows the chunks whose texting is
//! under way (a few thousand for a million recipients), not the history.

use async_nats::jetstream::kv;
use bytes::Bytes;

use super::scan::{self, remove};
use super::{layout, nats_err, NatsStore, SCAN_MAX};
use crate::domain::texting::SmsTally;
use crate::store::texting::{texting_entry, texting_value};
use crate::store::{Change, ReceiptKey, StoreError, TextingEntry};

impl NatsStore {
    pub(super) async fn stage_texting(&self, entry: TextingEntry) -> Result<bool, StoreError> {
        let key = layout::seq_key(entry.campaign, entry.seq);
        match self.texting.create(&key, texting_value(&entry).into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(nats_err(e)),
        }
    }

    pub(super) async fn due_texting(&self, now_ms: i64, max: usize) -> Result<Vec<TextingEntry>, StoreError> {
        let mut due = Vec::new();
        for key in scan::keys(&self.texting, ">", SCAN_MAX).await? {
            let Some((id, seq)) = key.split_once('.').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            else {
                continue;
            };
            let Some(e) = self.texting.entry(&key).await.map_err(nats_err)? else { continue };
            if e.operation != kv::Operation::Put {
                continue;
            }
            if let Some(t) = texting_entry(id, seq, &e.value, e.revision).filter(|t| t.due_ms <= now_ms) {
                due.push(t);
            }
        }
        due.sort_by_key(|t| (t.due_ms, t.campaign, t.seq));
        due.truncate(max);
        Ok(due)
    }

    pub(super) async fn save_texting(&self, entry: TextingEntry) -> Result<u64, StoreError> {
        let key = layout::seq_key(entry.campaign, entry.seq);
        match self.texting.update(&key, texting_value(&entry).into(), entry.revision).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(StoreError::Conflict {
                state: crate::domain::CampaignState::Running,
                message: format!("texting of chunk {} of campaign {} moved on elsewhere", entry.seq, entry.campaign),
            }),
            Err(e) => Err(nats_err(e)),
        }
    }

    /// The tally first, then the state: a crash between the two counts the chunk twice in the
    /// report (never texts twice); the other order could lose it.
    pub(super) async fn finish_texting(&self, entry: TextingEntry, tally: SmsTally) -> Result<(), StoreError> {
        match self.change_campaign(entry.campaign, Change::AddSms(tally)).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        remove(&self.texting, &layout::seq_key(entry.campaign, entry.seq)).await
    }

    pub(super) async fn note_serials(&self, app: &str, campaign: u64, sids: Vec<String>) -> Result<(), StoreError> {
        for sid in sids {
            let key = format!("{}.{}", hex::encode(app), hex::encode(sid));
            self.serials.put(key, Bytes::copy_from_slice(&campaign.to_be_bytes())).await.map_err(nats_err)?;
        }
        Ok(())
    }

    pub(super) async fn take_serial(&self, app: &str, sid: &str) -> Result<Option<u64>, StoreError> {
        let key = format!("{}.{}", hex::encode(app), hex::encode(sid));
        let Some(e) = self.serials.entry(&key).await.map_err(nats_err)? else { return Ok(None) };
        if e.operation != kv::Operation::Put {
            return Ok(None);
        }
        // Taken once: of two daemons handling a repeated report, only one wins the delete.
        match self.serials.delete_expect_revision(&key, Some(e.revision)).await {
            Ok(()) => Ok(e.value.as_ref().try_into().ok().map(u64::from_be_bytes)),
            Err(_) => Ok(None),
        }
    }

    pub(super) async fn add_receipts(&self, app: &str, marks: Vec<(ReceiptKey, u8)>) -> Result<Vec<u8>, StoreError> {
        let mut before = Vec::with_capacity(marks.len());
        for (key, bits) in marks {
            before.push(self.or_receipt(&receipt_key(app, &key), bits).await?);
        }
        Ok(before)
    }

    /// Sets `bits` on one receipt record (revision-checked); answers the bits it held.
    async fn or_receipt(&self, key: &str, bits: u8) -> Result<u8, StoreError> {
        loop {
            let entry = self.receipts.entry(key).await.map_err(nats_err)?;
            let (held, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    (e.value.first().copied().unwrap_or(0), Some(e.revision))
                }
                _ => (0, None),
            };
            if held | bits == held {
                return Ok(held);
            }
            let value = Bytes::copy_from_slice(&[held | bits]);
            let written = match revision {
                Some(r) => self
                    .receipts
                    .update(key, value, r)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision),
                None => self
                    .receipts
                    .create(key, value)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists),
            };
            match written {
                Ok(()) => return Ok(held),
                Err(true) => continue, // raced with another writer: read again
                Err(false) => return Err(StoreError::Db(format!("nats: cannot write receipt {key}"))),
            }
        }
    }

    pub(super) async fn read_receipts(&self, app: &str, keys: Vec<ReceiptKey>) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let v = self.receipts.get(receipt_key(app, &key)).await.map_err(nats_err)?;
            out.push(v.and_then(|b| b.first().copied()).unwrap_or(0));
        }
        Ok(out)
    }
}

/// `{hex app}.{hex taskid}.{hex cid}` (KV keys allow few characters, so all hex).
fn receipt_key(app: &str, key: &ReceiptKey) -> String {
    format!("{}.{}.{}", hex::encode(app), hex::encode(&key.taskid), hex::encode(key.cid.0))
}
