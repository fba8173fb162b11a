//! JSON strings written exactly as `serde_json` writes them (`"`, `\`, `\b \f \n \r \t` and
//! `\u00XX` for other control characters; everything else as is), scanning for bytes to
//! escape sixteen at a time.

/// Appends `text` as a quoted JSON string.
pub(super) fn string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Skip whole chunks with nothing to escape (branch-free inside, so it vectorises),
        // then go straight to the first byte to escape.
        let chunk = &bytes[at..bytes.len().min(at + 16)];
        if !chunk.iter().fold(false, |any, &b| any | escaped(b)) {
            at += chunk.len();
            continue;
        }
        at += chunk.iter().position(|&b| escaped(b)).unwrap_or(0);
        out.extend_from_slice(&bytes[start..at]);
        escape(out, bytes[at]);
        at += 1;
        start = at;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a JSON array of strings.
pub(super) fn strings(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

fn escaped(byte: u8) -> bool {
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
        let mut list = Vec::new();
        strings(&mut list, &["a\"".into(), "b".into()]);
        assert_eq!(list, br#"["a\"","b"]"#);
    }
}
