//! A campaign's chunks live in sled trees of their own, one per [`SEGMENT_CHUNKS`]
//! consecutive chunks.
//!
//! Why: removing each sent chunk key by key made sled rewrite and merge the leaves it emptied,
//! the largest single cost of a list dispatch (about a tenth of the daemon's CPU). Now an
//! acknowledgement leaves its chunk in place (its tombstone in `done`, then the campaign's
//! fold, tell readers it was sent), and once the fold has passed a whole segment its tree goes
//! with one `drop_tree`: sled frees the pages without a write per key. Dropping segment by
//! segment, not the whole campaign at its end, keeps memory flat: sled loads every page of a
//! tree it drops, and holds them until the drop ends.
//!
//! The writer alone creates and drops trees; readers only look them up, so a read never
//! creates a tree. A reader that raced a drop gets a sled error from the dropped tree and
//! finds it unregistered ([`ChunkTrees::segments`] lists fewer trees): it reads again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::StoreError;

/// Consecutive chunks per tree. Sent chunks stay in sled's cache until their segment goes, so
/// this bounds what they hold: 64 list chunks are about 1 MB (with 256, a 10M list run peaked
/// 5–7 MB higher).
pub(super) const SEGMENT_CHUNKS: u64 = 64;

/// Name prefix of the chunk trees; the campaign id and the segment follow, big-endian.
const PREFIX: &[u8] = b"chunks/";
/// The single chunks tree of stores written before per-campaign trees.
const LEGACY_TREE: &str = "chunks";

type SegmentKey = (u64, u64);

fn tree_name((id, segment): SegmentKey) -> Vec<u8> {
    [PREFIX, &id.to_be_bytes(), &segment.to_be_bytes()].concat()
}

fn key_of(name: &[u8]) -> Option<SegmentKey> {
    let rest = name.strip_prefix(PREFIX)?;
    let (id, segment) = (rest.get(..8)?, rest.get(8..)?);
    Some((u64::from_be_bytes(id.try_into().ok()?), u64::from_be_bytes(segment.try_into().ok()?)))
}

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The chunk trees of one store, shared by the writer and the readers.
#[derive(Clone)]
pub(super) struct ChunkTrees {
    db: sled::Db,
    open: Arc<RwLock<BTreeMap<SegmentKey, sled::Tree>>>,
}

impl ChunkTrees {
    /// Registers the chunk trees `db` holds.
    pub(super) fn load(db: &sled::Db) -> Result<ChunkTrees, StoreError> {
        let mut open = BTreeMap::new();
        for name in db.tree_names() {
            if let Some(key) = key_of(&name) {
                open.insert(key, db.open_tree(&name).map_err(db_err)?);
            }
        }
        Ok(ChunkTrees { db: db.clone(), open: Arc::new(RwLock::new(open)) })
    }

    /// The tree that holds chunk `seq` of campaign `id`, if there is one.
    pub(super) fn get(&self, id: u64, seq: u64) -> Option<sled::Tree> {
        self.open.read().unwrap_or_else(|p| p.into_inner()).get(&(id, seq / SEGMENT_CHUNKS)).cloned()
    }

    /// The trees that hold chunks `from..to` of campaign `id`, in order.
    pub(super) fn segments(&self, id: u64, from: u64, to: u64) -> Vec<sled::Tree> {
        if from >= to {
            return Vec::new();
        }
        let range = (id, from / SEGMENT_CHUNKS)..=(id, (to - 1) / SEGMENT_CHUNKS);
        self.open.read().unwrap_or_else(|p| p.into_inner()).range(range).map(|(_, t)| t.clone()).collect()
    }

    /// The tree for chunk `seq` of campaign `id`, created on first use. Writer only.
    pub(super) fn get_or_create(&self, id: u64, seq: u64) -> Result<sled::Tree, StoreError> {
        if let Some(tree) = self.get(id, seq) {
            return Ok(tree);
        }
        let key = (id, seq / SEGMENT_CHUNKS);
        let tree = self.db.open_tree(tree_name(key)).map_err(db_err)?;
        self.open.write().unwrap_or_else(|p| p.into_inner()).insert(key, tree.clone());
        Ok(tree)
    }

    /// Drops the trees of campaign `id` whose chunks all have a sequence below `end`
    /// (`u64::MAX`: every tree of it). Writer only.
    pub(super) fn drop_below(&self, id: u64, end: u64) -> Result<(), StoreError> {
        let last = match end {
            u64::MAX => u64::MAX,
            _ => match (end / SEGMENT_CHUNKS).checked_sub(1) {
                Some(last) => last,
                None => return Ok(()),
            },
        };
        let spent: Vec<SegmentKey> = {
            let open = self.open.read().unwrap_or_else(|p| p.into_inner());
            open.range((id, 0)..=(id, last)).map(|(k, _)| *k).collect()
        };
        for key in spent {
            // Unregistered first: a reader still holding the tree sees it fail and finds it gone.
            self.open.write().unwrap_or_else(|p| p.into_inner()).remove(&key);
            self.db.drop_tree(tree_name(key)).map_err(db_err)?;
        }
        Ok(())
    }

    /// Drops every chunk tree of campaign `id`. Writer only.
    pub(super) fn drop_campaign(&self, id: u64) -> Result<(), StoreError> {
        self.drop_below(id, u64::MAX)
    }

    /// The campaigns that have chunk trees.
    pub(super) fn ids(&self) -> Vec<u64> {
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<u64> = open.keys().map(|(id, _)| *id).collect();
        ids.dedup();
        ids
    }

    /// Moves the chunks of the single tree earlier versions kept into the per-campaign trees,
    /// then drops that tree; answers how many keys moved. Copy before drop, so a crash midway
    /// leaves every chunk in at least one place and the next open finishes the move.
    pub(super) fn migrate_legacy(&self) -> Result<u64, StoreError> {
        if !self.db.tree_names().iter().any(|n| n.as_ref() == LEGACY_TREE.as_bytes()) {
            return Ok(0);
        }
        let legacy = self.db.open_tree(LEGACY_TREE).map_err(db_err)?;
        let mut moved = 0;
        for item in legacy.iter() {
            let (key, value) = item.map_err(db_err)?;
            let Some((id, seq)) = super::codec::parse_chunk_key(&key) else {
                continue; // not a chunk key: nothing to keep
            };
            self.get_or_create(id, seq)?.insert(key, value).map_err(db_err)?;
            moved += 1;
        }
        self.db.flush().map_err(db_err)?;
        self.db.drop_tree(LEGACY_TREE).map_err(db_err)?;
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &std::path::Path) -> sled::Db {
        sled::Config::new().path(dir).open().unwrap()
    }

    #[test]
    fn trees_are_found_again_after_a_reopen_and_gone_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = db(dir.path());
            let trees = ChunkTrees::load(&db).unwrap();
            trees.get_or_create(7, 3).unwrap().insert(b"k", b"v".as_slice()).unwrap();
            trees.get_or_create(9, 0).unwrap();
            trees.drop_campaign(9).unwrap();
            db.flush().unwrap();
        }
        let db = db(dir.path());
        let trees = ChunkTrees::load(&db).unwrap();
        assert_eq!(trees.ids(), vec![7]);
        assert_eq!(trees.get(7, 0).unwrap().get(b"k").unwrap().as_deref(), Some(b"v".as_slice()));
        assert!(trees.get(9, 0).is_none(), "a dropped campaign has no tree, and a read makes none");
        trees.drop_campaign(7).unwrap();
        assert!(db.tree_names().iter().all(|n| key_of(n).is_none()));
    }

    #[test]
    fn segments_hold_consecutive_chunks_and_go_once_folded_past() {
        let dir = tempfile::tempdir().unwrap();
        let trees = ChunkTrees::load(&db(dir.path())).unwrap();
        let s = SEGMENT_CHUNKS;
        for seq in [0, s - 1, s, 2 * s, 3 * s + 5] {
            trees.get_or_create(1, seq).unwrap();
        }
        trees.get_or_create(2, 0).unwrap();
        assert_eq!(trees.segments(1, 0, 4 * s).len(), 4);
        assert_eq!(trees.segments(1, s - 1, s + 1).len(), 2);
        assert_eq!(trees.segments(1, 5, 5).len(), 0);
        trees.drop_below(1, s - 1).unwrap();
        assert_eq!(trees.segments(1, 0, 4 * s).len(), 4, "segment 0 still holds chunk {}", s - 1);
        trees.drop_below(1, 2 * s + 1).unwrap();
        assert_eq!(trees.segments(1, 0, 4 * s).len(), 2, "segments 0 and 1 were all folded");
        assert!(trees.get(1, 2 * s).is_some() && trees.get(2, 0).is_some());
        trees.drop_campaign(1).unwrap();
        assert_eq!(trees.ids(), vec![2]);
    }

    #[test]
    fn a_reader_holding_a_dropped_tree_gets_an_error_not_stale_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let trees = ChunkTrees::load(&db(dir.path())).unwrap();
        let held = trees.get_or_create(3, 0).unwrap();
        held.insert(b"k", b"v".as_slice()).unwrap();
        trees.drop_campaign(3).unwrap();
        assert!(held.get(b"k").is_err());
        assert!(trees.get(3, 0).is_none());
    }

    #[test]
    fn legacy_chunks_move_to_their_campaigns_trees() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let legacy = db.open_tree(LEGACY_TREE).unwrap();
        let key = |id: u64, seq: u64| super::super::codec::chunk_key(id, seq);
        legacy.insert(key(1, 0), b"a".as_slice()).unwrap();
        legacy.insert(key(1, SEGMENT_CHUNKS), b"b".as_slice()).unwrap();
        legacy.insert(key(2, 0), b"c".as_slice()).unwrap();
        let trees = ChunkTrees::load(&db).unwrap();
        assert_eq!(trees.migrate_legacy().unwrap(), 3);
        assert_eq!(trees.segments(1, 0, 2 * SEGMENT_CHUNKS).len(), 2);
        assert_eq!(trees.get(2, 0).unwrap().get(key(2, 0)).unwrap().as_deref(), Some(b"c".as_slice()));
        assert!(!db.tree_names().iter().any(|n| n.as_ref() == LEGACY_TREE.as_bytes()));
        assert_eq!(trees.migrate_legacy().unwrap(), 0, "a second open has nothing to move");
    }
}
