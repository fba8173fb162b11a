//! Tera: the built-in default templates, the user's templates, our filters, and
//! `render(profile, notification) -> Rendered`.
//!
//! Templates are compiled once, when a [`Renderer`] is built from a [`Config`]; rendering a
//! notification only evaluates them. A profile whose template fails at render time is rendered
//! again with the built-in template of its message kind, so a template bug never loses an
//! alert; the failure is returned alongside for logging and previews.

pub mod buttons;
mod context;
pub mod filters;
mod spec;
mod unsaved;

pub use spec::{Look, Part, Spec};
pub use unsaved::{TemplateInfo, UNSAVED_NAME, UNSAVED_OUTPUT_LIMIT};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tera::{Context, Tera};

use crate::alert::Notification;
use crate::channel::Channel;
use crate::config::{Config, MessageKind};

/// The built-in templates, embedded so the binary works without a templates directory. The
/// same files ship in `templates/`, where operators can edit copies.
pub const BUILTIN_MARKDOWN: &str = include_str!("../templates/default.md.tera");
/// The built-in text template.
pub const BUILTIN_TEXT: &str = include_str!("../templates/default.txt.tera");
/// The built-in markdown title.
pub const BUILTIN_TITLE: &str = include_str!("../templates/title.tera");
/// The built-in WeCom markdown template.
pub const BUILTIN_WECOM_MARKDOWN: &str = include_str!("../templates/wecom.md.tera");
/// The built-in `lark_md` text of a Feishu card.
pub const BUILTIN_FEISHU_CARD: &str = include_str!("../templates/feishu.md.tera");

/// File names of the shipped templates; a file of that name in the templates directory
/// replaces the embedded copy for profiles that name no template of their own.
pub const MARKDOWN_FILE: &str = "default.md.tera";
/// See [`MARKDOWN_FILE`].
pub const TEXT_FILE: &str = "default.txt.tera";
/// See [`MARKDOWN_FILE`].
pub const TITLE_FILE: &str = "title.tera";
/// See [`MARKDOWN_FILE`].
pub const WECOM_MARKDOWN_FILE: &str = "wecom.md.tera";
/// See [`MARKDOWN_FILE`].
pub const FEISHU_CARD_FILE: &str = "feishu.md.tera";

const BUILTIN_PREFIX: &str = "builtin:";
/// The names the embedded templates are compiled under (each [`BUILTIN_PREFIX`] and a file).
const BUILTIN_MARKDOWN_NAME: &str = "builtin:default.md.tera";
const BUILTIN_TEXT_NAME: &str = "builtin:default.txt.tera";
const BUILTIN_TITLE_NAME: &str = "builtin:title.tera";
const BUILTIN_WECOM_MARKDOWN_NAME: &str = "builtin:wecom.md.tera";
const BUILTIN_FEISHU_CARD_NAME: &str = "builtin:feishu.md.tera";

/// A failure to load, compile or render a template, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{template}:{}{message}", line.map_or_else(|| " ".to_owned(), |l| format!("{l}: ")))]
pub struct RenderError {
    /// The template's name (its file name for user templates).
    pub template: String,
    /// 1-based line in the template, when Tera knows it.
    pub line: Option<usize>,
    /// What went wrong, without the source excerpt.
    pub message: String,
}

/// The output of one render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The markdown title (DingTalk shows it in notifications and the chat list).
    pub title: String,
    /// The message body: markdown or plain text per the profile.
    pub text: String,
    /// Set when the profile's own template failed and the built-in one was used instead.
    pub fallback: Option<RenderError>,
    /// An action card's buttons (none for other messages).
    pub buttons: buttons::Buttons,
}

/// The compiled templates of one configuration.
pub struct Renderer {
    tera: Tera,
    timezone: chrono_tz::Tz,
    profiles: BTreeMap<String, ProfileTemplates>,
    /// Each template's source text by name, for previews.
    sources: BTreeMap<String, String>,
    /// Where user templates come from, for previews to name the file to edit.
    templates_dir: Option<std::path::PathBuf>,
}

/// Which templates one profile renders with.
struct ProfileTemplates {
    /// How the profile's messages look.
    look: Look,
    body: String,
    title: String,
    /// The built-in body of the profile's message kind, for the fallback.
    builtin_body: &'static str,
    /// An action card's button templates (empty for other messages).
    buttons: Vec<buttons::Template>,
}

impl Renderer {
    /// Compiles the templates of a configuration (see [`Renderer::from_spec`]).
    pub fn new(config: &Config) -> Result<Self, Vec<RenderError>> {
        Self::from_spec(&Spec::load(config)?)
    }

    /// Compiles the built-in templates, every template file of the spec and each profile's
    /// title, so a broken template is found before any alert needs it. Every template that
    /// does not compile is reported, not only the first.
    pub fn from_spec(spec: &Spec) -> Result<Self, Vec<RenderError>> {
        let mut tera = Templates::default();
        tera.tera.autoescape_on(Vec::<&str>::new());
        filters::register(&mut tera.tera, spec.timezone);
        let mut errors = Vec::new();
        for (name, text) in [
            (BUILTIN_MARKDOWN_NAME, BUILTIN_MARKDOWN),
            (BUILTIN_TEXT_NAME, BUILTIN_TEXT),
            (BUILTIN_TITLE_NAME, BUILTIN_TITLE),
            (BUILTIN_WECOM_MARKDOWN_NAME, BUILTIN_WECOM_MARKDOWN),
            (BUILTIN_FEISHU_CARD_NAME, BUILTIN_FEISHU_CARD),
        ] {
            errors.extend(tera.add(name, text).err());
        }
        for (index, (_, text)) in buttons::BUILTIN.iter().enumerate() {
            errors.extend(tera.add(&buttons::builtin_name(index), text).err());
        }
        for (name, text) in &spec.files {
            errors.extend(tera.add(name, text).err());
        }
        let mut profiles = BTreeMap::new();
        for (name, look) in &spec.profiles {
            match ProfileTemplates::choose(&mut tera, name, look) {
                Ok(templates) => {
                    profiles.insert(name.clone(), templates);
                }
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            tera: tera.tera,
            timezone: spec.timezone,
            profiles,
            sources: tera.sources,
            templates_dir: spec.templates_dir.clone(),
        })
    }

    /// The profiles this renderer knows, by name.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// How a profile's messages look.
    pub fn look(&self, profile: &str) -> Option<&Look> {
        self.profiles.get(profile).map(|t| &t.look)
    }

    /// Renders one part of a profile against the built-in samples. A template that compiles
    /// but fails on a real-looking notification (an unguarded label, a bad filter argument)
    /// is reported here, before it is swapped in, rather than at 3 a.m. Runs in a render
    /// worker, whose bounds stop a template that never finishes.
    pub fn self_test(
        &self,
        profile: &str,
        part: Part,
        now: DateTime<Utc>,
    ) -> Result<(), RenderError> {
        let templates = self.templates(profile)?;
        let template = match part {
            Part::Title => &templates.title,
            Part::Body => &templates.body,
        };
        for (sample, notification) in crate::samples::all() {
            let context = self.context(profile, templates, &notification, now);
            if let Err(mut error) = self.render_one(template, &context) {
                error.message = format!(
                    "{} (profile {profile:?}, sample payload {sample:?})",
                    error.message
                );
                return Err(error);
            }
        }
        Ok(())
    }

    /// Whether a profile renders both parts with the embedded built-in templates.
    pub fn uses_builtins(&self, profile: &str) -> bool {
        [Part::Title, Part::Body].into_iter().all(|part| {
            self.template_of(profile, part)
                .is_some_and(|name| name.starts_with(BUILTIN_PREFIX))
        })
    }

    /// The name of the template a profile renders a part with, as errors name it.
    pub fn template_of(&self, profile: &str, part: Part) -> Option<&str> {
        let templates = self.profiles.get(profile)?;
        Some(match part {
            Part::Title => &templates.title,
            Part::Body => &templates.body,
        })
    }

    /// Renders a notification for a profile. Falls back to the built-in template of a part
    /// (body or title) when the profile's own fails, and says so in `fallback`; errors only
    /// if the built-in one fails too (or the profile is unknown).
    pub fn render(
        &self,
        profile: &str,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let templates = self.templates(profile)?;
        let context = self.context(profile, templates, notification, now);
        let (title, title_failure) =
            self.with_fallback(&templates.title, BUILTIN_TITLE_NAME, &context)?;
        let (text, body_failure) =
            self.with_fallback(&templates.body, templates.builtin_body, &context)?;
        let (buttons, buttons_failure) = self.buttons(templates, &context)?;
        Ok(Rendered {
            title,
            text,
            fallback: body_failure.or(title_failure).or(buttons_failure),
            buttons,
        })
    }

    /// An action card's buttons, or the built-in ones (and why) when one of the profile's own
    /// fails.
    fn buttons(
        &self,
        templates: &ProfileTemplates,
        context: &Context,
    ) -> Result<(buttons::Buttons, Option<RenderError>), RenderError> {
        let open = templates.look.open_links;
        let render = |name: &str| self.render_one(name, context);
        match buttons::render(&templates.buttons, open, render) {
            Ok(buttons) => Ok((buttons, None)),
            Err(error) if templates.look.buttons.is_some() => {
                let builtin = buttons::render(&buttons::builtin(), open, render)?;
                Ok((builtin, Some(error)))
            }
            Err(error) => Err(error),
        }
    }

    /// What is sent when the profile's own templates cannot be used at all (their job ran out
    /// of time or memory): the built-in body and title, rendered in a worker by a job of
    /// their own. They are ours and take time linear in the notification.
    pub fn render_builtin(
        &self,
        profile: &str,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let templates = self.templates(profile)?;
        let context = self.context(profile, templates, notification, now);
        let buttons = if templates.buttons.is_empty() {
            buttons::Buttons::default()
        } else {
            let render = |name: &str| self.render_one(name, &context);
            buttons::render(&buttons::builtin(), templates.look.open_links, render)?
        };
        Ok(Rendered {
            title: self.render_one(BUILTIN_TITLE_NAME, &context)?,
            text: self.render_one(templates.builtin_body, &context)?,
            fallback: None,
            buttons,
        })
    }

    /// Renders `template`, or `builtin` (and why) when `template` fails.
    fn with_fallback(
        &self,
        template: &str,
        builtin: &str,
        context: &Context,
    ) -> Result<(String, Option<RenderError>), RenderError> {
        match self.render_one(template, context) {
            Ok(text) => Ok((text, None)),
            Err(error) if template != builtin => {
                Ok((self.render_one(builtin, context)?, Some(error)))
            }
            Err(error) => Err(error),
        }
    }

    /// The templates of a profile.
    fn templates(&self, profile: &str) -> Result<&ProfileTemplates, RenderError> {
        self.profiles
            .get(profile)
            .ok_or_else(|| RenderError::unknown_profile(profile))
    }

    /// Renders one template; surrounding blank space is dropped (template files end in a
    /// newline, and a title is one line).
    fn render_one(&self, template: &str, context: &Context) -> Result<String, RenderError> {
        let text = self
            .tera
            .render(template, context)
            .map_err(|e| RenderError::from_tera(template, &e))?;
        Ok(text.trim().to_owned())
    }
}

/// A Tera instance that also keeps every template's source.
#[derive(Default)]
struct Templates {
    tera: Tera,
    sources: BTreeMap<String, String>,
}

impl Templates {
    fn add(&mut self, name: &str, text: &str) -> Result<(), RenderError> {
        self.tera
            .add_raw_template(name, text)
            .map_err(|e| RenderError::from_tera(name, &e))?;
        self.sources.insert(name.to_owned(), text.to_owned());
        Ok(())
    }
}

impl ProfileTemplates {
    fn choose(tera: &mut Templates, name: &str, profile: &Look) -> Result<Self, RenderError> {
        // Plain text is plain text on every channel: one text template serves them all.
        let (builtin_file, builtin_body) = match (profile.channel, profile.message) {
            (_, MessageKind::Text) => (TEXT_FILE, BUILTIN_TEXT_NAME),
            (Channel::WeCom, _) => (WECOM_MARKDOWN_FILE, BUILTIN_WECOM_MARKDOWN_NAME),
            (Channel::Feishu, _) => (FEISHU_CARD_FILE, BUILTIN_FEISHU_CARD_NAME),
            (Channel::DingTalk, _) => (MARKDOWN_FILE, BUILTIN_MARKDOWN_NAME),
        };
        let body = match &profile.template {
            Some(file) => file.clone(),
            None => user_or_builtin(&tera.tera, builtin_file, builtin_body),
        };
        let title = match &profile.title {
            Some(text) => {
                let title_name = format!("title of profile {name}");
                tera.add(&title_name, text)?;
                title_name
            }
            None => user_or_builtin(&tera.tera, TITLE_FILE, BUILTIN_TITLE_NAME),
        };
        let buttons = match (&profile.message, &profile.buttons) {
            (MessageKind::ActionCard, Some(specs)) => {
                for (index, spec) in specs.iter().enumerate() {
                    tera.add(&buttons::profile_name(name, index), &spec.url)?;
                }
                buttons::own(name, specs)
            }
            (MessageKind::Card, Some(specs)) => {
                // A Feishu card's own buttons replace its one button to Alertmanager.
                for (index, spec) in specs.iter().enumerate() {
                    tera.add(&buttons::profile_name(name, index), &spec.url)?;
                }
                buttons::own(name, specs)
            }
            // The built-in three under DingTalk action cards and Feishu cards alike.
            (MessageKind::ActionCard | MessageKind::Card, None) => buttons::builtin(),
            _ => Vec::new(),
        };
        Ok(Self {
            look: profile.clone(),
            body,
            title,
            builtin_body,
            buttons,
        })
    }
}

/// The templates directory's `file` if it has one, else the embedded template `builtin`.
fn user_or_builtin(tera: &Tera, file: &str, builtin: &str) -> String {
    if tera.contains_template(file) {
        file
    } else {
        builtin
    }
    .to_owned()
}

impl Renderer {
    fn context(
        &self,
        profile: &str,
        templates: &ProfileTemplates,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Context {
        context::build(
            profile,
            notification,
            now,
            self.timezone,
            templates.look.channel,
            &templates.look.mention,
        )
    }
}

impl RenderError {
    /// A render asked of a profile the renderer does not know.
    pub fn unknown_profile(profile: &str) -> Self {
        Self {
            template: String::new(),
            line: None,
            message: format!("unknown profile {profile:?}"),
        }
    }

    fn from_tera(template: &str, error: &tera::Error) -> Self {
        let report = match error.kind() {
            tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => Some(r),
            _ => None,
        };
        let mut message = match report {
            Some(report) => report.message().to_owned(),
            None => error.kind().to_string(),
        };
        // Filter errors keep their cause in the source chain.
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self {
            template: report
                .map(|r| r.filename().to_owned())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| template.to_owned()),
            line: report.map(|r| r.span().start_line),
            message,
        }
    }

    /// True when the failing template is one of the embedded defaults.
    pub fn is_builtin(&self) -> bool {
        self.template.starts_with(BUILTIN_PREFIX)
    }
}

#[cfg(test)]
mod tests;
