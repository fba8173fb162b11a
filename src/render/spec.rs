//! What rendering needs of a configuration ([`Spec`]): the templates' text and each
//! profile's [`Look`], read once, so a render worker builds exactly what was validated.

use std::collections::BTreeMap;
use std::path::Path;

use super::RenderError;
use crate::channel::Channel;
use crate::config::{ButtonSpec, Config, MessageKind, OpenLinks, Profile};
use crate::mention::MentionRules;

/// What rendering needs of a configuration, and nothing more: no robot URLs, tokens or
/// secrets. Template files are read once, into the spec, so a render worker process built
/// from it renders exactly the text that was validated, whatever happens on disk later.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// The zone rendered times are shown in (its IANA name).
    #[serde(with = "tz_name")]
    pub timezone: chrono_tz::Tz,
    /// Where user templates come from, for previews to name the file to edit.
    pub templates_dir: Option<std::path::PathBuf>,
    /// Every `*.tera` file of the templates directory: (file name, text), sorted.
    pub files: Vec<(String, String)>,
    /// How each profile's messages look, by profile name.
    pub profiles: BTreeMap<String, Look>,
}

/// How one profile's messages look: the render side of a profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Look {
    /// The robot protocol (templates see it as `channel`; it picks the built-in template and
    /// the size cap).
    pub channel: Channel,
    /// Text, markdown or card.
    pub message: MessageKind,
    /// The body template's file name; `None` for the default.
    pub template: Option<String>,
    /// The title template text; `None` for the default.
    pub title: Option<String>,
    /// Who is @-mentioned, and when (templates see it as `mention`; the body carries the
    /// people it resolves to).
    pub mention: MentionRules,
    /// An action card's own buttons; `None` for the built-in three.
    #[serde(default)]
    pub buttons: Option<Vec<ButtonSpec>>,
    /// How a DingTalk client opens an action card's links.
    #[serde(default)]
    pub open_links: OpenLinks,
}

impl From<&Profile> for Look {
    fn from(profile: &Profile) -> Self {
        Self {
            channel: profile.channel,
            message: profile.message,
            template: profile.template.clone(),
            title: profile.title.clone(),
            mention: profile.mention.clone(),
            buttons: profile.buttons.clone(),
            open_links: profile.open_links,
        }
    }
}

impl Spec {
    /// The spec of a validated configuration; reads the templates directory. Files that
    /// cannot be read are reported, each with its path.
    pub fn load(config: &Config) -> Result<Self, Vec<RenderError>> {
        let files = match &config.templates_dir {
            Some(dir) => read_dir(dir)?,
            None => Vec::new(),
        };
        Ok(Self {
            timezone: config.timezone,
            templates_dir: config.templates_dir.clone(),
            files,
            profiles: config
                .profiles
                .iter()
                .map(|(name, profile)| (name.clone(), Look::from(profile)))
                .collect(),
        })
    }
}

mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The two templates of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Part {
    /// The markdown title.
    Title,
    /// The body.
    Body,
}

/// Reads every `*.tera` file of `dir`: (file name, text), sorted by name. Every file that
/// cannot be read is reported.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, Vec<RenderError>> {
    let io_error = |path: &Path, e: std::io::Error| RenderError {
        template: path.display().to_string(),
        line: None,
        message: e.to_string(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| vec![io_error(dir, e)])?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tera") && path.is_file())
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((name, text)),
            Err(e) => errors.push(io_error(&path, e)),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}
