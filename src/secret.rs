//! Values that must never reach a log line, an error message or a preview: signing secrets
//! and robot URLs (whose `access_token` is the robot's password).

use std::fmt;

use url::Url;

/// A signing secret. `Debug` and `Display` print `***`; only [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret read from config, the environment or a file.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for signing. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A robot's webhook URL. Its query holds the `access_token`, so it prints redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RobotUrl(Url);

/// Why a robot URL was refused. The URL itself is never part of the message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RobotUrlError {
    /// Not a URL at all.
    #[error("not a valid URL ({0})")]
    Parse(String),
    /// Only http and https make sense for a webhook.
    #[error("scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// DingTalk identifies the robot by this parameter; without it every request fails.
    #[error("has no access_token query parameter")]
    NoToken,
}

impl RobotUrl {
    /// Parses and checks a robot URL: http(s), with a host and a non-empty `access_token`.
    pub fn parse(text: &str) -> Result<Self, RobotUrlError> {
        let url = Url::parse(text.trim()).map_err(|e| RobotUrlError::Parse(e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(RobotUrlError::Scheme(url.scheme().to_owned()));
        }
        let robot = Self(url);
        if robot.access_token().is_none_or(str::is_empty) {
            return Err(RobotUrlError::NoToken);
        }
        Ok(robot)
    }

    /// The robot's token: what identifies one robot (and its rate budget) at DingTalk.
    pub fn access_token(&self) -> Option<&str> {
        self.0
            .query_pairs()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| match v {
                std::borrow::Cow::Borrowed(s) => s,
                // A percent-encoded token: fall back to the raw query slice.
                std::borrow::Cow::Owned(_) => self.raw_token().unwrap_or(""),
            })
    }

    fn raw_token(&self) -> Option<&str> {
        self.0
            .query()?
            .split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
    }

    /// The URL to post to. Never log it.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for RobotUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or(""))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        write!(f, "{}?access_token=***", url.path())
    }
}

impl fmt::Debug for RobotUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RobotUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_as_stars() {
        let s = Secret::new("SECabc");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    }

    #[test]
    fn robot_urls_print_without_their_token() {
        let url =
            RobotUrl::parse("https://oapi.dingtalk.com/robot/send?access_token=abc123").unwrap();
        assert_eq!(url.access_token(), Some("abc123"));
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(shown.contains("oapi.dingtalk.com/robot/send"), "{shown}");
    }

    #[test]
    fn robot_urls_need_http_and_a_token() {
        assert_eq!(
            RobotUrl::parse("ftp://x/robot?access_token=a").unwrap_err(),
            RobotUrlError::Scheme("ftp".into())
        );
        assert_eq!(
            RobotUrl::parse("https://x/robot/send").unwrap_err(),
            RobotUrlError::NoToken
        );
        assert_eq!(
            RobotUrl::parse("https://x/robot/send?access_token=").unwrap_err(),
            RobotUrlError::NoToken
        );
        assert!(matches!(
            RobotUrl::parse("not a url").unwrap_err(),
            RobotUrlError::Parse(_)
        ));
    }
}
