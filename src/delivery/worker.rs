//! One robot's worker: owns its rate budget and its queue of waiting notifications, and
//! sends one message at a time. It retires once it holds neither.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::attempt;
use super::robots::{self, Robots};
use super::slots::{Free, SlotGate, Slots};
use super::{Delivered, DeliveryError, Job, merge, shared};
use crate::channel::Client;
use crate::metrics::Metrics;
use crate::state::redis::RedisState;

pub(super) struct Worker {
    client: Client,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    /// Where the robot's throttle penalty lives, and where the worker deregisters itself.
    robots: Arc<Mutex<Robots>>,
    /// The robot's key in `robots`.
    key: String,
    /// Replicas' shared state, for throttles every replica keeps to.
    shared: Option<RedisState>,
    queue: VecDeque<Job>,
    /// The robot's budget: shared through Redis, or this replica's.
    slots: Slots,
}

enum Next {
    /// The queue has work that may go now.
    Send,
    /// Nothing to do until this time (or until a new job or shutdown).
    WaitUntil(Option<Instant>),
    /// Nothing queued and nothing counted: a new worker would be the same as this one.
    Retire,
}

impl Worker {
    pub(super) fn new(
        client: Client,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        robots: Arc<Mutex<Robots>>,
        key: String,
        shared: Option<RedisState>,
    ) -> Self {
        Self {
            client,
            metrics,
            shutdown,
            robots,
            slots: Slots::new(&key, shared.clone()),
            key,
            shared,
            queue: VecDeque::new(),
        }
    }

    pub(super) async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            while let Ok(job) = jobs.try_recv() {
                self.queue.push_back(job);
            }
            match self.next() {
                Next::Send => self.send_batch().await,
                Next::Retire if self.retire(&mut jobs) => return,
                Next::Retire => {}
                Next::WaitUntil(wake) => {
                    let sleep = async {
                        match wake {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        job = jobs.recv() => match job {
                            Some(job) => self.queue.push_back(job),
                            None if self.queue.is_empty() => return,
                            None => {}
                        },
                        () = sleep => {}
                        changed = self.shutdown.changed() => {
                            if changed.is_err() {
                                // The dispatcher is gone: nothing can send or wait any more.
                                self.answer_all(&DeliveryError::ShuttingDown);
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Deregisters the worker unless a job came in meanwhile (then queued). Jobs are handed
    /// over only under the lock, so a channel found empty under it stays empty.
    fn retire(&mut self, jobs: &mut mpsc::UnboundedReceiver<Job>) -> bool {
        let mut robots = robots::lock(&self.robots);
        match jobs.try_recv() {
            Ok(job) => {
                self.queue.push_back(job);
                false
            }
            Err(_) => {
                robots.retire(&self.key);
                true
            }
        }
    }

    /// Answers what must be answered now, and says what to do next.
    fn next(&mut self) -> Next {
        let now = Instant::now();
        // Webhooks whose caller went away (Alertmanager timed out) are not sent: it retries.
        self.queue.retain(|job| !job.reply.is_closed());
        if *self.shutdown.borrow() {
            self.answer_all(&DeliveryError::ShuttingDown);
            return Next::WaitUntil(None);
        }
        let throttled = robots::lock(&self.robots).throttled_for(&self.key, now);
        if let Some(left) = throttled {
            let channel = self.queue.front().map(|job| job.robot.channel());
            if let Some(channel) = channel {
                self.answer_all(&DeliveryError::Throttled(channel, left));
            }
        }
        let Some(newest) = self.queue.back() else {
            return match self.slots.last_counted(now) {
                Some(free_at) => Next::WaitUntil(Some(free_at)),
                None => Next::Retire,
            };
        };
        let policy = newest.policy;
        // Spent: answer those that cannot wait for the next slot, sleep until the slot
        // frees or the next deadline passes. Free: still answer those out of time, never
        // sent with no time left (the robot might take one Alertmanager is told failed).
        let free_at = self.slots.next_free(now, &policy);
        let cutoff = free_at.unwrap_or(now);
        if self.queue.iter().any(|job| job.deadline < cutoff) {
            let (expired, waiting): (Vec<Job>, Vec<Job>) =
                self.queue.drain(..).partition(|job| job.deadline < cutoff);
            self.queue = waiting.into();
            for job in expired {
                let waited = now.duration_since(job.enqueued);
                self.answer(job, Err(DeliveryError::WaitTimeout(waited)));
            }
        }
        let Some(free_at) = free_at else {
            return match self.queue.is_empty() {
                true => Next::WaitUntil(Some(now)),
                false => Next::Send,
            };
        };
        let next_deadline = self.queue.iter().map(|job| job.deadline).min();
        Next::WaitUntil(Some(next_deadline.map_or(free_at, |d| d.min(free_at))))
    }

    async fn send_batch(&mut self) {
        if let Some(left) = shared::throttled_elsewhere(self.shared.as_ref(), &self.key).await {
            // Another replica's penalty: held here too, so the next round answers at once.
            robots::lock(&self.robots).hold(&self.key, left);
            return;
        }
        let Some(newest) = self.queue.back().map(|job| job.policy) else {
            return;
        };
        // The first slot is taken before the batch is chosen: how many more the budget has
        // free (on every replica, with Redis) says how much to merge.
        let reserved = self.slots.free(&newest).await;
        let free = match &reserved {
            Free::Slots(free, _) => *free,
            // Spent: the next round waits for the slot (and answers who cannot wait).
            Free::Spent => return,
        };
        let now = Instant::now();
        let Some((mut batch, message)) = merge::take(&mut self.queue, free) else {
            return;
        };
        let first = &batch[0];
        let deadline = batch.iter().map(|job| job.deadline).min().unwrap_or(now);
        let (profile, robot, policy) = (first.profile.clone(), first.robot.clone(), first.policy);
        for job in &batch {
            let label = Metrics::profile(&job.profile);
            self.metrics
                .rate_limit_wait
                .get_or_create(&label)
                .observe(now.duration_since(job.enqueued).as_secs_f64());
            if batch.len() > 1 {
                self.metrics.merged.get_or_create(&label).inc();
            }
        }
        let mut gate = SlotGate::new(&mut self.slots, newest, reserved);
        let context = attempt::Context::new(
            &self.client,
            &self.metrics,
            &profile,
            &robot,
            &self.shutdown,
        );
        let result = context
            .send(message.body().into(), policy.timeout, deadline, &mut gate)
            .await;
        robots::lock(&self.robots).note(&self.key, &result, policy.throttle_penalty, &profile);
        shared::share_throttle(
            self.shared.as_ref(),
            &self.key,
            &result,
            policy.throttle_penalty,
        )
        .await;
        let merged = batch.len();
        let outcome = result.map(|()| Delivered { merged });
        // Recorded (for every replica, with Redis) before any of them is answered; all at
        // once, so a Redis that hangs costs the batch one call's timeout, not one a part.
        let records = batch.iter_mut().filter_map(|job| job.record.take());
        futures_util::future::join_all(records.map(|r| r.settle_now(outcome.is_ok()))).await;
        for job in batch {
            self.answer(job, outcome.clone());
        }
    }

    fn answer_all(&mut self, error: &DeliveryError) {
        for job in std::mem::take(&mut self.queue) {
            self.answer(job, Err(error.clone()));
        }
    }

    fn answer(&self, mut job: Job, outcome: Result<Delivered, DeliveryError>) {
        // Settled first: the caller may be gone, the robot's acceptance must not be.
        if let Some(record) = job.record.take() {
            record.settle(outcome.is_ok());
        }
        if let Err(error) = &outcome {
            tracing::debug!(
                profile = job.profile,
                reason = error.reason(),
                "notification not delivered"
            );
        }
        let _ = job.reply.send(outcome);
    }
}
