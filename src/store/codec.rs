//! Keys and values as stored: big-endian keys that sort by campaign then chunk, msgpack values
//! with a leading version byte.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// Version of every stored value's layout.
const VERSION: u8 = 1;

/// `campaign ‖ seq`, both big-endian, so a campaign's chunks are one ordered range.
pub fn chunk_key(campaign: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&campaign.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a chunk key.
pub fn parse_chunk_key(k: &[u8]) -> Option<(u64, u64)> {
    let c = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let s = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some((c, s))
}

/// Compact msgpack (structs as arrays) for bulky values such as chunks.
pub fn encode_compact<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    rmp_serde::encode::write(&mut out, v).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Self-describing msgpack (structs as maps) for records whose fields grow over time.
pub fn encode_named<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    rmp_serde::encode::write_named(&mut out, v).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Reads a value written by either encoder.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => rmp_serde::from_slice(rest).map_err(|e| StoreError::Codec(e.to_string())),
        Some((v, _)) => Err(StoreError::Codec(format!("unknown value version {v}"))),
        None => Err(StoreError::Codec("empty value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Chunk;

    #[test]
    fn keys_sort_by_campaign_then_sequence() {
        let mut keys = vec![chunk_key(2, 0), chunk_key(1, 300), chunk_key(1, 2), chunk_key(1, 256)];
        keys.sort();
        assert_eq!(keys, vec![chunk_key(1, 2), chunk_key(1, 256), chunk_key(1, 300), chunk_key(2, 0)]);
        assert_eq!(parse_chunk_key(&chunk_key(7, 9)), Some((7, 9)));
    }

    #[test]
    fn a_thousand_cids_take_about_sixteen_kilobytes() {
        let chunk = Chunk { cids: vec![0xab; 16_000], ..Chunk::default() };
        let bytes = encode_compact(&chunk).unwrap();
        assert!(bytes.len() < 16_010, "{}", bytes.len());
        assert_eq!(decode::<Chunk>(&bytes).unwrap(), chunk);
        assert!(decode::<Chunk>(&[9, 1, 2]).is_err());
    }
}
