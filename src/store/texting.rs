//! What the store keeps for SMS fallback (issue 13): one texting state per sent chunk of a
//! campaign with `sms_fallback`, the gateway's serial numbers (for its delivery reports), and
//! the receipts Getui posted per (taskid, cid). The texting state's content belongs to the
//! dispatcher (`dispatch::texting`); the store keeps its bytes, its due time and a revision.

use crate::domain::CompactCid;

/// One chunk's texting state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextingEntry {
    /// The campaign.
    pub campaign: u64,
    /// The chunk.
    pub seq: u64,
    /// When its texts are due, ms since the epoch (fixed when the chunk was pushed).
    pub due_ms: i64,
    /// The dispatcher's encoding of the state.
    pub state: Vec<u8>,
    /// The stored revision this entry was read at (0 for a new one); `texting_save` refuses
    /// a stale one, so two daemons never both move one texting on.
    pub revision: u64,
}

/// Which message a receipt is about: Getui's taskid and the recipient's cid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptKey {
    /// The taskid of the push (the list task, or the single message's task).
    pub taskid: String,
    /// The recipient.
    pub cid: CompactCid,
}

/// Key of a receipt record: `app \0 taskid \0 cid`.
pub(super) fn receipt_key(app: &str, key: &ReceiptKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + key.taskid.len() + 18);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    k.extend_from_slice(key.taskid.as_bytes());
    k.push(0);
    k.extend_from_slice(&key.cid.0);
    k
}

/// Key of a serial number record: `app \0 sid`.
pub(super) fn serial_key(app: &str, sid: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(app.len() + sid.len() + 1);
    k.extend_from_slice(app.as_bytes());
    k.push(0);
    k.extend_from_slice(sid.as_bytes());
    k
}

/// Key of a texting state: `campaign ‖ seq`, big-endian.
pub(super) fn texting_key(campaign: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&campaign.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Key of the due index: `due (ms, offset to sort as unsigned) ‖ campaign ‖ seq`.
pub(super) fn due_key(due_ms: i64, campaign: u64, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&((due_ms as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&texting_key(campaign, seq));
    k
}

/// The parts of a [`due_key`].
pub(super) fn parse_due_key(k: &[u8]) -> Option<(i64, u64, u64)> {
    let due = u64::from_be_bytes(k.get(..8)?.try_into().ok()?) ^ (1 << 63);
    let campaign = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    let seq = u64::from_be_bytes(k.get(16..24)?.try_into().ok()?);
    Some((due as i64, campaign, seq))
}

/// The stored value of a texting state: its due time, then the state.
pub(super) fn texting_value(entry: &TextingEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + entry.state.len());
    v.extend_from_slice(&entry.due_ms.to_be_bytes());
    v.extend_from_slice(&entry.state);
    v
}

/// A texting state back from its stored value.
pub(super) fn texting_entry(campaign: u64, seq: u64, value: &[u8], revision: u64) -> Option<TextingEntry> {
    let due_ms = i64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some(TextingEntry { campaign, seq, due_ms, state: value[8..].to_vec(), revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_then_campaign_and_round_trip() {
        let a = due_key(-5, 9, 9);
        let b = due_key(1_700_000_000_000, 1, 0);
        let c = due_key(1_700_000_000_000, 1, 1);
        assert!(a < b && b < c);
        assert_eq!(parse_due_key(&c), Some((1_700_000_000_000, 1, 1)));
        let e = TextingEntry { campaign: 3, seq: 4, due_ms: 77, state: vec![1, 2], revision: 0 };
        assert_eq!(texting_entry(3, 4, &texting_value(&e), 0), Some(e));
    }
}
