//! Where delivery's shared facts live: which notifications were delivered lately (duplicate
//! suppression), in this process's memory and, with `state.redis`, in Redis, shared by every
//! replica. Memory comes first (one claim per identity per process reaches Redis); while
//! Redis cannot be reached, memory alone decides, and nothing waits on Redis for longer than
//! its call timeout.
//!
//! A notification's [`Identity`] is its profile, `groupKey`, status and the set of its
//! alerts (fingerprint, status, startsAt, endsAt). Before a notification is sent, it is
//! [claimed](Dedup::claim): one delivered within `dedup_window` is a duplicate; one being
//! delivered right now (by another request, or another replica) is waited for; else the
//! claimer holds a [`Lease`] and [settles](Lease::settle) it once the robot answered. Only
//! delivered notifications are remembered: a failure, or a lease dropped unsettled (the
//! caller went away), frees the identity for the next attempt.

pub mod memory;
pub mod redis;

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::alert::Notification;
use redis::{RedisClaim, RedisState, Ticket, Waited};

/// What makes two notifications the same message: a SHA-256 over the profile, `groupKey`,
/// status and the sorted (fingerprint, status, startsAt, endsAt) of every alert.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Identity(pub [u8; 32]);

impl Identity {
    /// The identity of `notification` sent through `profile`.
    pub fn of(profile: &str, notification: &Notification) -> Self {
        use std::io::Write;
        // Each alert's fields written one after another into one buffer (no string per
        // alert), then hashed in sorted order.
        // Seconds and nanoseconds, defined for every year (nanoseconds alone overflow
        // outside 1677–2262, and two such times would read alike).
        // The fingerprint (payload text, which may hold any character) goes first, prefixed
        // by its length, so no fingerprint can pass for another's fields.
        let mut text = Vec::with_capacity(notification.alerts.len() * 64);
        let mut alerts = Vec::with_capacity(notification.alerts.len());
        for alert in &notification.alerts {
            let start = text.len();
            // Writing to a Vec cannot fail.
            let _ = write!(
                text,
                "{}:{}\u{0}{}\u{0}{}.{:09}\u{0}{}.{:09}",
                alert.fingerprint.len(),
                alert.fingerprint,
                alert.status.as_str(),
                alert.starts_at.timestamp(),
                alert.starts_at.timestamp_subsec_nanos(),
                alert.ends_at.timestamp(),
                alert.ends_at.timestamp_subsec_nanos(),
            );
            alerts.push(start..text.len());
        }
        alerts.sort_unstable_by(|a, b| text[a.clone()].cmp(&text[b.clone()]));
        let mut hash = Sha256::new();
        // Each field is preceded by its length, so no two lists of fields hash alike whatever
        // text they hold (a groupKey may hold a NUL as well as anything else).
        let fields = [
            profile.as_bytes(),
            notification.group_key.as_bytes(),
            notification.status.as_str().as_bytes(),
        ];
        for field in fields
            .into_iter()
            .chain(alerts.into_iter().map(|range| &text[range]))
        {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field);
        }
        Self(hash.finalize().into())
    }

    /// Lowercase hex, for keys (never secret: it names a notification, not a robot).
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", &self.hex()[..12])
    }
}

/// What [`Dedup::claim`] found.
#[derive(Debug)]
pub enum Claim {
    /// Delivered within the window: answer it delivered, send nothing.
    Duplicate,
    /// Ours to deliver; settle the lease when the robot answered.
    Mine(Lease),
    /// Another delivery of it was still running when the wait ran out.
    StillInFlight,
}

/// The right to deliver one notification. Settled delivered, the identity is remembered for
/// the window (here and, with Redis, for every replica); settled failed, or dropped
/// unsettled, it is freed at once.
#[derive(Debug)]
pub struct Lease {
    identity: Identity,
    store: memory::Shared,
    /// The claim in Redis, when there is one.
    /// (Boxed: a connection handle is large beside a claim that has none.)
    shared: Option<Box<(RedisState, Ticket)>>,
    settled: bool,
}

impl Lease {
    /// The robot answered: remember the notification for `window` when it was delivered,
    /// else free it for the next attempt. Redis learns it in the background; use
    /// [`Lease::settle_now`] where an answer waits on it.
    pub fn settle(mut self, delivered: bool, window: Duration) {
        self.settled = true;
        self.store.settle(self.identity, delivered, window);
        if let Some((redis, ticket)) = self.shared.take().map(|b| *b) {
            spawn_settle(redis, ticket, delivered, window);
        }
    }

    /// As [`Lease::settle`], telling Redis before it returns (within Redis's call timeout):
    /// a delivery is recorded for every replica before Alertmanager is answered.
    pub async fn settle_now(mut self, delivered: bool, window: Duration) {
        self.settled = true;
        self.store.settle(self.identity, delivered, window);
        if let Some((redis, ticket)) = self.shared.take().map(|b| *b)
            && let Err(error) = redis.settle(ticket, delivered, window).await
        {
            tracing::debug!(%error, "could not record the delivery in Redis");
        }
    }
}

fn spawn_settle(redis: RedisState, ticket: Ticket, delivered: bool, window: Duration) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = redis.settle(ticket, delivered, window).await;
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.settled {
            self.store.settle(self.identity, false, Duration::ZERO);
            if let Some((redis, ticket)) = self.shared.take().map(|b| *b) {
                spawn_settle(redis, ticket, false, Duration::ZERO);
            }
        }
    }
}

/// Duplicate suppression for the process, and with Redis across replicas. Lives as long as
/// the server, across reloads.
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    store: memory::Shared,
    redis: Option<RedisState>,
}

/// How long a claim in Redis holds past `max_wait` before it expires on its own: the last
/// request to the robot may still be running (at most a `timeout`) when `max_wait` ends, and
/// a replica killed mid-delivery must not hold the notification much longer.
const CLAIM_SLACK: Duration = Duration::from_secs(30);

impl Dedup {
    /// Duplicate suppression shared through `redis` as well as kept in memory.
    pub fn with_redis(redis: Option<RedisState>) -> Self {
        Self {
            store: memory::Shared::default(),
            redis,
        }
    }

    /// Claims `identity`: a duplicate, ours, or (after waiting at most `max_wait` for the
    /// delivery in flight) still in flight. A delivery in flight that fails hands the claim
    /// to one of its waiters.
    pub async fn claim(&self, identity: Identity, max_wait: Duration) -> Claim {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            match self.store.try_claim(identity) {
                memory::Try::Duplicate => return Claim::Duplicate,
                memory::Try::Mine => {
                    let lease = Lease {
                        identity,
                        store: self.store.clone(),
                        shared: None,
                        settled: false,
                    };
                    // While Redis is away it is not asked (the server's probe finds it back
                    // within a second): a Redis that hangs would cost every webhook a call.
                    return match self.redis.as_ref().filter(|redis| !redis.is_away()) {
                        Some(redis) => self.claim_shared(redis, lease, deadline, max_wait).await,
                        None => Claim::Mine(lease),
                    };
                }
                memory::Try::Wait(mut done) => {
                    let waited = tokio::time::timeout_at(deadline, done.changed()).await;
                    if waited.is_err() {
                        return Claim::StillInFlight;
                    }
                }
            }
        }
    }

    /// The claim across replicas, holding this process's: a duplicate another replica
    /// delivered, ours, or another replica's still in flight at the deadline. Redis trouble
    /// leaves the claim to memory alone.
    async fn claim_shared(
        &self,
        redis: &RedisState,
        mut lease: Lease,
        deadline: tokio::time::Instant,
        max_wait: Duration,
    ) -> Claim {
        loop {
            let claimed = redis
                .claim_keeping(lease.identity, max_wait + CLAIM_SLACK)
                .await;
            let waited = match claimed {
                Ok(RedisClaim::Mine(ticket)) => {
                    lease.shared = Some(Box::new((redis.clone(), ticket)));
                    return Claim::Mine(lease);
                }
                Ok(RedisClaim::Duplicate) => Ok(Waited::Delivered),
                Ok(RedisClaim::InFlight) => redis.wait_for(lease.identity, deadline).await,
                Err((error, ticket)) => {
                    // Redis may have taken a claim whose answer timed out: settling its
                    // ticket records the outcome there too.
                    lease.shared = ticket.map(|ticket| Box::new((redis.clone(), ticket)));
                    Err(error)
                }
            };
            match waited {
                Ok(Waited::Freed) => {}
                Ok(Waited::Delivered) => {
                    // Remembered here too, so copies of it stop at memory; the lease is ours,
                    // and settling it delivered is what another replica did.
                    lease.settle(true, max_wait.max(CLAIM_SLACK));
                    return Claim::Duplicate;
                }
                Ok(Waited::StillInFlight) => return Claim::StillInFlight,
                Err(error) => {
                    tracing::debug!(%error, "Redis unavailable; duplicates are suppressed in memory only");
                    return Claim::Mine(lease);
                }
            }
        }
    }

    /// How many identities are remembered or in flight here (bounded, see
    /// [`memory::CAPACITY`]).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether nothing is remembered or in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Notification<'static> {
        crate::samples::sample(name).unwrap()
    }

    #[test]
    fn the_identity_is_the_same_bytes_as_ever() {
        // Replicas of two versions share Redis keys named by it during a rolling upgrade.
        let group = sample("group");
        let mut far = group.clone();
        far.alerts[0].starts_at = "1500-01-01T00:00:00.5Z".parse().unwrap();
        far.alerts[0].ends_at = "9999-12-31T23:59:59.999999999Z".parse().unwrap();
        assert_eq!(
            Identity::of("ops", &group).hex(),
            "be7b9e7c16236f1c8f629492ca13a38e595167b7082c593e58f414e6f05ecbc8"
        );
        assert_eq!(
            Identity::of("运维", &far).hex(),
            "e8d636a0e6d26d2da1439f9120fbce9025ec6a9f2ead39c06ea7637e7ade9eee"
        );
    }

    #[test]
    fn the_identity_ignores_alert_order_and_labels_but_not_status_times_or_profile() {
        let group = sample("group");
        let base = Identity::of("ops", &group);
        let mut reversed = group.clone();
        reversed.alerts.reverse();
        assert_eq!(Identity::of("ops", &reversed), base);
        let mut relabelled = group.clone();
        relabelled.alerts[0].labels.insert("extra", "x");
        assert_eq!(
            Identity::of("ops", &relabelled),
            base,
            "labels are not identity"
        );

        assert_ne!(Identity::of("db", &group), base);
        let mut ended = group.clone();
        ended.alerts[0].ends_at = "2026-11-25T05:00:00Z".parse().unwrap();
        assert_ne!(Identity::of("ops", &ended), base);
        // Times outside the range nanoseconds since 1970 can hold still tell apart.
        let mut far = group.clone();
        far.alerts[0].ends_at = "9999-12-31T00:00:00Z".parse().unwrap();
        let mut farther = group.clone();
        farther.alerts[0].ends_at = "9999-12-31T00:00:01Z".parse().unwrap();
        assert_ne!(Identity::of("ops", &far), Identity::of("ops", &farther));
        let mut fewer = group.clone();
        fewer.alerts.pop();
        assert_ne!(Identity::of("ops", &fewer), base);
        let mut other_group = group.clone();
        other_group.group_key = "{}:{alertname=\"x\"}".into();
        assert_ne!(Identity::of("ops", &other_group), base);
        // Payload text holding NULs cannot move a field across a boundary: a groupKey ending
        // in "\0firing" beside alert `fp1` reads, NUL-separated, exactly like the plain
        // groupKey beside an alert whose fingerprint is "firing\0fp1".
        let mut one = sample("firing");
        one.alerts[0].fingerprint = "fp1".into();
        let mut two = one.clone();
        one.group_key = format!("{}\u{0}firing", one.group_key).into();
        two.alerts[0].fingerprint = "firing\u{0}fp1".into();
        assert_ne!(Identity::of("ops", &one), Identity::of("ops", &two));
        drop(group);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivered_notification_is_a_duplicate_until_the_window_ends() {
        let dedup = Dedup::default();
        let id = Identity::of("ops", &sample("firing"));
        let window = Duration::from_secs(300);

        let Claim::Mine(lease) = dedup.claim(id, Duration::from_secs(1)).await else {
            panic!("the first claim is ours");
        };
        lease.settle(true, window);

        assert!(matches!(
            dedup.claim(id, Duration::ZERO).await,
            Claim::Duplicate
        ));
        tokio::time::advance(window).await;
        assert!(matches!(
            dedup.claim(id, Duration::ZERO).await,
            Claim::Mine(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_or_a_dropped_lease_never_suppresses_a_retry() {
        let dedup = Dedup::default();
        let id = Identity::of("ops", &sample("firing"));
        let Claim::Mine(lease) = dedup.claim(id, Duration::ZERO).await else {
            panic!("ours");
        };
        lease.settle(false, Duration::from_secs(300));
        let Claim::Mine(lease) = dedup.claim(id, Duration::ZERO).await else {
            panic!("a failure is not remembered");
        };
        drop(lease);
        assert!(matches!(
            dedup.claim(id, Duration::ZERO).await,
            Claim::Mine(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_in_flight_waits_for_its_outcome() {
        let dedup = Dedup::default();
        let id = Identity::of("ops", &sample("firing"));
        let Claim::Mine(lease) = dedup.claim(id, Duration::ZERO).await else {
            panic!("ours");
        };

        let waiter = tokio::spawn({
            let dedup = dedup.clone();
            async move { dedup.claim(id, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(matches!(
            dedup.claim(id, Duration::from_millis(10)).await,
            Claim::StillInFlight
        ));
        lease.settle(true, Duration::from_secs(300));

        assert!(matches!(waiter.await.unwrap(), Claim::Duplicate));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_delivery_hands_the_claim_to_a_waiter() {
        let dedup = Dedup::default();
        let id = Identity::of("ops", &sample("firing"));
        let Claim::Mine(lease) = dedup.claim(id, Duration::ZERO).await else {
            panic!("ours");
        };
        let waiter = tokio::spawn({
            let dedup = dedup.clone();
            async move { dedup.claim(id, Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        drop(lease);

        assert!(matches!(waiter.await.unwrap(), Claim::Mine(_)));
    }
}
