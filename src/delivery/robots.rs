//! What the dispatcher and the robot workers share, per robot (by channel and token): the
//! running workers, and the throttle penalties robots imposed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{DeliveryError, Job};
use crate::channel::Retry;

/// The shared state. Jobs are handed to a worker only while this is locked, so a worker
/// that finds its channel empty under the lock may retire without losing one.
#[derive(Default)]
pub(super) struct Robots {
    /// Each robot's worker, while it has queued or counted messages.
    workers: HashMap<String, mpsc::UnboundedSender<Job>>,
    /// Robots that answered a frequency code, until when. Apart from the workers: a robot
    /// without a budget (`rate_limit: 0`) has no worker, and its penalty holds all the same.
    throttled: HashMap<String, Instant>,
}

/// Locks the state; a panic elsewhere while it was held leaves nothing half-done in it.
pub(super) fn lock(robots: &Mutex<Robots>) -> MutexGuard<'_, Robots> {
    robots.lock().unwrap_or_else(|e| e.into_inner())
}

impl Robots {
    /// How long the robot is still left alone, if it throttled us.
    pub(super) fn throttled_for(&mut self, key: &str, now: Instant) -> Option<Duration> {
        if self.throttled.is_empty() {
            return None;
        }
        match self.throttled.get(key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                self.throttled.remove(key);
                None
            }
            None => None,
        }
    }

    /// Starts the penalty when `result` says the robot throttled us.
    pub(super) fn note(
        &mut self,
        key: &str,
        result: &Result<(), DeliveryError>,
        penalty: Duration,
        profile: &str,
    ) {
        let Err(DeliveryError::Send(error)) = result else {
            return;
        };
        if error.retry() != Retry::Throttled {
            return;
        }
        let now = Instant::now();
        // Penalties over are dropped here, so the map holds only robots throttled lately.
        self.throttled.retain(|_, until| *until > now);
        self.throttled.insert(key.to_owned(), now + penalty);
        tracing::error!(profile, %error, penalty = ?penalty, "the robot throttled us; holding its messages back");
    }

    /// Leaves the robot alone for `left` (another replica's penalty, learnt through Redis).
    pub(super) fn hold(&mut self, key: &str, left: Duration) {
        let until = Instant::now() + left;
        let held = self.throttled.entry(key.to_owned()).or_insert(until);
        *held = (*held).max(until);
    }

    /// Hands `job` to the robot's worker, starting one with `spawn` if it has none (or if
    /// its worker is gone, which only a bug could do).
    pub(super) fn hand_over(
        &mut self,
        key: &str,
        mut job: Job,
        spawn: impl FnOnce() -> mpsc::UnboundedSender<Job>,
    ) -> Result<(), DeliveryError> {
        if let Some(worker) = self.workers.get(key) {
            match worker.send(job) {
                Ok(()) => return Ok(()),
                Err(returned) => job = returned.0,
            }
        }
        let worker = spawn();
        let sent = worker.send(job).map_err(|_| DeliveryError::ShuttingDown);
        self.workers.insert(key.to_owned(), worker);
        sent
    }

    /// Forgets the robot's worker, which is retiring.
    pub(super) fn retire(&mut self, key: &str) {
        self.workers.remove(key);
    }

    /// How many workers run.
    pub(super) fn workers(&self) -> usize {
        self.workers.len()
    }
}
