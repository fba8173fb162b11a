//! Why a robot request failed, and what that means for trying again.

use std::time::Duration;

/// Why a message was not delivered. Messages never contain the URL or the token.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// No answer in time: within the profile's `timeout`, or before the notification's
    /// `max_wait` ran out, whichever came first (the message says which).
    #[error("{}", timeout_message(*.timeout, *.wait_ran_out))]
    Timeout {
        /// The profile's `timeout`.
        timeout: Duration,
        /// True when `max_wait` ran out before `timeout` did.
        wait_ran_out: bool,
    },
    /// The connection could not be made (refused, DNS, TLS).
    #[error("cannot connect to robot: {0}")]
    Connect(String),
    /// The request failed on the way.
    #[error("request to robot failed: {0}")]
    Transport(String),
    /// The robot answered an HTTP error.
    #[error("robot answered HTTP {status}")]
    Http {
        /// The HTTP status.
        status: u16,
    },
    /// DingTalk refused the message: HTTP 200 with a non-zero errcode.
    #[error("DingTalk refused the message: errcode {errcode}: {errmsg}")]
    Api {
        /// DingTalk's code (130101 too fast, 310000 signature/keyword/IP, ...).
        errcode: i64,
        /// DingTalk's explanation.
        errmsg: String,
    },
    /// HTTP 200 but not DingTalk's JSON, or an answer over
    /// [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES).
    #[error("robot answered something that is not DingTalk's JSON: {0}")]
    BadResponse(String),
}

fn timeout_message(timeout: Duration, wait_ran_out: bool) -> String {
    if wait_ran_out {
        format!(
            "robot did not answer before the notification's max_wait ran out (timeout {timeout:?})"
        )
    } else {
        format!("robot did not answer within the configured timeout of {timeout:?}")
    }
}

/// What a failed send means for trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Transport errors, timeouts, HTTP 5xx and 429, errcode -1 (busy), answers that are not
    /// DingTalk's JSON: the same request may well succeed in a moment. An answer over
    /// [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES) is one of these: it comes from something
    /// between alertrelay and DingTalk (a proxy's error page, a captive portal) more often than
    /// from a robot that will always answer so, and each retry reads at most that cap, inside
    /// `max_wait`. Whether the message arrived is unknown, so it is never counted delivered.
    Retryable,
    /// errcode 130101 or 410100: DingTalk throttles the robot for minutes; sending again
    /// before then only extends the penalty.
    Throttled,
    /// Any other errcode (310000 signature/keyword/IP, 300001/300005/400101 token,
    /// 400013/400102/400106 group or robot gone, 430xxx content refused, 460101 too large)
    /// and HTTP 4xx: the same request will fail the same way.
    Permanent,
}

impl SendError {
    /// Whether and how to try again.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Timeout { .. } | Self::Connect(_) | Self::Transport(_) | Self::BadResponse(_) => {
                Retry::Retryable
            }
            Self::Http { status } if *status >= 500 || *status == 429 => Retry::Retryable,
            Self::Http { .. } => Retry::Permanent,
            Self::Api { errcode: -1, .. } => Retry::Retryable,
            Self::Api {
                errcode: 130_101 | 410_100,
                ..
            } => Retry::Throttled,
            Self::Api { .. } => Retry::Permanent,
        }
    }

    /// A bounded label for metrics: known errcodes as themselves, the rest by kind.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::BadResponse(_) => "bad_response",
            Self::Http { status } if *status >= 500 => "http_5xx",
            Self::Http { .. } => "http_4xx",
            Self::Api { errcode, .. } => match errcode {
                -1 => "-1",
                130_101 => "130101",
                410_100 => "410100",
                310_000 => "310000",
                300_001 => "300001",
                300_005 => "300005",
                400_101 => "400101",
                400_013 => "400013",
                400_102 => "400102",
                400_106 => "400106",
                460_101 => "460101",
                101_002 => "101002",
                430_000..=430_999 => "430xxx",
                _ => "other",
            },
        }
    }
}
