//! Rendering template text that is not saved anywhere — what the preview page's editor
//! sends. The text comes from a browser: it is rendered only inside a render worker (see
//! [`crate::sandbox`]), whose memory and time are capped, and its output is capped here so
//! the answer stays small.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tera::Tera;

use super::{BUILTIN_PREFIX, RenderError, Rendered, Renderer};
use crate::alert::Notification;

/// An unsaved template may write at most this much; DingTalk takes 20000 bytes.
pub const UNSAVED_OUTPUT_LIMIT: usize = 256 * 1024;

/// The name the unsaved text is compiled under (it appears in error messages).
pub const UNSAVED_NAME: &str = "unsaved template";

/// Which template a profile renders with, for a person who wants to edit it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TemplateInfo {
    /// The template's name: its file name, or the embedded default's.
    pub name: String,
    /// The file to edit for the change to last; `None` for the embedded default (copy it into
    /// the templates directory to change it).
    pub file: Option<PathBuf>,
    /// True for the embedded default.
    pub builtin: bool,
    /// The template text.
    pub source: String,
}

impl Renderer {
    /// The body template a profile renders with.
    pub fn template_info(&self, profile: &str) -> Option<TemplateInfo> {
        let name = &self.profiles.get(profile)?.body;
        let builtin = name.starts_with(BUILTIN_PREFIX);
        let shown = name.strip_prefix(BUILTIN_PREFIX).unwrap_or(name).to_owned();
        Some(TemplateInfo {
            file: if builtin {
                None
            } else {
                self.templates_dir.as_ref().map(|dir| dir.join(name))
            },
            name: shown,
            builtin,
            source: self.sources.get(name).cloned().unwrap_or_default(),
        })
    }

    /// Renders with `text` in place of the profile's body template; no fallback, so a failing
    /// text answers with its error (line and message). The title is rendered as usual.
    pub fn render_unsaved(
        &self,
        profile: &str,
        notification: &Notification,
        now: DateTime<Utc>,
        text: &str,
    ) -> Result<Rendered, RenderError> {
        let templates = self.templates(profile)?;
        let mut tera: Tera = self.tera.clone();
        tera.add_raw_template(UNSAVED_NAME, text)
            .map_err(|e| RenderError::from_tera(UNSAVED_NAME, &e))?;
        let context = self.context(profile, templates, notification, now);
        let mut output = Capped::default();
        tera.render_to(UNSAVED_NAME, &context, &mut output)
            .map_err(|e| match output.over {
                true => RenderError {
                    template: UNSAVED_NAME.into(),
                    line: None,
                    message: format!("output passed {UNSAVED_OUTPUT_LIMIT} bytes; stopped"),
                },
                false => RenderError::from_tera(UNSAVED_NAME, &e),
            })?;
        let body = String::from_utf8_lossy(&output.bytes).trim().to_owned();
        // Only the title: rendering the saved body too would be wasted, and could fail.
        let (title, title_failure) =
            self.with_fallback(&templates.title, super::BUILTIN_TITLE_NAME, &context)?;
        let (buttons, buttons_failure) = self.buttons(templates, &context)?;
        Ok(Rendered {
            title,
            text: body,
            fallback: title_failure.or(buttons_failure),
            buttons,
        })
    }
}

/// A writer that refuses to grow past [`UNSAVED_OUTPUT_LIMIT`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > UNSAVED_OUTPUT_LIMIT {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
