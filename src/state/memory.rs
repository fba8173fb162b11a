//! Duplicate suppression in this process's memory: each identity delivered lately, until
//! when, and each being delivered now, with a signal its waiters wake on. Bounded: at most
//! [`CAPACITY`] delivered identities are remembered, the oldest forgotten first.
//!
//! Delivered identities are kept in two generations, each a plain map of identity to expiry:
//! new ones go into the young one; a generation is dropped whole once everything in it has
//! expired, and when the young one is full (half of [`CAPACITY`]) the old one is dropped and
//! the young one becomes the old. So the store holds no second copy of the identities in
//! expiry order (an earlier queue did, and doubled its memory), each identity checks its own
//! expiry, and a flood forgets only once it fills both, the older half first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Identity;

/// The most delivered identities remembered at once (49 bytes each in their table, two
/// tables of 65,536 buckets when full): past it the oldest half are forgotten, so a flood of distinct notifications costs bounded memory and
/// at worst lets an old one through twice.
pub const CAPACITY: usize = 100_000;

/// Delivered identities a generation holds at most.
const GENERATION: usize = CAPACITY / 2;

/// The store, shared by the dedup handle and its leases.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    /// Being delivered now. Dropping (or sending to) a sender wakes that identity's waiters.
    in_flight: HashMap<Identity, watch::Sender<()>>,
    /// Delivered, the newer generation: every delivery is recorded here.
    young: Generation,
    /// Delivered, the older generation: only read, until it is dropped whole.
    old: Generation,
}

/// Delivered identities and until when each is a duplicate.
#[derive(Debug, Default)]
struct Generation {
    until: HashMap<Identity, Instant>,
    /// The latest expiry in `until`: from then on the whole generation has expired.
    latest: Option<Instant>,
}

impl Generation {
    fn holds(&self, identity: &Identity, now: Instant) -> bool {
        self.until.get(identity).is_some_and(|until| *until > now)
    }

    fn expired(&self, now: Instant) -> bool {
        self.latest.is_none_or(|latest| latest <= now)
    }
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
        if let Some(done) = inner.in_flight.get(&identity) {
            return Try::Wait(done.subscribe());
        }
        if inner.young.holds(&identity, now) || inner.old.holds(&identity, now) {
            return Try::Duplicate;
        }
        let (done, _) = watch::channel(());
        inner.in_flight.insert(identity, done);
        Try::Mine
    }

    pub(super) fn settle(&self, identity: Identity, delivered: bool, window: Duration) {
        let mut inner = self.lock();
        // Removing the entry drops its sender: every waiter wakes and claims again.
        inner.in_flight.remove(&identity);
        if delivered && !window.is_zero() {
            let until = Instant::now() + window;
            if inner.young.until.len() >= GENERATION {
                inner.shift();
            }
            inner.old.until.remove(&identity);
            inner.young.until.insert(identity, until);
            inner.young.latest = inner.young.latest.max(Some(until));
        }
    }

    /// How many entries are held: remembered deliveries and claims in flight (an identity
    /// claimed again after its delivery expired counts in both until its generation goes).
    pub(super) fn len(&self) -> usize {
        let inner = self.lock();
        inner.in_flight.len() + inner.young.until.len() + inner.old.until.len()
    }
}

impl Inner {
    /// Drops a generation once all of it has expired. The young one becomes the old one only
    /// when it is full ([`shift`](Self::shift)), so the old one was full when it became old
    /// and nothing unexpired is forgotten before [`CAPACITY`] are remembered.
    fn forget_expired(&mut self, now: Instant) {
        if !self.old.until.is_empty() && self.old.expired(now) {
            self.old = Generation::default();
        }
        if !self.young.until.is_empty() && self.young.expired(now) {
            self.young = Generation::default();
        }
    }

    /// The young generation becomes the old one; the old one is forgotten.
    fn shift(&mut self) {
        self.old = std::mem::take(&mut self.young);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(i: u64) -> Identity {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        Identity(bytes)
    }

    fn deliver(store: &Shared, i: u64, window: Duration) {
        assert!(
            matches!(store.try_claim(identity(i)), Try::Mine),
            "{i} is new"
        );
        store.settle(identity(i), true, window);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_a_flood_of_distinct_notifications() {
        let store = Shared::default();
        let window = Duration::from_secs(300);
        let flood = 2 * CAPACITY as u64 + 7;
        for i in 0..flood {
            deliver(&store, i, window);
        }
        assert!(store.len() <= CAPACITY, "{} remembered", store.len());
        {
            let inner = store.lock();
            // Neither map grew past what a generation needs (hashbrown's usable capacity for
            // GENERATION entries is below 2 × GENERATION).
            assert!(inner.young.until.capacity() < 2 * GENERATION);
            assert!(inner.old.until.capacity() < 2 * GENERATION);
        }
        // The newest half is remembered; the oldest was forgotten first.
        for i in flood - GENERATION as u64..flood {
            assert!(
                matches!(store.try_claim(identity(i)), Try::Duplicate),
                "{i}"
            );
        }
        assert!(matches!(store.try_claim(identity(0)), Try::Mine));
        store.settle(identity(0), false, window);
        tokio::time::advance(window + Duration::from_secs(1)).await;
        assert!(matches!(store.try_claim(identity(flood - 1)), Try::Mine));
        assert_eq!(
            store.len(),
            1,
            "expired ones forgotten, the new claim in flight"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_remembered_until_its_own_expiry_whatever_the_windows() {
        let store = Shared::default();
        let step = Duration::from_secs(100);
        deliver(&store, 1, Duration::from_secs(300)); // until 300
        tokio::time::advance(step).await;
        deliver(&store, 2, Duration::from_secs(1000)); // until 1100: a reload lengthened it
        tokio::time::advance(step).await;
        deliver(&store, 3, Duration::from_secs(50)); // until 250: and shortened it
        tokio::time::advance(Duration::from_secs(101)).await; // 301
        deliver(&store, 4, Duration::from_secs(300)); // until 601
        assert!(
            matches!(store.try_claim(identity(1)), Try::Mine),
            "1 expired at 300"
        );
        store.settle(identity(1), false, Duration::ZERO);
        assert!(
            matches!(store.try_claim(identity(3)), Try::Mine),
            "3 expired at 250"
        );
        store.settle(identity(3), false, Duration::ZERO);
        for _ in 0..7 {
            tokio::time::advance(step).await; // up to 1001
            assert!(matches!(store.try_claim(identity(2)), Try::Duplicate));
        }
        assert!(
            !matches!(store.try_claim(identity(4)), Try::Duplicate),
            "4 expired at 601"
        );
        tokio::time::advance(step).await; // 1101
        assert!(
            matches!(store.try_claim(identity(2)), Try::Mine),
            "2 expired at 1100"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_unexpired_is_forgotten_before_the_store_is_full() {
        let store = Shared::default();
        let window = Duration::from_secs(300);
        deliver(&store, 0, window);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Fewer than CAPACITY in all: every one of them is still remembered.
        for i in 1..CAPACITY as u64 {
            deliver(&store, i, window);
        }
        for i in 0..CAPACITY as u64 {
            assert!(
                matches!(store.try_claim(identity(i)), Try::Duplicate),
                "{i}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_identity_in_flight_is_never_forgotten_by_a_flood() {
        let store = Shared::default();
        assert!(matches!(store.try_claim(identity(u64::MAX)), Try::Mine));
        for i in 0..CAPACITY as u64 + 3 {
            deliver(&store, i, Duration::from_secs(300));
        }
        assert!(matches!(store.try_claim(identity(u64::MAX)), Try::Wait(_)));
    }
}
