//! Rendering template text that is not saved anywhere — what the preview page's editor
//! sends. The text comes from a browser, so rendering it is bounded: its output is capped
//! (a render that writes more stops with an error) and `range()` is limited to 1,000
//! elements, so loops that write nothing stay short too.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tera::{Kwargs, State, Tera, TeraResult};

use super::{BUILTIN_PREFIX, RenderError, Rendered, Renderer};
use crate::alert::Notification;
use crate::config::Profile;

/// An unsaved template may write at most this much; DingTalk takes 20000 bytes.
pub const UNSAVED_OUTPUT_LIMIT: usize = 256 * 1024;

/// Longest `range()` an unsaved template may ask for.
const UNSAVED_RANGE_LIMIT: i64 = 1_000;

/// The name the unsaved text is compiled under (it appears in error messages).
const UNSAVED_NAME: &str = "unsaved template";

/// Which template a profile renders with, for a person who wants to edit it.
#[derive(Debug, Clone, serde::Serialize)]
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
        profile_config: &Profile,
        notification: &Notification,
        now: DateTime<Utc>,
        text: &str,
    ) -> Result<Rendered, RenderError> {
        let templates = self.templates(profile)?;
        let mut tera: Tera = self.tera.clone();
        tera.register_function("range", bounded_range);
        tera.add_raw_template(UNSAVED_NAME, text)
            .map_err(|e| RenderError::from_tera(UNSAVED_NAME, &e))?;
        let context = self.context(profile, profile_config, notification, now)?;
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
        let title = self.title(templates, notification, &context);
        Ok(Rendered {
            title,
            text: body,
            fallback: None,
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

/// `range(end=, start=, step_by=)` limited to [`UNSAVED_RANGE_LIMIT`] elements.
fn bounded_range(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i64>> {
    let start = kwargs.get::<i64>("start")?.unwrap_or(0);
    let end = kwargs.must_get::<i64>("end")?;
    let step = kwargs.get::<i64>("step_by")?.unwrap_or(1);
    if step <= 0 {
        return Err(tera::Error::message("range: step_by must be positive here"));
    }
    let len = (end.saturating_sub(start).max(0) + step - 1) / step;
    if len > UNSAVED_RANGE_LIMIT {
        return Err(tera::Error::message(format!(
            "range: {len} elements is over the preview's limit of {UNSAVED_RANGE_LIMIT}"
        )));
    }
    Ok((start..end).step_by(step as usize).collect())
}
