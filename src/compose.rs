//! From a notification to a message that its robot will take: rendered through the profile's
//! templates and, when the message would pass the channel's size cap (DingTalk's 20000-byte
//! body, WeCom's 2048/4096-byte content, Feishu's 20 KB body), cut at an alert boundary with
//! a closing line saying how many alerts were left out.
//!
//! The cut renders the notification again with fewer alerts (firing ones kept first) rather
//! than chopping the text, so it never splits a UTF-8 character, a markdown link or a
//! `<font>` tag. Only a single alert too large on its own is cut inside its text, and then
//! before any unfinished link or tag. Titles and headings still count every alert (the
//! shortened copy carries how many it left out), and the title, whatever template made it,
//! is sent as one line of at most [`MAX_TITLE_BYTES`].

use chrono::{DateTime, Utc};

use crate::alert::{LeftOut, Notification, Status};
use crate::channel::{Button, Channel, Mention, Message, MessageKind, count_bytes, json_len_bound};
use crate::render::{Look, RenderError, Rendered, Renderer};

/// The first render tries at most this many alerts; more are added only while they fit.
const FIRST_TRY: usize = 64;

/// A longer title is cut to this many bytes, "…" included. Clients show a few dozen
/// characters of it (banner, chat list, card header), and the title counts against the same
/// cap as the alerts: a title made from a huge label must not crowd them out.
pub const MAX_TITLE_BYTES: usize = 512;

/// A message ready to send, within the size cap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Composed {
    /// The robot protocol it is for.
    pub channel: Channel,
    /// Text, markdown or card.
    pub kind: MessageKind,
    /// The title (DingTalk's markdown title, a Feishu card's header).
    pub title: String,
    /// The body text, with the closing line when alerts were left out.
    pub text: String,
    /// Who to mention: the profile's `mention` rules resolved over the notification's alerts.
    pub mention: Mention,
    /// Values of `mention.from_labels` labels that were not mentioned: not a mobile or user
    /// id, or past [`crate::mention::MAX_LABEL_MENTIONS`] (counted in a metric).
    pub mentions_skipped: usize,
    /// Firing when any of its alerts fires (a Feishu card's header is red), else resolved.
    pub status: Status,
    /// Alertmanager's external URL (a Feishu card's button).
    pub link: String,
    /// An action card's buttons, URLs checked and ready to post.
    pub buttons: Vec<Button>,
    /// Why buttons of the profile were left out (not an http(s) URL, too long), for previews.
    pub buttons_left_out: Vec<String>,
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
    /// The channel-neutral message.
    pub fn message(&self) -> Message<'_> {
        Message {
            kind: self.kind,
            title: &self.title,
            text: &self.text,
            mention: &self.mention,
            status: self.status,
            link: &self.link,
            buttons: &self.buttons,
        }
    }

    /// The body as posted, before signing.
    pub fn body(&self) -> Vec<u8> {
        self.channel.body(&self.message())
    }

    /// What counts against the channel's cap ([`Channel::measure`]).
    pub fn size(&self) -> usize {
        self.channel.measure(&self.message())
    }

    /// Whether the message is within `cap`, without encoding it when it obviously is: an
    /// upper bound on any channel's measure is the escaped title, text and link, each mention
    /// twice (in a list and as text), every `<` as the `＜` a text message may make of it, and
    /// the keys around them (a Feishu card's, with its signature, being the most).
    pub fn fits(&self, cap: usize) -> bool {
        let mention = &self.mention;
        let mentions: usize = mention
            .mobiles
            .iter()
            .chain(&mention.user_ids)
            .map(|m| 2 * json_len_bound(m) + MENTION_BYTES)
            .sum();
        // A text message's `<` may be written as the three-byte `＜` (`channel::defuse`).
        let defused = 2 * count_bytes(&self.text, |b| b == b'<');
        let buttons: usize = self
            .buttons
            .iter()
            .map(|b| json_len_bound(&b.title) + json_len_bound(&b.url) + BUTTON_BYTES)
            .sum();
        let bound = json_len_bound(&self.text)
            + buttons
            + defused
            + json_len_bound(&self.title)
            + json_len_bound(&self.link)
            + mentions
            + usize::from(mention.all) * MENTION_BYTES
            + FRAME_BYTES;
        bound <= cap || self.size() <= cap
    }
}

/// At least what a mention adds to a message beyond twice its escaped length, in any
/// channel (Feishu's `<at user_id=\"…\">所有人</at>` being the longest).
pub(crate) const MENTION_BYTES: usize = 48;

/// At least what a button adds to an action card beyond its escaped title and URL.
const BUTTON_BYTES: usize = 48;

/// At least what any channel's JSON adds around the title, text and link.
const FRAME_BYTES: usize = 640;

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
    // Over every alert, those a cut leaves out too, once for all the renders below.
    let resolved = profile.mention.resolve(notification);
    let closing = |omitted: usize| match omitted {
        0 => String::new(),
        _ => omitted_line(
            profile.channel,
            profile.message,
            omitted,
            cap,
            &notification.external_url,
        ),
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
        let (title, title_cut) = message_title(
            rendered.title,
            notification.status,
            MAX_TITLE_BYTES.min(cap / 4),
        );
        Ok(Composed {
            channel: profile.channel,
            kind: profile.message,
            title,
            text,
            mention: resolved.mention.clone(),
            mentions_skipped: resolved.skipped,
            status: notification.status,
            link: notification.external_url.to_string(),
            buttons: rendered.buttons.buttons,
            buttons_left_out: rendered.buttons.left_out,
            omitted,
            cut: Cut {
                title: title_cut,
                text: None,
            },
            fallback: rendered.fallback,
        })
    };
    // `fit`: the largest count known to fit, and its message; `over`: the smallest known
    // not to. The first try is small; the next few are the count the measured sizes say
    // fits (a message grows by about the same bytes per alert), then the search bisects, so
    // a poor estimate costs a few renders, never a walk.
    let mut fit: Option<(usize, Composed)> = None;
    let mut over = total + 1;
    let mut keep = total.min(FIRST_TRY);
    let mut last: Option<(usize, usize)> = None;
    let mut estimates = 0;
    loop {
        let composed = attempt(keep)?;
        let fits = composed.fits(cap);
        if fits && keep == total {
            fit = Some((keep, composed));
            break;
        }
        let size = composed.size();
        if fits {
            fit = Some((keep, composed));
        } else {
            over = keep;
        }
        let lower = fit.as_ref().map_or(0, |(k, _)| *k);
        let upper = over.min(total + 1);
        if upper - lower <= 1 {
            break;
        }
        let next = if estimates < MAX_ESTIMATES {
            estimates += 1;
            estimate(keep, size, last, cap)
        } else {
            (lower + upper) / 2
        };
        last = Some((keep, size));
        keep = next.clamp(lower + 1, upper - 1);
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

/// How many of a search's renders are guided by [`estimate`] before it bisects.
const MAX_ESTIMATES: usize = 3;

/// The count of alerts whose message would be `cap` bytes, from a render of `keep` alerts
/// that measured `size`: along the line through the last render too when there is one (the
/// bytes per alert, with the fixed part the headings and closing line take), else in
/// proportion.
fn estimate(keep: usize, size: usize, last: Option<(usize, usize)>, cap: usize) -> usize {
    let proportional = || keep.saturating_mul(cap) / size.max(1);
    match last {
        Some((other, other_size)) if other != keep && other_size != size => {
            let per_alert = (size as f64 - other_size as f64) / (keep as f64 - other as f64);
            if per_alert <= 0.0 {
                return proportional();
            }
            let guess = keep as f64 + (cap as f64 - size as f64) / per_alert;
            // Saturating: a guess past usize is clamped by the caller.
            guess.max(0.0).floor() as usize
        }
        _ => proportional(),
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
/// cap (as a title may): the count must fit beside at least one alert. It is set apart in
/// the marks the channel's client draws ([`Channel::aside`]).
fn omitted_line(
    channel: Channel,
    kind: MessageKind,
    omitted: usize,
    limit: usize,
    external_url: &str,
) -> String {
    let link = match kind {
        MessageKind::Markdown | MessageKind::Card | MessageKind::ActionCard => {
            crate::render::filters::md_url(external_url)
        }
        MessageKind::Text => external_url.to_owned(),
    };
    let linked = !link.is_empty() && json_len_bound(&link) <= limit / 4;
    let name = channel.chinese_name();
    if kind == MessageKind::Text {
        let count = format!("\n\n另有 {omitted} 条告警未显示（消息超过{name} {limit} 字节上限）");
        return match linked {
            true => format!("{count}，全部告警: {link}"),
            false => count,
        };
    }
    let lead = channel.aside(kind);
    let count = format!("{lead}另有 **{omitted}** 条告警未显示（消息超过{name} {limit} 字节上限）");
    match linked {
        true => format!("{count}，[在 Alertmanager 中查看全部]({link})"),
        false => count,
    }
}

/// The title as a message carries it, whatever template made it: never empty, one line
/// (clients show one; each line break or other control character becomes a space) and at most `max` bytes,
/// cut on a character boundary with "…". Also returns the length before a cut, if any.
fn message_title(title: String, status: Status, max: usize) -> (String, Option<usize>) {
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    let title = if title.contains(breaks) {
        title.replace(breaks, " ").trim().to_owned()
    } else {
        title
    };
    // Robots refuse a message without a title (DingTalk's markdown, a Feishu card's header),
    // for good: a title template that renders nothing gets a plain one.
    if title.trim().is_empty() {
        let title = match status {
            Status::Firing => "[故障] 告警通知",
            Status::Resolved => "[恢复] 告警通知",
        };
        return (title.to_owned(), None);
    }
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
        composed.size() <= cap
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
