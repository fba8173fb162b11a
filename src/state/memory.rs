//! Duplicate suppression in this process's memory: each identity delivered lately, until
//! when, and each being delivered now, with a signal its waiters wake on. Bounded: at most
//! [`CAPACITY`] delivered identities are remembered, the oldest forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Identity;

/// The most delivered identities remembered at once (about 100 bytes each): past it the
/// oldest are forgotten, so a flood of distinct notifications costs bounded memory and at
/// worst lets an old one through twice.
pub const CAPACITY: usize = 100_000;

/// The store, shared by the dedup handle and its leases.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Identity, Entry>,
    /// Delivered identities in the order they expire (an identity delivered again appears
    /// twice; the older mark is skipped when it comes up).
    expiry: VecDeque<(Instant, Identity)>,
    delivered: usize,
}

#[derive(Debug)]
enum Entry {
    Delivered(Instant),
    /// Dropped (or sent to) when the delivery ends, which wakes the waiters.
    InFlight(watch::Sender<()>),
}

/// What [`Shared::try_claim`] found.
pub(super) enum Try {
    Duplicate,
    Mine,
    /// Being delivered: wait on this, then try again.
    Wait(watch::Receiver<()>),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn try_claim(&self, identity: Identity) -> Try {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.forget_expired(now);
        match inner.entries.get(&identity) {
            Some(Entry::Delivered(until)) if *until > now => Try::Duplicate,
            Some(Entry::InFlight(done)) => Try::Wait(done.subscribe()),
            _ => {
                let (done, _) = watch::channel(());
                if let Some(Entry::Delivered(_)) =
                    inner.entries.insert(identity, Entry::InFlight(done))
                {
                    inner.delivered -= 1;
                }
                Try::Mine
            }
        }
    }

    pub(super) fn settle(&self, identity: Identity, delivered: bool, window: Duration) {
        let mut inner = self.lock();
        // Removing the entry drops its sender: every waiter wakes and claims again.
        let was = inner.entries.remove(&identity);
        if let Some(Entry::Delivered(_)) = was {
            inner.delivered -= 1;
        }
        if delivered && !window.is_zero() {
            let until = Instant::now() + window;
            inner.entries.insert(identity, Entry::Delivered(until));
            inner.expiry.push_back((until, identity));
            inner.delivered += 1;
            inner.bound();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Inner {
    fn forget_expired(&mut self, now: Instant) {
        while self.expiry.front().is_some_and(|(until, _)| *until <= now) {
            if let Some((until, identity)) = self.expiry.pop_front() {
                self.forget_if(identity, until);
            }
        }
    }

    /// Keeps at most [`CAPACITY`] delivered identities, forgetting the oldest.
    fn bound(&mut self) {
        while self.delivered > CAPACITY {
            let Some((until, identity)) = self.expiry.pop_front() else {
                break;
            };
            self.forget_if(identity, until);
        }
    }

    /// Forgets `identity` if it is still the delivery that expires at `until`.
    fn forget_if(&mut self, identity: Identity, until: Instant) {
        if let Some(Entry::Delivered(at)) = self.entries.get(&identity)
            && *at == until
        {
            self.entries.remove(&identity);
            self.delivered -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_a_flood_of_distinct_notifications() {
        let store = Shared::default();
        for i in 0..(CAPACITY + 500) as u64 {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            let identity = Identity(bytes);
            assert!(matches!(store.try_claim(identity), Try::Mine));
            store.settle(identity, true, Duration::from_secs(300));
        }
        assert_eq!(store.len(), CAPACITY);
        assert_eq!(store.lock().expiry.len(), CAPACITY);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(matches!(store.try_claim(Identity([9; 32])), Try::Mine));
        assert_eq!(store.len(), 1, "expired ones forgotten");
    }
}
