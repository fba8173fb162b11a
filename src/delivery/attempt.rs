//! Sending one message with retries: exponential backoff with jitter for retryable failures,
//! inside a deadline and only until shutdown begins; a rate-budget gate around every attempt.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::DeliveryError;
use crate::channel::{Client, Patience, Retry, Robot, SendError};
use crate::metrics::{Metrics, RobotLabels};

/// First pause before a retry; doubled each time, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What must happen around each attempt (a rate-budget slot, held while it is in flight).
pub(super) trait Gate {
    /// Waits until an attempt may be made, or says why it cannot be before `deadline`.
    async fn acquire(&mut self, deadline: Instant) -> Result<(), DeliveryError>;

    /// The attempt that [`Gate::acquire`] let through is over: answered, or given up on.
    /// `late` is how much later than now the robot may still count it (see [`late_by`]).
    async fn settle(&mut self, late: Duration);
}

/// How long after an attempt ended the robot may still count it: an attempt given up on
/// without an answer may still be sitting in the robot's queue, so it stays counted for one
/// more `timeout`; an answered one (or one never sent) is counted from now.
pub(super) fn late_by(result: &Result<(), SendError>, timeout: Duration) -> Duration {
    match result {
        Err(SendError::Timeout { .. } | SendError::Transport(_)) => timeout,
        _ => Duration::ZERO,
    }
}

/// No budget: every attempt may go at once.
pub(super) struct Open;

impl Gate for Open {
    async fn acquire(&mut self, _deadline: Instant) -> Result<(), DeliveryError> {
        Ok(())
    }

    async fn settle(&mut self, _late: Duration) {}
}

/// Who is sending what, for requests and metrics.
pub(super) struct Context<'a> {
    client: &'a Client,
    metrics: &'a Metrics,
    profile: &'a str,
    robot: &'a Robot,
    /// Becomes true when shutdown begins: no attempt starts after that.
    shutdown: &'a watch::Receiver<bool>,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        client: &'a Client,
        metrics: &'a Metrics,
        profile: &'a str,
        robot: &'a Robot,
        shutdown: &'a watch::Receiver<bool>,
    ) -> Self {
        Self {
            client,
            metrics,
            profile,
            robot,
            shutdown,
        }
    }

    /// Sends `body`, retrying retryable failures while the next attempt can start before
    /// `deadline`. Returns the last error when it gives up. Once shutdown begins no attempt
    /// starts (one in flight finishes): a failure that would be retried, or a wait for the
    /// budget or the backoff, ends in [`DeliveryError::ShuttingDown`].
    pub(super) async fn send(
        &self,
        body: bytes::Bytes,
        timeout: Duration,
        deadline: Instant,
        gate: &mut impl Gate,
    ) -> Result<(), DeliveryError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            self.unless_shutdown(gate.acquire(deadline)).await??;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = self
                .client
                .send(self.robot, body.clone(), Patience::new(timeout, remaining))
                .await;
            gate.settle(late_by(&result, timeout)).await;
            self.count(&result);
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let pause = jitter(backoff);
            let retry = error.retry() == Retry::Retryable && Instant::now() + pause < deadline;
            if !retry {
                return Err(error.into());
            }
            if *self.shutdown.borrow() {
                tracing::warn!(profile = self.profile, %error, "robot request failed; not retried, shutting down");
                return Err(DeliveryError::ShuttingDown);
            }
            attempt += 1;
            self.metrics
                .retries
                .get_or_create(&Metrics::profile(self.profile))
                .inc();
            tracing::warn!(profile = self.profile, attempt, %error, retry_in = ?pause, "robot request failed; retrying");
            self.unless_shutdown(tokio::time::sleep(pause)).await?;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs `step` unless shutdown begins first (or has begun).
    async fn unless_shutdown<T>(&self, step: impl Future<Output = T>) -> Result<T, DeliveryError> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stopping| *stopping) => Err(DeliveryError::ShuttingDown),
            done = step => Ok(done),
        }
    }

    fn count(&self, result: &Result<(), SendError>) {
        let code = match result {
            Ok(()) => "0",
            Err(error) => error.label(),
        };
        self.metrics
            .robot_requests
            .get_or_create(&RobotLabels {
                profile: self.profile.to_owned(),
                channel: self.robot.channel().as_str(),
                code,
            })
            .inc();
    }
}

/// A pause between half and all of `backoff`, so retries from many notifications spread out.
fn jitter(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_given_up_without_an_answer_stays_counted_one_more_timeout() {
        let timeout = Duration::from_secs(5);
        let timed_out = Err(SendError::Timeout {
            timeout,
            wait_ran_out: false,
        });
        let cut = Err(SendError::Transport("reset".into()));
        let refused = Err(SendError::Connect("refused".into()));
        let answered = Err(SendError::Api {
            channel: crate::channel::Channel::DingTalk,
            code: 310_000,
            message: "sign not match".into(),
        });

        assert_eq!(late_by(&timed_out, timeout), timeout);
        assert_eq!(late_by(&cut, timeout), timeout);
        assert_eq!(late_by(&refused, timeout), Duration::ZERO, "never sent");
        assert_eq!(late_by(&answered, timeout), Duration::ZERO);
        assert_eq!(late_by(&Ok(()), timeout), Duration::ZERO);
    }
}
