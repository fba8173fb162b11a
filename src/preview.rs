//! Previews: exactly what the profile's robot would get for a notification — the message,
//! the body that would be posted (without URL, token or signature), its size against the
//! channel's cap, and what to watch out for — without sending anything.

pub mod markdown;

use markdown::Dialect;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::Notification;
use crate::channel::{Channel, MessageKind};
use crate::compose::{Composed, compose, compose_with};
use crate::render::{Look, RenderError, Renderer, TemplateInfo};

/// Unsaved template text longer than this is refused.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Up to this many alerts, a cut preview renders the notification whole to say how large it
/// would have been; past it, the size is estimated from the part shown.
const WHOLE_RENDER_ALERTS: usize = 1_000;

/// The sample used when a preview names no payload.
pub const DEFAULT_SAMPLE: &str = "group";

/// What to preview.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// An Alertmanager payload; when absent, `sample` is used.
    #[serde(default, deserialize_with = "owned_payload")]
    pub payload: Option<Notification<'static>>,
    /// A built-in sample: `firing`, `resolved` or `group` (the default).
    #[serde(default)]
    pub sample: Option<String>,
    /// Unsaved template text to render instead of the profile's body template.
    #[serde(default)]
    pub template: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Preview {
    /// The profile.
    pub profile: String,
    /// The profile's robot protocol.
    pub channel: Channel,
    /// `text`, `markdown` or `card`.
    pub msgtype: MessageKind,
    /// The title (DingTalk's markdown title, a Feishu card's header).
    pub title: String,
    /// The message text as sent (with any @ mentions alertrelay appends).
    pub text: String,
    /// The text as the channel's client shows it, as HTML.
    pub html: String,
    /// A Feishu card's frame: header and buttons, as posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// The exact JSON body that would be posted (unsigned).
    pub body: Value,
    /// What counts against the cap, in bytes: the body's size (WeCom: the content's).
    pub bytes: usize,
    /// The channel's cap on it.
    pub limit: usize,
    /// Alerts left out to stay under the cap.
    pub omitted: usize,
    /// The template used (for the page: which file to edit).
    pub template: TemplateInfo,
    /// An action card's buttons, as posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<crate::channel::Button>,
    /// Who the message mentions, and why (the profile's `mention` rules resolved over the
    /// notification's alerts).
    #[serde(default)]
    pub mentions: Vec<crate::mention::Reason>,
    /// Things that would surprise the person editing the template.
    pub warnings: Vec<String>,
}

/// A Feishu card's header and buttons, read back from the body that would be posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The header's text.
    pub title: String,
    /// The header's colour, one of Feishu's template names (`red`, `green`, ...).
    pub template: String,
    /// The buttons under the text.
    pub buttons: Vec<Button>,
}

/// A card's button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Its label.
    pub text: String,
    /// Where it leads.
    pub url: String,
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum PreviewError {
    /// No such profile.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    /// No such sample.
    #[error("unknown sample {0:?} (use firing, resolved or group)")]
    UnknownSample(String),
    /// The request body is not a payload or a preview request.
    #[error("invalid preview request: {0}")]
    BadRequest(String),
    /// The unsaved template is too long.
    #[error("template text is over {MAX_TEMPLATE_BYTES} bytes")]
    TemplateTooLarge,
    /// The template did not compile or render.
    #[error("{0}")]
    Render(#[from] RenderError),
}

impl Request {
    /// Reads a request body: empty (a sample), an Alertmanager payload, or a request object
    /// with `payload`, `sample` and/or `template`.
    pub fn from_body(bytes: &[u8]) -> Result<Self, PreviewError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| PreviewError::BadRequest(e.to_string()))?;
        if value.get("alerts").is_some() {
            let payload = Notification::deserialize(value)
                .map_err(|e| PreviewError::BadRequest(format!("payload: {e}")))?;
            return Ok(Self {
                payload: Some(payload),
                ..Self::default()
            });
        }
        serde_json::from_value(value).map_err(|e| PreviewError::BadRequest(e.to_string()))
    }
}

/// A payload in a preview request, owning its strings (the request is read through a JSON
/// value, which owns them anyway).
fn owned_payload<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Notification<'static>>, D::Error> {
    Option::<Notification<'de>>::deserialize(d).map(|n| n.map(Notification::into_owned))
}

/// Builds the preview for a profile. Runs in a render worker (see [`crate::sandbox`]): the
/// template text may be anybody's.
pub fn preview(
    renderer: &Renderer,
    profile: &str,
    request: Request,
    now: DateTime<Utc>,
) -> Result<Preview, PreviewError> {
    let config = renderer
        .look(profile)
        .ok_or_else(|| PreviewError::UnknownProfile(profile.to_owned()))?;
    let notification = match request.payload {
        Some(payload) => payload,
        None => {
            let name = request.sample.as_deref().unwrap_or(DEFAULT_SAMPLE);
            crate::samples::sample(name).ok_or_else(|| PreviewError::UnknownSample(name.into()))?
        }
    };
    if notification.alerts.is_empty() {
        return Err(PreviewError::BadRequest("the payload has no alerts".into()));
    }
    let mut template = renderer
        .template_info(profile)
        .ok_or_else(|| PreviewError::UnknownProfile(profile.to_owned()))?;
    let cap = config.channel.cap(config.message);
    let render_full = |n: &Notification<'_>| match &request.template {
        Some(text) => renderer.render_unsaved(profile, n, now, text),
        None => renderer.render(profile, n, now),
    };
    let composed = match &request.template {
        Some(text) if text.len() > MAX_TEMPLATE_BYTES => {
            return Err(PreviewError::TemplateTooLarge);
        }
        Some(_) => compose_with(config, &notification, cap, render_full)?,
        None => compose(renderer, profile, &notification, now, cap)?,
    };
    if let Some(text) = &request.template {
        template.source.clone_from(text);
    }
    let resolved = config.mention.resolve(&notification);
    let mut warnings = warnings(&composed, config);
    if resolved.skipped > 0 {
        warnings.push(format!(
            "{} value(s) of the labels in mention.from_labels are not mentioned: not a mobile number or user id, or past {} people from labels in one message",
            resolved.skipped,
            crate::mention::MAX_LABEL_MENTIONS
        ));
    }
    if composed.omitted > 0 {
        let total = notification.alerts.len();
        let size = if total <= WHOLE_RENDER_ALERTS {
            let full = render_full(&notification)?;
            let uncut = Composed {
                text: full.text,
                omitted: 0,
                ..composed.clone()
            }
            .size();
            format!("{uncut} bytes")
        } else {
            // Rendering thousands of alerts whole only to give their size would take the
            // worker's memory and time: the shown part's bytes per alert say it nearly.
            let kept = (total - composed.omitted).max(1);
            let uncut = composed.size().saturating_mul(total) / kept;
            format!("about {uncut} bytes")
        };
        warnings.insert(
            0,
            format!(
                "the whole message would be {size}, over {}: {} alerts are left out and a closing line says so",
                cap_words(config),
                composed.omitted
            ),
        );
    }
    let mut preview = answer(profile, &composed, template, warnings);
    preview.mentions = resolved.reasons;
    Ok(preview)
}

/// "DingTalk's 20000-byte cap" and the like, for warnings.
fn cap_words(look: &Look) -> String {
    let cap = look.channel.cap(look.message);
    match look.channel {
        Channel::WeCom => format!(
            "WeCom's {cap}-byte cap on a {} message's content",
            look.message.as_str()
        ),
        channel => format!("{}'s {cap}-byte cap", channel.product()),
    }
}

fn warnings(composed: &Composed, profile: &Look) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(error) = &composed.fallback {
        warnings.push(format!(
            "the template failed ({error}); alertrelay would send the built-in template's message, shown here"
        ));
    }
    if let Some(bytes) = composed.cut.title {
        warnings.push(format!(
            "the title is {bytes} bytes on one line: it is cut to {} bytes, ending with \"…\", so the message stays under {}",
            composed.title.len(),
            cap_words(profile)
        ));
    }
    if let Some(bytes) = composed.cut.text {
        warnings.push(format!(
            "one alert's message is {bytes} bytes, over {} on its own: its text is cut short, ending with \"…（内容过长，已截断）\"",
            cap_words(profile)
        ));
    }
    warnings.extend(composed.buttons_left_out.iter().cloned());
    if profile.message == MessageKind::ActionCard && composed.buttons.is_empty() {
        warnings.push(
            "no button has a URL for this notification: it is sent as a markdown message".into(),
        );
    }
    let mention = &composed.mention;
    match profile.channel {
        // An action card mentions no one (said below, with what a channel cannot carry).
        Channel::DingTalk if profile.message == MessageKind::ActionCard => {}
        Channel::DingTalk => {
            for who in mention.mobiles.iter().chain(&mention.user_ids) {
                if !composed.text.contains(&format!("@{who}")) {
                    warnings.push(format!(
                        "@{who} is mentioned in the profile but not in the template's text: alertrelay appends it at the end (DingTalk notifies a member only when the text names them)"
                    ));
                }
            }
        }
        channel => {
            let posted = channel.text_as_posted(&composed.message());
            if posted != composed.text {
                warnings.push(format!(
                    "the template's text lacks some of the profile's mentions: alertrelay appends them at the end ({})",
                    posted.get(composed.text.len()..).unwrap_or_default().trim()
                ));
            }
        }
    }
    warnings.extend(
        profile
            .channel
            .unsupported_mentions(profile.message, mention),
    );
    warnings
}

fn answer(
    profile: &str,
    composed: &Composed,
    template: TemplateInfo,
    warnings: Vec<String>,
) -> Preview {
    let message = composed.message();
    let text = composed.channel.text_as_posted(&message).into_owned();
    let body: Value = serde_json::from_slice(&composed.body()).unwrap_or(Value::Null);
    let html = match (composed.channel, composed.kind) {
        (_, MessageKind::ActionCard) => markdown::to_html(&text, Dialect::DingTalk),
        (Channel::DingTalk, MessageKind::Text) => markdown::text_to_html(&text),
        (Channel::WeCom, MessageKind::Text) => markdown::wecom_text_to_html(&text),
        (Channel::Feishu, MessageKind::Text) => markdown::feishu_text_to_html(&text),
        (Channel::DingTalk, _) => markdown::to_html(&text, Dialect::DingTalk),
        (Channel::WeCom, _) => markdown::to_html(&text, Dialect::WeCom),
        (Channel::Feishu, _) => markdown::to_html(&text, Dialect::Feishu),
    };
    Preview {
        profile: profile.to_owned(),
        channel: composed.channel,
        msgtype: composed.kind,
        title: composed.title.clone(),
        text,
        html,
        card: card(&body),
        body,
        bytes: composed.size(),
        limit: composed.channel.cap(composed.kind),
        omitted: composed.omitted,
        template,
        buttons: composed.buttons.clone(),
        mentions: Vec::new(),
        warnings,
    }
}

/// A card's header and buttons as the body carries them; `None` for a body without a card.
fn card(body: &Value) -> Option<Card> {
    let frame = crate::channel::feishu::card_frame(body)?;
    Some(Card {
        title: frame.title,
        template: frame.template,
        buttons: frame
            .buttons
            .into_iter()
            .map(|(text, url)| Button { text, url })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn a_preview_warns_when_the_title_or_one_alerts_text_is_cut() {
        let yaml = "profiles:\n  ops:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n";
        let renderer =
            Renderer::new(&Config::from_yaml(yaml, Path::new("p.yaml")).unwrap()).unwrap();
        let mut payload = crate::samples::sample("firing").unwrap();
        payload.group_labels.insert("alertname", "磁".repeat(6_605));
        let huge = "很长的详情 ".repeat(3_000);
        payload.alerts[0].annotations.insert("description", huge);
        let request = Request {
            payload: Some(payload),
            ..Request::default()
        };

        let answer = preview(&renderer, "ops", request, Utc::now()).unwrap();

        assert!(
            answer.bytes <= crate::channel::dingtalk::MAX_BODY_BYTES,
            "{}",
            answer.bytes
        );
        let warnings = answer.warnings.join("\n");
        assert!(
            warnings.contains("the title is 19826 bytes on one line: it is cut to"),
            "{warnings}"
        );
        assert!(warnings.contains("its text is cut short"), "{warnings}");
    }
}
