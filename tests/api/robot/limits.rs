//! The doubles' rate limits: each protocol's windows, sliding, counting the messages a
//! double accepted by its tokio clock when they arrived (so paused-clock tests see virtual
//! time), and refusing with the protocol's frequency code over any of them.

use std::time::Duration;

use tokio::time::Instant;

use super::{
    Accepted, FEISHU_PER_MINUTE, FEISHU_PER_SECOND, Inner, Protocol, RATE_LIMIT, Received, Refusal,
    WECOM_RATE_LIMIT, dingtalk, feishu, wecom,
};

/// Each protocol's rate limits, `None` for no limit. Every window slides and counts the
/// messages it accepted, by the double's tokio clock when they arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub dingtalk_per_minute: Option<usize>,
    pub wecom_per_minute: Option<usize>,
    pub feishu_per_second: Option<usize>,
    pub feishu_per_minute: Option<usize>,
}

impl Limits {
    /// The robots' own limits (the default).
    pub const REAL: Limits = Limits {
        dingtalk_per_minute: Some(RATE_LIMIT),
        wecom_per_minute: Some(WECOM_RATE_LIMIT),
        feishu_per_second: Some(FEISHU_PER_SECOND),
        feishu_per_minute: Some(FEISHU_PER_MINUTE),
    };
    /// No rate limit for any protocol.
    pub const NONE: Limits = Limits {
        dingtalk_per_minute: None,
        wecom_per_minute: None,
        feishu_per_second: None,
        feishu_per_minute: None,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::REAL
    }
}

/// Applies the protocol's rate windows to an acceptable message, then records it.
pub(super) fn admit(
    inner: &mut Inner,
    protocol: Protocol,
    accepted: Accepted,
) -> Result<(), Refusal> {
    let limits = inner.limits;
    let minute = Duration::from_secs(60);
    let (windows, throttled): (Vec<(Duration, Option<usize>)>, Refusal) = match protocol {
        Protocol::DingTalk => (
            vec![(minute, limits.dingtalk_per_minute)],
            dingtalk::THROTTLED,
        ),
        Protocol::WeCom => (vec![(minute, limits.wecom_per_minute)], wecom::THROTTLED),
        Protocol::Feishu => (
            vec![
                (Duration::from_secs(1), limits.feishu_per_second),
                (minute, limits.feishu_per_minute),
            ],
            feishu::THROTTLED,
        ),
    };
    let now = Instant::now();
    let sent = inner
        .sent
        .entry((protocol, accepted.token.clone()))
        .or_default();
    let longest = windows.iter().map(|(span, _)| *span).max().unwrap();
    while sent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= longest)
    {
        sent.pop_front();
    }
    for (span, limit) in windows {
        let within = sent
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < span)
            .count();
        if limit.is_some_and(|limit| within >= limit) {
            return Err(throttled);
        }
    }
    sent.push_back(now);
    inner
        .received
        .push(Received::new(protocol, accepted.token, accepted.body, now));
    Ok(())
}
