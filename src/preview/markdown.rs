//! DingTalk markdown to HTML, for the preview page: what a group shows. Only the subset
//! DingTalk knows is enabled (no tables, no strikethrough), and the only raw HTML let through
//! is DingTalk's `<font color=#RRGGBB>`; any other tag is shown as text, so nothing in an
//! alert can run in the page.

use pulldown_cmark::{CowStr, Event, Options, Parser, html};

/// The HTML a DingTalk client would show for `markdown`.
pub fn to_html(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::empty()).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => match font_tag(&raw) {
            Some(tag) => Event::InlineHtml(CowStr::from(tag)),
            None => Event::Text(raw),
        },
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, events);
    out
}

/// `<font color=#FF0000>` (quotes optional) or `</font>`, normalised; anything else is None.
fn font_tag(raw: &str) -> Option<String> {
    let tag = raw.trim();
    if tag.eq_ignore_ascii_case("</font>") {
        return Some("</font>".into());
    }
    let color = tag
        .strip_prefix("<font color=")
        .or_else(|| tag.strip_prefix("<FONT color="))?
        .strip_suffix('>')?
        .trim_matches(|c| c == '"' || c == '\'');
    let hex = color.strip_prefix('#')?;
    let valid = matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit());
    valid.then(|| format!("<font color=\"#{hex}\">"))
}

/// Plain text as DingTalk shows a text message.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::from("<pre class=\"text-message\">");
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out.push_str("</pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_markdown_renders() {
        let html = to_html("### 标题\n\n- **粗体** [链接](http://x)\n\n> 引用");
        assert!(html.contains("<h3>标题</h3>"), "{html}");
        assert!(html.contains("<strong>粗体</strong>"), "{html}");
        assert!(html.contains("<a href=\"http://x\">链接</a>"), "{html}");
        assert!(html.contains("<blockquote>"), "{html}");
    }

    #[test]
    fn font_colours_pass_and_other_html_does_not() {
        let html = to_html(
            "<font color=#FF0000>故障</font> <script>alert(1)</script> <img src=x onerror=y>",
        );
        assert!(
            html.contains("<font color=\"#FF0000\">故障</font>"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn tables_are_not_markdown_in_dingtalk() {
        assert!(!to_html("| a | b |\n|---|---|\n| 1 | 2 |").contains("<table"));
    }

    #[test]
    fn text_messages_are_escaped() {
        assert_eq!(
            text_to_html("<b>&"),
            "<pre class=\"text-message\">&lt;b&gt;&amp;</pre>"
        );
    }
}
