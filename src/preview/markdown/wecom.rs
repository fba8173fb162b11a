//! WeCom group-robot markdown to HTML: what a WeCom group shows for a `markdown` message.
//! WeCom documents a small subset ("消息推送配置说明", developer.work.weixin.qq.com
//! /document/path/99110): `#`–`######` headings (a blank after the `#`s), `**bold**`,
//! `[links](url)`, `` `inline code` `` on one line, `> quotes`, and
//! `<font color="info|comment|warning">` (green, grey, orange-red); `<@userid>` mentions a
//! member. Lists, images, tables, italics and every other tag are `markdown_v2`'s or no one's,
//! so they are shown as the characters written. Each line is a line: a newline breaks it.

use super::inline::{Inline, Kind, Rules, Tag};
use super::syntax::attribute;

const RULES: Rules = Rules {
    code: true,
    italic: false,
    strike: false,
    underscore_bold: false,
    entities: false,
    tag,
};

/// WeCom's three colours, each drawn by a fixed class.
const COLOURS: [(&str, &str); 3] = [
    ("info", "wecom-info"),
    ("comment", "wecom-comment"),
    ("warning", "wecom-warning"),
];

/// The block a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Paragraph,
    Quote,
}

/// The HTML a WeCom client would show for `markdown`.
pub(super) fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 2);
    let mut inline = Inline::new(&RULES);
    let mut block = None;
    for line in markdown.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        let (kind, text) = if line.is_empty() {
            (None, line)
        } else if let Some((level, text)) = heading(line) {
            end(&mut out, &mut inline, block.take());
            inline.line(text);
            out.push_str(&format!("<h{level}>{}</h{level}>\n", inline.take()));
            continue;
        } else if let Some(text) = line.strip_prefix('>') {
            (Some(Block::Quote), text.strip_prefix(' ').unwrap_or(text))
        } else {
            (Some(Block::Paragraph), line)
        };
        if kind != block {
            end(&mut out, &mut inline, block.take());
            block = kind;
        } else if kind.is_some() {
            inline.line_break();
        }
        inline.line(text);
    }
    end(&mut out, &mut inline, block);
    out
}

/// Writes the block that just ended, if any.
fn end(out: &mut String, inline: &mut Inline<'_>, block: Option<Block>) {
    let html = inline.take();
    match block {
        Some(Block::Paragraph) => out.push_str(&format!("<p>{html}</p>\n")),
        Some(Block::Quote) => out.push_str(&format!("<blockquote>{html}</blockquote>\n")),
        None => {}
    }
}

/// `### text`: the level and the text.
fn heading(line: &str) -> Option<(usize, &str)> {
    let text = line.trim_start_matches('#');
    let level = line.len() - text.len();
    let text = text.strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, text))
}

/// A tag WeCom markdown knows: a colour, its end, or a mention.
fn tag<'a>(raw: &'a str, _after: &'a str) -> Option<(Tag<'a>, usize)> {
    if raw.eq_ignore_ascii_case("</font>") {
        return Some((Tag::Close(Kind::Font), 0));
    }
    if let Some(colour) = attribute(raw, "font", "color") {
        let (_, class) = COLOURS.iter().find(|(name, _)| *name == colour)?;
        return Some((Tag::Open(Kind::Font, Some(class)), 0));
    }
    mention(raw, "").map(|(name, _)| (Tag::Mention(name), 0))
}

/// `<@userid>`: the user id (WeCom's are letters, digits and `_ - . @`); it takes nothing
/// after the tag.
pub(super) fn mention(raw: &str, _after: &str) -> Option<(String, usize)> {
    let id = raw.strip_prefix("<@")?.strip_suffix('>')?;
    let valid = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
    valid.then(|| (id.to_owned(), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_bold_links_code_and_quotes_render() {
        let html = to_html(
            "### 标题\n**粗体** [链接](https://example.com/a?b=1&c=2) `code`\n> 引用一\n> 引用二",
        );
        assert_eq!(
            html,
            "<h3>标题</h3>\n<p><strong>粗体</strong> <a href=\"https://example.com/a?b=1&amp;c=2\">链接</a> <code>code</code></p>\n<blockquote>引用一<br>引用二</blockquote>\n"
        );
    }

    #[test]
    fn each_newline_breaks_the_line_and_a_blank_line_ends_the_paragraph() {
        assert_eq!(to_html("一\n二\n\n三\n"), "<p>一<br>二</p>\n<p>三</p>\n");
    }

    #[test]
    fn the_three_named_colours_draw_with_fixed_classes() {
        let html = to_html(
            "<font color=\"info\">绿</font><font color=\"comment\">灰</font><font color=\"warning\">橙红</font>",
        );
        assert_eq!(
            html,
            "<p><span class=\"wecom-info\">绿</span><span class=\"wecom-comment\">灰</span><span class=\"wecom-warning\">橙红</span></p>\n"
        );
    }

    #[test]
    fn a_colour_runs_over_line_breaks_until_its_block_ends() {
        assert_eq!(
            to_html("<font color=\"warning\">一\n二\n\n三</font>"),
            "<p><span class=\"wecom-warning\">一<br>二</span></p>\n<p>三</p>\n"
        );
    }

    #[test]
    fn lists_images_tables_and_italics_are_shown_as_written() {
        let html = to_html("- 项\n1. 项\n![i](https://example.com/i.png)\n| a |\n*斜*\n---");
        assert_eq!(
            html,
            "<p>- 项<br>1. 项<br>!<a href=\"https://example.com/i.png\">i</a><br>| a |<br>*斜*<br>---</p>\n"
        );
    }

    #[test]
    fn a_hash_without_a_blank_is_no_heading() {
        assert_eq!(to_html("#标题\n####### 七"), "<p>#标题<br>####### 七</p>\n");
    }

    #[test]
    fn mentions_show_as_chips() {
        assert_eq!(
            to_html("<@zhangsan> 请处理"),
            "<p><span class=\"mention\">@zhangsan</span> 请处理</p>\n"
        );
    }

    #[test]
    fn hex_colours_and_other_tags_are_text() {
        let html = to_html("<font color=#FF0000>红</font> <b>粗</b> <div>");
        assert_eq!(
            html,
            "<p>&lt;font color=#FF0000&gt;红 &lt;b&gt;粗&lt;/b&gt; &lt;div&gt;</p>\n"
        );
    }

    #[test]
    fn hostile_tags_links_and_colours_are_shown_as_text() {
        let html = to_html(
            "<script>alert(1)</script> <img src=x onerror=alert(1)> [a](javascript:alert(1)) \
             [b](JaVaScRiPt:alert(1)) <font color=\"info\" onclick=alert(1)>x</font> \
             <font color=expression(alert(1))>y</font> <@a\"onclick=b> [c](data:text/html,x)",
        );
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; a b \
             &lt;font color=&quot;info&quot; onclick=alert(1)&gt;x &lt;font color=expression(alert(1))&gt;y \
             &lt;@a&quot;onclick=b&gt; c</p>\n"
        );
    }
}
