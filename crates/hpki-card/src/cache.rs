//! Certificates already read from cards, keyed by card insertion.
//!
//! A cached certificate is only ever a hint: the gateway checks the card's
//! signature against it, so a wrong entry can make a login fail but never
//! succeed for the wrong person.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::card::CardIdentity;
use crate::profile::Application;

type Key = (CardIdentity, Application);

/// A bounded, thread-safe certificate cache (oldest entry evicted first).
pub struct CertificateCache {
    inner: Mutex<Entries>,
    capacity: usize,
}

struct Entries {
    map: HashMap<Key, Arc<[u8]>>,
    order: VecDeque<Key>,
}

impl Default for CertificateCache {
    fn default() -> Self {
        // Two applications for each card of a busy desk is far below this.
        CertificateCache::with_capacity(64)
    }
}

impl CertificateCache {
    pub fn with_capacity(capacity: usize) -> Self {
        CertificateCache {
            inner: Mutex::new(Entries { map: HashMap::new(), order: VecDeque::new() }),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, card: &CardIdentity, app: Application) -> Option<Arc<[u8]>> {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.map.get(&(card.clone(), app)).cloned()
    }

    pub fn insert(&self, card: CardIdentity, app: Application, cert: Arc<[u8]>) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (card, app);
        if entries.map.insert(key.clone(), cert).is_none() {
            entries.order.push_back(key);
        }
        while entries.order.len() > self.capacity {
            if let Some(old) = entries.order.pop_front() {
                entries.map.remove(&old);
            }
        }
    }

    /// Forgets every certificate of cards in `reader` (called on removal).
    pub fn forget_reader(&self, reader: &str) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.map.retain(|(card, _), _| card.reader != reader);
        entries.order.retain(|(card, _)| card.reader != reader);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(reader: &str, insertion: u32) -> CardIdentity {
        CardIdentity { reader: reader.into(), atr: vec![0x3B], insertion }
    }

    #[test]
    fn another_insertion_is_another_card() {
        let cache = CertificateCache::default();
        cache.insert(id("r", 1), Application::Authentication, Arc::from(&b"cert"[..]));
        assert!(cache.get(&id("r", 1), Application::Authentication).is_some());
        assert!(cache.get(&id("r", 3), Application::Authentication).is_none());
        assert!(cache.get(&id("r", 1), Application::Signature).is_none());
    }

    #[test]
    fn bounded_and_forgets_by_reader() {
        let cache = CertificateCache::with_capacity(2);
        for i in 0..3 {
            cache.insert(id("a", i), Application::Authentication, Arc::from(&b"c"[..]));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&id("a", 0), Application::Authentication).is_none());
        cache.insert(id("b", 0), Application::Authentication, Arc::from(&b"c"[..]));
        cache.forget_reader("a");
        assert_eq!(cache.len(), 1);
    }
}
