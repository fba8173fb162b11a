//! The raw shape of `profiles.yaml`: what serde reads, with the checks that can run while
//! deserializing (so the YAML parser reports their position): URLs, time zones, durations,
//! environment references, unknown keys. The file-system checks follow in `validate`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

use super::{
    ButtonSpec, Channel, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES_IN_FLIGHT, MAX_BUTTONS,
    MessageKind, OpenLinks, PROFILE_NAME_RULE, Profile, duration, valid_profile_name,
};
use crate::channel::RobotUrl;
use crate::mention::MentionRules;
use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_timezone", deserialize_with = "timezone")]
    pub(super) timezone: Tz,
    #[serde(default)]
    pub(super) templates: Option<PathBuf>,
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub(super) timeout: Duration,
    #[serde(default = "default_max_body_bytes")]
    pub(super) max_body_bytes: usize,
    #[serde(default = "default_max_body_bytes_in_flight")]
    pub(super) max_body_bytes_in_flight: NonZeroUsize,
    #[serde(
        default = "default_max_wait",
        deserialize_with = "duration::deserialize"
    )]
    pub(super) max_wait: Duration,
    #[serde(
        default = "default_throttle_penalty",
        deserialize_with = "duration::deserialize"
    )]
    pub(super) throttle_penalty: Duration,
    #[serde(
        default = "default_rate_limit_margin",
        deserialize_with = "duration::deserialize"
    )]
    pub(super) rate_limit_margin: Duration,
    #[serde(
        default = "default_dedup_window",
        deserialize_with = "duration::deserialize"
    )]
    pub(super) dedup_window: Duration,
    #[serde(default)]
    pub(super) state: RawState,
    #[serde(default, deserialize_with = "profile_map")]
    pub(super) profiles: BTreeMap<String, RawProfile>,
}

/// The `state:` block: where replicas share what they know.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    #[serde(default, deserialize_with = "redis_url")]
    pub(super) redis: Option<String>,
    #[serde(default = "default_key_prefix", deserialize_with = "key_prefix")]
    pub(super) key_prefix: String,
    #[serde(default = "default_replicas", deserialize_with = "replicas")]
    pub(super) replicas: u32,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            redis: None,
            key_prefix: default_key_prefix(),
            replicas: default_replicas(),
        }
    }
}

fn default_key_prefix() -> String {
    "alertrelay".into()
}

fn default_replicas() -> u32 {
    1
}

/// `redis://` or `rediss://`, `${ENV}` expanded; errors never hold the URL (it may hold a
/// password).
fn redis_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = expand_env(&String::deserialize(d)?)
        .map_err(|e| serde::de::Error::custom(format_args!("redis: {e}")))?;
    match url::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "redis" | "rediss") && url.host_str().is_some() => {
            Ok(Some(text.trim().to_owned()))
        }
        Ok(url) => Err(serde::de::Error::custom(format_args!(
            "redis: the URL must be redis://HOST[:PORT][/DB] or rediss:// (TLS), not {}://",
            url.scheme()
        ))),
        Err(e) => Err(serde::de::Error::custom(format_args!(
            "redis: not a valid URL ({e})"
        ))),
    }
}

fn key_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let prefix = String::deserialize(d)?;
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        return Err(serde::de::Error::custom(
            "key_prefix: a non-empty word without spaces (it starts every Redis key)",
        ));
    }
    Ok(prefix)
}

fn replicas<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "replicas: how many replicas share the robots, at least 1",
        )),
        n => Ok(n),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(deserialize_with = "robot_url")]
    url: String,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default, deserialize_with = "optional_expanded")]
    secret: Option<String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    message: Option<MessageKind>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    mention: MentionRules,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    buttons: Option<Vec<ButtonSpec>>,
    #[serde(default)]
    open_links: Option<OpenLinks>,
}

impl RawProfile {
    /// Checks what needs the file system; errors name the offending key.
    pub(super) fn validate(
        self,
        base: &Path,
        templates_dir: Option<&Path>,
    ) -> Result<Profile, (&'static str, String)> {
        let url =
            RobotUrl::parse(&self.url, self.channel).map_err(|e| ("url", format!("url {e}")))?;
        let channel = url.channel();
        let message = self.message.unwrap_or(channel.default_kind());
        if !channel.kinds().contains(&message) {
            let kinds: Vec<&str> = channel.kinds().iter().map(|k| k.as_str()).collect();
            return Err((
                "message",
                format!(
                    "message {:?}: {} robots take {}",
                    message.as_str(),
                    channel.product(),
                    kinds.join(" or ")
                ),
            ));
        }
        self.check_buttons(message)?;
        if !channel.signs() && (self.secret.is_some() || self.secret_file.is_some()) {
            let key = if self.secret.is_some() {
                "secret"
            } else {
                "secret_file"
            };
            return Err((
                key,
                format!(
                    "{key}: {} robots are not signed (the key in the url is the secret); remove it",
                    channel.product()
                ),
            ));
        }
        let secret_file = self.secret_file.map(|path| base.join(path));
        let secret = match (self.secret, &secret_file) {
            (Some(_), Some(_)) => {
                return Err(("secret_file", "set secret or secret_file, not both".into()));
            }
            (Some(s), None) => Some(s),
            (None, Some(path)) => Some(read_secret_file(path)?),
            (None, None) => None,
        };
        if secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(("secret", "secret is empty".into()));
        }
        if let Some(template) = &self.template {
            check_template_file(template, templates_dir).map_err(|m| ("template", m))?;
        }
        Ok(Profile {
            channel,
            url,
            secret: secret.map(|s| Secret::new(s.trim())),
            secret_file,
            message,
            template: self.template,
            title: self.title,
            mention: self.mention,
            buttons: self.buttons,
            open_links: self.open_links.unwrap_or_default(),
            rate_limit: self.rate_limit.unwrap_or(channel.default_rate_limit()),
        })
    }
}

impl RawProfile {
    /// `buttons` belong to DingTalk action cards and Feishu cards, `open_links` to action
    /// cards; a card has 1 to [`MAX_BUTTONS`] buttons, each with a label.
    fn check_buttons(&self, message: MessageKind) -> Result<(), (&'static str, String)> {
        if message != MessageKind::ActionCard && self.open_links.is_some() {
            return Err((
                "open_links",
                "open_links: only DingTalk action cards (message: action_card) open links in the DingTalk client".into(),
            ));
        }
        if !matches!(message, MessageKind::ActionCard | MessageKind::Card) {
            if self.buttons.is_some() {
                return Err((
                    "buttons",
                    "buttons: only DingTalk action cards (message: action_card) and Feishu cards have buttons".into(),
                ));
            }
            return Ok(());
        }
        let Some(buttons) = &self.buttons else {
            return Ok(());
        };
        if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
            return Err((
                "buttons",
                format!(
                    "buttons: 1 to {MAX_BUTTONS} buttons (leave the key out for the default three)"
                ),
            ));
        }
        if let Some(bad) = buttons
            .iter()
            .find(|b| b.title.trim().is_empty() || b.title.len() > 64)
        {
            return Err((
                "buttons",
                format!(
                    "buttons: a button needs a title of 1 to 64 bytes, not {:?}",
                    bad.title
                ),
            ));
        }
        Ok(())
    }
}

fn read_secret_file(path: &Path) -> Result<String, (&'static str, String)> {
    std::fs::read_to_string(path).map_err(|e| {
        (
            "secret_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn check_template_file(name: &str, dir: Option<&Path>) -> Result<(), String> {
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(format!(
            "template {name:?} must be a file name in the templates directory"
        ));
    }
    let Some(dir) = dir else {
        return Err(format!(
            "template {name:?} is set but there is no templates directory"
        ));
    };
    if dir.join(name).is_file() {
        Ok(())
    } else {
        Err(format!("template {name:?} not found in {}", dir.display()))
    }
}

pub(super) fn default_timezone() -> Tz {
    chrono_tz::Asia::Shanghai
}

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

pub(super) fn default_max_wait() -> Duration {
    Duration::from_secs(90)
}

pub(super) fn default_throttle_penalty() -> Duration {
    Duration::from_secs(600)
}

pub(super) fn default_dedup_window() -> Duration {
    Duration::from_secs(300)
}

pub(super) fn default_rate_limit_margin() -> Duration {
    Duration::from_secs(1)
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_max_body_bytes_in_flight() -> NonZeroUsize {
    const { NonZeroUsize::new(DEFAULT_MAX_BODY_BYTES_IN_FLIGHT).expect("the default is not 0") }
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format_args!(
            "timezone: unknown time zone {name:?} (use an IANA name such as Asia/Shanghai)"
        ))
    })
}

fn profile_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, RawProfile>, D::Error> {
    let map = BTreeMap::<String, RawProfile>::deserialize(d)?;
    if let Some(bad) = map.keys().find(|n| !valid_profile_name(n)) {
        return Err(serde::de::Error::custom(format_args!(
            "profile {bad:?}: {PROFILE_NAME_RULE}"
        )));
    }
    Ok(map)
}

/// The URL with `${ENV}` expanded, and checked as an http(s) URL here, where the parser
/// knows its line; the channel's own checks follow once the profile's `channel` is known.
fn robot_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = expand_env(&String::deserialize(d)?)
        .map_err(|e| serde::de::Error::custom(format_args!("url: {e}")))?;
    crate::channel::parse_web_url(&text)
        .map_err(|e| serde::de::Error::custom(format_args!("url: url {e}")))?;
    Ok(text)
}

/// With `#[serde(default)]`: an absent key is `None`. (Deserializing `Option` directly
/// would make the YAML parser report errors one line too early.)
fn optional_expanded<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    expand_env(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format_args!("secret: {e}")))
}

/// Replaces `${NAME}` with the environment variable NAME, or `${NAME:-default}` with the
/// default when NAME is unset or empty. A missing variable without a default is an error: a
/// secret silently replaced by nothing would fail only at the first alert.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unclosed ${ in value".to_owned())?;
        let (var, default) = match after[..end].split_once(":-") {
            Some((var, default)) => (var, Some(default)),
            None => (&after[..end], None),
        };
        match (std::env::var(var).ok().filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("environment variable {var} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
