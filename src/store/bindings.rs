//! The cid↔phone binding rule as key writes, shared by both backends (issue 13).
//!
//! Two records per binding of an app: the cid record (`pn_md5 ‖ sealed number`) and the
//! reverse entry `pn_md5 → cid` that keeps a phone on one cid. [`plan_binds`] turns a call into
//! the writes that follow the rule of `domain::sms::BindingTable`, reading through its own
//! pending writes so later pairs see earlier ones; the backend applies them (sled: one atomic
//! batch).

use std::collections::HashMap;

use super::{BindOutcome, PhoneBinding, StoreError};
use crate::domain::CompactCid;

/// Bytes of the md5 hex at the start of a cid record.
pub(super) const MD5_HEX: usize = 32;

/// A key of the binding records of one app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum BindKey {
    /// The cid record.
    Cid(CompactCid),
    /// The reverse entry of a pn md5.
    Pn(String),
}

/// A cid record's value.
pub(super) fn cid_value(pn_md5: &str, sealed: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(MD5_HEX + sealed.len());
    v.extend_from_slice(pn_md5.as_bytes());
    v.extend_from_slice(sealed);
    v
}

/// Splits a cid record into its md5 and sealed number.
pub(super) fn split_cid_value(v: &[u8]) -> Result<(&str, &[u8]), StoreError> {
    if v.len() < MD5_HEX {
        return Err(StoreError::Codec("binding record shorter than its pn".into()));
    }
    let (md5, sealed) = v.split_at(MD5_HEX);
    let md5 = std::str::from_utf8(md5).map_err(|_| StoreError::Codec("binding pn is not text".into()))?;
    Ok((md5, sealed))
}

/// A reverse entry's cid.
pub(super) fn parse_cid_bytes(v: &[u8]) -> Result<CompactCid, StoreError> {
    let b: [u8; 16] = v.try_into().map_err(|_| StoreError::Codec("binding reverse entry is not a cid".into()))?;
    Ok(CompactCid(b))
}

/// The writes of one bind call: `None` removes the key.
pub(super) type Writes = HashMap<BindKey, Option<Vec<u8>>>;

/// Plans a bind call: what to write and what each pair did. `read` gives a key's stored value.
pub(super) fn plan_binds(
    pairs: &[PhoneBinding],
    read: impl Fn(&BindKey) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<(Writes, Vec<BindOutcome>), StoreError> {
    let mut writes: Writes = HashMap::new();
    let get = |writes: &Writes, key: &BindKey| match writes.get(key) {
        Some(v) => Ok(v.clone()),
        None => read(key),
    };
    let mut outcomes = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let cid_key = BindKey::Cid(pair.cid);
        let pn_key = BindKey::Pn(pair.pn_md5.clone());
        let current = get(&writes, &cid_key)?;
        if let Some(v) = &current {
            let (md5, _) = split_cid_value(v)?;
            if md5 == pair.pn_md5 {
                outcomes.push(BindOutcome { displaced: None, changed: false });
                continue;
            }
            // The cid leaves its old phone, which becomes free.
            writes.insert(BindKey::Pn(md5.to_owned()), None);
        }
        let displaced = match get(&writes, &pn_key)? {
            Some(owner) => {
                let owner = parse_cid_bytes(&owner)?;
                (owner != pair.cid).then(|| {
                    writes.insert(BindKey::Cid(owner), None);
                    owner
                })
            }
            None => None,
        };
        writes.insert(cid_key, Some(cid_value(&pair.pn_md5, &pair.sealed)));
        writes.insert(pn_key, Some(pair.cid.0.to_vec()));
        outcomes.push(BindOutcome { displaced, changed: true });
    }
    Ok((writes, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u8, md5: char) -> PhoneBinding {
        PhoneBinding { cid: CompactCid([n; 16]), sealed: vec![n, n], pn_md5: md5.to_string().repeat(32) }
    }

    #[test]
    fn a_plan_follows_the_one_to_one_rule_within_a_call() {
        let stored: Writes = HashMap::new();
        let read = |k: &BindKey| Ok(stored.get(k).cloned().flatten());
        // The phone moves 1 → 2 → 3 in one call; 4 gets its own.
        let (writes, out) = plan_binds(&[pair(1, 'a'), pair(2, 'a'), pair(3, 'a'), pair(4, 'b')], read).unwrap();
        assert_eq!(out[0], BindOutcome { displaced: None, changed: true });
        assert_eq!(out[1].displaced, Some(CompactCid([1; 16])));
        assert_eq!(out[2].displaced, Some(CompactCid([2; 16])));
        assert_eq!(writes[&BindKey::Cid(CompactCid([1; 16]))], None);
        assert_eq!(writes[&BindKey::Pn("a".repeat(32))], Some(vec![3; 16]));
        // Binding the same pair again writes nothing.
        let read = |k: &BindKey| Ok(writes.get(k).cloned().flatten());
        let (again, out) = plan_binds(&[pair(3, 'a')], read).unwrap();
        assert!(again.is_empty() && !out[0].changed);
        // A cid bound anew frees its old phone.
        let (moved, _) = plan_binds(&[pair(4, 'c')], read).unwrap();
        assert_eq!(moved[&BindKey::Pn("b".repeat(32))], None);
    }
}
