//! Go templates (prometheus-webhook-dingtalk's) → Tera text with alertrelay's context names.
//!
//! The common shapes translate: fields of the notification and of an alert
//! (`.CommonLabels.x`, `.Labels.x`, `.Annotations.x`, `.StartsAt.Format "…"`), `range` over
//! alerts or sorted label pairs, `if`/`else if`/`else`/`end`, `len`, `index`, comparisons,
//! `and`/`or`/`not`, `toUpper`/`toLower`/`title`, `markdown`, `join`, and `template "name"`
//! of a user's `define` (inlined). Every other action is left out with a [`Note`] naming its
//! file and line, and the translation is then incomplete: the profile keeps the built-in
//! template.

use std::collections::BTreeMap;

mod expr;

use expr::{Expr, Kind, escape_text, field, function, go_layout, matching_close, quote, split_top};

use super::lex::{Piece, Token, pieces, tokens};

/// Inlined `template` calls may nest this deep.
const MAX_DEPTH: usize = 8;

/// A `define` of the user's template files.
#[derive(Debug, Clone)]
pub(crate) struct Define {
    /// The file it is in, for notes.
    pub(crate) file: String,
    /// The line its body starts on.
    pub(crate) line: usize,
    /// Its body, Go template text.
    pub(crate) body: String,
}

/// Something the translation could not carry over, or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file (or config key) and line.
    pub place: String,
    /// The action as written.
    pub action: String,
    /// Why, and what was done.
    pub why: String,
    /// True when the action was left out (the translation is incomplete).
    pub left_out: bool,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{{{{ {} }}}}`: {}",
            self.place, self.action, self.why
        )
    }
}

/// A translation: the Tera text and what it could not carry.
#[derive(Debug, Clone)]
pub(crate) struct Translation {
    pub(crate) tera: String,
    pub(crate) notes: Vec<Note>,
}

impl Translation {
    /// True when nothing was left out.
    pub(crate) fn complete(&self) -> bool {
        self.notes.iter().all(|n| !n.left_out)
    }
}

/// Every `{{ define "name" }}` of a template file: name → body.
pub(crate) fn defines(file: &str, source: &str) -> Result<BTreeMap<String, Define>, String> {
    let pieces = pieces(source).map_err(|(line, why)| format!("{file}:{line}: {why}"))?;
    let mut out = BTreeMap::new();
    let mut open: Option<(String, usize, usize)> = None;
    let mut depth = 0usize;
    for piece in &pieces {
        let Piece::Action {
            inside,
            line,
            start,
            end,
            ..
        } = piece
        else {
            continue;
        };
        let word = inside.split_whitespace().next().unwrap_or_default();
        match (word, &open) {
            ("define", None) => {
                let name = match tokens(inside).ok().as_deref() {
                    Some([Token::Ident(_), Token::Str(name)]) => name.clone(),
                    _ => return Err(format!("{file}:{line}: a define without a name")),
                };
                let body_line = line + source[*start..*end].matches('\n').count();
                open = Some((name, body_line, *end));
                depth = 0;
            }
            ("if" | "range" | "with" | "block" | "define", Some(_)) => depth += 1,
            ("end", Some(_)) if depth > 0 => depth -= 1,
            ("end", Some((name, body_line, body_start))) => {
                out.insert(
                    name.clone(),
                    Define {
                        file: file.to_owned(),
                        line: *body_line,
                        body: source[*body_start..*start].to_owned(),
                    },
                );
                open = None;
            }
            _ => {}
        }
    }
    match open {
        Some((name, line, _)) => Err(format!("{file}:{line}: define {name:?} has no end")),
        None => Ok(out),
    }
}

/// Translates `source`, found at `place` (a file or config key) from `line`, with the
/// user's `defines` available to `template` calls.
pub(crate) fn translate(
    source: &str,
    place: &str,
    line: usize,
    defines: &BTreeMap<String, Define>,
) -> Translation {
    let mut translator = Translator {
        defines,
        out: String::new(),
        notes: Vec::new(),
        loops: 0,
    };
    let root = Expr {
        text: String::new(),
        kind: Kind::Root,
    };
    translator.run_with(source, place, line, root, 0);
    Translation {
        tera: translator.out,
        notes: translator.notes,
    }
}

/// An open block, to close it with the right Tera tag.
enum Block {
    If,
    For,
    /// A block whose opening was left out: its `end` is left out too.
    LeftOut,
}

/// What dot and `$` are inside the current scope.
#[derive(Clone)]
struct Scope {
    dot: Expr,
}

struct Translator<'d> {
    defines: &'d BTreeMap<String, Define>,
    out: String,
    notes: Vec<Note>,
    /// Loops opened so far, to name nested loop variables apart.
    loops: usize,
}

type Failure = String;

impl Translator<'_> {
    fn run_with(&mut self, source: &str, place: &str, first_line: usize, dot: Expr, depth: usize) {
        let pieces = match pieces(source) {
            Ok(pieces) => pieces,
            Err((line, why)) => {
                self.note(place, first_line + line - 1, "", why, true);
                return;
            }
        };
        let mut scopes = vec![Scope { dot }];
        let mut blocks: Vec<(Block, usize)> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => self.out.push_str(&escape_text(text)),
                Piece::Action {
                    inside,
                    trim_left,
                    trim_right,
                    line,
                    ..
                } => {
                    let line = first_line + line - 1;
                    let (l, r) = (
                        if trim_left { "-" } else { "" },
                        if trim_right { "-" } else { "" },
                    );
                    if let Some(comment) =
                        inside.strip_prefix("/*").and_then(|c| c.strip_suffix("*/"))
                    {
                        self.out
                            .push_str(&format!("{{#{l}{}{r}#}}", comment.replace("#}", "# }")));
                        continue;
                    }
                    let result = self.action(inside, (l, r), &mut scopes, &mut blocks, depth);
                    if let Err(why) = result {
                        let word = inside.split_whitespace().next().unwrap_or_default();
                        if matches!(word, "if" | "range" | "with" | "block" | "define") {
                            blocks.push((Block::LeftOut, scopes.len()));
                            scopes.push(scopes.last().cloned().expect("the outermost scope"));
                        }
                        self.note(place, line, inside, format!("{why}; left out"), true);
                        self.out.push_str(&format!(
                            "{{#{l} left out: {} {r}#}}",
                            inside.replace("#}", "# }")
                        ));
                    }
                }
            }
        }
        for _ in blocks {
            self.note(
                place,
                first_line,
                "",
                "a block is never closed with {{ end }}".into(),
                true,
            );
        }
    }

    fn action(
        &mut self,
        inside: &str,
        (l, r): (&str, &str),
        scopes: &mut Vec<Scope>,
        blocks: &mut Vec<(Block, usize)>,
        depth: usize,
    ) -> Result<(), Failure> {
        let tokens = tokens(inside)?;
        let scope = scopes.last().cloned().expect("the outermost scope");
        let keyword = match tokens.first() {
            Some(Token::Ident(word)) => word.as_str(),
            _ => "",
        };
        match keyword {
            "if" => {
                let condition = self.pipeline(&tokens[1..], &scope)?;
                self.out
                    .push_str(&format!("{{%{l} if {} {r}%}}", condition.text));
                blocks.push((Block::If, scopes.len()));
                scopes.push(scope);
            }
            "else" if tokens.get(1) == Some(&Token::Ident("if".into())) => {
                match blocks.last() {
                    Some((Block::If, _)) => {}
                    Some((Block::LeftOut, _)) => {
                        self.out
                            .push_str(&format!("{{#{l} left out: else if {r}#}}"));
                        return Ok(());
                    }
                    _ => return Err("`else if` outside an `if`".into()),
                }
                let condition = self.pipeline(&tokens[2..], &scope)?;
                self.out
                    .push_str(&format!("{{%{l} elif {} {r}%}}", condition.text));
            }
            "else" => match blocks.last() {
                Some((Block::If, _)) => self.out.push_str(&format!("{{%{l} else {r}%}}")),
                Some((Block::LeftOut, _)) => {
                    self.out.push_str(&format!("{{#{l} left out: else {r}#}}"))
                }
                _ => return Err("`else` of a `range` has no Tera translation".into()),
            },
            "end" => {
                let (block, keep) = blocks.pop().ok_or("an `end` without a block")?;
                scopes.truncate(keep);
                let tag = match block {
                    Block::If => "endif",
                    Block::For => "endfor",
                    Block::LeftOut => {
                        self.out.push_str(&format!("{{#{l} left out: end {r}#}}"));
                        return Ok(());
                    }
                };
                self.out.push_str(&format!("{{%{l} {tag} {r}%}}"));
            }
            "range" => {
                if tokens.contains(&Token::Declare) {
                    return Err("`range` with variables ($i, $a :=) is not translated".into());
                }
                let list = self.pipeline(&tokens[1..], &scope)?;
                self.loops += 1;
                let suffix = if self.loops == 1 {
                    String::new()
                } else {
                    self.loops.to_string()
                };
                let dot = match list.kind {
                    Kind::Alerts => {
                        let var = format!("alert{suffix}");
                        self.out
                            .push_str(&format!("{{%{l} for {var} in {} {r}%}}", list.text));
                        Expr {
                            text: var,
                            kind: Kind::Alert,
                        }
                    }
                    Kind::Pairs => {
                        let (key, value) = (format!("key{suffix}"), format!("value{suffix}"));
                        self.out.push_str(&format!(
                            "{{%{l} for {key}, {value} in {} {r}%}}",
                            list.text
                        ));
                        Expr {
                            text: format!("{key},{value}"),
                            kind: Kind::Pair,
                        }
                    }
                    _ => {
                        return Err(
                            "`range` over something other than alerts or sorted pairs".into()
                        );
                    }
                };
                blocks.push((Block::For, scopes.len()));
                scopes.push(Scope { dot });
            }
            "template" => {
                let name = match tokens.get(1) {
                    Some(Token::Str(name)) => name.clone(),
                    _ => return Err("`template` without a name".into()),
                };
                let Some(define) = self.defines.get(&name).cloned() else {
                    return Err(format!(
                        "template {name:?} is prometheus-webhook-dingtalk's own (or undefined) and cannot be inlined"
                    ));
                };
                if depth >= MAX_DEPTH {
                    return Err(format!("templates nest deeper than {MAX_DEPTH}"));
                }
                let dot = match &tokens[2..] {
                    [] => scope.dot.clone(),
                    [Token::Field(base, fields)] if fields.is_empty() && base.is_empty() => {
                        scope.dot.clone()
                    }
                    [Token::Field(base, fields)] if fields.is_empty() && base == "$" => Expr {
                        text: String::new(),
                        kind: Kind::Root,
                    },
                    rest => self.pipeline(rest, &scope)?,
                };
                self.out
                    .push_str(&format!("{{#{l} from template {name:?} #}}"));
                self.run_with(&define.body, &define.file, define.line, dot, depth + 1);
                self.out.push_str(&format!("{{# end of {name:?} {r}#}}"));
            }
            "with" | "define" | "block" | "break" | "continue" => {
                return Err(format!("`{keyword}` has no Tera translation here"));
            }
            _ => {
                if tokens.contains(&Token::Declare) {
                    return Err("variables ($x :=) are not translated".into());
                }
                let value = self.pipeline(&tokens, &scope)?;
                self.out
                    .push_str(&format!("{{{{{l} {} {r}}}}}", value.value()));
            }
        }
        Ok(())
    }

    /// `command | command | ...`: each command's value is the last argument of the next.
    fn pipeline(&mut self, tokens: &[Token], scope: &Scope) -> Result<Expr, Failure> {
        let mut value: Option<Expr> = None;
        for command in split_top(tokens, &Token::Pipe) {
            value = Some(self.command(command, value, scope)?);
        }
        value.ok_or_else(|| "an empty expression".into())
    }

    fn command(
        &mut self,
        tokens: &[Token],
        piped: Option<Expr>,
        scope: &Scope,
    ) -> Result<Expr, Failure> {
        let Some(first) = tokens.first() else {
            return Err("an empty command".into());
        };
        if let Token::Ident(name) = first
            && !matches!(name.as_str(), "true" | "false" | "nil")
        {
            let mut args = self.operands(&tokens[1..], scope)?;
            args.extend(piped);
            return function(name, args);
        }
        let mut args = self.operands(tokens, scope)?;
        // `.StartsAt.Format "2006-01-02"`: a method with its argument.
        if let (Some(Token::Field(_, fields)), 2) = (tokens.first(), args.len())
            && fields.last().map(String::as_str) == Some("Format")
        {
            let layout = match &tokens[1] {
                Token::Str(layout) => layout,
                _ => return Err("`Format` with a layout that is not a string".into()),
            };
            let time = args.remove(0);
            return Ok(Expr::plain(format!(
                "{} | localtime(format={})",
                time.text,
                quote(&go_layout(layout)?)
            )));
        }
        if piped.is_some() || args.len() != 1 {
            return Err("a value called like a function".into());
        }
        Ok(args.remove(0))
    }

    fn operands(&mut self, tokens: &[Token], scope: &Scope) -> Result<Vec<Expr>, Failure> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Open => {
                    let close = matching_close(tokens, i).ok_or("an unclosed `(`")?;
                    let inner = self.pipeline(&tokens[i + 1..close], scope)?;
                    out.push(Expr {
                        text: format!("({})", inner.value()),
                        kind: if inner.kind == Kind::Missing {
                            Kind::Plain
                        } else {
                            inner.kind
                        },
                    });
                    i = close + 1;
                    continue;
                }
                Token::Field(base, fields) => {
                    let mut fields = fields.as_slice();
                    // `.StartsAt.Format`: the method is applied by `command`.
                    if fields.last().map(String::as_str) == Some("Format") {
                        fields = &fields[..fields.len() - 1];
                    }
                    out.push(field(base, fields, scope)?);
                }
                Token::Str(text) => out.push(Expr::plain(quote(text))),
                Token::Number(n) => out.push(Expr::plain(n.clone())),
                Token::Ident(word) if word == "true" || word == "false" => {
                    out.push(Expr::plain(word.clone()))
                }
                Token::Ident(word) => {
                    return Err(format!(
                        "the function `{word}` as an argument without parentheses"
                    ));
                }
                Token::Pipe | Token::Close | Token::Declare => {
                    return Err("an unexpected `|`, `)` or `:=`".into());
                }
            }
            i += 1;
        }
        Ok(out)
    }

    fn note(&mut self, place: &str, line: usize, action: &str, why: String, left_out: bool) {
        self.notes.push(Note {
            place: format!("{place}:{line}"),
            action: action.to_owned(),
            why,
            left_out,
        });
    }
}

#[cfg(test)]
mod tests;
