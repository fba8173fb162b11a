//! prometheus-webhook-dingtalk's `config.yml` (v1 and v2) as that program reads it:
//! `timeout`, `template`/`templates`, `no_builtin_template`, `default_message` and
//! `targets.<name>.{url, secret, mention{all, mobiles}, message{title, text}}`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PwdConfig {
    #[serde(default)]
    pub(super) timeout: Option<String>,
    /// v1's single template file.
    #[serde(default)]
    pub(super) template: Option<String>,
    #[serde(default)]
    pub(super) templates: Vec<String>,
    #[serde(default)]
    pub(super) no_builtin_template: bool,
    #[serde(default)]
    pub(super) default_message: Option<PwdMessage>,
    pub(super) targets: BTreeMap<String, PwdTarget>,
}

/// One robot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PwdTarget {
    pub(super) url: String,
    #[serde(default)]
    pub(super) secret: Option<String>,
    #[serde(default)]
    pub(super) mention: Option<PwdMention>,
    #[serde(default)]
    pub(super) message: Option<PwdMessage>,
}

/// `mention:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PwdMention {
    #[serde(default)]
    pub(super) all: bool,
    #[serde(default)]
    pub(super) mobiles: Vec<String>,
}

/// `message:` and `default_message:`: Go templates. A key left out is the program's
/// default, `{{ template "ding.link.title" . }}` / `"ding.link.content"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PwdMessage {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
}

/// The template names prometheus-webhook-dingtalk ships: a part that only calls one of
/// them gets alertrelay's built-in template (its own look, in Chinese, colour-coded).
pub(super) const BUILTIN_NAMES: [&str; 8] = [
    "ding.link.title",
    "ding.link.content",
    "default.title",
    "default.content",
    "legacy.title",
    "legacy.content",
    "__subject",
    "default.__text_alert_list",
];

/// The name a part calls when it is only `{{ template "NAME" . }}`.
pub(super) fn only_template_call(text: &str) -> Option<&str> {
    let inside = text
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim_matches(|c: char| c == '-' || c.is_whitespace());
    let rest = inside.strip_prefix("template")?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let (name, after) = rest.split_once('"')?;
    (after.trim() == ".").then_some(name)
}
