//! Throttles shared through Redis (`state.redis`): a robot's frequency code seen by one
//! replica holds the robot back on every replica. Without Redis, or while it does not
//! answer, each replica keeps its own (see `robots`).

use std::time::Duration;

use super::DeliveryError;
use crate::channel::Retry;
use crate::state::redis::{RedisState, RobotHash};

/// How long the robot is still left alone by another replica's penalty, if it is.
pub(super) async fn throttled_elsewhere(
    shared: Option<&RedisState>,
    key: &str,
) -> Option<Duration> {
    // Not asked while away (see `slots`): its penalties are then this replica's own.
    let redis = shared.filter(|redis| !redis.is_away())?;
    redis
        .throttled_for(&RobotHash::of(key))
        .await
        .ok()
        .flatten()
}

/// Tells every replica when `result` says the robot throttled us.
pub(super) async fn share_throttle(
    shared: Option<&RedisState>,
    key: &str,
    result: &Result<(), DeliveryError>,
    penalty: Duration,
) {
    let (Some(redis), Err(DeliveryError::Send(error))) = (shared, result) else {
        return;
    };
    if error.retry() == Retry::Throttled {
        let _ = redis.throttle(&RobotHash::of(key), penalty).await;
    }
}
