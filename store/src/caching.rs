//! What the store's in-memory caches share: when a cached row may be trusted, and a
//! map that a read which raced a change cannot put a stale row back into.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Whether and why the store may answer reads from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Every read goes to the database (the default).
    Off,
    /// This process is the only writer of the database (SQLite in the data dir whose
    /// lock it holds): it drops cached rows as it writes them.
    Sole,
    /// Other processes write too (PostgreSQL): only what they announce with NOTIFY
    /// can be cached (accounts), and only while the LISTEN connection is up.
    Notified,
}

/// A bounded map whose every change bumps an epoch: a reader notes the epoch before
/// it reads the database and keeps what it read only if the epoch has not moved.
#[derive(Debug)]
pub(crate) struct GuardedMap<K, V> {
    epoch: AtomicU64,
    entries: Mutex<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> GuardedMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            epoch: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The epoch to pass to [`Self::keep`] for a read starting now.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `value`, read under `epoch`, unless something changed since.
    pub(crate) fn keep(&self, epoch: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Compared under the lock that `forget` bumps the epoch under.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, value);
    }

    pub(crate) fn forget<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    pub(crate) fn forget_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let map = GuardedMap::<String, u32>::new(10);
        let epoch = map.epoch();
        map.forget("a");
        map.keep(epoch, "a".to_owned(), 1);
        assert_eq!(map.get("a"), None);
        map.keep(map.epoch(), "a".to_owned(), 2);
        assert_eq!(map.get("a"), Some(2));
    }

    #[test]
    fn the_map_stays_bounded() {
        let map = GuardedMap::<u32, u32>::new(10);
        for i in 0..=10 {
            map.keep(map.epoch(), i, i);
        }
        assert!(map.len() <= 10);
    }
}
