//! Finds the line of a key path in block-style YAML, for errors found after parsing.

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
    fn a_key_missing_under_its_parent_is_not_found_elsewhere() {
        assert_eq!(locate(YAML, &["profiles", "ops", "secret"]), None);
        assert_eq!(locate(YAML, &["profiles", "web"]), None);
    }
}
