//! Tera: the built-in default templates, the user's templates, our filters, and
//! `render(profile, notification) -> Rendered`.
//!
//! Templates are compiled once, when a [`Renderer`] is built from a [`Config`]; rendering a
//! notification only evaluates them. A profile whose template fails at render time is rendered
//! again with the built-in template of its message kind, so a template bug never loses an
//! alert; the failure is returned alongside for logging and previews.

pub mod filters;
mod native;
mod unsaved;

pub use unsaved::{TemplateInfo, UNSAVED_OUTPUT_LIMIT};

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use tera::{Context, Tera, Value};

use crate::alert::{Notification, Status};
use crate::config::{Config, MessageKind, Profile};

/// The built-in templates, embedded so the binary works without a templates directory. The
/// same files ship in `templates/`, where operators can edit copies.
pub const BUILTIN_MARKDOWN: &str = include_str!("../templates/default.md.tera");
/// The built-in text template.
pub const BUILTIN_TEXT: &str = include_str!("../templates/default.txt.tera");
/// The built-in markdown title.
pub const BUILTIN_TITLE: &str = include_str!("../templates/title.tera");

/// File names of the shipped templates; a file of that name in the templates directory
/// replaces the embedded copy for profiles that name no template of their own.
pub const MARKDOWN_FILE: &str = "default.md.tera";
/// See [`MARKDOWN_FILE`].
pub const TEXT_FILE: &str = "default.txt.tera";
/// See [`MARKDOWN_FILE`].
pub const TITLE_FILE: &str = "title.tera";

const BUILTIN_PREFIX: &str = "builtin:";

/// A failure to load, compile or render a template, with where it happened.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{template}:{line}: {message}", line = line.map_or_else(String::new, |l| l.to_string()))]
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
    body: String,
    title: String,
    /// The built-in body of the profile's message kind, for the fallback.
    builtin_body: native::Body,
    /// Set while `body` is exactly a shipped template: rendered as Rust, not by Tera.
    native_body: Option<native::Body>,
    /// Set while `title` is exactly the shipped title template.
    native_title: bool,
}

impl Renderer {
    /// Compiles the built-in templates, every `*.tera` file of the templates directory and
    /// each profile's title, so a broken template is found before any alert needs it. Every
    /// template that does not compile is reported, not only the first.
    pub fn new(config: &Config) -> Result<Self, Vec<RenderError>> {
        let mut tera = Templates::default();
        tera.tera.autoescape_on(Vec::<&str>::new());
        filters::register(&mut tera.tera, config.timezone);
        let mut errors = Vec::new();
        for (file, text) in [
            (MARKDOWN_FILE, BUILTIN_MARKDOWN),
            (TEXT_FILE, BUILTIN_TEXT),
            (TITLE_FILE, BUILTIN_TITLE),
        ] {
            errors.extend(tera.add(&builtin(file), text).err());
        }
        if let Some(dir) = &config.templates_dir {
            errors.extend(load_dir(&mut tera, dir));
        }
        let mut profiles = BTreeMap::new();
        for (name, profile) in &config.profiles {
            match ProfileTemplates::choose(&mut tera, name, profile) {
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
            timezone: config.timezone,
            profiles,
            sources: tera.sources,
            templates_dir: config.templates_dir.clone(),
        })
    }

    /// Renders every profile's templates against the built-in samples. A template that
    /// compiles but fails on a real-looking notification (an unguarded label, a bad filter
    /// argument) is reported here, before it is swapped in, rather than at 3 a.m.
    pub fn self_test(&self, config: &Config, now: DateTime<Utc>) -> Result<(), Vec<RenderError>> {
        let mut errors = Vec::new();
        for (name, profile) in &config.profiles {
            for (sample, notification) in crate::samples::all() {
                match self.render(name, profile, &notification, now) {
                    Ok(Rendered { fallback: None, .. }) => {}
                    Ok(Rendered {
                        fallback: Some(mut error),
                        ..
                    })
                    | Err(mut error) => {
                        error.message = format!(
                            "{} (profile {name:?}, sample payload {sample:?})",
                            error.message
                        );
                        errors.push(error);
                        break;
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Renders a notification for a profile. Falls back to the built-in body template when
    /// the profile's own fails; errors only if the built-in one fails too (or the profile
    /// is unknown).
    pub fn render(
        &self,
        profile: &str,
        profile_config: &Profile,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let templates = self.templates(profile)?;
        let n = notification;
        if let (Some(body), true) = (templates.native_body, templates.native_title) {
            // The shipped templates, as most profiles use them: no Tera context at all.
            return Ok(Rendered {
                title: native::title(n),
                text: body.render(n, self.timezone, now),
                fallback: None,
            });
        }
        let context = self.context(profile, profile_config, n, now)?;
        let title = self.title(templates, n, &context);
        let (text, fallback) = match templates.native_body {
            Some(body) => (body.render(n, self.timezone, now), None),
            None => match self.render_one(&templates.body, &context) {
                Ok(text) => (text, None),
                Err(error) => {
                    let text = templates.builtin_body.render(n, self.timezone, now);
                    (text, Some(error))
                }
            },
        };
        Ok(Rendered {
            title,
            text,
            fallback,
        })
    }

    /// The profile's title, or the built-in one when the profile's fails.
    fn title(&self, templates: &ProfileTemplates, n: &Notification, context: &Context) -> String {
        if templates.native_title {
            return native::title(n);
        }
        self.render_one(&templates.title, context)
            .unwrap_or_else(|_| native::title(n))
    }

    /// The templates of a profile.
    fn templates(&self, profile: &str) -> Result<&ProfileTemplates, RenderError> {
        self.profiles.get(profile).ok_or_else(|| RenderError {
            template: String::new(),
            line: None,
            message: format!("unknown profile {profile:?}"),
        })
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
    fn choose(tera: &mut Templates, name: &str, profile: &Profile) -> Result<Self, RenderError> {
        let (builtin_file, builtin_body) = match profile.message {
            MessageKind::Markdown => (MARKDOWN_FILE, native::Body::Markdown),
            MessageKind::Text => (TEXT_FILE, native::Body::Text),
        };
        let body = match &profile.template {
            Some(file) => file.clone(),
            None => user_or_builtin(&tera.tera, builtin_file),
        };
        let title = match &profile.title {
            Some(text) => {
                let title_name = format!("title of profile {name}");
                tera.add(&title_name, text)?;
                title_name
            }
            None => user_or_builtin(&tera.tera, TITLE_FILE),
        };
        let source = |name: &str| tera.sources.get(name).map(String::as_str);
        Ok(Self {
            native_body: source(&body).and_then(native::Body::of),
            native_title: source(&title).is_some_and(native::is_title),
            body,
            title,
            builtin_body,
        })
    }
}

fn builtin(file: &str) -> String {
    format!("{BUILTIN_PREFIX}{file}")
}

fn user_or_builtin(tera: &Tera, file: &str) -> String {
    if tera.contains_template(file) {
        file.to_owned()
    } else {
        builtin(file)
    }
}

impl Renderer {
    fn context(
        &self,
        profile: &str,
        profile_config: &Profile,
        notification: &Notification,
        now: DateTime<Utc>,
    ) -> Result<Context, RenderError> {
        // What templates see: the payload under Alertmanager's own field names, plus
        // helpers. Each alert is converted once; `firing` and `resolved` share those values
        // (Tera's arrays and maps are reference-counted).
        let n = notification;
        let alerts = n
            .alerts
            .iter()
            .map(Value::try_from_serializable)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| RenderError {
                template: String::new(),
                line: None,
                message: format!("cannot build the template context: {e}"),
            })?;
        let with_status = |status: Status| -> Vec<Value> {
            n.alerts
                .iter()
                .zip(&alerts)
                .filter(|(alert, _)| alert.status == status)
                .map(|(_, value)| value.clone())
                .collect()
        };
        let mut context = Context::new();
        context.insert_value("firing", Value::from(with_status(Status::Firing)));
        context.insert_value("resolved", Value::from(with_status(Status::Resolved)));
        context.insert_value("alerts", Value::from(alerts));
        context.insert("receiver", &n.receiver);
        context.insert("status", &n.status);
        context.insert("groupLabels", &n.group_labels);
        context.insert("commonLabels", &n.common_labels);
        context.insert("commonAnnotations", &n.common_annotations);
        context.insert("externalURL", &n.external_url);
        context.insert("version", &n.version);
        context.insert("groupKey", &n.group_key);
        context.insert("truncatedAlerts", &n.truncated_alerts);
        // Every alert of the notification, also those a message cut to the cap left out.
        context.insert("total_firing", &n.total(Status::Firing));
        context.insert("total_resolved", &n.total(Status::Resolved));
        context.insert("profile", profile);
        context.insert("now", &now.to_rfc3339_opts(SecondsFormat::Secs, true));
        context.insert("timezone", self.timezone.name());
        context.insert("mention", &profile_config.mention);
        Ok(context)
    }
}

/// Adds every `*.tera` file of `dir` under its file name; returns the files that failed.
fn load_dir(tera: &mut Templates, dir: &Path) -> Vec<RenderError> {
    let io_error = |path: &Path, e: std::io::Error| RenderError {
        template: path.display().to_string(),
        line: None,
        message: e.to_string(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return vec![io_error(dir, e)],
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tera") && path.is_file())
        .collect();
    files.sort();
    let mut errors = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let added = std::fs::read_to_string(&path)
            .map_err(|e| io_error(&path, e))
            .and_then(|text| tera.add(&name, &text));
        errors.extend(added.err());
    }
    errors
}

impl RenderError {
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
