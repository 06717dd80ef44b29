//! Hash tables for the state that grows with load (transactions, nonces, bindings), built so
//! that growing never stalls the core. A table doubles in one step; with std's `HashMap` that
//! step hashes every string key again, and at 115,000 entries the tables that grow together
//! held one REGISTER for 44 ms (p99 at 12,000 REGISTER/s went from 12 ms to 240 ms).
//! [`StrMap`] keeps each key's SipHash (keyed per table, so peers cannot aim collisions) and
//! [`IdMap`] hashes ids we issued ourselves with one multiplication; growing then only moves
//! entries.

use hashbrown::{Equivalent, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// A hasher that passes on the one `u64` it is given: the hash was computed beforehand.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever used by the keys here; fold anything else rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A string key with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    hash: u64,
    text: Box<str>,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A borrowed look-up key with its hash.
struct Query<'q> {
    hash: u64,
    text: &'q str,
}

impl Hash for Query<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<Key> for Query<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.hash == key.hash && self.text == &*key.text
    }
}

/// A map from strings (often chosen by peers) to `V`.
#[derive(Debug, Clone, Default)]
pub struct StrMap<V> {
    keys: RandomState,
    map: HashMap<Key, V, BuildHasherDefault<PassThrough>>,
}

impl<V> StrMap<V> {
    /// An empty map with its own random hash key.
    pub fn new() -> Self {
        StrMap {
            keys: RandomState::new(),
            map: HashMap::default(),
        }
    }

    fn query<'q>(&self, text: &'q str) -> Query<'q> {
        Query {
            hash: self.keys.hash_one(text),
            text,
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(&self.query(key))
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let q = self.query(key);
        self.map.get_mut(&q)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(&self.query(key))
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: impl Into<Box<str>>, value: V) -> Option<V> {
        let text = key.into();
        let hash = self.keys.hash_one(&*text);
        self.map.insert(Key { hash, text }, value)
    }

    /// The value for `key`, inserting `V::default()` first if there is none.
    pub fn get_or_default(&mut self, key: &str) -> &mut V
    where
        V: Default,
    {
        let hash = self.keys.hash_one(key);
        let (_, value) = self
            .map
            .raw_entry_mut()
            .from_hash(hash, |k| k.hash == hash && &*k.text == key)
            .or_insert_with(|| {
                let text = key.into();
                (Key { hash, text }, V::default())
            });
        value
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let q = self.query(key);
        self.map.remove(&q)
    }

    /// Keeps the entries for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) {
        self.map.retain(|k, v| keep(&k.text, v));
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.map.iter().map(|(k, v)| (&*k.text, v))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Hashes an id we issued (a counter) with one multiplication by 2^64 / phi: consecutive ids
/// spread over both the high bits (hashbrown's tag) and the low ones (its bucket).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by ids this process issued; never by anything a peer chose.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m: StrMap<u32> = StrMap::new();
        assert_eq!(m.insert("a", 1), None);
        assert_eq!(m.insert(String::from("b"), 2), None);
        assert_eq!(m.insert("a", 3), Some(1));
        assert_eq!(m.get("a"), Some(&3));
        assert!(m.contains_key("b") && !m.contains_key("c"));
        *m.get_or_default("c") += 5;
        *m.get_or_default("c") += 5;
        assert_eq!(m.get("c"), Some(&10));
        *m.get_mut("b").unwrap() = 7;
        m.retain(|k, v| k != "a" && *v > 0);
        let mut all: Vec<_> = m.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        all.sort();
        assert_eq!(all, [("b".to_string(), 7), ("c".to_string(), 10)]);
        assert_eq!(m.remove("b"), Some(7));
        assert_eq!((m.len(), m.is_empty()), (1, false));
    }

    #[test]
    fn survives_growth_and_keeps_every_key() {
        let mut m: StrMap<usize> = StrMap::new();
        for i in 0..50_000 {
            m.insert(format!("z9hG4bK{i}"), i);
        }
        assert!((0..50_000).all(|i| m.get(&format!("z9hG4bK{i}")) == Some(&i)));
        let mut ids: IdMap<u64, u64> = IdMap::default();
        for i in 0..50_000u64 {
            ids.insert(i, i * 2);
        }
        assert!((0..50_000u64).all(|i| ids.get(&i) == Some(&(i * 2))));
    }

    #[test]
    fn tables_use_different_keys() {
        let (a, b) = (StrMap::<()>::new(), StrMap::<()>::new());
        assert_ne!(a.query("same").hash, b.query("same").hash);
    }
}
