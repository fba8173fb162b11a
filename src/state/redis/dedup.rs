//! Duplicate suppression shared by every replica: one key per notification, `f:{ticket}`
//! while a claim delivers it (expiring, so a killed replica's claim frees itself), `d` once
//! delivered (expiring with the dedup window), gone when free.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::{POLL_INTERVAL, RedisState, StateError, millis, token};
use crate::state::Identity;

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/claim.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/settle.lua")));

/// What [`RedisState::claim`] found.
#[derive(Debug)]
pub enum RedisClaim {
    /// Delivered within the window, by any replica: answer it delivered, send nothing.
    Duplicate,
    /// Ours to deliver: [settle](RedisState::settle) the ticket when the robot answered.
    Mine(Ticket),
    /// Another claim (here or on another replica) is delivering it now: wait for it with
    /// [`RedisState::wait_for`].
    InFlight,
}

/// The right to deliver one notification, proven by a random token kept with the claim in
/// Redis: only its holder's failure frees the notification. Dropped unsettled, the claim
/// holds until the `in_flight_for` it was taken with runs out.
#[derive(Debug)]
pub struct Ticket {
    identity: Identity,
    token: String,
}

impl Ticket {
    /// The notification claimed.
    pub fn identity(&self) -> Identity {
        self.identity
    }
}

/// How [`RedisState::wait_for`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The delivery waited for succeeded: answer delivered.
    Delivered,
    /// It failed (or its claim expired): claim again, it may be ours now.
    Freed,
    /// Still being delivered at the deadline.
    StillInFlight,
}

impl RedisState {
    /// Claims `identity` for delivery, atomically across replicas: a duplicate if it was
    /// delivered within the window, in flight if another claim holds it, else ours. An
    /// unsettled claim holds for `in_flight_for` at most (make it the longest a delivery
    /// may take), so a replica killed mid-delivery does not block it longer.
    pub async fn claim(
        &self,
        identity: Identity,
        in_flight_for: Duration,
    ) -> Result<RedisClaim, StateError> {
        self.claim_keeping(identity, in_flight_for)
            .await
            .map_err(|(error, _)| error)
    }

    /// As [`RedisState::claim`]; when the answer did not come in time, the error comes with
    /// the claim's ticket, for Redis may have taken the claim all the same: settling the
    /// ticket then records the delivery (or frees the claim) instead of leaving other
    /// replicas to wait for it until it expires.
    pub async fn claim_keeping(
        &self,
        identity: Identity,
        in_flight_for: Duration,
    ) -> Result<RedisClaim, (StateError, Option<Ticket>)> {
        let ticket = Ticket {
            identity,
            token: token(),
        };
        let mut call = CLAIM.prepare_invoke();
        call.key(self.dedup_key(identity))
            .arg(&ticket.token)
            .arg(millis(in_flight_for).max(1));
        let mut con = self.manager.clone();
        let found: i64 = match self
            .run(async move { call.invoke_async(&mut con).await })
            .await
        {
            Ok(found) => found,
            Err(error @ StateError::Timeout { .. }) => return Err((error, Some(ticket))),
            Err(error) => return Err((error, None)),
        };
        match found {
            0 => Ok(RedisClaim::Duplicate),
            1 => Ok(RedisClaim::InFlight),
            2 => Ok(RedisClaim::Mine(ticket)),
            other => Err((self.unexpected("the claim script", other), None)),
        }
    }

    /// The robot answered the claimed delivery: when `delivered`, the notification is a
    /// duplicate for every replica for `window`; else it is freed at once for a retry (only
    /// if the claim is still this ticket's). Returns whether it still was: false means the
    /// delivery outlasted `in_flight_for`.
    pub async fn settle(
        &self,
        ticket: Ticket,
        delivered: bool,
        window: Duration,
    ) -> Result<bool, StateError> {
        let window = if delivered { millis(window) } else { 0 };
        let mut call = SETTLE.prepare_invoke();
        call.key(self.dedup_key(ticket.identity))
            .arg(&ticket.token)
            .arg(window);
        let mut con = self.manager.clone();
        let ours: i64 = self
            .run(async move { call.invoke_async(&mut con).await })
            .await?;
        Ok(ours == 1)
    }

    /// Waits (looking every [`POLL_INTERVAL`]) until the delivery of `identity` in flight
    /// ends or `deadline` passes. [`Waited::Freed`] means claim again.
    pub async fn wait_for(
        &self,
        identity: Identity,
        deadline: Instant,
    ) -> Result<Waited, StateError> {
        let key = self.dedup_key(identity);
        loop {
            let mut con = self.manager.clone();
            let key = key.clone();
            let held: Option<String> = self
                .run(async move { redis::cmd("GET").arg(key).query_async(&mut con).await })
                .await?;
            match held.as_deref() {
                None => return Ok(Waited::Freed),
                Some("d") => return Ok(Waited::Delivered),
                Some(_) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::StillInFlight);
            }
            tokio::time::sleep_until(deadline.min(now + POLL_INTERVAL)).await;
        }
    }

    fn dedup_key(&self, identity: Identity) -> String {
        self.key("dedup", &identity.hex())
    }
}
