//! The Alertmanager webhook payload (version "4"), parsed once at the edge into typed values.
//!
//! Strings are borrowed from the webhook body where they can be (`'a`): a payload of a
//! thousand alerts parses without copying its labels, annotations and links, and without
//! the allocations and frees that copying costs (see BENCHMARKS.md).
//!
//! Field names on the wire are Alertmanager's own (`startsAt`, `generatorURL`, ...); they are
//! kept when the payload is handed to templates, so a template author can read Alertmanager's
//! documentation and find the same names here.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Datelike, FixedOffset};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

mod labels;
pub(crate) mod time;

pub use labels::KeyValues;

/// Whether an alert (or a whole notification) is still firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// At least one alert is active.
    #[default]
    Firing,
    /// Every alert of the notification has ended.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`, as the payload writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One notification, as Alertmanager posts it to a webhook receiver.
///
/// Every field but `alerts` has a default, so hand-written payloads (previews, `curl` tests)
/// need not spell out everything Alertmanager always sends.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Notification<'a> {
    /// The Alertmanager receiver that matched; useful to tell routes apart in one group.
    #[serde(default, borrow, deserialize_with = "text")]
    pub receiver: Cow<'a, str>,
    /// `firing` while any alert of the group fires.
    #[serde(default)]
    pub status: Status,
    /// The alerts of this notification, firing and resolved mixed, in Alertmanager's order.
    #[serde(borrow)]
    pub alerts: Vec<Alert<'a>>,
    /// The labels the route grouped by.
    #[serde(default, borrow)]
    pub group_labels: KeyValues<'a>,
    /// Labels every alert of the group shares.
    #[serde(default, borrow)]
    pub common_labels: KeyValues<'a>,
    /// Annotations every alert of the group shares.
    #[serde(default, borrow)]
    pub common_annotations: KeyValues<'a>,
    /// Alertmanager's own address, for links back to it.
    #[serde(default, borrow, rename = "externalURL", deserialize_with = "text")]
    pub external_url: Cow<'a, str>,
    /// Payload version; "4" for every Alertmanager since 0.8.
    #[serde(default, borrow, deserialize_with = "text")]
    pub version: Cow<'a, str>,
    /// Identifies the group; stable across the notifications of one group.
    #[serde(default, borrow, deserialize_with = "text")]
    pub group_key: Cow<'a, str>,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// Alerts of the notification missing from `alerts` because this is a shortened copy
    /// (made to fit a message cap), so that counts can still say how many alerts there
    /// were. None for a payload as received; never read from or written to JSON.
    #[serde(skip)]
    pub left_out: LeftOut,
}

/// How many alerts of each status a shortened copy of a notification leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Firing alerts left out.
    pub firing: usize,
    /// Resolved alerts left out.
    pub resolved: usize,
}

impl LeftOut {
    /// The alerts of `status` left out.
    pub fn of(&self, status: Status) -> usize {
        match status {
            Status::Firing => self.firing,
            Status::Resolved => self.resolved,
        }
    }
}

/// One alert of a notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert<'a> {
    /// `firing` or `resolved`.
    #[serde(default)]
    pub status: Status,
    /// Identifying labels (`alertname`, `instance`, `severity`, ...).
    #[serde(default, borrow)]
    pub labels: KeyValues<'a>,
    /// Descriptive text (`summary`, `description`, ...).
    #[serde(default, borrow)]
    pub annotations: KeyValues<'a>,
    /// When the alert started firing.
    #[serde(default = "zero_time", with = "time")]
    pub starts_at: DateTime<FixedOffset>,
    /// When it ended; Go's zero time ("0001-01-01T00:00:00Z") while it still fires.
    #[serde(default = "zero_time", with = "time")]
    pub ends_at: DateTime<FixedOffset>,
    /// Link to the Prometheus expression that produced the alert.
    #[serde(default, borrow, rename = "generatorURL", deserialize_with = "text")]
    pub generator_url: Cow<'a, str>,
    /// Alertmanager's hash of the labels; identifies the alert across notifications.
    #[serde(default, borrow, deserialize_with = "text")]
    pub fingerprint: Cow<'a, str>,
}

impl Alert<'_> {
    /// The end time, unless it is Go's zero time (an alert that has not ended).
    pub fn ended_at(&self) -> Option<DateTime<FixedOffset>> {
        (!is_zero_time(&self.ends_at)).then_some(self.ends_at)
    }

    /// The alert's name, or an empty string when the label is missing.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// The same alert owning its strings.
    pub fn into_owned(self) -> Alert<'static> {
        Alert {
            status: self.status,
            labels: self.labels.into_owned(),
            annotations: self.annotations.into_owned(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            generator_url: owned(self.generator_url),
            fingerprint: owned(self.fingerprint),
        }
    }
}

/// A string borrowed from the input when it can be (no escapes in it), owned when not.
/// (`Cow<str>`'s own `Deserialize` always copies.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a str>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

/// A string field borrowed from the payload when it has no escapes.
fn text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    Text::deserialize(d).map(|Text(text)| text)
}

fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

/// Why a webhook body is not an Alertmanager payload: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{0}")]
pub struct PayloadError(String);

impl<'a> Notification<'a> {
    /// Parses a webhook body. Errors say what is wrong and where (JSON path, line and
    /// column); a payload without alerts is an error too. A valid body takes the plain
    /// parser, UTF-8 checked once for the whole body; only a failed one is parsed again,
    /// tracking the path, to say where.
    ///
    /// Anything but a JSON object is refused first: serde would read a struct from an array
    /// of its fields in order, and word the failure as "invalid length 2".
    pub fn from_json(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(PayloadError(
                "expected an Alertmanager payload object".into(),
            ));
        }
        let parsed = crate::utf8::str(bytes).map(serde_json::from_str);
        let notification: Self = match parsed {
            Some(Ok(notification)) => notification,
            _ => Self::explain(bytes)?,
        };
        if notification.alerts.is_empty() {
            return Err(PayloadError("the payload has no alerts".into()));
        }
        Ok(notification)
    }

    fn explain(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                PayloadError(inner.to_string())
            } else {
                PayloadError(format!("{path}: {inner}"))
            }
        })
    }

    /// The same notification owning its strings, free of the body it was parsed from.
    pub fn into_owned(self) -> Notification<'static> {
        Notification {
            receiver: owned(self.receiver),
            status: self.status,
            alerts: self.alerts.into_iter().map(Alert::into_owned).collect(),
            group_labels: self.group_labels.into_owned(),
            common_labels: self.common_labels.into_owned(),
            common_annotations: self.common_annotations.into_owned(),
            external_url: owned(self.external_url),
            version: owned(self.version),
            group_key: owned(self.group_key),
            truncated_alerts: self.truncated_alerts,
            left_out: self.left_out,
        }
    }

    /// The firing alerts, in payload order.
    pub fn firing(&self) -> impl Iterator<Item = &Alert<'a>> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    /// The resolved alerts, in payload order.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert<'a>> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }

    /// How many alerts of `status` the notification has, counting those a shortened copy
    /// left out: what titles and headings show.
    pub fn total(&self, status: Status) -> usize {
        self.alerts.iter().filter(|a| a.status == status).count() + self.left_out.of(status)
    }
}

/// Go's zero `time.Time`, which Alertmanager sends for "not set".
pub fn zero_time() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").expect("constant is valid RFC 3339")
}

/// True for Go's zero time (year 1), whatever its offset.
pub fn is_zero_time(t: &DateTime<FixedOffset>) -> bool {
    t.year() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_any_fraction_and_offset_parse() {
        for text in [
            "2026-11-25T03:56:31Z",
            "2026-11-25T03:56:31.5Z",
            "2026-11-25T03:56:31.587181032Z",
            "2026-11-25T11:56:31.587+08:00",
        ] {
            let json = format!(r#"{{"startsAt":"{text}"}}"#);
            let alert: Alert = serde_json::from_str(&json).unwrap();
            assert_eq!(alert.starts_at.timestamp(), 1_795_578_991, "{text}");
        }
    }

    #[test]
    fn go_zero_time_means_not_ended() {
        let alert: Alert = serde_json::from_str(r#"{"endsAt":"0001-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(alert.ended_at(), None);
        let alert: Alert =
            serde_json::from_str(r#"{"endsAt":"2026-11-25T03:56:35.661Z"}"#).unwrap();
        assert!(alert.ended_at().is_some());
    }

    #[test]
    fn payload_errors_say_what_and_where() {
        let error = |body: &[u8]| Notification::from_json(body).unwrap_err().to_string();
        assert_eq!(error(br#"{"alerts":[]}"#), "the payload has no alerts");
        let bad_time = error(br#"{"alerts":[{"startsAt":"soon"}]}"#);
        assert!(bad_time.starts_with("alerts[0].startsAt: "), "{bad_time}");
        let not_utf8 = error(b"{\"receiver\":\"\xff\",\"alerts\":[{}]}");
        assert!(not_utf8.contains("line 1 column"), "{not_utf8}");
        let mut body = include_bytes!("../tests/data/firing_single.json").to_vec();
        assert_eq!(Notification::from_json(&body).unwrap().alerts.len(), 1);
        body.truncate(body.len() - 3);
        assert!(error(&body).contains("EOF"));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_says_an_alertmanager_payload_object_was_expected() {
        for body in [
            &b"[]"[..],
            b" [{}, {}]",
            b"\"alerts\"",
            b"42",
            b"null",
            b"",
            b"garbage",
            br#"["r","firing",[{}],{},{},{},"","","",0]"#,
        ] {
            let error = Notification::from_json(body).unwrap_err().to_string();
            assert_eq!(
                error,
                "expected an Alertmanager payload object",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn strings_are_borrowed_from_the_body_unless_escaped() {
        let body = br#"{"receiver":"ops","alerts":[{"labels":{"alertname":"Disk","note":"\u003cb\u003e"},"generatorURL":"http://p/graph","fingerprint":"a\"b"}]}"#.to_vec();
        let n = Notification::from_json(&body).unwrap();
        let alert = &n.alerts[0];
        assert!(matches!(n.receiver, Cow::Borrowed("ops")));
        assert!(matches!(
            alert.generator_url,
            Cow::Borrowed("http://p/graph")
        ));
        assert!(matches!(alert.fingerprint, Cow::Owned(ref s) if s == "a\"b"));
        assert_eq!(alert.labels.get("alertname"), Some("Disk"));
        assert_eq!(alert.labels.get("note"), Some("<b>"));
        let owned: Notification<'static> = n.clone().into_owned();
        drop(body);
        assert_eq!(owned.receiver, "ops");
        assert_eq!(owned.alerts[0].labels.get("note"), Some("<b>"));
        assert_eq!(owned.alerts[0].fingerprint, "a\"b");
    }

    #[test]
    fn a_bad_time_names_the_text() {
        let err = serde_json::from_str::<Alert>(r#"{"startsAt":"yesterday"}"#).unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }
}
