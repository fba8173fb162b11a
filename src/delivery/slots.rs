//! Where a robot's budget slots come from. With `state.redis`, from the one budget every
//! replica shares ([`RedisState::take_slot`]: one atomic script over all of the robot's
//! windows, by Redis's clock); while Redis does not answer, from this replica's share of it,
//! `rate_limit / replicas` ([`Policy::alone`]), counted here; without Redis, from the whole
//! budget, counted here.
//!
//! The budget here counts every message this replica sends, through Redis or not, so the
//! share it falls back on already holds what it sent before Redis went away. The other way
//! round, the slots it took alone are not in Redis (and a Redis that restarted has
//! forgotten every slot), so for a window after it last sent alone a shared slot also
//! needs room in its share: together the replicas stay within the robot's budget while the
//! two counts overlap.

use std::time::Duration;

use tokio::time::Instant;

use super::attempt::Gate;
use super::budget::{Budget, Windows};
use super::{DeliveryError, Policy};
use crate::state::redis::{RedisState, RobotHash, SlotId, Take};

/// How soon to look again when what is known says a slot is free but none could be had
/// (Redis came and went between two looks).
const RECHECK: Duration = Duration::from_millis(50);

/// One robot's slots, owned by its worker.
#[derive(Debug)]
pub(super) struct Slots {
    /// This replica's messages (all of them, shared or not).
    budget: Budget,
    /// The budget replicas share, with `state.redis`.
    shared: Option<Shared>,
}

#[derive(Debug)]
struct Shared {
    redis: RedisState,
    robot: RobotHash,
    /// Redis said no slot frees before then.
    wait_until: Option<Instant>,
    /// Until then a shared slot also needs room in this replica's share: it sent alone
    /// lately, or Redis was away or lost its keys, so Redis may not count all it sent.
    alone_until: Option<Instant>,
    /// [`RedisState::forgotten`] when last looked at.
    forgotten: u64,
}

/// What the next message may take.
#[derive(Debug)]
pub(super) enum Free {
    /// Slots are free for it and those waiting behind it (at least 1); the first slot,
    /// when it came from Redis, is taken already.
    Slots(usize, Option<SlotId>),
    /// None now: see [`Slots::next_free`].
    Spent,
}

impl Free {
    /// `free` slots of this replica's own.
    fn of(free: usize) -> Self {
        match free {
            0 => Self::Spent,
            free => Self::Slots(free, None),
        }
    }
}

impl Slots {
    /// The slots of the robot `key`, shared through `redis` when given.
    pub(super) fn new(key: &str, redis: Option<RedisState>) -> Self {
        Self {
            budget: Budget::default(),
            shared: redis.map(|redis| Shared {
                redis,
                robot: RobotHash::of(key),
                wait_until: None,
                alone_until: None,
                forgotten: 0,
            }),
        }
    }

    /// The windows this replica counts its own messages against.
    fn own(&self, policy: &Policy) -> Windows {
        match self.shared {
            Some(_) => policy.alone,
            None => policy.windows,
        }
    }

    /// When a slot is next free, if none is free now, by what is known here: Redis's last
    /// answer while it answers, else this replica's count.
    pub(super) fn next_free(&mut self, now: Instant, policy: &Policy) -> Option<Instant> {
        let own = self.own(policy);
        let Some(shared) = self.shared.as_ref().filter(|s| !s.redis.is_away()) else {
            return self.budget.next_free(now, &own);
        };
        let redis_at = shared.wait_until.filter(|at| *at > now);
        let alone_lately = shared.alone_until.is_some_and(|until| until > now);
        let own_at = alone_lately
            .then(|| self.budget.next_free(now, &own))
            .flatten();
        redis_at.max(own_at)
    }

    /// What the next message may take; with Redis (while it answers) this takes its slot
    /// there already, in one call.
    pub(super) async fn free(&mut self, policy: &Policy) -> Free {
        let now = Instant::now();
        let own_free = self.budget.free(now, &self.own(policy));
        let Some(shared) = &mut self.shared else {
            return Free::of(own_free);
        };
        if shared.redis.is_away() {
            // Not asked while away (the heartbeat finds it back within a second: a Redis
            // that hangs would cost every message a call's timeout). Whatever is sent
            // meanwhile Redis will not know: once it is back, a window of keeping to the
            // share as well.
            shared.keep_to_share(now, policy);
            return Free::of(own_free);
        }
        let mut alone_lately = shared.alone_until.is_some_and(|until| until > now);
        if alone_lately && own_free == 0 {
            return Free::Spent;
        }
        let windows = policy.windows.as_slice();
        match shared
            .redis
            .take_slot(&shared.robot, windows, hold(policy))
            .await
        {
            Ok(Take::Slot(slot)) => {
                if shared.redis.forgotten() != shared.forgotten {
                    // Redis lost its keys: the slots taken before are not in it.
                    shared.forgotten = shared.redis.forgotten();
                    shared.keep_to_share(now, policy);
                    alone_lately = true;
                    if own_free == 0 {
                        let _ = shared
                            .redis
                            .settle_slot(slot, policy.rate_limit_margin, Duration::ZERO)
                            .await;
                        return Free::Spent;
                    }
                }
                let free = slot.free_after().saturating_add(1);
                let free = if alone_lately {
                    free.min(own_free)
                } else {
                    free
                };
                Free::Slots(free, Some(slot))
            }
            Ok(Take::WaitUntil(wait)) => {
                shared.wait_until = Some(Instant::now() + wait);
                Free::Spent
            }
            // Away: this replica's share.
            Err(_) => {
                shared.keep_to_share(now, policy);
                Free::of(own_free)
            }
        }
    }

    /// When the last message counted here frees its slot; `None` when nothing is counted,
    /// so a new worker would be the same as this one.
    pub(super) fn last_counted(&mut self, now: Instant) -> Option<Instant> {
        let alone = self
            .shared
            .as_ref()
            .and_then(|s| s.alone_until)
            .filter(|until| *until > now);
        self.budget.last_counted(now).max(alone)
    }

    /// Counts a request going out now on `slot` (`None`: a slot of this replica's own).
    fn take(&mut self, slot: Option<&SlotId>, policy: &Policy) {
        self.budget.take();
        if let (Some(shared), None) = (&mut self.shared, slot) {
            shared.keep_to_share(Instant::now(), policy);
        }
    }

    /// The request on `slot` is over; the robot may count it until `late` from now.
    async fn settle(&mut self, slot: Option<SlotId>, late: Duration, policy: &Policy) {
        let margin = policy.rate_limit_margin;
        self.budget
            .settle(Instant::now() + late, margin, &policy.windows);
        if let (Some(shared), Some(slot)) = (&self.shared, slot) {
            // Unsettled (Redis went away meanwhile), it frees itself: its hold, then a window.
            let _ = shared.redis.settle_slot(slot, margin, late).await;
        }
    }
}

impl Shared {
    /// Keeps to this replica's share as well as to Redis until whatever it sends now has
    /// left every window.
    fn keep_to_share(&mut self, now: Instant, policy: &Policy) {
        let until =
            now + hold(policy).saturating_add(policy.windows.counted_for(policy.rate_limit_margin));
        self.alone_until = self.alone_until.max(Some(until));
    }
}

/// How long a slot may be counted before its answer frees it in Redis: in flight up to a
/// timeout, perhaps counted a timeout after that (see `attempt::late_by`), plus the margin.
/// A replica killed mid-request leaves its slot counted this long plus the window.
fn hold(policy: &Policy) -> Duration {
    policy
        .timeout
        .saturating_mul(2)
        .saturating_add(policy.rate_limit_margin)
}

/// Takes a slot for each attempt of one message, held while the attempt is in flight; waits
/// for one when the budget is spent.
pub(super) struct SlotGate<'a> {
    slots: &'a mut Slots,
    policy: Policy,
    /// The first attempt's slot, taken while the message was chosen.
    first: Option<Free>,
    /// The slot of the attempt in flight, when it came from Redis.
    held: Option<SlotId>,
}

impl<'a> SlotGate<'a> {
    /// A gate whose first attempt goes on `first`, what [`Slots::free`] gave.
    pub(super) fn new(slots: &'a mut Slots, policy: Policy, first: Free) -> Self {
        Self {
            slots,
            policy,
            first: Some(first),
            held: None,
        }
    }
}

impl Gate for SlotGate<'_> {
    async fn acquire(&mut self, deadline: Instant) -> Result<(), DeliveryError> {
        loop {
            let free = match self.first.take() {
                Some(free) => free,
                None => self.slots.free(&self.policy).await,
            };
            if let Free::Slots(_, slot) = free {
                self.slots.take(slot.as_ref(), &self.policy);
                self.held = slot;
                return Ok(());
            }
            let now = Instant::now();
            let free_at = self
                .slots
                .next_free(now, &self.policy)
                .unwrap_or(now + RECHECK);
            if free_at > deadline {
                return Err(DeliveryError::WaitTimeout(
                    deadline.saturating_duration_since(now),
                ));
            }
            tokio::time::sleep_until(free_at).await;
        }
    }

    async fn settle(&mut self, late: Duration) {
        let slot = self.held.take();
        self.slots.settle(slot, late, &self.policy).await;
    }
}
