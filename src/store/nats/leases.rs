//! Chunk leases in KV `{prefix}_leases`: which daemon sends which chunk of a shared campaign.
//!
//! Key `{id}.{seq}`, value `expiry ms (8 bytes, big-endian) ‖ holder` (the daemon's member id).
//! A free chunk is taken with `create`; a lease held by the caller is renewed, and one whose
//! expiry has passed is taken over, both by an `update` checked against the revision read, so
//! of two daemons reaching for one chunk exactly one wins. The lease is the ack wait: a daemon
//! that dies mid-send leaves its lease to expire, and the chunk returns to the others.
//!
//! Expiry is wall-clock time of the daemon that wrote it, so the daemons' clocks must agree
//! to well within `store.nats.lease_ms` (NTP does).

use async_nats::jetstream::kv;
use bytes::Bytes;

use super::layout::seq_key;
use super::nats_err;
use crate::store::{LeaseOutcome, StoreError};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lease {
    expiry_ms: i64,
    holder: String,
}

impl Lease {
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(8 + self.holder.len());
        b.extend_from_slice(&self.expiry_ms.to_be_bytes());
        b.extend_from_slice(self.holder.as_bytes());
        b.into()
    }

    /// `None` for a value that is not a lease (treated as expired: it protects nobody).
    fn decode(b: &[u8]) -> Option<Lease> {
        let (expiry, holder) = b.split_at_checked(8)?;
        let expiry_ms = i64::from_be_bytes(expiry.try_into().ok()?);
        Some(Lease { expiry_ms, holder: String::from_utf8(holder.to_vec()).ok()? })
    }
}

/// Takes, renews or takes over the lease of chunk `seq` of campaign `id` for `holder` until
/// `now_ms + ttl_ms`.
pub(super) async fn take(
    leases: &kv::Store,
    id: u64,
    seq: u64,
    holder: &str,
    now_ms: i64,
    ttl_ms: u64,
) -> Result<LeaseOutcome, StoreError> {
    let key = seq_key(id, seq);
    let expiry_ms = now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
    let value = Lease { expiry_ms, holder: holder.to_owned() }.encode();
    match leases.create(&key, value.clone()).await {
        Ok(_) => return Ok(LeaseOutcome::Taken),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(nats_err(e)),
    }
    let Some(entry) = leases.entry(&key).await.map_err(nats_err)? else {
        // Released between the create and the read: try once more next pass.
        return Ok(LeaseOutcome::Held);
    };
    let outcome = match (entry.operation, Lease::decode(&entry.value)) {
        // A released lease's marker: free.
        (kv::Operation::Delete | kv::Operation::Purge, _) => LeaseOutcome::Taken,
        (kv::Operation::Put, Some(l)) if l.holder == holder => LeaseOutcome::Taken,
        (kv::Operation::Put, Some(l)) if l.expiry_ms > now_ms => return Ok(LeaseOutcome::Held),
        (kv::Operation::Put, _) => LeaseOutcome::TakenOver,
    };
    match leases.update(&key, value, entry.revision).await {
        Ok(_) => Ok(outcome),
        // Another daemon moved first.
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(LeaseOutcome::Held),
        Err(e) => Err(nats_err(e)),
    }
}

/// Gives the lease back if `holder` still has it; the revision check keeps a lease another
/// daemon took over meanwhile.
pub(super) async fn release(leases: &kv::Store, id: u64, seq: u64, holder: &str) -> Result<(), StoreError> {
    let key = seq_key(id, seq);
    let Some(entry) = leases.entry(&key).await.map_err(nats_err)? else {
        return Ok(());
    };
    let mine = entry.operation == kv::Operation::Put && Lease::decode(&entry.value).is_some_and(|l| l.holder == holder);
    if !mine {
        return Ok(());
    }
    match leases.purge_expect_revision(&key, Some(entry.revision)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(campaign = id, seq, error = %e, "lease changed hands before its release");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_reads_back_and_garbage_is_no_lease() {
        let l = Lease { expiry_ms: 1_700_000_000_123, holder: "a1b2c3d4e5f6".into() };
        assert_eq!(Lease::decode(&l.encode()), Some(l));
        assert_eq!(Lease::decode(b"short"), None);
    }
}
