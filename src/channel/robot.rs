//! One robot: its channel, its webhook URL (which holds its token and so never prints), and
//! its signing secret; and the request each attempt posts to it.

use std::fmt;

use bytes::Bytes;
use url::Url;

use super::{Channel, dingtalk, feishu, wecom};
use crate::secret::Secret;

/// A robot's webhook URL. Its token (DingTalk's `access_token`, WeCom's `key`, the last
/// segment of a Feishu hook) is the robot's password, so it prints redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RobotUrl {
    url: Url,
    channel: Channel,
    /// What identifies the robot at its channel: its token. Budgets and throttles are kept
    /// per robot, so per (channel, token).
    token: String,
}

/// Why a robot URL was refused. The URL itself is never part of the message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RobotUrlError {
    /// Not a URL at all.
    #[error("not a valid URL ({0})")]
    Parse(String),
    /// Only http and https make sense for a webhook.
    #[error("scheme must be http or https, not {0:?}")]
    Scheme(String),
    /// The channel identifies the robot by a part the URL lacks.
    #[error("{0}")]
    NoToken(String),
}

impl RobotUrl {
    /// Parses a URL for `channel`; `None` infers the channel from it ([`Channel::infer`]).
    /// Checks http(s) and that it holds the channel's token.
    pub fn parse(text: &str, channel: Option<Channel>) -> Result<Self, RobotUrlError> {
        let url = parse_web_url(text)?;
        let channel = channel.unwrap_or_else(|| Channel::infer(&url));
        let token = match channel {
            Channel::DingTalk => dingtalk::token(&url),
            Channel::WeCom => wecom::token(&url),
            Channel::Feishu => feishu::token(&url),
        }
        .map_err(RobotUrlError::NoToken)?;
        Ok(Self {
            url,
            channel,
            token,
        })
    }

    /// The channel the URL belongs to.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The robot's token. Never log it.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The URL to post to. Never log it.
    pub fn expose(&self) -> &Url {
        &self.url
    }
}

/// A query parameter's value, when present and not empty (a robot's token).
pub(crate) fn query_token(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|token| !token.is_empty())
}

/// Parses text as an http(s) URL, with errors that never hold the text.
pub(crate) fn parse_web_url(text: &str) -> Result<Url, RobotUrlError> {
    let url = Url::parse(text.trim()).map_err(|e| RobotUrlError::Parse(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(RobotUrlError::Scheme(url.scheme().to_owned()));
    }
    Ok(url)
}

impl fmt::Display for RobotUrl {
    /// Scheme, host, port and path, with the token and every query value as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or(""))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(&url.path().replace(&self.token, "***"))?;
        for (index, (key, _)) in url.query_pairs().enumerate() {
            let sep = if index == 0 { '?' } else { '&' };
            write!(f, "{sep}{key}=***")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RobotUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RobotUrl({self})")
    }
}

/// One robot: where to post, and how to sign.
#[derive(Debug, Clone)]
pub struct Robot {
    /// The webhook URL without signature parameters.
    pub url: RobotUrl,
    /// The signing secret ("加签" / "签名校验"); when set every request is signed. WeCom
    /// robots have none.
    pub secret: Option<Secret>,
}

impl Robot {
    /// The robot's channel.
    pub fn channel(&self) -> Channel {
        self.url.channel
    }

    /// What a robot's budget and throttle are kept by: its channel and token.
    pub fn key(&self) -> String {
        format!("{}:{}", self.url.channel, self.url.token)
    }

    /// The URL and body of one attempt at `timestamp_ms`: signed afresh for every attempt
    /// (robots refuse signatures older than an hour). DingTalk signs in the query, Feishu in
    /// the body; an unsigned body is the one given, not a copy.
    pub fn request(&self, body: &Bytes, timestamp_ms: i64) -> (Url, Bytes) {
        match (&self.secret, self.channel()) {
            (Some(secret), Channel::DingTalk) => (
                dingtalk::signed_url(self.url.expose(), secret, timestamp_ms),
                body.clone(),
            ),
            (Some(secret), Channel::Feishu) => (
                self.url.expose().clone(),
                feishu::signed_body(body, secret, timestamp_ms / 1000).into(),
            ),
            _ => (self.url.expose().clone(), body.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_urls_print_without_their_token() {
        for (text, token) in [
            (
                "https://oapi.dingtalk.com/robot/send?access_token=abc123",
                "abc123",
            ),
            (
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-693a&debug=1",
                "k-693a",
            ),
            (
                "https://open.feishu.cn/open-apis/bot/v2/hook/ff5b-1234",
                "ff5b-1234",
            ),
        ] {
            let url = RobotUrl::parse(text, None).unwrap();
            assert_eq!(url.token(), token);
            let shown = format!("{url} {url:?}");
            assert!(!shown.contains(token), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    #[test]
    fn robot_urls_need_http_and_their_channels_token() {
        assert_eq!(
            RobotUrl::parse("ftp://x/robot?access_token=a", None).unwrap_err(),
            RobotUrlError::Scheme("ftp".into())
        );
        for (text, channel) in [
            ("https://x/robot/send", Channel::DingTalk),
            ("https://x/robot/send?access_token=", Channel::DingTalk),
            ("https://x/cgi-bin/webhook/send", Channel::WeCom),
            ("https://x/open-apis/bot/v2/hook/", Channel::Feishu),
            ("https://x/robot/send?access_token=a", Channel::Feishu),
        ] {
            assert!(
                matches!(
                    RobotUrl::parse(text, Some(channel)),
                    Err(RobotUrlError::NoToken(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            RobotUrl::parse("not a url", None).unwrap_err(),
            RobotUrlError::Parse(_)
        ));
    }

    #[test]
    fn robots_of_different_channels_never_share_a_key() {
        let robot = |text: &str, channel| Robot {
            url: RobotUrl::parse(text, Some(channel)).unwrap(),
            secret: None,
        };
        let ding = robot("http://h/robot/send?access_token=t", Channel::DingTalk);
        let wecom = robot("http://h/cgi-bin/webhook/send?key=t", Channel::WeCom);
        assert_ne!(ding.key(), wecom.key());
    }
}
