//! Go template expressions → Tera expressions: fields by the kind of value they are read
//! from, functions, and time layouts.

use super::Scope;
use crate::migrate::lex::Token;

type Failure = String;

/// What a Go value is, so its fields can be named in Tera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// The notification.
    Root,
    /// A list of alerts: `alerts`, `firing`, `resolved`.
    Alerts,
    /// One alert (a loop variable).
    Alert,
    /// A label or annotation map.
    Map,
    /// A map's sorted pairs.
    Pairs,
    /// One pair (`key`, `value` in the loop).
    Pair,
    /// A time: `.Format` applies.
    Time,
    /// A map's value, which may be missing: printed as `(x or "")`.
    Missing,
    /// Anything else: a string, number or bool.
    Plain,
}

/// A translated expression.
#[derive(Debug, Clone)]
pub(super) struct Expr {
    pub(super) text: String,
    pub(super) kind: Kind,
}

impl Expr {
    pub(super) fn plain(text: String) -> Self {
        Self {
            text,
            kind: Kind::Plain,
        }
    }

    /// As a value: a possibly missing map value defaults to empty, as Go prints it.
    pub(super) fn value(&self) -> String {
        match self.kind {
            Kind::Missing => format!("({} or \"\")", self.text),
            _ => self.text.clone(),
        }
    }
}

/// A field path from dot, `$` (the notification) or a variable.
pub(super) fn field(base: &str, fields: &[String], scope: &Scope) -> Result<Expr, Failure> {
    let mut value = match base {
        "" => scope.dot.clone(),
        "$" => Expr {
            text: String::new(),
            kind: Kind::Root,
        },
        other => return Err(format!("the variable {other} is not translated")),
    };
    for name in fields {
        value = step(&value, name)?;
    }
    if value.kind == Kind::Root {
        return Err("the whole notification as a value".into());
    }
    if value.kind == Kind::Pair {
        return Err("a label pair as a value (use .Name or .Value)".into());
    }
    Ok(value)
}

/// One `.Name` step from a value of known kind.
fn step(value: &Expr, name: &str) -> Result<Expr, Failure> {
    let of = |text: &str, kind: Kind| Expr {
        text: text.to_owned(),
        kind,
    };
    let under = |field: &str, kind: Kind| Expr {
        text: format!("{}.{field}", value.text),
        kind,
    };
    Ok(match (&value.kind, name) {
        (Kind::Root, "Status") => of("status", Kind::Plain),
        (Kind::Root, "Receiver") => of("receiver", Kind::Plain),
        (Kind::Root, "ExternalURL") => of("externalURL", Kind::Plain),
        (Kind::Root, "GroupKey") => of("groupKey", Kind::Plain),
        (Kind::Root, "Alerts") => of("alerts", Kind::Alerts),
        (Kind::Root, "GroupLabels") => of("groupLabels", Kind::Map),
        (Kind::Root, "CommonLabels") => of("commonLabels", Kind::Map),
        (Kind::Root, "CommonAnnotations") => of("commonAnnotations", Kind::Map),
        (Kind::Alerts, "Firing") if value.text == "alerts" => of("firing", Kind::Alerts),
        (Kind::Alerts, "Resolved") if value.text == "alerts" => of("resolved", Kind::Alerts),
        (Kind::Alert, "Status") => under("status", Kind::Plain),
        (Kind::Alert, "Labels") => under("labels", Kind::Map),
        (Kind::Alert, "Annotations") => under("annotations", Kind::Map),
        (Kind::Alert, "StartsAt") => under("startsAt", Kind::Time),
        (Kind::Alert, "EndsAt") => under("endsAt", Kind::Time),
        (Kind::Alert, "GeneratorURL") => under("generatorURL", Kind::Plain),
        (Kind::Alert, "Fingerprint") => under("fingerprint", Kind::Plain),
        (Kind::Map, "SortedPairs") => of(&value.text, Kind::Pairs),
        (Kind::Map, "Names" | "Values" | "Remove") => {
            return Err(format!("`.{name}` of a label map has no Tera translation"));
        }
        (Kind::Map, key) if is_identifier(key) => under(key, Kind::Missing),
        (Kind::Pair, "Name") => of(value.text.split(',').next().unwrap_or("key"), Kind::Plain),
        (Kind::Pair, "Value") => of(value.text.split(',').nth(1).unwrap_or("value"), Kind::Plain),
        _ => return Err(format!("the field `.{name}` here has no Tera translation")),
    })
}

/// A Go template function with its arguments (a piped value last).
pub(super) fn function(name: &str, mut args: Vec<Expr>) -> Result<Expr, Failure> {
    let arity = |n: usize| -> Result<(), Failure> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("`{name}` with {} arguments", args.len()))
        }
    };
    let filter = |args: &mut Vec<Expr>, filter: &str| {
        Expr::plain(format!("{} | {filter}", args.remove(0).value()))
    };
    Ok(match name {
        "len" => {
            arity(1)?;
            Expr::plain(format!("{} | length", args.remove(0).text))
        }
        "index" => {
            arity(2)?;
            let key = args.remove(1);
            let map = args.remove(0);
            if map.kind != Kind::Map {
                return Err("`index` of something other than a label map".into());
            }
            Expr {
                text: format!("{}[{}]", map.text, key.text),
                kind: Kind::Missing,
            }
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(2)?;
            let op = match name {
                "eq" => "==",
                "ne" => "!=",
                "lt" => "<",
                "le" => "<=",
                "gt" => ">",
                _ => ">=",
            };
            Expr::plain(format!("{} {op} {}", args[0].value(), args[1].value()))
        }
        "and" | "or" => {
            if args.len() < 2 {
                return Err(format!("`{name}` with fewer than two arguments"));
            }
            let parts: Vec<String> = args.iter().map(|a| format!("({})", a.text)).collect();
            Expr::plain(parts.join(&format!(" {name} ")))
        }
        "not" => {
            arity(1)?;
            Expr::plain(format!("not ({})", args[0].text))
        }
        "toUpper" | "upper" => {
            arity(1)?;
            filter(&mut args, "upper")
        }
        "toLower" | "lower" => {
            arity(1)?;
            filter(&mut args, "lower")
        }
        "title" => {
            arity(1)?;
            filter(&mut args, "title")
        }
        "markdown" => {
            arity(1)?;
            filter(&mut args, "md_escape")
        }
        "html" => {
            // DingTalk markdown is not HTML: its escaping is `markdown`'s job.
            arity(1)?;
            args.remove(0)
        }
        "join" => {
            arity(2)?;
            let list = args.remove(1);
            Expr::plain(format!("{} | join(sep={})", list.text, args[0].text))
        }
        other => return Err(format!("the function `{other}` has no Tera translation")),
    })
}

/// A Go time layout (`2006-01-02 15:04:05`) as a strftime format.
pub(super) fn go_layout(layout: &str) -> Result<String, Failure> {
    const PARTS: [(&str, &str); 16] = [
        ("2006", "%Y"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("-0700", "%z"),
        ("-07:00", "%:z"),
        (".000", "%.3f"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("PM", "%p"),
        ("06", "%y"),
        ("_2", "%e"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, strftime) in PARTS {
            if let Some(after) = rest.strip_prefix(go) {
                out.push_str(strftime);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        if c.is_ascii_digit() {
            return Err(format!(
                "the time layout {layout:?} has parts with no strftime translation"
            ));
        }
        if c == '%' {
            out.push('%');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// Text outside actions, with Tera's own openers made literal.
pub(super) fn escape_text(text: &str) -> String {
    if !text.contains("{%") && !text.contains("{#") {
        return text.to_owned();
    }
    text.replace("{%", "{{ \"{%\" }}")
        .replace("{#", "{{ \"{#\" }}")
}

pub(super) fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn is_identifier(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn split_top<'t>(tokens: &'t [Token], separator: &Token) -> Vec<&'t [Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            t if t == separator && depth == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

pub(super) fn matching_close(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
