//! [`KeySet`]: the distinct keys a stateful plugin has seen, compact enough
//! to hold tens of millions under the default plugin memory (1 GiB).
//!
//! A `HashSet<Box<[u8]>>` costs a heap block, a fat pointer and the table's
//! slack per key: about 50 bytes for an 8-byte key, and twice the table while
//! it grows. Here the keys are packed end to end in 1 MiB pages that never
//! move, each behind its length, and the hash tables hold only each key's
//! 4-byte position: about 17 bytes per 8-byte key (50M keys in about 850 MB).
//! The positions are split over 256 tables by hash, so when one table grows
//! it copies a 256th of them, and the peak stays near the steady size.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use crate::PluginError;

/// Bytes per page of keys. A position is `page * PAGE + offset` in a `u32`:
/// 4 GiB of keys, all that a 32-bit memory holds.
const PAGE: usize = 1 << 20;
/// Tables the positions are split over.
const PARTS: usize = 256;
/// Bytes of a length prefix at most (LEB128 of a length under `PAGE`).
const MAX_PREFIX: usize = 3;

/// A set of byte strings (such as `arrow_row` keys), for deduplication and
/// other keyed state. Keys are only added, never removed.
pub struct KeySet {
    /// The keys, each behind its length (LEB128), never across two pages.
    pages: Vec<Vec<u8>>,
    /// Positions of the keys, in the table their hash picks.
    parts: Vec<HashTable<u32>>,
    hasher: DefaultHashBuilder,
    len: usize,
}

impl Default for KeySet {
    fn default() -> Self {
        Self::new()
    }
}

impl KeySet {
    pub fn new() -> Self {
        Self {
            pages: Vec::new(),
            parts: (0..PARTS).map(|_| HashTable::new()).collect(),
            hasher: DefaultHashBuilder::default(),
            len: 0,
        }
    }

    /// How many distinct keys the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the set holds: its pages and its tables.
    pub fn allocated_bytes(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum::<usize>()
            + self.parts.iter().map(HashTable::allocation_size).sum::<usize>()
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        self.parts[part(hash)].find(hash, |&at| key_at(&self.pages, at) == key).is_some()
    }

    /// Adds `key`. Returns whether it was new. Fails for a key of 1 MiB or
    /// more, and once the set holds 4 GiB of keys.
    pub fn insert(&mut self, key: &[u8]) -> Result<bool, PluginError> {
        let hash = self.hasher.hash_one(key);
        let Self { pages, parts, hasher, len } = self;
        let table = &mut parts[part(hash)];
        if table.find(hash, |&at| key_at(pages, at) == key).is_some() {
            return Ok(false);
        }
        let at = append(pages, key)?;
        table.insert_unique(hash, at, |&at| hasher.hash_one(key_at(pages, at)));
        *len += 1;
        Ok(true)
    }
}

/// The table for `hash`: bits that hashbrown uses for neither the bucket
/// (the low bits) nor the tag (the top seven).
fn part(hash: u64) -> usize {
    (hash >> 32) as usize % PARTS
}

/// Appends `key` behind its length; returns its position.
fn append(pages: &mut Vec<Vec<u8>>, key: &[u8]) -> Result<u32, PluginError> {
    if key.len() + MAX_PREFIX > PAGE {
        return Err(PluginError::input(format!(
            "a key of {} bytes is too long: keys of at most {} bytes are supported",
            key.len(),
            PAGE - MAX_PREFIX
        )));
    }
    let mut prefix = [0u8; MAX_PREFIX];
    let prefix_len = leb128(key.len(), &mut prefix);
    let needed = prefix_len + key.len();
    if pages.last().is_none_or(|page| page.len() + needed > PAGE) {
        pages.push(Vec::with_capacity(PAGE));
    }
    let page_index = pages.len() - 1;
    let page = &mut pages[page_index];
    let at = u32::try_from(page_index * PAGE + page.len())
        .map_err(|_| PluginError::internal("more than 4 GiB of distinct keys: the key set is full"))?;
    page.extend_from_slice(&prefix[..prefix_len]);
    page.extend_from_slice(key);
    Ok(at)
}

/// The key at position `at`.
fn key_at(pages: &[Vec<u8>], at: u32) -> &[u8] {
    let (page, mut offset) = (&pages[at as usize / PAGE], at as usize % PAGE);
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let byte = page[offset];
        offset += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    &page[offset..offset + len]
}

/// Writes `value` (under `PAGE`) as LEB128 into `out`; returns its length.
fn leb128(mut value: usize, out: &mut [u8; MAX_PREFIX]) -> usize {
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[n] = byte;
            return n + 1;
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_key_once_in_any_order() {
        let mut set = KeySet::new();
        assert!(set.insert(b"a").unwrap());
        assert!(set.insert(b"").unwrap(), "the empty key is a key");
        assert!(!set.insert(b"a").unwrap());
        assert!(!set.insert(b"").unwrap());
        assert!(set.insert(b"ab").unwrap());
        assert_eq!(set.len(), 3);
        assert!(set.contains(b"ab") && !set.contains(b"b"));
    }

    #[test]
    fn holds_keys_of_every_length_across_pages() {
        let mut set = KeySet::new();
        // Lengths with one-, two- and three-byte prefixes, over several pages.
        let keys: Vec<Vec<u8>> = (0..3_000u32)
            .map(|i| i.to_le_bytes().iter().copied().cycle().take((i as usize * 97) % 20_000).collect())
            .collect();
        let mut distinct = std::collections::HashSet::new();
        for key in &keys {
            assert_eq!(set.insert(key).unwrap(), distinct.insert(key.clone()), "{} bytes", key.len());
        }
        assert!(set.pages.len() > 5, "{} pages", set.pages.len());
        assert_eq!(set.len(), distinct.len());
        for key in &keys {
            assert!(!set.insert(key).unwrap());
        }
        let big = vec![7u8; PAGE - MAX_PREFIX];
        assert!(set.insert(&big).unwrap() && set.contains(&big));
    }

    #[test]
    fn a_key_of_a_page_is_refused_by_name() {
        let error = KeySet::new().insert(&vec![0u8; PAGE]).unwrap_err();
        assert!(error.to_string().contains("a key of 1048576 bytes is too long"), "{error}");
    }

    /// 1.5M 9-byte keys (an `Int64` key's row encoding) in under 20 bytes
    /// each: what lets 50M keys fit the default plugin memory. (Right after
    /// the tables double, it is about 22.)
    #[test]
    fn int64_keys_take_under_20_bytes_each() {
        let mut set = KeySet::new();
        for i in 0..1_500_000u64 {
            let mut key = [1u8; 9];
            key[1..].copy_from_slice(&i.to_be_bytes());
            assert!(set.insert(&key).unwrap());
        }
        let per_key = set.allocated_bytes() as f64 / 1.5e6;
        assert!(per_key < 20.0, "{per_key:.1} bytes per key");
    }
}
