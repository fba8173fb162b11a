//! Why a robot request failed, and what that means for trying again.

use std::time::Duration;

use super::Channel;

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
    /// The robot refused the message: HTTP 200 with a non-zero code.
    #[error("{} refused the message: {} {code}: {message}", .channel.product(), .channel.answer_fields().0)]
    Api {
        /// Whose code it is.
        channel: Channel,
        /// The robot's code (DingTalk's 130101 too fast, WeCom's 45009, Feishu's 19021, ...).
        code: i64,
        /// The robot's explanation.
        message: String,
    },
    /// HTTP 200 but not the robot's JSON, or an answer over
    /// [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES).
    #[error("robot answered something that is not {product}'s JSON: {1}", product = .0.product())]
    BadResponse(Channel, String),
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
    /// Transport errors, timeouts, HTTP 5xx and 429, a robot's "busy" codes, answers that are
    /// not the robot's JSON: the same request may well succeed in a moment. An answer over
    /// [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES) is one of these: it comes from something
    /// between alertrelay and DingTalk (a proxy's error page, a captive portal) more often than
    /// from a robot that will always answer so, and each retry reads at most that cap, inside
    /// `max_wait`. Whether the message arrived is unknown, so it is never counted delivered.
    Retryable,
    /// The robot's frequency codes (DingTalk 130101/410100, WeCom 45009, Feishu 11232): it
    /// is left alone for a while ([`Channel::throttle_penalty`]); sending again before then
    /// only extends DingTalk's penalty.
    Throttled,
    /// Any other code (signature, keyword, IP, token, robot gone, content refused, too
    /// large) and HTTP 4xx: the same request will fail the same way.
    Permanent,
}

impl SendError {
    /// Whether and how to try again.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Timeout { .. }
            | Self::Connect(_)
            | Self::Transport(_)
            | Self::BadResponse(..) => Retry::Retryable,
            Self::Http { status } if *status >= 500 || *status == 429 => Retry::Retryable,
            Self::Http { .. } => Retry::Permanent,
            Self::Api { channel, code, .. } => channel.retry(*code),
        }
    }

    /// A bounded label for metrics: known codes as themselves, the rest by kind.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::BadResponse(..) => "bad_response",
            Self::Http { status } if *status >= 500 => "http_5xx",
            Self::Http { .. } => "http_4xx",
            Self::Api { channel, code, .. } => channel.code_label(*code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_and_http_failures_are_classified_alike_for_every_channel() {
        assert_eq!(SendError::Http { status: 502 }.retry(), Retry::Retryable);
        assert_eq!(SendError::Http { status: 429 }.retry(), Retry::Retryable);
        assert_eq!(SendError::Http { status: 404 }.retry(), Retry::Permanent);
        let timeout = SendError::Timeout {
            timeout: Duration::from_secs(1),
            wait_ran_out: false,
        };
        assert_eq!(timeout.retry(), Retry::Retryable);
        let refused = SendError::Api {
            channel: Channel::Feishu,
            code: 19_021,
            message: "sign match fail".into(),
        };
        assert_eq!(
            refused.to_string(),
            "Feishu refused the message: code 19021: sign match fail"
        );
    }
}
