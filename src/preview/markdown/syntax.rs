//! Reading the syntax of the line-by-line renderers (WeCom, Feishu): tags and their one
//! attribute, entities, `[text](url)`, and the look-aheads that decide whether an opener
//! will close. Every look-ahead costs amortised constant time, so a line of ten thousand
//! openers that never close is read once, not ten thousand times.

/// How far a tag's `>`, or a `</a>` or `</at>` after it, is looked for: no tag a client
/// knows is longer.
pub(super) const TAG_WINDOW: usize = 4096;

/// The longest URL a `[text](url)` link may have: longer is text (alert links are far
/// shorter, and a line of unclosed links then costs a bounded look each).
const MAX_URL: usize = 4096;

/// Where a needle next occurs in a line, for positions asked in increasing order: the
/// answer stays right until the position passes it, so the line is searched once.
#[derive(Debug)]
pub(super) struct Next {
    needle: &'static str,
    /// The answer was found searching from here (None: never searched).
    from: Option<usize>,
    found: Option<usize>,
}

impl Next {
    pub(super) fn new(needle: &'static str) -> Self {
        Next {
            needle,
            from: None,
            found: None,
        }
    }

    /// The first occurrence at or after `at`.
    pub(super) fn at_or_after(&mut self, line: &str, at: usize) -> Option<usize> {
        let stale = match self.from {
            None => true,
            Some(from) => at < from || self.found.is_some_and(|found| found < at),
        };
        if stale {
            self.from = Some(at);
            self.found = line[at..].find(self.needle).map(|i| i + at);
        }
        self.found
    }
}

/// The delimiters emphasis is written with, longest first.
pub(super) const DELIMITERS: [&str; 4] = ["**", "__", "~~", "*"];

/// One line's look-aheads.
#[derive(Debug)]
pub(super) struct Lookahead {
    tag_end: Next,
    link_middle: Next,
    link_end: Next,
    /// For each of [`DELIMITERS`], where its last possible closer on the line is.
    closers: [Option<usize>; 4],
}

impl Lookahead {
    pub(super) fn new(line: &str) -> Self {
        Lookahead {
            tag_end: Next::new(">"),
            link_middle: Next::new("]("),
            link_end: Next::new(")"),
            closers: DELIMITERS.map(|delimiter| last_closer(line, delimiter)),
        }
    }

    /// Whether `delimiter`, opening at `at`, closes later on the line with text between.
    pub(super) fn closes(&self, delimiter: &str, at: usize) -> bool {
        let index = DELIMITERS.iter().position(|d| *d == delimiter);
        let last = index.and_then(|index| self.closers[index]);
        last.is_some_and(|last| last > at + delimiter.len())
    }

    /// The tag from the `<` at `at` to the next `>`, when that is near enough.
    pub(super) fn tag<'l>(&mut self, line: &'l str, at: usize) -> Option<&'l str> {
        let end = self.tag_end.at_or_after(line, at)?;
        (end - at < TAG_WINDOW).then(|| &line[at..=end])
    }

    /// `[text](url)` at `at`: its text, its URL (escapes resolved) and its length. The URL
    /// may hold balanced parentheses but no blanks.
    pub(super) fn link<'l>(
        &mut self,
        line: &'l str,
        at: usize,
    ) -> Option<(&'l str, String, usize)> {
        let middle = self.link_middle.at_or_after(line, at)?;
        let text = &line[at + 1..middle];
        if text.contains(['[', ']']) {
            return None;
        }
        let start = middle + 2;
        // Most text that opens a link and never closes it has no `)` near: that costs nothing.
        let end = self.link_end.at_or_after(line, start)?;
        if end - start > MAX_URL {
            return None;
        }
        let (url, len) = destination(&line[start..])?;
        Some((text, url, start - at + len))
    }
}

/// A link destination up to its closing `)`: the URL and the bytes taken with the `)`.
/// Found on the bytes first (ASCII is all that ends or nests it), built only when it ends.
fn destination(rest: &str) -> Option<(String, usize)> {
    let bytes = rest.as_bytes();
    let mut depth = 0_usize;
    let mut at = 0;
    let end = loop {
        match *bytes.get(at).filter(|_| at <= MAX_URL)? {
            b'\\' if bytes.get(at + 1).is_some_and(u8::is_ascii_punctuation) => at += 1,
            b'(' => depth += 1,
            b')' if depth == 0 => break at,
            b')' => depth -= 1,
            b if b.is_ascii_whitespace() || b.is_ascii_control() => return None,
            _ => {}
        }
        at += 1;
    };
    let mut url = String::with_capacity(end);
    let mut chars = rest[..end].chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(p)) if p.is_ascii_punctuation() => {
                url.push(p);
                chars.next();
            }
            _ => url.push(c),
        }
    }
    Some((url, end + 1))
}

/// Where the last `delimiter` on the line that could close emphasis is: after text (not a
/// blank, not escaped), a lone `*` for `*`, and not inside a word for `__`.
fn last_closer(line: &str, delimiter: &str) -> Option<usize> {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    line.match_indices(delimiter)
        .filter(|(at, _)| {
            let prior = line[..*at].chars().next_back();
            let next = line[at + delimiter.len()..].chars().next();
            prior.is_some_and(|c| !c.is_whitespace() && c != '\\')
                && !(delimiter == "*" && (prior == Some('*') || next == Some('*')))
                && !(delimiter == "__" && word(next))
        })
        .map(|(at, _)| at)
        .last()
}

/// Whether a delimiter may open here: text follows it, and `__` does not open in a word.
pub(super) fn may_open(before: Option<char>, delimiter: &str, after: &str) -> bool {
    let starts_text = after.chars().next().is_some_and(|c| !c.is_whitespace());
    starts_text && !(delimiter == "__" && before.is_some_and(char::is_alphanumeric))
}

/// Where `pattern` first occurs in the first [`TAG_WINDOW`] bytes of `text`.
pub(super) fn find_within(text: &str, pattern: &str) -> Option<usize> {
    let mut limit = text.len().min(TAG_WINDOW);
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    text[..limit].find(pattern)
}

/// The entities a Feishu template may use to show a character as itself.
const NAMED_ENTITIES: [(&str, char); 9] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("sim", '∼'),
];

/// The character an entity at the start of `rest` stands for, and its length.
pub(super) fn entity(rest: &str) -> Option<(char, usize)> {
    let end = rest.bytes().take(12).position(|b| b == b';')?;
    let name = &rest[1..end];
    let c = if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        char::from_u32(code).filter(|c| *c != '\0')?
    } else {
        NAMED_ENTITIES.iter().find(|(n, _)| *n == name)?.1
    };
    Some((c, end + 1))
}

/// The value of the tag's one attribute, when `raw` (from `<` to `>`) is exactly
/// `<name key=value>`, the value bare or in single or double quotes.
pub(super) fn attribute<'a>(raw: &'a str, name: &str, key: &str) -> Option<&'a str> {
    let inner = raw.strip_prefix('<')?.strip_suffix('>')?.trim_end();
    let (tag, rest) = inner.split_once(' ')?;
    if !tag.eq_ignore_ascii_case(name) {
        return None;
    }
    let value = rest.trim_start().strip_prefix(key)?.strip_prefix('=')?;
    let unquoted = [('"', '"'), ('\'', '\'')]
        .iter()
        .find_map(|(open, close)| value.strip_prefix(*open)?.strip_suffix(*close));
    match unquoted {
        Some(value) if !value.contains(['"', '\'']) => Some(value),
        Some(_) => None,
        None if value.contains(['"', '\'', ' ']) => None,
        None => Some(value),
    }
}
