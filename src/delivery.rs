//! Delivery that loses nothing: every notification is delivered, or the caller learns why
//! (and answers Alertmanager 5xx so it retries). Nothing in between.
//!
//! - **Rate budget per robot** (`budget`): never more than its channel allows in any window
//!   by the robot's own clock (`rate_limit` a minute; Feishu also 5 a second; a message counts
//!   from when its answer came back, plus `rate_limit_margin`), keyed by the robot's channel
//!   and token and shared by every profile that points at it. One worker task per robot owns
//!   its budget and queue (`worker`), so a slow or throttled robot never delays another; it retires when it holds
//!   neither. Throttle penalties (`robots`) belong to the robot, budget or not.
//! - **Replicas** (`slots`, `shared`): with `state.redis` the budget and the throttles are
//!   one per robot for every replica, in Redis; while it does not answer each replica keeps
//!   to `rate_limit / replicas`.
//! - **Merging while waiting** (`merge`): when more notifications wait than the budget has
//!   slots, they are merged into as few messages as fit under the size cap.
//! - **Bounded waits**: a notification that cannot be sent within `max_wait` is answered
//!   [`DeliveryError::WaitTimeout`]; a robot that answered a frequency code (DingTalk
//!   130101/410100, WeCom 45009, Feishu 11232) is left alone for its penalty and waiting
//!   notifications are answered at once.
//! - **Retries** (`attempt`): retryable failures are retried with exponential backoff and
//!   jitter inside the deadline and until shutdown begins; permanent ones are not.

mod attempt;
mod budget;
mod merge;
mod robots;
mod shared;
mod slots;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::channel::{Client, Retry, Robot, SendError};
use crate::compose::Composed;
use crate::config::{Config, Profile};
use crate::metrics::Metrics;
use crate::state::Lease;
use crate::state::redis::RedisState;

pub use budget::Windows;
pub use merge::MergeQueue;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn profiles_sharing_a_robot_take_the_lowest_nonzero_limit() {
        let url = |t: &str| format!("http://127.0.0.1:1/robot/send?access_token={t}");
        let wecom = "http://127.0.0.1:1/cgi-bin/webhook/send?key=x";
        // `c` names the same robot by another URL (another host, an extra parameter).
        let yaml = format!(
            "profiles:\n  a:\n    url: {}\n    rate_limit: 0\n  b:\n    url: {}\n    rate_limit: 12\n  c:\n    url: {}\n  d:\n    url: {}\n    rate_limit: 0\n  e:\n    url: {wecom}\n",
            url("x"),
            url("x"),
            "http://proxy:8080/robot/send?access_token=x&via=proxy",
            url("y")
        );
        let config = Config::from_yaml(&yaml, Path::new("p.yaml")).unwrap();
        let limit = |p: &str| {
            Policy::of(&config, &config.profiles[p])
                .windows
                .per_minute()
        };
        assert_eq!(
            [limit("a"), limit("b"), limit("c"), limit("d"), limit("e")],
            [12, 12, 12, 0, 20],
            "a WeCom robot with the same token is another robot"
        );
    }
}

/// How one notification is to be delivered.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The robot's rate windows; none = no budget.
    pub windows: Windows,
    /// The share of them this replica keeps to while it cannot reach the budget replicas
    /// share (`rate_limit / replicas`, with `state.redis`); all of them without it.
    pub alone: Windows,
    /// Timeout of one robot request.
    pub timeout: Duration,
    /// How long the notification may wait, in all, before it is answered.
    pub max_wait: Duration,
    /// How long the robot is left alone after it answered a frequency code.
    pub throttle_penalty: Duration,
    /// How long past a minute after its answer a message stays counted in the budget.
    pub rate_limit_margin: Duration,
}

impl Policy {
    /// The policy for a profile of a configuration. The budget belongs to the robot, so its
    /// per-minute limit is the lowest non-zero `rate_limit` of every profile with the same
    /// channel and token (0, no budget, only when all of them say 0).
    pub fn of(config: &Config, profile: &Profile) -> Self {
        let same_robot = |other: &&Profile| {
            other.channel == profile.channel && other.url.token() == profile.url.token()
        };
        let rate_limit = config
            .profiles
            .values()
            .filter(same_robot)
            .map(|other| other.rate_limit)
            .filter(|limit| *limit > 0)
            .min()
            .unwrap_or(0);
        let windows = Windows::of(profile.channel, rate_limit);
        let alone = match config.state.redis {
            Some(_) => windows.share(config.state.replicas),
            None => windows,
        };
        Self {
            windows,
            alone,
            timeout: config.timeout,
            max_wait: config.max_wait,
            throttle_penalty: profile.channel.throttle_penalty(config.throttle_penalty),
            rate_limit_margin: config.rate_limit_margin,
        }
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// The robot's last answer, after any retries: permanent, or retryable but out of time.
    #[error("{0}")]
    Send(#[from] SendError),
    /// The robot answered a frequency code (DingTalk 130101/410100, WeCom 45009, Feishu
    /// 11232); nothing is sent to it until the penalty is over.
    #[error("robot throttled by {product} (frequency limit); sending resumes in {1:?}", product = .0.product())]
    Throttled(crate::channel::Channel, Duration),
    /// The robot's rate budget did not free up within `max_wait`.
    #[error("robot's rate budget stayed spent for {0:?}; not sent")]
    WaitTimeout(Duration),
    /// alertrelay is stopping; the notification was not sent.
    #[error("alertrelay is shutting down; not sent")]
    ShuttingDown,
}

impl DeliveryError {
    /// The bounded `reason` label of `alertrelay_notifications_failed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Send(error) => match error.retry() {
                Retry::Permanent => "refused",
                Retry::Throttled => "throttled",
                Retry::Retryable => "unavailable",
            },
            Self::Throttled(..) => "throttled",
            Self::WaitTimeout(_) => "wait_timeout",
            Self::ShuttingDown => "shutdown",
        }
    }
}

/// A delivered notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// How many notifications shared the message (1 = sent alone).
    pub merged: usize,
}

/// One notification handed to a robot worker.
struct Job {
    profile: String,
    robot: Robot,
    message: Composed,
    policy: Policy,
    enqueued: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Result<Delivered, DeliveryError>>,
    /// Duplicate suppression's claim on the notification, settled by whoever learns the
    /// outcome, so a delivery that ends after its caller gave up is still remembered.
    record: Option<Record>,
}

/// A claim on a notification and how long to remember it once delivered.
#[derive(Debug)]
pub struct Record {
    /// The claim.
    pub lease: Lease,
    /// `dedup_window`.
    pub window: Duration,
}

impl Record {
    fn settle(self, delivered: bool) {
        self.lease.settle(delivered, self.window);
    }

    async fn settle_now(self, delivered: bool) {
        self.lease.settle_now(delivered, self.window).await;
    }
}

/// Routes notifications to per-robot workers. Lives as long as the server, across reloads,
/// so budgets and penalties survive a config change.
pub struct Dispatcher {
    client: Client,
    metrics: Arc<Metrics>,
    /// Workers and throttle penalties, shared with the workers.
    robots: Arc<Mutex<robots::Robots>>,
    shutdown: watch::Sender<bool>,
    /// Handed to requests sent without a worker, so their retries stop at shutdown too.
    stopping: watch::Receiver<bool>,
    /// Replicas' shared state (`state.redis`), for throttles every replica keeps to.
    shared: Option<RedisState>,
}

impl Dispatcher {
    /// A dispatcher posting through `client`.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let (shutdown, stopping) = watch::channel(false);
        Self {
            client,
            metrics,
            robots: Arc::default(),
            shutdown,
            stopping,
            shared: None,
        }
    }

    /// Keeps to the throttles other replicas sharing `redis` saw, and shares its own.
    pub fn with_shared(mut self, redis: Option<RedisState>) -> Self {
        self.shared = redis;
        self
    }

    /// Delivers one notification and answers when it was delivered or why not.
    /// `record` is settled with the outcome the moment it is known (before this returns),
    /// also when the caller has gone away meanwhile: a message the robot accepted is
    /// remembered even if nobody was left to answer.
    pub async fn deliver(
        &self,
        profile: &str,
        robot: &Robot,
        message: Composed,
        policy: Policy,
        record: Option<Record>,
    ) -> Result<Delivered, DeliveryError> {
        if *self.shutdown.borrow() {
            return Err(DeliveryError::ShuttingDown);
        }
        let now = Instant::now();
        let key = robot.key();
        if policy.windows.is_open() {
            return self
                .send_now(profile, robot, key, &message, policy, record)
                .await;
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            profile: profile.to_owned(),
            robot: robot.clone(),
            message,
            policy,
            enqueued: now,
            deadline: now + policy.max_wait,
            reply,
            record,
        };
        robots::lock(&self.robots).hand_over(&key, job, || self.spawn_worker(&key))?;
        answer.await.unwrap_or(Err(DeliveryError::ShuttingDown))
    }

    /// A robot without a budget: sent at once, concurrently with others, unless it is
    /// throttled. The request runs in its own task, so it ends (and settles `record`) even
    /// when the caller goes away while the robot has it.
    async fn send_now(
        &self,
        profile: &str,
        robot: &Robot,
        key: String,
        message: &Composed,
        policy: Policy,
        record: Option<Record>,
    ) -> Result<Delivered, DeliveryError> {
        let now = Instant::now();
        if let Some(left) = robots::lock(&self.robots).throttled_for(&key, now) {
            return Err(DeliveryError::Throttled(robot.channel(), left));
        }
        if let Some(left) = shared::throttled_elsewhere(self.shared.as_ref(), &key).await {
            robots::lock(&self.robots).hold(&key, left);
            return Err(DeliveryError::Throttled(robot.channel(), left));
        }
        let body = message.body().into();
        let (client, metrics, robots) = (
            self.client.clone(),
            self.metrics.clone(),
            self.robots.clone(),
        );
        let (stopping, profile, robot) = (self.stopping.clone(), profile.to_owned(), robot.clone());
        let redis = self.shared.clone();
        let request = tokio::spawn(async move {
            let context = attempt::Context::new(&client, &metrics, &profile, &robot, &stopping);
            let result = context
                .send(
                    body,
                    policy.timeout,
                    now + policy.max_wait,
                    &mut attempt::Open,
                )
                .await;
            robots::lock(&robots).note(&key, &result, policy.throttle_penalty, &profile);
            shared::share_throttle(redis.as_ref(), &key, &result, policy.throttle_penalty).await;
            if let Some(record) = record {
                record.settle_now(result.is_ok()).await;
            }
            result.map(|()| Delivered { merged: 1 })
        });
        request.await.unwrap_or(Err(DeliveryError::ShuttingDown))
    }

    /// Answers every waiting notification [`DeliveryError::ShuttingDown`] and refuses new
    /// ones; requests in flight to robots finish, but none is retried.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// How many robot workers run: one per robot with notifications queued or messages still
    /// counted in its budget. A worker retires when it has neither (a robot gone from the
    /// config leaves nothing behind); the next notification starts a new one.
    pub fn workers(&self) -> usize {
        robots::lock(&self.robots).workers()
    }

    fn spawn_worker(&self, key: &str) -> mpsc::UnboundedSender<Job> {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = worker::Worker::new(
            self.client.clone(),
            self.metrics.clone(),
            self.shutdown.subscribe(),
            self.robots.clone(),
            key.to_owned(),
            self.shared.clone(),
        );
        tokio::spawn(worker.run(rx));
        tx
    }
}
