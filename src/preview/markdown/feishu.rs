//! Feishu/Lark `lark_md` to HTML: what a message card shows for its text. Feishu documents
//! the subset in "普通文本组件 / lark_md 支持的 Markdown 语法" (open.larksuite.com/document
//! /uAjLw4CM/ukzMukzMukzM/feishu-cards/card-json-v2-components/content-components/plain-text):
//! `\n` line breaks, `*italic*`, `**bold**` or `__bold__`, `~~strikethrough~~`,
//! `[text](url)` and `<a href='url'></a>` (web URLs only), `<at id=…></at>` mentions,
//! `<font color=…>` in the card palette's named colours, `<text_tag color=…>` labels, and
//! HTML entities for characters that would be syntax. It has no headings (a `#` line is
//! text), no lists, quotes, code or images: those belong to the card's `markdown` element.

use super::inline::{Inline, Kind, Rules, Tag};
use super::syntax::{attribute, find_within};

const RULES: Rules = Rules {
    code: false,
    italic: true,
    strike: true,
    underscore_bold: true,
    entities: true,
    tag,
};

/// The card palette's base colours for `<font color>` (a `-50` … `-900` shade draws as its
/// base), each drawn by a fixed class; `default` draws as the text around it.
const FONT_COLOURS: [(&str, &str); 14] = [
    ("blue", "lark-blue"),
    ("carmine", "lark-carmine"),
    ("green", "lark-green"),
    ("grey", "lark-grey"),
    ("indigo", "lark-indigo"),
    ("lime", "lark-lime"),
    ("orange", "lark-orange"),
    ("purple", "lark-purple"),
    ("red", "lark-red"),
    ("sunflower", "lark-sunflower"),
    ("turquoise", "lark-turquoise"),
    ("violet", "lark-violet"),
    ("wathet", "lark-wathet"),
    ("yellow", "lark-yellow"),
];

/// `<text_tag color>`'s colours, each drawn by a fixed class.
const TAG_COLOURS: [(&str, &str); 13] = [
    ("neutral", "lark-tag lark-tag-neutral"),
    ("blue", "lark-tag lark-tag-blue"),
    ("turquoise", "lark-tag lark-tag-turquoise"),
    ("lime", "lark-tag lark-tag-lime"),
    ("orange", "lark-tag lark-tag-orange"),
    ("violet", "lark-tag lark-tag-violet"),
    ("indigo", "lark-tag lark-tag-indigo"),
    ("wathet", "lark-tag lark-tag-wathet"),
    ("green", "lark-tag lark-tag-green"),
    ("yellow", "lark-tag lark-tag-yellow"),
    ("red", "lark-tag lark-tag-red"),
    ("purple", "lark-tag lark-tag-purple"),
    ("carmine", "lark-tag lark-tag-carmine"),
];

/// The HTML a Feishu client would show for a card's `lark_md` text.
pub(super) fn to_html(markdown: &str) -> String {
    let mut inline = Inline::new(&RULES);
    for (index, line) in markdown.trim_end().split('\n').enumerate() {
        if index > 0 {
            inline.line_break();
        }
        inline.line(line.strip_suffix('\r').unwrap_or(line));
    }
    if inline.is_empty() {
        return String::new();
    }
    format!("<p>{}</p>\n", inline.take())
}

/// A tag `lark_md` knows: a colour, a label, their ends, a mention or a link.
fn tag<'a>(raw: &'a str, after: &'a str) -> Option<(Tag<'a>, usize)> {
    if raw.eq_ignore_ascii_case("</font>") {
        return Some((Tag::Close(Kind::Font), 0));
    }
    if raw.eq_ignore_ascii_case("</text_tag>") {
        return Some((Tag::Close(Kind::TextTag), 0));
    }
    if let Some(colour) = attribute(raw, "font", "color") {
        if colour == "default" {
            return Some((Tag::Open(Kind::Font, None), 0));
        }
        let base = colour.split_once('-').map_or(colour, |(base, shade)| {
            let digits =
                (2..=4).contains(&shade.len()) && shade.bytes().all(|b| b.is_ascii_digit());
            if digits { base } else { colour }
        });
        let (_, class) = FONT_COLOURS.iter().find(|(name, _)| *name == base)?;
        return Some((Tag::Open(Kind::Font, Some(class)), 0));
    }
    if let Some(colour) = attribute(raw, "text_tag", "color") {
        let (_, class) = TAG_COLOURS.iter().find(|(name, _)| *name == colour)?;
        return Some((Tag::Open(Kind::TextTag, Some(class)), 0));
    }
    if let Some(id) = attribute(raw, "at", "id") {
        return at(id, after).map(|(name, taken)| (Tag::Mention(name), taken));
    }
    link(raw, after)
}

/// `<at id=…>` followed by anything up to `</at>`: who is mentioned, and the bytes after
/// the opening tag that the mention takes. Feishu shows the member's name, which only
/// Feishu knows: the page shows the id.
fn at(id: &str, after: &str) -> Option<(String, usize)> {
    let end = find_within(after, "</at>")?;
    let name = if id == "all" { "所有人" } else { id };
    valid_id(id).then(|| (name.to_owned(), end + "</at>".len()))
}

/// An open_id (`ou_…`), user_id or `all`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `<a href='url'>text</a>`, or `<a>url</a>`.
fn link<'a>(raw: &'a str, after: &'a str) -> Option<(Tag<'a>, usize)> {
    let end = find_within(after, "</a>")?;
    let text = &after[..end];
    let url = if raw.eq_ignore_ascii_case("<a>") {
        text
    } else {
        attribute(raw, "a", "href")?
    };
    Some((Tag::Link { url, text }, end + "</a>".len()))
}

/// `<at user_id="…">name</at>`, as a text message writes a mention: the name to show (the
/// id when no name is given) and the bytes after the opening tag it takes.
pub(super) fn text_mention(raw: &str, after: &str) -> Option<(String, usize)> {
    let id = attribute(raw, "at", "user_id").filter(|id| valid_id(id))?;
    let end = find_within(after, "</at>")?;
    let name = match &after[..end] {
        "" if id == "all" => "所有人",
        "" => id,
        name if name.contains(['<', '>']) => return None,
        name => name,
    };
    Some((name.to_owned(), end + "</at>".len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bold_italic_strikethrough_and_links_render() {
        let html = to_html("**粗** __也粗__ *斜* ~~删~~ [链接](https://open.feishu.cn/a?b=1&c=2)");
        assert_eq!(
            html,
            "<p><strong>粗</strong> <strong>也粗</strong> <em>斜</em> <del>删</del> <a href=\"https://open.feishu.cn/a?b=1&amp;c=2\">链接</a></p>\n"
        );
    }

    #[test]
    fn every_newline_is_a_line_break() {
        assert_eq!(to_html("一\n二\n\n三\n"), "<p>一<br>二<br><br>三</p>\n");
    }

    #[test]
    fn headings_lists_quotes_code_and_images_are_text() {
        let html = to_html("# 标题\n- 项\n> 引\n`c`\n![i](img_v2_x)");
        assert_eq!(html, "<p># 标题<br>- 项<br>&gt; 引<br>`c`<br>!i</p>\n");
    }

    #[test]
    fn named_colours_draw_with_fixed_classes_and_shades_as_their_base() {
        let html = to_html(
            "<font color='red'>红</font><font color=\"green\">绿</font><font color=grey-600>灰</font><font color='default'>默认</font>",
        );
        assert_eq!(
            html,
            "<p><span class=\"lark-red\">红</span><span class=\"lark-green\">绿</span><span class=\"lark-grey\">灰</span>默认</p>\n"
        );
    }

    #[test]
    fn mentions_show_as_chips() {
        let html = to_html("<at id=all></at> <at id=ou_3c1a></at> <at id=\"ou_2\">x</at>");
        assert_eq!(
            html,
            "<p><span class=\"mention\">@所有人</span> <span class=\"mention\">@ou_3c1a</span> <span class=\"mention\">@ou_2</span></p>\n"
        );
    }

    #[test]
    fn a_tag_link_shows_its_text_or_its_url() {
        let html = to_html(
            "<a href='https://open.feishu.cn'>开放平台</a> <a>https://example.com/</a> <a href='https://x.cn/__a__'></a>",
        );
        assert_eq!(
            html,
            "<p><a href=\"https://open.feishu.cn/\">开放平台</a> <a href=\"https://example.com/\">https://example.com/</a> <a href=\"https://x.cn/__a__\">https://x.cn/__a__</a></p>\n"
        );
    }

    #[test]
    fn text_tags_draw_as_labels() {
        assert_eq!(
            to_html("<text_tag color='red'>P0</text_tag>"),
            "<p><span class=\"lark-tag lark-tag-red\">P0</span></p>\n"
        );
    }

    #[test]
    fn entities_show_their_character_and_never_open_a_tag() {
        assert_eq!(
            to_html("&#42;星&#42; &#60;script&#62; &lt;b&gt; &nbsp;x & y &#0;"),
            "<p>*星* &lt;script&gt; &lt;b&gt; \u{a0}x &amp; y &amp;#0;</p>\n"
        );
    }

    #[test]
    fn hostile_tags_links_colours_and_mentions_are_shown_as_text() {
        let html = to_html(
            "<script>alert(1)</script> <img src=x onerror=alert(1)> [a](javascript:alert(1)) \
             <a href='javascript:alert(1)'>b</a> <a href='https://x/' onclick='y'>c</a> \
             <font color=\"red\" onclick=alert(1)>d</font> <font color=expression(alert(1))>e</font> \
             <font color='#FF0000'>f</font> <at id=\"x onclick=y\"></at> <text_tag color='red;x'>g</text_tag>",
        );
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; a \
             b &lt;a href=&#39;https://x/&#39; onclick=&#39;y&#39;&gt;c&lt;/a&gt; \
             &lt;font color=&quot;red&quot; onclick=alert(1)&gt;d &lt;font color=expression(alert(1))&gt;e \
             &lt;font color=&#39;#FF0000&#39;&gt;f &lt;at id=&quot;x onclick=y&quot;&gt;&lt;/at&gt; &lt;text_tag color=&#39;red;x&#39;&gt;g</p>\n"
        );
    }
}
