//! Go `text/template` source cut into text and `{{ actions }}`, each with its line, and the
//! tokens of one action. Enough of Go's grammar for the shapes prometheus-webhook-dingtalk
//! templates use; anything else is a token the translator reports.

/// A piece of template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{{ ... }}`: its inside without the trim markers, and whether each side trims.
    Action {
        inside: &'a str,
        trim_left: bool,
        trim_right: bool,
        /// 1-based line of the `{{`, counted from the source's first line.
        line: usize,
        /// Byte offsets of the whole action, `{{` to `}}`, in the source.
        start: usize,
        end: usize,
    },
}

/// Cuts `source` into pieces; an unclosed `{{` is an error with its line.
pub(super) fn pieces(source: &str) -> Result<Vec<Piece<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    let line_of = |offset: usize| 1 + source[..offset].matches('\n').count();
    while let Some(found) = source[at..].find("{{") {
        let open = at + found;
        if open > at {
            out.push(Piece::Text(&source[at..open]));
        }
        let close = find_close(source, open + 2)
            .ok_or_else(|| (line_of(open), "`{{` is never closed by `}}`".to_owned()))?;
        let mut inside = &source[open + 2..close];
        let trim_left = inside.starts_with("- ") || inside == "-";
        if trim_left {
            inside = &inside[1..];
        }
        let trim_right = inside.ends_with(" -");
        if trim_right {
            inside = &inside[..inside.len() - 1];
        }
        out.push(Piece::Action {
            inside: inside.trim(),
            trim_left,
            trim_right,
            line: line_of(open),
            start: open,
            end: close + 2,
        });
        at = close + 2;
    }
    if at < source.len() {
        out.push(Piece::Text(&source[at..]));
    }
    Ok(out)
}

/// The `}}` that closes an action opened before `from`, skipping string literals.
fn find_close(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_quoted(bytes, i, b'"')?,
            b'`' => i = skip_quoted(bytes, i, b'`')?,
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// One token of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// `.`, `.Labels.x`, or `$.X` / `$x.Y`: the base (`""` for dot, `"$"`, `"$x"`) and the
    /// field names.
    Field(String, Vec<String>),
    /// A function or keyword: `if`, `range`, `len`, `eq`, `true`.
    Ident(String),
    /// A string literal, unquoted.
    Str(String),
    /// A number, as written.
    Number(String),
    /// `|`.
    Pipe,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `:=`, `=` or `,`: variable declarations, which are not translated.
    Declare,
}

/// The tokens of an action's inside.
pub(super) fn tokens(inside: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = inside.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                // `(...).Field`: a field of a parenthesised value is not translated.
                if chars.get(i + 1) == Some(&'.') {
                    return Err("a field of a parenthesised value".into());
                }
                i += 1;
            }
            ':' | '=' | ',' => {
                out.push(Token::Declare);
                i += 1;
                while chars.get(i) == Some(&'=') {
                    i += 1;
                }
            }
            '"' => {
                let (text, next) = quoted(&chars, i)?;
                out.push(Token::Str(text));
                i = next;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or("an unclosed raw string")?;
                out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '.' | '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && (is_word(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let (base, path) = match text.find('.') {
                    Some(0) => ("", &text[1..]),
                    Some(dot) => (&text[..dot], &text[dot + 1..]),
                    None => (text.as_str(), ""),
                };
                let fields = path
                    .split('.')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
                out.push(Token::Field(base.to_owned(), fields));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if is_word(c) => {
                let start = i;
                while i < chars.len() && is_word(chars[i]) {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("the character {other:?}")),
        }
    }
    Ok(out)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn quoted(chars: &[char], open: usize) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let escaped = chars.get(i + 1).ok_or("an unclosed string")?;
                text.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    other => *other,
                });
                i += 2;
            }
            '"' => return Ok((text, i + 1)),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err("an unclosed string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_line_and_trim_markers() {
        let pieces = pieces("a\n{{- .Status -}}\nb {{ \"}}\" }}").unwrap();
        assert_eq!(pieces[0], Piece::Text("a\n"));
        assert!(matches!(
            pieces[1],
            Piece::Action {
                inside: ".Status",
                trim_left: true,
                trim_right: true,
                line: 2,
                ..
            }
        ));
        assert!(matches!(
            pieces[3],
            Piece::Action {
                inside: "\"}}\"",
                line: 3,
                ..
            }
        ));
        assert_eq!(super::pieces("x {{ .A").unwrap_err().0, 1);
    }

    #[test]
    fn tokens_read_fields_strings_and_functions() {
        let tokens = tokens(r#"if eq (index .Labels "x") "a\"b" | not"#).unwrap();
        assert_eq!(
            tokens,
            [
                Token::Ident("if".into()),
                Token::Ident("eq".into()),
                Token::Open,
                Token::Ident("index".into()),
                Token::Field(String::new(), vec!["Labels".into()]),
                Token::Str("x".into()),
                Token::Close,
                Token::Str("a\"b".into()),
                Token::Pipe,
                Token::Ident("not".into()),
            ]
        );
        assert_eq!(
            super::tokens("$.CommonLabels.x").unwrap(),
            [Token::Field(
                "$".into(),
                vec!["CommonLabels".into(), "x".into()]
            )]
        );
    }
}
