//! Finds lines in YAML for errors the parser reports without one: a key path in block-style
//! YAML (errors found after parsing), and where a second document begins.

use serde::de::{Deserialize, Deserializer, Visitor};

/// The 1-based line where the key path (`["profiles", "ops", "template"]`) is defined, or
/// `None` when it cannot be found (flow style, or the key is absent).
pub fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut depth = 0;
    let mut min_indent = 0;
    let mut parent_indent: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            // Left the parent's block without finding the next key.
            return None;
        }
        if indent < min_indent {
            continue;
        }
        if key_of(content) == Some(path[depth]) {
            depth += 1;
            if depth == path.len() {
                return Some(index + 1);
            }
            parent_indent = Some(indent);
            min_indent = indent + 1;
        }
    }
    None
}

/// The line where a second YAML document begins, when `text` holds more than one
/// (`---` twice, or text after a closed flow mapping): serde_yaml_ng refuses such text
/// without a position. The line is the second document's first node, or the file's last
/// line when that document is empty and begins at the very end.
pub(super) fn second_document(text: &str) -> Option<usize> {
    // `nth`, not a loop: after a parse error the iterator repeats that error for ever.
    let second = serde_yaml_ng::Deserializer::from_str(text).nth(1)?;
    let line = Nothing::deserialize(second).err()?.location()?.line();
    Some(line.clamp(1, last_line(text)))
}

/// The number of the last line of `text`, counting line breaks as YAML does (LF, CRLF, a
/// lone CR, NEL, LS and PS), a final break opening no line of its own.
fn last_line(text: &str) -> usize {
    let is_break = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let breaks = text
        .replace("\r\n", "\n")
        .chars()
        .filter(|&c| is_break(c))
        .count();
    let open = !text.ends_with(is_break);
    (breaks + usize::from(open)).max(1)
}

/// Accepts no YAML node at all, so deserializing a document into it fails with the
/// position of the document's first node.
struct Nothing;

impl<'de> Deserialize<'de> for Nothing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Refuse;
        impl Visitor<'_> for Refuse {
            type Value = Nothing;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("no second document")
            }
        }
        deserializer.deserialize_any(Refuse)
    }
}

fn key_of(content: &str) -> Option<&str> {
    let colon = content.find(':')?;
    let key = content[..colon].trim();
    let unquoted = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    Some(unquoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
timezone: Asia/Shanghai
profiles:
  ops:
    url: https://x
    template: a.tera
  db:
    # comment
    url: https://y
    template: b.tera
";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(locate(YAML, &["timezone"]), Some(1));
        assert_eq!(locate(YAML, &["profiles", "ops", "template"]), Some(5));
        assert_eq!(locate(YAML, &["profiles", "db", "template"]), Some(9));
        assert_eq!(locate(YAML, &["profiles", "db"]), Some(6));
    }

    #[test]
    fn a_second_document_is_placed_on_a_line_of_the_file() {
        assert_eq!(second_document("a: 1\n"), None);
        assert_eq!(second_document("a: 1\n...\n"), None);
        assert_eq!(second_document("---\n---\n"), Some(2));
        assert_eq!(second_document("a: 1\n\n\n---\n"), Some(4));
        assert_eq!(second_document("a: 1\n--- x\n"), Some(2));
        assert_eq!(second_document("{}\nx"), Some(2));
        assert_eq!(second_document("&m]"), Some(1));
        assert_eq!(second_document("a: 1\r---\rb: 2"), Some(3));
    }

    #[test]
    fn a_key_missing_under_its_parent_is_not_found_elsewhere() {
        assert_eq!(locate(YAML, &["profiles", "ops", "secret"]), None);
        assert_eq!(locate(YAML, &["profiles", "web"]), None);
    }
}
