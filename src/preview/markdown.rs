//! A message's text as each chat client shows it, as HTML for the preview page. Each client
//! renders its own subset of markdown, so each has its own renderer:
//!
//! | dialect | renderer | what it shows |
//! |---|---|---|
//! | [`Dialect::DingTalk`] | `dingtalk`: pulldown-cmark, DingTalk's subset | headings, lists, quotes, links, images, `<font color=#RRGGBB>` |
//! | [`Dialect::WeCom`] | `wecom`: line by line | headings, bold, links, inline code, quotes, three named colours, `<@userid>` |
//! | [`Dialect::Feishu`] | `feishu`: line by line | a card's `lark_md`: bold, italic, strikethrough, links, named colours, `<at>` |
//!
//! Whatever the dialect, the page runs nothing from an alert: every character of the text
//! is escaped unless it is syntax the renderer turns into one of its own fixed tags, the only
//! attribute values written are fixed class names and web URLs, and links keep their tag
//! only for the schemes the client opens.

mod dingtalk;
mod feishu;
mod inline;
mod syntax;
mod wecom;

use url::Url;

use syntax::Next;

/// Which client's markdown a text is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A DingTalk robot's `markdown` message.
    DingTalk,
    /// A WeCom group robot's `markdown` message (not `markdown_v2`).
    WeCom,
    /// The `lark_md` text of a Feishu/Lark message card.
    Feishu,
}

/// The HTML the dialect's client would show for `markdown`.
pub fn to_html(markdown: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::DingTalk => dingtalk::to_html(markdown),
        Dialect::WeCom => wecom::to_html(markdown),
        Dialect::Feishu => feishu::to_html(markdown),
    }
}

/// Plain text as a text message shows it, in any channel: every character as written.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::from("<pre class=\"text-message\">");
    escape_into(&mut out, text);
    out.push_str("</pre>");
    out
}

/// A WeCom text message: plain text, except that `<@userid>` mentions the member, shown as
/// `@userid` (WeCom's text and markdown messages both take that syntax).
pub fn wecom_text_to_html(text: &str) -> String {
    text_with_mentions(text, wecom::mention)
}

/// A Feishu text message: plain text, except that `<at user_id="…">name</at>` mentions a
/// member (or everyone, for `all`), shown as `@name`.
pub fn feishu_text_to_html(text: &str) -> String {
    text_with_mentions(text, feishu::text_mention)
}

/// Plain text with the mentions `mention` recognises (given a tag and the text after it:
/// the name to show and the bytes after the tag it takes) shown as mention chips.
fn text_with_mentions(text: &str, mention: fn(&str, &str) -> Option<(String, usize)>) -> String {
    let mut out = String::from("<pre class=\"text-message\">");
    let mut tag_end = Next::new(">");
    let mut at = 0;
    while let Some(open) = text[at..].find('<').map(|i| i + at) {
        escape_into(&mut out, &text[at..open]);
        let end = tag_end
            .at_or_after(text, open)
            .filter(|end| end - open < syntax::TAG_WINDOW);
        let found =
            end.and_then(|end| mention(&text[open..=end], &text[end + 1..]).map(|m| (m, end)));
        match found {
            Some(((name, more), end)) => {
                push_mention(&mut out, &name);
                at = end + 1 + more;
            }
            None => {
                out.push_str("&lt;");
                at = open + 1;
            }
        }
    }
    escape_into(&mut out, &text[at..]);
    out.push_str("</pre>");
    out
}

/// A mention as the clients show it: a chip with `@` and the name.
fn push_mention(out: &mut String, name: &str) {
    out.push_str("<span class=\"mention\">@");
    escape_into(out, name);
    out.push_str("</span>");
}

/// Appends `text` with every character that means something in HTML, in text or in a quoted
/// attribute, written as an entity.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// `url` parsed as a browser parses it (WHATWG rules: scheme case, leading blanks and
/// controls, tabs and newlines inside), when it is a web URL: WeCom and Feishu open only
/// those. Anything else (`javascript:`, `data:`, relative paths) gets no link.
fn web_url(url: &str) -> Option<Url> {
    Url::parse(url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests;
