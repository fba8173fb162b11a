//! `profiles.yaml` and `--profile`/`--ding.profile` flags, read into raw values and validated once into a
//! typed [`Config`]. Every problem names the file and line it comes from.
//!
//! Checks that can be made while deserializing (URLs, time zones, durations, environment
//! references, unknown keys) are made there, so the YAML parser reports their position. Checks
//! that need the file system (templates that exist) run after, and find their line with
//! [`locate`].

mod duration;
mod locate;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use crate::channel::RobotUrl;
pub use crate::channel::dingtalk::OpenLinks;
pub use crate::channel::{Channel, Mention, MessageKind};
use crate::mention::MentionRules;
use crate::secret::Secret;
pub use duration::parse as parse_duration;
pub use locate::locate;
pub use raw::expand_env;
use raw::{
    RawConfig, default_dedup_window, default_max_wait, default_rate_limit_margin,
    default_throttle_penalty, default_timeout, default_timezone,
};

/// Default cap on a webhook body: a 10,000-alert notification is about 8 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Default budget for the bytes of every webhook body being read or held at once: two
/// bodies at the default cap, so a burst of large webhooks cannot take the process's memory.
pub const DEFAULT_MAX_BODY_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;

/// The validated configuration: what the gateway serves with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; `None` when every profile came from flags.
    pub file: Option<PathBuf>,
    /// The zone rendered times are shown in.
    pub timezone: Tz,
    /// Directory holding user templates; `None` means only the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// Timeout of one robot request.
    pub timeout: Duration,
    /// Webhook bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// The bytes of every webhook body being read or held at once; a webhook that would go
    /// past it is answered 503 (Alertmanager retries). A body larger than this on its own is
    /// refused with 413, as over `max_body_bytes`.
    pub max_body_bytes_in_flight: usize,
    /// How long a webhook may wait for its robot's rate budget before it is answered 503
    /// (Alertmanager then retries). Keep it under Alertmanager's notification timeout,
    /// which is max(group_interval, 10s).
    pub max_wait: Duration,
    /// How long a robot is left alone after DingTalk answered 130101 or 410100 (WeCom and
    /// Feishu robots, which count per minute, for at most a minute).
    pub throttle_penalty: Duration,
    /// How long past a minute after the robot's answer a message stays counted in its
    /// robot's budget: DingTalk counts by its own clock, which the answer only bounds.
    pub rate_limit_margin: Duration,
    /// How long a delivered notification is remembered: the same notification again
    /// within it (Alertmanager retrying, or two Alertmanager peers sending it) is answered
    /// delivered without posting again. Keep it below Alertmanager's `repeat_interval`, or
    /// reminders are suppressed too. 0 remembers nothing.
    pub dedup_window: Duration,
    /// Where replicas share what they know (`state:`).
    pub state: StateConfig,
    /// Profiles by name: the `<profile>` of `/send/<profile>` and `/<channel>/<profile>/send`.
    pub profiles: BTreeMap<String, Profile>,
}

/// The `state:` block. Read when the process starts (a reload does not reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// The Redis URL replicas share, when set; it may hold a password, so it prints `***`.
    pub redis: Option<Secret>,
    /// What every Redis key starts with.
    pub key_prefix: String,
    /// How many replicas share the robots (for the budget each keeps while Redis is away).
    pub replicas: u32,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            redis: None,
            key_prefix: "alertrelay".into(),
            replicas: 1,
        }
    }
}

/// One robot and how to talk to it.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Which robot protocol: set, or inferred from the URL.
    pub channel: Channel,
    /// The robot's webhook URL (holds its token), checked for its channel.
    pub url: RobotUrl,
    /// The signing secret, when the robot has "加签" enabled.
    pub secret: Option<Secret>,
    /// The file the secret was read from (`secret_file`), so a change to it reloads.
    pub secret_file: Option<PathBuf>,
    /// The message type, one its channel takes.
    pub message: MessageKind,
    /// A template file name in the templates directory; `None` uses the built-in default.
    pub template: Option<String>,
    /// A Tera template for the markdown title (shown in notifications and chat lists).
    pub title: Option<String>,
    /// Who gets @-mentioned, and when.
    pub mention: MentionRules,
    /// An action card's buttons (`buttons:`); `None` gives the default three.
    pub buttons: Option<Vec<ButtonSpec>>,
    /// How a DingTalk client opens an action card's links.
    pub open_links: OpenLinks,
    /// Messages a minute this robot may send (its channel's figure unless set); 0 switches
    /// the budget off. Profiles sharing a robot (its channel and token) share one budget.
    /// Feishu's 5 a second holds beside it.
    pub rate_limit: u32,
}

/// One of a profile's `buttons:`: a label, and a Tera template for the URL, rendered with
/// the notification's context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    /// The label.
    pub title: String,
    /// The URL template; it must render an http or https URL (an empty one leaves the button
    /// out).
    pub url: String,
}

/// At most this many buttons on a card.
pub const MAX_BUTTONS: usize = 5;

/// A problem with the configuration. The message never holds a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong; every problem found, one a line.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Problem>),
    /// Nothing to serve.
    #[error(
        "no profiles: {file} does not exist and no --profile=NAME=URL (or --ding.profile) was given; write a profiles.yaml or pass --profile"
    )]
    NoProfiles {
        /// The config file that was looked for.
        file: String,
    },
}

/// One problem in the configuration, printed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, or `--profile (or --ding.profile) NAME=...` for flags.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

fn join_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config.file`.
    pub file: PathBuf,
    /// True when `--config.file` was given explicitly: then a missing file is an error.
    pub file_required: bool,
    /// `--ding.profile=NAME=URL` and `--profile=NAME=URL` flags, in order.
    pub flag_profiles: Vec<(String, String)>,
}

impl Config {
    /// Reads and validates the configuration from its sources.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let file_name = sources.file.display().to_string();
        let mut config = match std::fs::read_to_string(&sources.file) {
            Ok(text) => Self::from_yaml(&text, &sources.file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !sources.file_required => {
                if sources.flag_profiles.is_empty() {
                    return Err(ConfigError::NoProfiles { file: file_name });
                }
                Self::flags_only()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    file: file_name,
                    source,
                });
            }
        };
        config.add_flag_profiles(&sources.flag_profiles, &file_name)?;
        if config.profiles.is_empty() {
            return Err(config_error(
                &file_name,
                None,
                "no profiles are defined".into(),
            ));
        }
        Ok(config)
    }

    /// Parses and validates `profiles.yaml` text; `file` names it in errors and anchors the
    /// templates directory.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let name = file.display().to_string();
        // prometheus-webhook-dingtalk's config.yml has `targets:` where ours has `profiles:`.
        if let Some(line) = locate(text, &["targets"])
            && locate(text, &["profiles"]).is_none()
        {
            return Err(config_error(&name, Some(line), crate::migrate::hint(file)));
        }
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| {
            if e.location().is_none()
                && let Some(line) = locate::second_document(text)
            {
                return config_error(&name, Some(line), SECOND_DOCUMENT.into());
            }
            let message = strip_location(&e.to_string());
            // The parser reports either the exact spot (unknown keys, syntax) or the start of
            // the enclosing mapping (our field checks); the key path found from the message
            // never lies before that mapping, so the later of the two lines is the precise one.
            let line = locate_message(text, &message).max(e.location().map(|l| l.line()));
            config_error(&name, line, message)
        })?;
        let base = file.parent().unwrap_or(Path::new(""));
        let templates_dir = resolve_templates_dir(raw.templates.as_deref(), base)
            .map_err(|m| config_error(&name, locate(text, &["templates"]), m))?;
        let mut profiles = BTreeMap::new();
        let mut problems = Vec::new();
        for (profile_name, raw_profile) in raw.profiles {
            match raw_profile.validate(base, templates_dir.as_deref()) {
                Ok(profile) => {
                    profiles.insert(profile_name, profile);
                }
                Err((key, message)) => {
                    let line = locate(text, &["profiles", &profile_name, key])
                        .or_else(|| locate(text, &["profiles", &profile_name]));
                    problems.push(Problem {
                        file: name.clone(),
                        line,
                        message: format!("profile {profile_name:?}: {message}"),
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        Ok(Self {
            file: Some(file.to_path_buf()),
            timezone: raw.timezone,
            templates_dir,
            timeout: raw.timeout,
            max_body_bytes: raw.max_body_bytes,
            max_body_bytes_in_flight: raw.max_body_bytes_in_flight.get(),
            max_wait: raw.max_wait,
            throttle_penalty: raw.throttle_penalty,
            rate_limit_margin: raw.rate_limit_margin,
            dedup_window: raw.dedup_window,
            state: StateConfig {
                redis: raw.state.redis.map(Secret::new),
                key_prefix: raw.state.key_prefix,
                replicas: raw.state.replicas,
            },
            profiles,
        })
    }

    fn flags_only() -> Self {
        Self {
            file: None,
            timezone: default_timezone(),
            templates_dir: None,
            timeout: default_timeout(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_body_bytes_in_flight: DEFAULT_MAX_BODY_BYTES_IN_FLIGHT,
            max_wait: default_max_wait(),
            throttle_penalty: default_throttle_penalty(),
            rate_limit_margin: default_rate_limit_margin(),
            dedup_window: default_dedup_window(),
            state: StateConfig::default(),
            profiles: BTreeMap::new(),
        }
    }

    fn add_flag_profiles(
        &mut self,
        flags: &[(String, String)],
        file: &str,
    ) -> Result<(), ConfigError> {
        for (name, url) in flags {
            let flag = format!("--profile (or --ding.profile) {name}=...");
            if !valid_profile_name(name) {
                return Err(config_error(&flag, None, PROFILE_NAME_RULE.into()));
            }
            if self.profiles.contains_key(name) {
                let message = format!("profile {name:?} is defined both in {file} and by a flag");
                return Err(config_error(&flag, None, message));
            }
            let url = RobotUrl::parse(url, None)
                .map_err(|e| config_error(&flag, None, format!("url {e}")))?;
            self.profiles.insert(name.clone(), Profile::with_url(url));
        }
        Ok(())
    }
}

impl Profile {
    /// A profile with every setting at its channel's default: its first message type, the
    /// built-in template, no mentions, the robot's own rate limit.
    pub fn with_url(url: RobotUrl) -> Self {
        let channel = url.channel();
        Self {
            channel,
            url,
            secret: None,
            secret_file: None,
            message: channel.default_kind(),
            template: None,
            title: None,
            mention: MentionRules::default(),
            buttons: None,
            open_links: OpenLinks::default(),
            rate_limit: channel.default_rate_limit(),
        }
    }
}

const SECOND_DOCUMENT: &str = "text after the first YAML document (a second `---`, or more after a closed `{}` or `[]`): profiles.yaml holds one document";

const PROFILE_NAME_RULE: &str =
    "profile names are letters, digits, '-', '_' and '.', as they appear in the URL path";

fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn config_error(file: &str, line: Option<usize>, message: String) -> ConfigError {
    ConfigError::Invalid(vec![Problem {
        file: file.to_owned(),
        line,
        message,
    }])
}

/// The line of the key an error message starts with. serde_yaml_ng prefixes the path of
/// the mapping (`profiles.ops: `) and reports the mapping's position; our field checks add
/// the key (`secret: `), which pins the line down.
fn locate_message(text: &str, message: &str) -> Option<usize> {
    let mut path: Vec<&str> = Vec::new();
    for segment in message.split(": ") {
        if segment.is_empty() || segment.contains(char::is_whitespace) {
            break;
        }
        path.extend(segment.split('.'));
    }
    while !path.is_empty() {
        if let Some(line) = locate(text, &path) {
            return Some(line);
        }
        path.pop();
    }
    None
}

/// serde_yaml_ng appends " at line N column M"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn resolve_templates_dir(
    configured: Option<&Path>,
    base: &Path,
) -> Result<Option<PathBuf>, String> {
    let dir = base.join(configured.unwrap_or(Path::new("templates")));
    match (dir.is_dir(), configured) {
        (true, _) => Ok(Some(dir)),
        (false, None) => Ok(None),
        (false, Some(_)) => Err(format!(
            "templates directory {} does not exist",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests;
