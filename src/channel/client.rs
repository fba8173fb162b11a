//! The HTTP client that posts to robots: one pooled connection set, a bound on each
//! request's time and on the answer's size, and transport failures turned into [`SendError`].

use std::time::Duration;

use bytes::Bytes;

use super::{Channel, Robot, SendError};

/// The most of a robot's answer that is read. Robots answer a few dozen bytes
/// (`{"errcode":0,"errmsg":"ok"}`); an answer this large is not a robot's, and reading it
/// whole would let whatever sits at the robot URL take the process's memory.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How long one request may take: the profile's `timeout`, cut short when what is left of
/// the notification's `max_wait` runs out first. Both are kept so that a timeout names the
/// one that ended it, not whatever figure was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// The profile's `timeout`.
    pub timeout: Duration,
    /// What is left of the notification's `max_wait`.
    pub left: Duration,
}

impl Patience {
    /// `timeout` for one request, of which `left` remains before the notification's wait ends.
    pub fn new(timeout: Duration, left: Duration) -> Self {
        Self { timeout, left }
    }

    /// The bound put on the request: at least a millisecond, so a request always starts.
    fn limit(self) -> Duration {
        self.timeout.min(self.left).max(Duration::from_millis(1))
    }

    /// The error when the request ran out of time.
    fn ran_out(self) -> SendError {
        SendError::Timeout {
            timeout: self.timeout,
            wait_ran_out: self.left < self.timeout,
        }
    }
}

/// Posts messages to robots over one pooled HTTP client, shared by every profile and kept
/// across reloads so connections are reused.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with a connection pool and alertrelay's User-Agent.
    pub fn new() -> Self {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("alertrelay/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            // Robots do not redirect; a redirect is an error, not something to follow.
            .redirect(reqwest::redirect::Policy::none());
        // On Linux a proxy can only come from the environment, read once here. Without one,
        // say so, and reqwest skips matching every request against an empty proxy list (~1%
        // of a delivery's instructions). With one, it is used as before.
        if cfg!(target_os = "linux") && !proxy_in_env(|name| std::env::var_os(name)) {
            builder = builder.no_proxy();
        }
        let http = builder.build().expect("the TLS backend initialises");
        Self { http }
    }

    /// Posts one body to a robot, signing it when the robot has a secret, and reads the
    /// answer's code. `patience` bounds the whole exchange.
    pub async fn send(
        &self,
        robot: &Robot,
        body: Bytes,
        patience: Patience,
    ) -> Result<(), SendError> {
        let (url, body) = robot.request(&body, chrono::Utc::now().timestamp_millis());
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body)
            .timeout(patience.limit())
            .send()
            .await
            .map_err(|e| transport_error(e, patience))?;
        let status = response.status();
        if status.is_client_error() {
            // Feishu answers some refusals (9499, and at times its frequency limit) with HTTP
            // 400 and its JSON: its code, when there is one, says more than the status.
            let http = SendError::Http {
                status: status.as_u16(),
            };
            return Err(
                match read_answer(response, robot.channel(), patience).await {
                    Ok(bytes) => match robot.channel().read_answer(&bytes) {
                        Err(refused @ SendError::Api { .. }) => refused,
                        _ => http,
                    },
                    Err(_) => http,
                },
            );
        }
        if !status.is_success() {
            // The body of a server error is not read: the request is retried whatever it says.
            return Err(SendError::Http {
                status: status.as_u16(),
            });
        }
        let bytes = read_answer(response, robot.channel(), patience).await?;
        robot.channel().read_answer(&bytes)
    }
}

/// The answer's bytes, at most [`MAX_ANSWER_BYTES`] of them: a longer answer is a
/// [`SendError::BadResponse`] and the rest is never read (the connection is dropped).
async fn read_answer(
    mut response: reqwest::Response,
    channel: Channel,
    patience: Patience,
) -> Result<Vec<u8>, SendError> {
    let too_large = || {
        SendError::BadResponse(
            channel,
            format!(
                "the answer is longer than {MAX_ANSWER_BYTES} bytes ({}'s is a few dozen)",
                channel.product()
            ),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut answer = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, patience))?
    {
        if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(answer)
}

fn transport_error(error: reqwest::Error, patience: Patience) -> SendError {
    let error = error.without_url();
    if error.is_timeout() {
        patience.ran_out()
    } else if error.is_connect() {
        SendError::Connect(root_cause(&error))
    } else {
        SendError::Transport(root_cause(&error))
    }
}

/// The innermost cause ("Connection refused (os error 111)") reads better than reqwest's
/// outer wrapper.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Whether any proxy variable reqwest reads is set (and not empty).
fn proxy_in_env(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .into_iter()
        .flat_map(|name| [name.to_owned(), name.to_ascii_lowercase()])
        .any(|name| var(&name).is_some_and(|value| !value.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_configured_timeout_not_what_was_left() {
        let second = Duration::from_secs(2);
        let left = Duration::from_micros(68_102);

        let own = Patience::new(second, Duration::from_secs(60)).ran_out();
        let cut = Patience::new(second, left).ran_out();

        assert_eq!(
            own.to_string(),
            "robot did not answer within the configured timeout of 2s"
        );
        assert_eq!(
            cut.to_string(),
            "robot did not answer before the notification's max_wait ran out (timeout 2s)"
        );
        assert_eq!(Patience::new(second, left).limit(), left);
        assert_eq!(
            Patience::new(second, Duration::ZERO).limit(),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn proxies_are_looked_for_in_both_spellings() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!proxy_in_env(env(&[])));
        assert!(!proxy_in_env(env(&[
            ("HTTPS_PROXY", ""),
            ("NO_PROXY", "x")
        ])));
        assert!(proxy_in_env(env(&[("https_proxy", "http://p:3128")])));
        assert!(proxy_in_env(env(&[("ALL_PROXY", "socks5://p")])));
        assert!(proxy_in_env(env(&[("http_proxy", "http://p")])));
    }
}
