//! The inline layer of the line-by-line renderers (WeCom, Feishu): emphasis, code spans,
//! links and the dialect's own tags within a line, written as HTML. Nothing of the text is
//! written unescaped: syntax becomes one of the fixed tags below, and everything else,
//! including any tag the dialect does not know, is shown as the characters it is.
//!
//! Unlike CommonMark, emphasis opens only when it closes on the same line (chat clients
//! draw a message line by line), while a dialect's coloured spans may run over line breaks
//! until their block ends; whatever is still open then is closed, so the HTML is always
//! well nested.

use super::syntax::{Lookahead, entity, may_open};
use super::{escape_into, push_mention, web_url};

/// What one dialect's inline syntax includes.
pub(super) struct Rules {
    /// `` `code` `` spans.
    pub code: bool,
    /// `*italic*`.
    pub italic: bool,
    /// `~~strikethrough~~`.
    pub strike: bool,
    /// `__bold__` as well as `**bold**`.
    pub underscore_bold: bool,
    /// HTML entities (`&#60;`, `&nbsp;`) stand for their character.
    pub entities: bool,
    /// The dialect's raw tags: given a tag (from `<` to `>`) and the rest of the line after
    /// it, what it is and how many bytes of that rest it takes too; None shows the `<` as
    /// text.
    pub tag: for<'a> fn(&'a str, &'a str) -> Option<(Tag<'a>, usize)>,
}

/// A raw tag a dialect knows.
pub(super) enum Tag<'a> {
    /// Opens a span of this kind, drawn with the class (None: drawn as the text around it).
    Open(Kind, Option<&'static str>),
    /// Closes the innermost open span of this kind; ignored when none is open.
    Close(Kind),
    /// Mentions someone: the name to show after `@`.
    Mention(String),
    /// A link written as a tag: where it points, and its text (shown as the URL when empty).
    Link { url: &'a str, text: &'a str },
}

/// Which tag a span came from, so that a closing tag closes only its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `<font color=…>`.
    Font,
    /// Feishu's `<text_tag color=…>`.
    TextTag,
}

/// An element the renderer has opened and not yet closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `<strong>`, opened by this delimiter (`**` or `__`).
    Strong(&'static str),
    /// `<em>`.
    Em,
    /// `<del>`.
    Del,
    /// A dialect's span; with no class, nothing was written for it.
    Span(Kind, Option<&'static str>),
}

impl Open {
    fn is_delimited(self) -> bool {
        !matches!(self, Open::Span(..))
    }

    fn end_tag(self) -> &'static str {
        match self {
            Open::Strong(_) => "</strong>",
            Open::Em => "</em>",
            Open::Del => "</del>",
            Open::Span(_, Some(_)) => "</span>",
            Open::Span(_, None) => "",
        }
    }
}

/// The HTML of one block (a paragraph, a heading, a quote) being written line by line.
pub(super) struct Inline<'r> {
    rules: &'r Rules,
    out: String,
    open: Vec<Open>,
    /// False inside a link's text: links do not nest.
    links: bool,
}

impl<'r> Inline<'r> {
    pub(super) fn new(rules: &'r Rules) -> Self {
        Inline {
            rules,
            out: String::new(),
            open: Vec::new(),
            links: true,
        }
    }

    /// Whether nothing has been written since the block began.
    pub(super) fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// A line break inside the block.
    pub(super) fn line_break(&mut self) {
        self.out.push_str("<br>");
    }

    /// The block's HTML, with everything still open closed; the next block starts empty.
    pub(super) fn take(&mut self) -> String {
        self.close_from(0);
        std::mem::take(&mut self.out)
    }

    /// Writes one line's text.
    pub(super) fn line(&mut self, line: &str) {
        let mut look = Lookahead::new(line);
        let mut at = 0;
        while let Some(c) = line[at..].chars().next() {
            let rest = &line[at..];
            at += match c {
                '\\' => self.escape(rest),
                '`' if self.rules.code => self.code(rest),
                '*' | '_' | '~' => self.delimiter(&look, line, at),
                '[' if self.links => self.link(&mut look, line, at),
                '<' => self.tag(&mut look, line, at),
                '&' if self.rules.entities => self.entity(rest),
                _ => {
                    self.text(&rest[..c.len_utf8()]);
                    c.len_utf8()
                }
            };
        }
        // Emphasis never runs past its line; a colour may.
        if let Some(first) = self.open.iter().position(|open| open.is_delimited()) {
            self.close_from(first);
        }
    }

    fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// Closes every element from `index` of the open stack up, innermost first.
    fn close_from(&mut self, index: usize) {
        while self.open.len() > index {
            if let Some(open) = self.open.pop() {
                self.out.push_str(open.end_tag());
            }
        }
    }

    /// `\` before ASCII punctuation shows that character as itself, as CommonMark does.
    fn escape(&mut self, rest: &str) -> usize {
        match rest[1..].chars().next() {
            Some(c) if c.is_ascii_punctuation() => {
                self.text(&rest[1..2]);
                2
            }
            _ => {
                self.text("\\");
                1
            }
        }
    }

    /// A code span: a run of backticks, up to the next run of the same length.
    fn code(&mut self, rest: &str) -> usize {
        let run = rest.len() - rest.trim_start_matches('`').len();
        let after = &rest[run..];
        let mut from = 0;
        while let Some(start) = after[from..].find('`').map(|i| i + from) {
            let len = after[start..].len() - after[start..].trim_start_matches('`').len();
            if len == run && start > 0 {
                self.out.push_str("<code>");
                self.text(&after[..start]);
                self.out.push_str("</code>");
                return run + start + len;
            }
            from = start + len;
        }
        self.text(&rest[..run]);
        run
    }

    /// `**`, `__`, `~~` or `*`: closes its element when open, opens it when it closes later
    /// on the line, and is text otherwise.
    fn delimiter(&mut self, look: &Lookahead, line: &str, at: usize) -> usize {
        let (before, rest) = (line[..at].chars().next_back(), &line[at..]);
        let (delimiter, element) = if rest.starts_with("**") {
            ("**", Open::Strong("**"))
        } else if rest.starts_with("__") && self.rules.underscore_bold {
            ("__", Open::Strong("__"))
        } else if rest.starts_with("~~") && self.rules.strike {
            ("~~", Open::Del)
        } else if rest.starts_with('*') && self.rules.italic {
            ("*", Open::Em)
        } else {
            self.text(&rest[..1]);
            return 1;
        };
        let after = &rest[delimiter.len()..];
        if let Some(index) = self.open.iter().rposition(|open| *open == element) {
            if before.is_some_and(|c| !c.is_whitespace()) {
                self.close_from(index);
                return delimiter.len();
            }
        } else if may_open(before, delimiter, after) && look.closes(delimiter, at) {
            self.out.push_str(match element {
                Open::Strong(_) => "<strong>",
                Open::Em => "<em>",
                _ => "<del>",
            });
            self.open.push(element);
            return delimiter.len();
        }
        self.text(delimiter);
        delimiter.len()
    }

    /// `[text](url)`: a link when the URL is a web URL, else its text alone.
    fn link(&mut self, look: &mut Lookahead, line: &str, at: usize) -> usize {
        let Some((text, url, len)) = look.link(line, at) else {
            self.text("[");
            return 1;
        };
        self.push_link(&url, text);
        len
    }

    /// The link, with its text rendered by the same rules (without links), or its URL as
    /// written when it has no text.
    fn push_link(&mut self, url: &str, text: &str) {
        let target = if self.links { web_url(url) } else { None };
        if let Some(url) = &target {
            self.out.push_str("<a href=\"");
            escape_into(&mut self.out, url.as_str());
            self.out.push_str("\">");
        }
        if text.is_empty() {
            self.text(url);
        } else {
            let mut inner = Inline {
                rules: self.rules,
                out: String::new(),
                open: Vec::new(),
                links: false,
            };
            inner.line(text);
            self.out.push_str(&inner.take());
        }
        if target.is_some() {
            self.out.push_str("</a>");
        }
    }

    fn tag(&mut self, look: &mut Lookahead, line: &str, at: usize) -> usize {
        let tag = look.tag(line, at).and_then(|raw| {
            let (tag, more) = (self.rules.tag)(raw, &line[at + raw.len()..])?;
            Some((tag, raw.len() + more))
        });
        let Some((tag, len)) = tag else {
            self.text("<");
            return 1;
        };
        match tag {
            Tag::Open(kind, class) => {
                if let Some(class) = class {
                    self.out.push_str("<span class=\"");
                    self.out.push_str(class);
                    self.out.push_str("\">");
                }
                self.open.push(Open::Span(kind, class));
            }
            Tag::Close(kind) => {
                let mine = |open: &Open| matches!(open, Open::Span(k, _) if *k == kind);
                if let Some(index) = self.open.iter().rposition(mine) {
                    self.close_from(index);
                }
            }
            Tag::Mention(name) => push_mention(&mut self.out, &name),
            Tag::Link { url, text } => self.push_link(url, text),
        }
        len
    }

    /// `&#60;`, `&#x3C;` or a named entity: the character, shown as text.
    fn entity(&mut self, rest: &str) -> usize {
        match entity(rest) {
            Some((c, len)) => {
                let mut buffer = [0; 4];
                self.text(c.encode_utf8(&mut buffer));
                len
            }
            None => {
                self.text("&");
                1
            }
        }
    }
}
