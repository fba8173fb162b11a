//! UTF-8 checks of whole texts that cross a boundary: a webhook's body, and a render
//! worker's answer. `simdutf8` checks many bytes at once; std's check goes a byte at a time
//! through CJK text, which was a seventh of the gateway's own instructions for a 10-alert
//! delivery (the answer's text checked again after the worker had made it).

/// `bytes` as text, if they are UTF-8.
pub(crate) fn str(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// `bytes` as a `String`, if they are UTF-8; the bytes are not copied.
pub(crate) fn string(bytes: Vec<u8>) -> Option<String> {
    str(&bytes)?;
    // SAFETY: `str` just checked that the bytes are UTF-8.
    Some(unsafe { String::from_utf8_unchecked(bytes) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_std_on_valid_and_invalid_text() {
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            "ascii only".into(),
            "【故障】主机: 10.0.0.1 — 恢复 ✅".repeat(100).into_bytes(),
            vec![0xff],
            vec![0xe6, 0x95],             // a three-byte character cut short
            vec![0xed, 0xa0, 0x80],       // a surrogate
            vec![0xc0, 0xaf],             // an overlong encoding
            vec![0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
        ];
        let long = "告警".repeat(1000);
        let mut cut = long.clone().into_bytes();
        cut.truncate(cut.len() - 1);
        cases.push(cut);
        let mut bad_middle = long.into_bytes();
        bad_middle[3001] = b'x';
        cases.push(bad_middle);
        for bytes in cases {
            let std = String::from_utf8(bytes.clone()).ok();
            assert_eq!(str(&bytes), std.as_deref());
            assert_eq!(string(bytes), std);
        }
    }
}
