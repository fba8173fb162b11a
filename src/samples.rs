//! Built-in sample notifications: what reloads render every profile against before they swap
//! a new config in, and what previews use when given no payload.

use crate::alert::Notification;

/// The samples by name, as JSON text.
pub const SAMPLES: [(&str, &str); 3] = [
    ("firing", include_str!("samples/firing.json")),
    ("resolved", include_str!("samples/resolved.json")),
    ("group", include_str!("samples/group.json")),
];

/// A sample by name (`firing`, `resolved`, `group`).
pub fn sample(name: &str) -> Option<Notification<'static>> {
    SAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, json)| serde_json::from_str(json).expect("built-in samples are valid payloads"))
}

/// Every sample, parsed.
pub fn all() -> impl Iterator<Item = (&'static str, Notification<'static>)> {
    SAMPLES.iter().map(|(name, json)| {
        (
            *name,
            serde_json::from_str(json).expect("built-in samples are valid payloads"),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sample_parses_and_has_alerts() {
        for (name, notification) in super::all() {
            assert!(!notification.alerts.is_empty(), "{name}");
        }
        assert!(super::sample("group").unwrap().truncated_alerts > 0);
    }
}
