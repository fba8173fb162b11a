//! Webhook bodies read within two bounds: `max_body_bytes` for one request, and
//! `max_body_bytes_in_flight` for every body being read or held at once, so that a burst of
//! large webhooks cannot take the process's memory.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::HeaderMap;
use http_body_util::BodyExt;

use super::AppError;
use crate::config::Config;

/// The bytes of webhook bodies being read or held, process-wide. Its limit is read from the
/// snapshot of each request, so a reload can change it; bodies already held keep their share.
#[derive(Debug, Default)]
pub(crate) struct BodyBudget {
    /// Bytes taken by bodies not yet dropped.
    held: AtomicUsize,
}

/// One body's share of the [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub(super) struct Share {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl BodyBudget {
    fn share(self: &Arc<Self>) -> Share {
        Share {
            budget: self.clone(),
            bytes: 0,
        }
    }
}

impl Share {
    /// Takes `more` bytes for this body, unless that would put the budget past `limit`.
    fn grow(&mut self, more: usize, limit: usize) -> bool {
        let taken = self
            .budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|&total| total <= limit)
            })
            .is_ok();
        if taken {
            self.bytes += more;
        }
        taken
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A webhook body with its share of the budget: the share is given back when the body is
/// dropped (the handler drops it as soon as the message is rendered).
#[derive(Debug)]
pub(super) struct HeldBody {
    bytes: Vec<u8>,
    share: Share,
}

impl Deref for HeldBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The two bounds a body is read within.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// One body: `max_body_bytes`, or the whole budget when that is smaller (a body larger
    /// than the budget could never be taken, so it is refused as too large, not retried).
    body: usize,
    /// Every body at once: `max_body_bytes_in_flight`.
    in_flight: usize,
}

/// How long a body may take to arrive, whole. Alertmanager sends a 10,000-alert body in well
/// under a second; an upload that stalls is refused (400) and its share given back.
pub(super) const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What a body takes of the budget before its first bytes arrive.
const FIRST_SHARE: usize = 64 * 1024;

/// Reads a webhook body into one buffer whose every byte of capacity is taken from `budget`
/// before it is allocated, as the bytes arrive: the first [`FIRST_SHARE`] at once, then
/// doubling up to the declared `Content-Length`. A client that declares 32 MB and sends one
/// byte holds a small share, so idle connections cannot spend the budget for everyone.
/// 413 past the per-body limit, 503 when the budget is spent.
pub(super) async fn read(
    headers: &HeaderMap,
    mut body: Body,
    config: &Config,
    budget: &Arc<BodyBudget>,
) -> Result<HeldBody, AppError> {
    let limits = Limits {
        body: config.max_body_bytes.min(config.max_body_bytes_in_flight),
        in_flight: config.max_body_bytes_in_flight,
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limits.body) {
        return Err(AppError::BodyTooLarge { limit: limits.body });
    }
    let mut held = HeldBody {
        bytes: Vec::new(),
        share: budget.share(),
    };
    let most = declared.unwrap_or(limits.body).min(limits.body);
    held.reserve(most.min(FIRST_SHARE), limits)?;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| AppError::ReadBody(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let len = held.bytes.len() + data.len();
            if len > limits.body {
                return Err(AppError::BodyTooLarge { limit: limits.body });
            }
            if len > held.share.bytes {
                // Doubling, as a Vec grows, but within what was declared and the per-body
                // limit.
                held.reserve(len.max(held.share.bytes * 2).min(most.max(len)), limits)?;
            }
            held.bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    // A stalled upload must not hold its share for ever.
    tokio::time::timeout(READ_LIMIT, read).await.map_err(|_| {
        AppError::ReadBody(format!("the body did not arrive within {READ_LIMIT:?}"))
    })??;
    Ok(held)
}

impl HeldBody {
    /// The bytes, to hand to a render worker's thread without a copy, and the budget share,
    /// given back when it is dropped.
    pub(super) fn into_parts(self) -> (bytes::Bytes, Share) {
        (bytes::Bytes::from(self.bytes), self.share)
    }

    /// Makes room for `capacity` bytes in all, taking what is added from the budget first.
    fn reserve(&mut self, capacity: usize, limits: Limits) -> Result<(), AppError> {
        let more = capacity.saturating_sub(self.share.bytes);
        if !self.share.grow(more, limits.in_flight) {
            return Err(AppError::BodyBudgetSpent {
                limit: limits.in_flight,
            });
        }
        self.bytes.reserve_exact(capacity - self.bytes.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ashare_is_given_back_when_dropped_and_the_limit_holds() {
        let budget = Arc::new(BodyBudget::default());
        let mut first = budget.share();
        let mut second = budget.share();

        assert!(first.grow(60, 100));
        assert!(!second.grow(41, 100));
        assert!(second.grow(40, 100));
        drop(first);

        assert_eq!(budget.held.load(Ordering::Acquire), 40);
        assert!(second.grow(60, 100));
        drop(second);
        assert_eq!(budget.held.load(Ordering::Acquire), 0);
    }
}
