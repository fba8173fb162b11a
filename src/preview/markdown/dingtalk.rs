//! DingTalk markdown to HTML: what a DingTalk group shows. Only the subset
//! DingTalk knows is enabled (no tables, no strikethrough), the only raw HTML let through
//! is DingTalk's `<font color=#RRGGBB>` (any other tag is shown as text), and links and
//! images keep their tag only for web and DingTalk URLs, so nothing in an alert can run in
//! the page.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};
use url::Url;

/// The URL schemes a link or image in the page may use: web pages, and DingTalk's own
/// `dingtalk://` links that open a page in the client. Anything else (`javascript:`,
/// `data:`, `vbscript:`, `file:`…) could run script or read local files when clicked.
const SCHEMES: [&str; 3] = ["http", "https", "dingtalk"];

/// The HTML a DingTalk client would show for `markdown`.
pub(super) fn to_html(markdown: &str) -> String {
    // For each link or image open at this point: whether its tag was kept. Links cannot
    // nest, but an image can sit inside a link (or another image's text).
    let mut open: Vec<bool> = Vec::new();
    let events = Parser::new_ext(markdown, Options::empty()).filter_map(|event| {
        if let Some(url) = destination(&event) {
            let keep = allowed(url);
            open.push(keep);
            return keep.then_some(event);
        }
        match event {
            Event::End(TagEnd::Link | TagEnd::Image) => {
                open.pop().unwrap_or(false).then_some(event)
            }
            Event::Html(raw) | Event::InlineHtml(raw) => Some(match font_tag(&raw) {
                Some(tag) => Event::InlineHtml(CowStr::from(tag)),
                None => Event::Text(raw),
            }),
            other => Some(other),
        }
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, events);
    out
}

/// Where a link or image points, as the parser decoded it (entities and escapes resolved).
fn destination<'a>(event: &'a Event<'_>) -> Option<&'a str> {
    match event {
        Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => Some(dest_url),
        _ => None,
    }
}

/// Whether a link or image may keep its URL. Decided on the URL as a browser parses it
/// (WHATWG rules: scheme case, leading spaces and controls, tabs and newlines inside), not
/// on the text's prefix, so `JaVaScRiPt:` and `java\tscript:` are seen for what they are.
/// A relative URL has no meaning in a DingTalk message and is refused too. A refused link
/// shows its text, a refused image its description.
fn allowed(url: &str) -> bool {
    Url::parse(url).is_ok_and(|url| SCHEMES.contains(&url.scheme()))
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

    /// Links that would run script or load local data when clicked, spelled as an attacker
    /// would spell them to slip past a prefix check.
    const HOSTILE_LINKS: [&str; 14] = [
        "[a](javascript:alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "[a](<java\tscript:alert(1)>)",
        "[a](java&#9;script:alert(1))",
        "[a](&#106;avascript:alert(1))",
        "[a](&#x6A;&#x61;vascript:alert(1))",
        "[a](&#1;javascript:alert(1))",
        "[a](<  javascript:alert(1)>)",
        "[a](vbscript:msgbox(1))",
        "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[a](file:///etc/passwd)",
        "[a](/preview/ops)",
        "<javascript:alert(1)>",
        "[a][r]\n\n[r]: javascript:alert(1)",
    ];

    #[test]
    fn links_to_anything_but_web_and_dingtalk_urls_lose_their_tag_and_keep_their_text() {
        for markdown in HOSTILE_LINKS {
            let html = to_html(markdown);
            assert!(!html.contains("<a"), "{markdown:?} gave {html}");
            assert!(!html.contains("href"), "{markdown:?} gave {html}");
            let shown = if markdown.starts_with('<') {
                "alert(1)"
            } else {
                "a"
            };
            assert!(html.contains(shown), "{markdown:?} lost its text: {html}");
        }
    }

    #[test]
    fn images_from_data_and_script_urls_show_only_their_description() {
        for markdown in [
            "![i](data:image/svg+xml;base64,PHN2Zy8+)",
            "![i](DATA:image/png;base64,AAAA)",
            "![i](javascript:alert(1))",
            "![i](&#100;ata:image/png;base64,AAAA)",
        ] {
            let html = to_html(markdown);
            assert_eq!(html, "<p>i</p>\n", "{markdown:?}");
        }
    }

    #[test]
    fn web_and_dingtalk_links_and_images_keep_their_tags() {
        let html = to_html(
            "[w](HTTPS://example.com/a?b=1&c=2) [d](dingtalk://dingtalkclient/page/link?url=x) ![i](http://example.com/i.png)",
        );
        assert!(
            html.contains("<a href=\"HTTPS://example.com/a?b=1&amp;c=2\">w</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"dingtalk://dingtalkclient/page/link?url=x\">d</a>"),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"http://example.com/i.png\" alt=\"i\" />"),
            "{html}"
        );
    }

    #[test]
    fn a_refused_link_around_a_web_image_keeps_the_image_and_drops_the_link() {
        let html = to_html("[![i](https://example.com/i.png)](javascript:alert(1)) after");
        assert_eq!(
            html,
            "<p><img src=\"https://example.com/i.png\" alt=\"i\" /> after</p>\n"
        );
    }

    #[test]
    fn tables_are_not_markdown_in_dingtalk() {
        assert!(!to_html("| a | b |\n|---|---|\n| 1 | 2 |").contains("<table"));
    }
}
