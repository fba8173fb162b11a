//! One robot's worker: owns its rate budget, its queue of waiting notifications and its
//! throttle penalty, and sends one message at a time.

use std::collections::VecDeque;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::attempt::{self, Gate};
use super::budget::Budget;
use super::{Delivered, DeliveryError, Job, merge};
use crate::dingtalk::{Client, Retry};
use crate::metrics::Metrics;

pub(super) struct Worker {
    client: Client,
    metrics: std::sync::Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    queue: VecDeque<Job>,
    budget: Budget,
    throttled_until: Option<Instant>,
}

/// Takes budget slots for attempts; waits for one when the budget is spent.
struct BudgetGate<'a> {
    budget: &'a mut Budget,
    limit: u32,
}

impl Gate for BudgetGate<'_> {
    async fn acquire(&mut self, deadline: Instant) -> Result<(), DeliveryError> {
        let now = Instant::now();
        if let Some(free_at) = self.budget.next_free(now, self.limit) {
            if free_at > deadline {
                return Err(DeliveryError::WaitTimeout(
                    deadline.saturating_duration_since(now),
                ));
            }
            tokio::time::sleep_until(free_at).await;
        }
        self.budget.record(Instant::now());
        Ok(())
    }
}

enum Next {
    /// The queue has work that may go now.
    Send,
    /// Nothing to do until this time (or until a new job or shutdown).
    WaitUntil(Option<Instant>),
}

impl Worker {
    pub(super) fn new(
        client: Client,
        metrics: std::sync::Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            client,
            metrics,
            shutdown,
            queue: VecDeque::new(),
            budget: Budget::default(),
            throttled_until: None,
        }
    }

    pub(super) async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        loop {
            while let Ok(job) = jobs.try_recv() {
                self.queue.push_back(job);
            }
            match self.next() {
                Next::Send => self.send_batch().await,
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

    /// Answers what must be answered now, and says what to do next.
    fn next(&mut self) -> Next {
        let now = Instant::now();
        // Webhooks whose caller went away (Alertmanager timed out) are not sent: it retries.
        self.queue.retain(|job| !job.reply.is_closed());
        if *self.shutdown.borrow() {
            self.answer_all(&DeliveryError::ShuttingDown);
            return Next::WaitUntil(None);
        }
        if let Some(until) = self.throttled_until.filter(|until| *until > now) {
            self.answer_all(&DeliveryError::Throttled(until - now));
            return Next::WaitUntil(None);
        }
        let Some(newest) = self.queue.back() else {
            return Next::WaitUntil(None);
        };
        let limit = newest.policy.rate_limit;
        let Some(free_at) = self.budget.next_free(now, limit) else {
            return Next::Send;
        };
        // Spent: answer those that cannot wait for the next slot, sleep until the slot
        // frees or the next deadline passes.
        let (expired, waiting): (Vec<Job>, Vec<Job>) =
            self.queue.drain(..).partition(|job| job.deadline < free_at);
        self.queue = waiting.into();
        for job in expired {
            let waited = now.duration_since(job.enqueued);
            self.answer(job, Err(DeliveryError::WaitTimeout(waited)));
        }
        let next_deadline = self.queue.iter().map(|job| job.deadline).min();
        Next::WaitUntil(Some(next_deadline.map_or(free_at, |d| d.min(free_at))))
    }

    async fn send_batch(&mut self) {
        let now = Instant::now();
        let limit = self.queue.back().map_or(0, |job| job.policy.rate_limit);
        let batch = merge::take(&mut self.queue, self.budget.free(now, limit));
        let Some(first) = batch.first() else { return };
        let parts: Vec<_> = batch.iter().map(|job| &job.message).collect();
        let message = merge::merge(&parts);
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
        let mut gate = BudgetGate {
            budget: &mut self.budget,
            limit,
        };
        let context = attempt::Context::new(&self.client, &self.metrics, &profile, &robot);
        let result = context
            .send(
                message.body().to_bytes().into(),
                policy.timeout,
                deadline,
                &mut gate,
            )
            .await;
        if let Err(DeliveryError::Send(error)) = &result
            && error.retry() == Retry::Throttled
        {
            self.throttled_until = Some(Instant::now() + policy.throttle_penalty);
            tracing::error!(profile, penalty = ?policy.throttle_penalty, "DingTalk throttled the robot; holding its messages back");
        }
        let merged = batch.len();
        let outcome = result.map(|()| Delivered { merged });
        for job in batch {
            self.answer(job, outcome.clone());
        }
    }

    fn answer_all(&mut self, error: &DeliveryError) {
        for job in std::mem::take(&mut self.queue) {
            self.answer(job, Err(error.clone()));
        }
    }

    fn answer(&self, job: Job, outcome: Result<Delivered, DeliveryError>) {
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
