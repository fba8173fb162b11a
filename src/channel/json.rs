//! JSON strings written exactly as `serde_json` writes them (`"`, `\`, `\b \f \n \r \t` and
//! `\u00XX` for other control characters; everything else as is), scanning eight bytes at a
//! time for the next byte to escape.

/// Appends `text` as a quoted JSON string.
pub(crate) fn string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(at) = next_escaped(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The index of the first byte at or after `from` that must be escaped. A message is mostly
/// long runs with a newline every few dozen bytes, so runs are skipped a word at a time.
fn next_escaped(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(word) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let found = escaped_bytes(word);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    rest.iter().position(|&b| escaped(b)).map(|i| at + i)
}

const fn repeat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each byte of `word` (read little-endian) below 0x20 or equal to `"` or
/// `\`. A borrow can also mark a byte above a marked one, never below, so the lowest mark is
/// exact, which is all [`next_escaped`] uses.
fn escaped_bytes(word: u64) -> u64 {
    let below = |w: u64, limit: u8| w.wrapping_sub(repeat(limit)) & !w & repeat(0x80);
    below(word, 0x20) | below(word ^ repeat(b'"'), 1) | below(word ^ repeat(b'\\'), 1)
}

/// Appends a JSON array of strings.
pub(crate) fn strings(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

/// The exact length of `text` inside a JSON string, quotes not counted: what [`string`]
/// writes, without writing it.
pub(crate) fn escaped_len(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 1,
                0..0x20 => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// Whether JSON escapes `byte`.
pub(crate) fn escaped(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

fn escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "ab 故障\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}<&>/é😀"
            .chars()
            .collect();
        for len in 0..200 {
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let mut ours = Vec::new();
            string(&mut ours, &text);
            assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
        // Every escaped byte at every offset of a word, after plain and multi-byte text.
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for filler in ["a", "é", "故"] {
                for at in 0..20 {
                    let text: String = filler.repeat(at) + &special.to_string() + &filler.repeat(3);
                    let mut ours = Vec::new();
                    string(&mut ours, &text);
                    assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
                }
            }
        }
        for text in ["", "plain 故障", "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}"] {
            assert_eq!(
                escaped_len(text),
                serde_json::to_string(text).unwrap().len() - 2
            );
        }
        let mut list = Vec::new();
        strings(&mut list, &["a\"".into(), "b".into()]);
        assert_eq!(list, br#"["a\"","b"]"#);
    }
}
