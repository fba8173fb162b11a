//! Filters for links built in templates (an action card's buttons): percent-encoding, and
//! the `filter=` parameter Alertmanager's UI reads, `{name="value", ...}`.

use tera::{Kwargs, Map, State, StringInput, Value};

/// `{{ text | percent_encode }}`: every byte but the unreserved `A-Z a-z 0-9 - _ . ~`
/// percent-encoded, as a URL's query value (or a whole URL inside another) must be.
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// The matchers Alertmanager's UI writes into a `filter=` parameter for `labels`, sorted by
/// name: `{alertname="DiskFull", job="node"}`, each value a JSON string (quotes and
/// backslashes escaped), before percent-encoding.
pub fn matchers<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.into_iter().collect();
    pairs.sort_unstable();
    let items: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let value = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
            format!("{name}={value}")
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

pub(super) fn register(tera: &mut tera::Tera) {
    tera.register_filter(
        "percent_encode",
        |text: StringInput, _: Kwargs, _: &State| Value::from(percent_encode(text.as_str())),
    );
    tera.register_filter("am_filter", |labels: &Map, _: Kwargs, _: &State| {
        let pairs: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        Value::from(percent_encode(&matchers(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("a-z_0.9~"), "a-z_0.9~");
        assert_eq!(
            percent_encode("{a=\"b c\"}&/?#"),
            "%7Ba%3D%22b%20c%22%7D%26%2F%3F%23"
        );
        assert_eq!(percent_encode("磁盘"), "%E7%A3%81%E7%9B%98");
    }

    #[test]
    fn matchers_are_written_as_alertmanagers_ui_writes_them() {
        assert_eq!(
            matchers([("job", "node"), ("alertname", "Disk \"Full\"\\")]),
            r#"{alertname="Disk \"Full\"\\", job="node"}"#
        );
        assert_eq!(matchers([]), "{}");
    }
}
