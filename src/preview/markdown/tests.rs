//! The renderers' common promises: each dialect its own subset, and whatever the text,
//! well-formed HTML of the tags and attribute values the renderers mean to write.

use proptest::prelude::*;

use super::*;

#[test]
fn text_messages_are_escaped() {
    assert_eq!(
        text_to_html("<b>&"),
        "<pre class=\"text-message\">&lt;b&gt;&amp;</pre>"
    );
    assert_eq!(
        text_to_html("'\""),
        "<pre class=\"text-message\">&#39;&quot;</pre>"
    );
}

#[test]
fn a_wecom_text_message_shows_its_mentions_as_chips_and_the_rest_as_written() {
    assert_eq!(
        wecom_text_to_html("<@zhangsan> 请处理 <b> <@<script>>"),
        "<pre class=\"text-message\"><span class=\"mention\">@zhangsan</span> 请处理 &lt;b&gt; &lt;@&lt;script&gt;&gt;</pre>"
    );
}

#[test]
fn a_feishu_text_message_shows_its_mentions_as_chips_and_the_rest_as_written() {
    let html = feishu_text_to_html(
        "<at user_id=\"all\">所有人</at> <at user_id=\"ou_1a\">张三</at> <at user_id=\"ou_2\"></at> <at user_id=\"x\" onclick=y>z</at>",
    );
    assert_eq!(
        html,
        "<pre class=\"text-message\"><span class=\"mention\">@所有人</span> <span class=\"mention\">@张三</span> <span class=\"mention\">@ou_2</span> &lt;at user_id=&quot;x&quot; onclick=y&gt;z&lt;/at&gt;</pre>"
    );
}

#[test]
fn each_dialect_renders_its_own_subset() {
    let text = "### 标题\n- 项";
    assert!(to_html(text, Dialect::DingTalk).contains("<li>项</li>"));
    assert!(to_html(text, Dialect::WeCom).contains("<h3>标题</h3>"));
    assert!(!to_html(text, Dialect::WeCom).contains("<li>"));
    assert!(!to_html(text, Dialect::Feishu).contains("<h3>"));
}

#[test]
fn an_alert_renders_in_wecom_and_in_a_feishu_card_as_their_clients_show_it() {
    let wecom = to_html(
        "## <font color=\"warning\">【故障】1 条告警</font>\n**CPU使用率告警**\n> 级别: <font color=\"warning\">critical</font>\n> 主机: 192.168.10.21:9100\n\n[Prometheus 图表](http://prometheus-0:9090/graph?g0.expr=x&g0.tab=1)\n<@zhangsan>\n",
        Dialect::WeCom,
    );
    assert_eq!(
        wecom,
        "<h2><span class=\"wecom-warning\">【故障】1 条告警</span></h2>\n\
         <p><strong>CPU使用率告警</strong></p>\n\
         <blockquote>级别: <span class=\"wecom-warning\">critical</span><br>主机: 192.168.10.21:9100</blockquote>\n\
         <p><a href=\"http://prometheus-0:9090/graph?g0.expr=x&amp;g0.tab=1\">Prometheus 图表</a><br><span class=\"mention\">@zhangsan</span></p>\n"
    );
    let feishu = to_html(
        "**<font color='red'>CPU使用率告警</font>**\n**级别**: critical\n- 主机: 192.168.10.21:9100\n[Prometheus 图表](http://prometheus-0:9090/graph?g0.expr=x&g0.tab=1)\n<at id=all></at>\n",
        Dialect::Feishu,
    );
    assert_eq!(
        feishu,
        "<p><strong><span class=\"lark-red\">CPU使用率告警</span></strong><br>\
         <strong>级别</strong>: critical<br>- 主机: 192.168.10.21:9100<br>\
         <a href=\"http://prometheus-0:9090/graph?g0.expr=x&amp;g0.tab=1\">Prometheus 图表</a><br>\
         <span class=\"mention\">@所有人</span></p>\n"
    );
}

/// Text that opens syntax and never closes it, twenty kilobytes of it (a message's cap).
const UNCLOSED: [&str; 14] = [
    "** a ",
    "*a ",
    "__ ",
    "~~ ",
    "`` ` ",
    "[",
    "](",
    "[a](",
    "<",
    "<a href='https://x/'>",
    "<at id=all>",
    "<font color='red'>",
    "&",
    "\\",
];

#[test]
fn twenty_kilobytes_of_unclosed_syntax_render_in_a_moment() {
    for pattern in UNCLOSED {
        let text = pattern.repeat(20_000 / pattern.len());
        for dialect in [Dialect::DingTalk, Dialect::WeCom, Dialect::Feishu] {
            let started = std::time::Instant::now();
            let html = to_html(&text, dialect);
            let took = started.elapsed();
            // The render worker's whole budget; in practice it is milliseconds.
            assert!(
                took < crate::sandbox::TIME_LIMIT,
                "{pattern:?} {dialect:?}: {took:?}"
            );
            assert_well_formed(&html, dialect).unwrap();
        }
    }
}

/// The classes the renderers may write: fixed names, never a value from the text.
fn allowed_class(class: &str) -> bool {
    let tag = class.strip_prefix("lark-tag lark-tag-");
    class == "mention"
        || matches!(class, "wecom-info" | "wecom-comment" | "wecom-warning")
        || tag.is_some_and(|c| c.bytes().all(|b| b.is_ascii_lowercase()))
        || class
            .strip_prefix("lark-")
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Whether an element with these attributes is one a renderer means to write.
fn allowed_element(name: &str, attributes: &[(&str, &str)], dialect: Dialect) -> bool {
    let web = |url: &str| {
        let url = url.to_ascii_lowercase();
        url.starts_with("http://")
            || url.starts_with("https://")
            || (dialect == Dialect::DingTalk && url.starts_with("dingtalk://"))
    };
    match (name, attributes) {
        (
            "p" | "br" | "strong" | "em" | "del" | "code" | "blockquote" | "h1" | "h2" | "h3"
            | "h4" | "h5" | "h6" | "ul" | "ol" | "li" | "pre" | "hr",
            [],
        ) => true,
        ("ol", [("start", n)]) => n.bytes().all(|b| b.is_ascii_digit()),
        ("a", [("href", url)]) => web(url),
        ("span", [("class", class)]) => dialect != Dialect::DingTalk && allowed_class(class),
        ("img", [("src", url), ("alt", _)]) => dialect == Dialect::DingTalk && web(url),
        ("font", [("color", colour)]) => {
            let hex = colour.strip_prefix('#').unwrap_or("-");
            dialect == Dialect::DingTalk && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        ("code", [("class", class)]) => {
            dialect == Dialect::DingTalk && class.starts_with("language-")
        }
        _ => false,
    }
}

/// Checks that every tag in `html` is one the renderer means to write, with only the
/// attributes it writes, and that elements nest. DingTalk's `<font>` and `</font>` pass as
/// written, balanced or not (browsers drop a stray one), as they always have.
fn assert_well_formed(html: &str, dialect: Dialect) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').ok_or("a < that opens no tag")? + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let loose_font =
            dialect == Dialect::DingTalk && (tag == "/font" || tag.starts_with("font "));
        if let Some(name) = tag.strip_prefix('/').filter(|_| !loose_font) {
            if open.pop() != Some(name) {
                return Err(format!("</{name}> closes nothing open in {html}"));
            }
            continue;
        }
        if tag == "/font" && loose_font {
            continue;
        }
        let (tag, void) = match tag.strip_suffix(" /") {
            Some(tag) => (tag, true),
            None => (tag, matches!(tag, "br" | "hr")),
        };
        let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut attributes = Vec::new();
        while !attrs.is_empty() {
            let (key, value) = attrs.split_once("=\"").ok_or(format!("<{tag}>"))?;
            let (value, after) = value.split_once('"').ok_or(format!("<{tag}>"))?;
            attributes.push((key, value));
            attrs = after.strip_prefix(' ').unwrap_or(after);
        }
        if !allowed_element(name, &attributes, dialect) {
            return Err(format!("<{tag}> in {html}"));
        }
        if !void && !loose_font {
            open.push(name);
        }
    }
    match open.is_empty() {
        true => Ok(()),
        false => Err(format!("{open:?} left open in {html}")),
    }
}

/// Pieces of syntax, hostile and not, that random messages are made of.
const PIECES: [&str; 52] = [
    "**",
    "*",
    "__",
    "_",
    "~~",
    "`",
    "``",
    "[",
    "]",
    "(",
    ")",
    "](",
    "\\",
    "\n",
    "\n\n",
    "> ",
    "# ",
    "### ",
    "- ",
    "1. ",
    "<",
    ">",
    "</font>",
    "<font color=\"info\">",
    "<font color='red'>",
    "<font color=#FF0000>",
    "<font color=\"red\" onclick=x>",
    "<@u1>",
    "<at id=all></at>",
    "<at id=ou_1>",
    "</at>",
    "<a href='https://x/'>",
    "<a href='javascript:x'>",
    "</a>",
    "<a>",
    "<text_tag color='red'>",
    "</text_tag>",
    "&#60;",
    "&lt;",
    "&",
    "javascript:alert(1)",
    "https://e.com/",
    "data:x",
    "<script>",
    "<img src=x onerror=y>",
    "\"",
    "'",
    "x",
    "中",
    " ",
    "![i](",
    "[a](https://e.com/)",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_message_renders_to_well_formed_html_of_known_tags_in_every_dialect(
        pieces in prop::collection::vec(prop::sample::select(&PIECES[..]), 0..40)
    ) {
        let text = pieces.concat();
        for dialect in [Dialect::DingTalk, Dialect::WeCom, Dialect::Feishu] {
            prop_assert_eq!(assert_well_formed(&to_html(&text, dialect), dialect), Ok(()));
        }
        for html in [text_to_html(&text), wecom_text_to_html(&text), feishu_text_to_html(&text)] {
            let body = html
                .strip_prefix("<pre class=\"text-message\">")
                .and_then(|html| html.strip_suffix("</pre>"));
            prop_assert!(body.is_some());
            prop_assert_eq!(assert_well_formed(body.unwrap_or_default(), Dialect::WeCom), Ok(()));
        }
    }
}
