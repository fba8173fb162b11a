//! A robot's rate budget shared by every replica: per window one sorted set of slots, each
//! scored with when it leaves the window by Redis's clock, checked and taken for all of the
//! robot's windows in one script. The slot rules are the single process's
//! ([`crate::delivery::budget`]): a slot is taken when a request goes out, held while it is
//! in flight, and counted for the window's length plus a margin after the robot's answer.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{RedisState, RobotHash, StateError, millis, token};
use crate::channel::Window;

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/take.lua")));
static SETTLE_SLOT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/settle_slot.lua")));

/// What [`RedisState::take_slot`] got.
#[derive(Debug)]
pub enum Take {
    /// A slot in every window: send now, then [settle](RedisState::settle_slot) it.
    Slot(SlotId),
    /// Every slot of some window is counted: ask again after this long. When the slot
    /// that frees first is still in flight (on any replica), this is the soonest it can
    /// free, a window after an answer coming now; asking again then gives the exact time.
    WaitUntil(Duration),
}

/// A slot taken in each of a robot's windows, held until settled (or, should its replica
/// die, until the hold it was taken with plus the window).
#[derive(Debug)]
pub struct SlotId {
    robot: RobotHash,
    member: String,
    windows: Vec<Window>,
    taken_at: Duration,
    free: usize,
}

impl SlotId {
    /// When the slot was taken, by Redis's clock (since the Unix epoch).
    pub fn taken_at(&self) -> Duration {
        self.taken_at
    }

    /// How many more slots every window had free once this one was taken (by every
    /// replica's count, at that moment): what the messages waiting behind this one may take.
    pub(crate) fn free_after(&self) -> usize {
        self.free
    }
}

impl RedisState {
    /// Takes a slot for a request to `robot` going out now, in all of its `windows` at once
    /// or in none. `hold_for` is how long the request may take (its timeout): should this
    /// replica die before settling, the slot frees `hold_for` plus each window later.
    /// No windows: a slot without a trip to Redis.
    pub async fn take_slot(
        &self,
        robot: &RobotHash,
        windows: &[Window],
        hold_for: Duration,
    ) -> Result<Take, StateError> {
        let member = token();
        if windows.is_empty() {
            return Ok(Take::Slot(SlotId {
                robot: robot.clone(),
                member,
                windows: Vec::new(),
                taken_at: Duration::ZERO,
                free: usize::MAX,
            }));
        }
        let mut call = TAKE.prepare_invoke();
        call.key(self.key("epoch", "budget"))
            .key(self.key("replicas", "live"))
            .key(self.flight_key(robot));
        for window in windows {
            call.key(self.window_key(robot, window.length));
        }
        call.arg(token())
            .arg(&member)
            .arg(millis(hold_for))
            .arg(&*self.id)
            .arg(self.replicas)
            .arg(millis(super::LIVE_FOR));
        for window in windows {
            call.arg(window.limit).arg(millis(window.length).max(1));
        }
        let mut con = self.manager.clone();
        let (taken, at, free, epoch): (i64, i64, i64, String) = self
            .run(async move { call.invoke_async(&mut con).await })
            .await?;
        self.note_epoch(epoch);
        match (taken, u64::try_from(at), usize::try_from(free)) {
            (1, Ok(at), Ok(free)) => Ok(Take::Slot(SlotId {
                robot: robot.clone(),
                member,
                windows: windows.to_vec(),
                taken_at: Duration::from_millis(at),
                free,
            })),
            (0, Ok(wait), _) if wait > 0 => Ok(Take::WaitUntil(Duration::from_millis(wait))),
            _ => Err(self.unexpected("the budget script", (taken, at, free))),
        }
    }

    /// The request holding `slot` was answered (or given up on) now: the slot counts in each
    /// window until `late` from now (how much later the robot may still count it, see
    /// `attempt::late_by`) plus the window's length and its share of `margin`. Returns when
    /// that was, by Redis's clock.
    pub async fn settle_slot(
        &self,
        slot: SlotId,
        margin: Duration,
        late: Duration,
    ) -> Result<Duration, StateError> {
        if slot.windows.is_empty() {
            return Ok(Duration::ZERO);
        }
        let mut call = SETTLE_SLOT.prepare_invoke();
        call.key(self.flight_key(&slot.robot));
        for window in &slot.windows {
            call.key(self.window_key(&slot.robot, window.length));
        }
        call.arg(&slot.member).arg(millis(late));
        for window in &slot.windows {
            call.arg(millis(window.length + window.margin(margin)));
        }
        let mut con = self.manager.clone();
        let at: i64 = self
            .run(async move { call.invoke_async(&mut con).await })
            .await?;
        u64::try_from(at)
            .map(Duration::from_millis)
            .map_err(|_| self.unexpected("the settle script", at))
    }

    /// `{prefix}:budget:{robot}:{length ms}`.
    fn window_key(&self, robot: &RobotHash, length: Duration) -> String {
        format!(
            "{}:budget:{{{}}}:{}",
            self.prefix,
            robot.as_str(),
            length.as_millis()
        )
    }

    fn flight_key(&self, robot: &RobotHash) -> String {
        format!("{}:budget:{{{}}}:flight", self.prefix, robot.as_str())
    }
}
