//! An action card's buttons: their URL templates (the profile's `buttons:`, or the built-in
//! three), rendered by the same Tera as the message with the same context, then checked
//! (http or https, at most [`MAX_URL_BYTES`]), percent-encoded as a URL must be, and wrapped
//! for `open_links`.

use super::RenderError;
use crate::channel::Button;
use crate::channel::dingtalk::{OpenLinks, open_link};
use crate::config::ButtonSpec;

/// A rendered URL longer than this leaves its button out.
pub const MAX_URL_BYTES: usize = 2048;

/// The built-in buttons: the group in Alertmanager, its new-silence form prefilled with the
/// group's matchers (the form's duration is 2 hours unless changed), and the first alert's
/// Prometheus graph. A template that renders nothing (no `externalURL`, no `generatorURL`)
/// leaves its button out.
pub const BUILTIN: [(&str, &str); 3] = [
    (
        "查看告警",
        "{% if externalURL %}{{ externalURL | trim_end(pat=\"/\") }}/#/alerts?filter={% if groupLabels %}{{ groupLabels | am_filter }}{% else %}{{ commonLabels | am_filter }}{% endif %}{% endif %}",
    ),
    (
        "静默 2 小时",
        "{% if externalURL %}{{ externalURL | trim_end(pat=\"/\") }}/#/silences/new?filter={% if groupLabels %}{{ groupLabels | am_filter }}{% else %}{{ commonLabels | am_filter }}{% endif %}{% endif %}",
    ),
    (
        "Prometheus 图表",
        "{% if alerts %}{{ alerts[0].generatorURL }}{% endif %}",
    ),
];

/// The names the built-in button templates are compiled under.
pub(super) fn builtin_name(index: usize) -> String {
    format!("builtin:button {index}")
}

/// The name of a profile's own button template.
pub(super) fn profile_name(profile: &str, index: usize) -> String {
    format!("button {} of profile {profile}", index + 1)
}

/// One button's label and the template its URL renders with.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub(super) title: String,
    pub(super) name: String,
}

/// The built-in buttons' templates.
pub(super) fn builtin() -> Vec<Template> {
    BUILTIN
        .iter()
        .enumerate()
        .map(|(index, (title, _))| Template {
            title: (*title).to_owned(),
            name: builtin_name(index),
        })
        .collect()
}

/// A profile's own buttons' templates, named for `profile`.
pub(super) fn own(profile: &str, specs: &[ButtonSpec]) -> Vec<Template> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| Template {
            title: spec.title.clone(),
            name: profile_name(profile, index),
        })
        .collect()
}

/// Buttons rendered: the ones that made it, and why others were left out.
#[derive(Debug, Clone, Default)]
pub struct Buttons {
    /// Ready to post.
    pub buttons: Vec<Button>,
    /// One line per button left out (not an http(s) URL, too long).
    pub left_out: Vec<String>,
}

/// Renders `templates` with `render`; a render error is returned (the caller falls back to
/// the built-in buttons).
pub(super) fn render(
    templates: &[Template],
    open: OpenLinks,
    render: impl Fn(&str) -> Result<String, RenderError>,
) -> Result<Buttons, RenderError> {
    let mut out = Buttons::default();
    for template in templates {
        let url = render(&template.name)?;
        let url = url.trim();
        if url.is_empty() {
            continue;
        }
        match check(url) {
            Ok(url) => out.buttons.push(Button {
                title: template.title.clone(),
                url: open_link(&url, open),
            }),
            Err(why) => out
                .left_out
                .push(format!("button {:?} is left out: {why}", template.title)),
        }
    }
    Ok(out)
}

/// The URL as posted: parsed (so spaces and non-ASCII are percent-encoded), http or https
/// only, and within [`MAX_URL_BYTES`].
fn check(url: &str) -> Result<String, String> {
    let parsed = crate::channel::parse_web_url(url).map_err(|e| {
        let shown: String = url.chars().take(80).collect();
        format!("its URL {shown:?} {e}")
    })?;
    let text = parsed.as_str();
    if text.len() > MAX_URL_BYTES {
        return Err(format!(
            "its URL is {} bytes, over {MAX_URL_BYTES}",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(url: &str) -> Buttons {
        let template = Template {
            title: "b".into(),
            name: "t".into(),
        };
        render(&[template], OpenLinks::Client, |_| Ok(url.to_owned())).unwrap()
    }

    #[test]
    fn a_url_is_percent_encoded_by_parsing_and_must_be_http_or_https() {
        assert_eq!(
            one(" https://wiki/运行 手册?q=a b ").buttons[0].url,
            "https://wiki/%E8%BF%90%E8%A1%8C%20%E6%89%8B%E5%86%8C?q=a%20b"
        );
        for bad in ["javascript:alert(1)", "ftp://x/", "//x/y", "dingtalk://x"] {
            let out = one(bad);
            assert!(out.buttons.is_empty(), "{bad}");
            assert!(
                out.left_out[0].starts_with("button \"b\" is left out: its URL"),
                "{:?}",
                out.left_out
            );
        }
        assert!(
            one("   ").left_out.is_empty(),
            "an empty URL is left out quietly"
        );
    }

    #[test]
    fn a_url_past_the_bound_leaves_its_button_out() {
        let long = format!("https://x/{}", "a".repeat(MAX_URL_BYTES));
        let out = one(&long);
        assert!(out.buttons.is_empty());
        assert!(out.left_out[0].contains("over 2048"), "{:?}", out.left_out);
        assert_eq!(one(&long[..MAX_URL_BYTES]).buttons.len(), 1);
    }
}
