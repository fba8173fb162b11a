//! From a notification to a message that DingTalk will take: rendered through the profile's
//! templates and, when the body would pass DingTalk's 20000-byte cap, cut at an alert
//! boundary with a closing line saying how many alerts were left out.
//!
//! The cut renders the notification again with fewer alerts (firing ones kept first) rather
//! than chopping the text, so it never splits a UTF-8 character, a markdown link or a
//! `<font>` tag. Only a single alert too large on its own is cut inside its text, and then
//! before any unfinished link or tag. Titles and headings still count every alert (the
//! shortened copy carries how many it left out), and the title, whatever template made it,
//! is sent as one line of at most [`MAX_TITLE_BYTES`].

use chrono::{DateTime, Utc};

use crate::alert::{LeftOut, Notification, Status};
use crate::config::{Mention, MessageKind};
use crate::dingtalk::{self, Body, Message};
use crate::render::{Look, RenderError, Rendered, Renderer};

/// The first render tries at most this many alerts; more are added only while they fit.
const FIRST_TRY: usize = 64;

/// A longer title is cut to this many bytes, "…" included. DingTalk shows a few dozen
/// characters of it (banner, chat list), and the title counts against the same 20000-byte
/// body as the alerts: a title made from a huge label must not crowd them out.
pub const MAX_TITLE_BYTES: usize = 512;

/// A message ready to send, within the size cap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Composed {
    /// Text or markdown.
    pub kind: MessageKind,
    /// Markdown title.
    pub title: String,
    /// The body text, with the closing line when alerts were left out.
    pub text: String,
    /// Who to mention.
    pub mention: Mention,
    /// Alerts left out to stay under the cap.
    pub omitted: usize,
    /// What was cut short inside the title or text to stay under the cap.
    pub cut: Cut,
    /// Set when the profile's template failed and the built-in one was used.
    pub fallback: Option<RenderError>,
}

/// What [`compose`] cut short, besides whole alerts, so a preview can say so. Each is the
/// length in bytes before the cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cut {
    /// The title was longer than [`MAX_TITLE_BYTES`] (or a quarter of the cap).
    pub title: Option<usize>,
    /// One alert was over the cap on its own: its text was cut.
    pub text: Option<usize>,
}

impl Composed {
    /// The DingTalk body.
    pub fn body(&self) -> Body<'_> {
        Body::new(&Message {
            kind: self.kind,
            title: &self.title,
            text: &self.text,
            mention: &self.mention,
        })
    }

    /// Size of the body as posted.
    pub fn body_len(&self) -> usize {
        self.body().to_bytes().len()
    }

    /// Whether the body is within `cap`, without serializing it when it obviously is: an upper
    /// bound on the body's size is the escaped title and text, each mention twice (in the
    /// `at` lists and as `@` text) and the keys around them.
    pub fn fits(&self, cap: usize) -> bool {
        let mention = &self.mention;
        let mentions: usize = mention
            .mobiles
            .iter()
            .chain(&mention.user_ids)
            .map(|m| 2 * dingtalk::json_len_bound(m) + 8)
            .sum();
        let bound = dingtalk::json_len_bound(&self.text)
            + dingtalk::json_len_bound(&self.title)
            + mentions
            + 256;
        bound <= cap || self.body_len() <= cap
    }
}

/// Renders `notification` for a profile so that its body stays within `cap` bytes.
pub fn compose(
    renderer: &Renderer,
    name: &str,
    notification: &Notification,
    now: DateTime<Utc>,
    cap: usize,
) -> Result<Composed, RenderError> {
    let look = renderer
        .look(name)
        .ok_or_else(|| RenderError::unknown_profile(name))?;
    compose_with(look, notification, cap, |subset| {
        renderer.render(name, subset, now)
    })
}

/// [`compose`] with any way of rendering (the preview renders unsaved template text).
/// Total over its input: any alert count (none included) and any cap give a message, cut as
/// far as it can be; only a render error is an error.
pub fn compose_with(
    profile: &Look,
    notification: &Notification,
    cap: usize,
    render: impl Fn(&Notification) -> Result<Rendered, RenderError>,
) -> Result<Composed, RenderError> {
    let ordered = Ordered::new(notification);
    let total = ordered.len();
    let closing = |omitted: usize| match omitted {
        0 => String::new(),
        _ => omitted_line(profile.message, omitted, cap, &notification.external_url),
    };
    let attempt = |keep: usize| -> Result<Composed, RenderError> {
        let keep = keep.min(total);
        // The common case, everything fits: render the notification itself, no copy.
        let rendered = if keep == total {
            render(notification)?
        } else {
            render(&ordered.first(keep))?
        };
        let mut text = rendered.text;
        let omitted = total - keep;
        text.push_str(&closing(omitted));
        let (title, title_cut) = message_title(rendered.title, MAX_TITLE_BYTES.min(cap / 4));
        Ok(Composed {
            kind: profile.message,
            title,
            text,
            mention: profile.mention.clone(),
            omitted,
            cut: Cut {
                title: title_cut,
                text: None,
            },
            fallback: rendered.fallback,
        })
    };
    // `fit`: the largest count known to fit, and its message; `over`: the smallest known
    // not to. The first try is small, later ones grow by the measured bytes per alert.
    let mut fit: Option<(usize, Composed)> = None;
    let mut over = total + 1;
    let mut keep = total.min(FIRST_TRY);
    loop {
        let composed = attempt(keep)?;
        let next = if composed.fits(cap) {
            fit = Some((keep, composed));
            if keep == total {
                break;
            }
            if over <= total {
                (keep + over) / 2
            } else {
                let size = fit.as_ref().map_or(1, |(_, c)| c.body_len());
                let estimate = keep.saturating_mul(cap) / size.max(1);
                estimate.clamp(keep + 1, total)
            }
        } else {
            over = keep;
            (fit.as_ref().map_or(0, |(k, _)| *k) + over) / 2
        };
        let lower = fit.as_ref().map_or(0, |(k, _)| *k);
        if next <= lower || next >= over {
            break;
        }
        keep = next;
    }
    match fit {
        Some((_, composed)) => Ok(composed),
        // Not even one alert fits (or there are none): cut inside the text.
        None => {
            let single = attempt(1)?;
            let closing = closing(single.omitted);
            Ok(cut_single(single, &closing, cap))
        }
    }
}

/// The alerts with firing ones first, so a cut drops resolved alerts before firing ones.
struct Ordered<'n, 'a> {
    notification: &'n Notification<'a>,
    order: Vec<usize>,
}

impl<'n, 'a> Ordered<'n, 'a> {
    fn new(notification: &'n Notification<'a>) -> Self {
        let mut order: Vec<usize> = (0..notification.alerts.len()).collect();
        order.sort_by_key(|&i| notification.alerts[i].status != Status::Firing);
        Self {
            notification,
            order,
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    /// The notification with only the first `keep` alerts, in their original order, and
    /// the others counted in `left_out` so titles and headings still count every alert.
    fn first(&self, keep: usize) -> Notification<'a> {
        let (kept, dropped) = self.order.split_at(keep.min(self.order.len()));
        let mut kept = kept.to_vec();
        kept.sort_unstable();
        let n = self.notification;
        let dropped_firing = dropped
            .iter()
            .filter(|&&i| n.alerts[i].status == Status::Firing)
            .count();
        let left_out = LeftOut {
            firing: n.left_out.firing + dropped_firing,
            resolved: n.left_out.resolved + dropped.len() - dropped_firing,
        };
        Notification {
            alerts: kept
                .iter()
                .map(|&i| self.notification.alerts[i].clone())
                .collect(),
            receiver: self.notification.receiver.clone(),
            status: self.notification.status,
            group_labels: self.notification.group_labels.clone(),
            common_labels: self.notification.common_labels.clone(),
            common_annotations: self.notification.common_annotations.clone(),
            external_url: self.notification.external_url.clone(),
            version: self.notification.version.clone(),
            group_key: self.notification.group_key.clone(),
            truncated_alerts: self.notification.truncated_alerts,
            left_out,
        }
    }
}

/// The closing line of a cut message; `limit` is the cap the message was cut to. It is kept
/// whole, so the link to Alertmanager is left out when it would take over a quarter of the
/// cap (as a title may): the count must fit beside at least one alert.
fn omitted_line(kind: MessageKind, omitted: usize, limit: usize, external_url: &str) -> String {
    let link = match kind {
        MessageKind::Markdown => crate::render::filters::md_url(external_url),
        MessageKind::Text => external_url.to_owned(),
    };
    let linked = !link.is_empty() && dingtalk::json_len_bound(&link) <= limit / 4;
    match (kind, linked) {
        (MessageKind::Markdown, true) => format!(
            "\n\n---\n\n> 另有 **{omitted}** 条告警未显示（消息超过钉钉 {limit} 字节上限），[在 Alertmanager 中查看全部]({link})"
        ),
        (MessageKind::Markdown, false) => {
            format!("\n\n---\n\n> 另有 **{omitted}** 条告警未显示（消息超过钉钉 {limit} 字节上限）")
        }
        (MessageKind::Text, true) => format!(
            "\n\n另有 {omitted} 条告警未显示（消息超过钉钉 {limit} 字节上限），全部告警: {link}"
        ),
        (MessageKind::Text, false) => {
            format!("\n\n另有 {omitted} 条告警未显示（消息超过钉钉 {limit} 字节上限）")
        }
    }
}

/// The title as a message carries it, whatever template made it: one line (DingTalk shows
/// one; each line break or other control character becomes a space) and at most `max` bytes,
/// cut on a character boundary with "…". Also returns the length before a cut, if any.
fn message_title(title: String, max: usize) -> (String, Option<usize>) {
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    let title = if title.contains(breaks) {
        title.replace(breaks, " ").trim().to_owned()
    } else {
        title
    };
    if title.len() <= max {
        return (title, None);
    }
    const ELLIPSIS: &str = "…";
    let kept = char_prefix(&title, max.saturating_sub(ELLIPSIS.len())).trim_end();
    (format!("{kept}{ELLIPSIS}"), Some(title.len()))
}

/// One alert alone is over the cap: keep the longest prefix of its text that fits, found by
/// bisection on the prefix length (JSON escaping makes the size not proportional). The
/// `closing` line the text ends with (how many alerts were left out) is kept whole.
fn cut_single(mut composed: Composed, closing: &str, cap: usize) -> Composed {
    const MARK: &str = "\n\n…（内容过长，已截断）";
    let full = std::mem::take(&mut composed.text);
    composed.cut.text = Some(full.len());
    let alert = full.strip_suffix(closing).unwrap_or(&full);
    let with_prefix = |composed: &mut Composed, len: usize| {
        composed.text = format!("{}{MARK}{closing}", safe_prefix(alert, len));
        composed.body_len() <= cap
    };
    let (mut fits, mut over) = (0, alert.len() + 1);
    while fits + 1 < over {
        let mid = (fits + over) / 2;
        if with_prefix(&mut composed, mid) {
            fits = mid;
        } else {
            over = mid;
        }
    }
    with_prefix(&mut composed, fits);
    composed
}

/// The longest prefix of at most `max` bytes that ends on a character boundary and outside
/// any markdown link or HTML tag.
pub fn safe_prefix(text: &str, max: usize) -> &str {
    let prefix = char_prefix(text, max);
    let mut cut = prefix.len();
    // An opened `[` whose link is not finished, or an opened `<` whose tag is not closed.
    if let Some(open) = prefix.rfind('[') {
        let finished = prefix[open..]
            .find("](")
            .and_then(|p| prefix[open + p..].find(')'));
        if finished.is_none() {
            cut = cut.min(open);
        }
    }
    if let Some(open) = prefix.rfind('<')
        && !prefix[open..].contains('>')
    {
        cut = cut.min(open);
    }
    &prefix[..cut]
}

/// The longest prefix of at most `max` bytes that ends on a character boundary.
fn char_prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
