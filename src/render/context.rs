//! What templates see: the notification under Alertmanager's own field names, plus helpers
//! (`firing`, `resolved`, totals, `profile`, `now`, `timezone`, `channel`, `mention`), as Tera
//! values.
//!
//! Each alert becomes one value, shared by `alerts`, `firing` and `resolved` (Tera's arrays
//! and maps are reference-counted). Tera builds a map straight into its own table only when
//! serializing (its `From` for maps copies the table into a new one), and a struct's field
//! names are `&'static str` where a map's keys are allocated one by one; so an alert and its
//! labels are serialized as structs, with label names interned for the process (a bounded
//! set; a name past the bound makes its map an ordinary one). Before, built through the
//! alert's own `Serialize`, this was a fifth of a 10-alert render (BENCHMARKS.md). The shape
//! is the payload's JSON (a test compares the two), so templates cannot tell.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use tera::{Context, Value};

use crate::alert::{Alert, KeyValues, Notification, Status, time};
use crate::channel::Channel;
use crate::mention::MentionRules;

/// Everything a template of `profile` sees for `notification`, rendered at `now`.
pub(super) fn build(
    profile: &str,
    notification: &Notification,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
    channel: Channel,
    mention: &MentionRules,
) -> Context {
    let n = notification;
    let alerts: Vec<Value> = n.alerts.iter().map(alert).collect();
    let with_status = |status: Status| -> Value {
        let chosen: Vec<Value> = n
            .alerts
            .iter()
            .zip(&alerts)
            .filter(|(alert, _)| alert.status == status)
            .map(|(_, value)| value.clone())
            .collect();
        Value::from(chosen)
    };
    let mut context = Context::new();
    context.insert_value("firing", with_status(Status::Firing));
    context.insert_value("resolved", with_status(Status::Resolved));
    context.insert_value("alerts", Value::from(alerts));
    context.insert_value("receiver", Value::from(&*n.receiver));
    context.insert_value("status", Value::from(n.status.as_str()));
    context.insert_value("groupLabels", key_values(&n.group_labels));
    context.insert_value("commonLabels", key_values(&n.common_labels));
    context.insert_value("commonAnnotations", key_values(&n.common_annotations));
    context.insert_value("externalURL", Value::from(&*n.external_url));
    context.insert_value("version", Value::from(&*n.version));
    context.insert_value("groupKey", Value::from(&*n.group_key));
    context.insert_value("truncatedAlerts", Value::from(n.truncated_alerts));
    // Every alert of the notification, also those a message cut to the cap left out.
    context.insert_value("total_firing", Value::from(n.total(Status::Firing)));
    context.insert_value("total_resolved", Value::from(n.total(Status::Resolved)));
    context.insert_value("profile", Value::from(profile));
    context.insert_value(
        "now",
        Value::from(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    context.insert_value("timezone", Value::from(timezone.name()));
    context.insert_value("channel", Value::from(channel.as_str()));
    context.insert("mention", mention);
    context
}

/// One alert as a map with the payload's field names.
fn alert(alert: &Alert) -> Value {
    Value::from_serializable(&AlertView(alert))
}

/// Labels or annotations as a map.
fn key_values(pairs: &KeyValues) -> Value {
    Value::from_serializable(&Pairs(pairs))
}

struct AlertView<'v, 'a>(&'v Alert<'a>);

impl Serialize for AlertView<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let alert = self.0;
        let mut map = serializer.serialize_struct("Alert", 7)?;
        map.serialize_field("status", alert.status.as_str())?;
        map.serialize_field("labels", &Pairs(&alert.labels))?;
        map.serialize_field("annotations", &Pairs(&alert.annotations))?;
        map.serialize_field("startsAt", &TimeView(&alert.starts_at))?;
        map.serialize_field("endsAt", &TimeView(&alert.ends_at))?;
        map.serialize_field("generatorURL", &*alert.generator_url)?;
        map.serialize_field("fingerprint", &*alert.fingerprint)?;
        map.end()
    }
}

/// A time as the payload's JSON writes it ([`time::write`]), without a `String` between.
struct TimeView<'t>(&'t DateTime<FixedOffset>);

impl Serialize for TimeView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = time::TimeText::default();
        time::write(self.0, &mut text);
        serializer.serialize_str(text.as_str())
    }
}

/// Labels or annotations: a struct of interned names while they all fit [`NAMES`].
struct Pairs<'p, 'a>(&'p KeyValues<'a>);

/// A map with more entries than this is written as a map (its names are not looked up).
const STRUCT_FIELDS: usize = 32;

impl Serialize for Pairs<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0;
        let mut names: [&'static str; STRUCT_FIELDS] = [""; STRUCT_FIELDS];
        if pairs.len() <= STRUCT_FIELDS && interned(pairs, &mut names) {
            let mut map = serializer.serialize_struct("KeyValues", pairs.len())?;
            for (name, (_, value)) in names.iter().zip(pairs.iter()) {
                map.serialize_field(name, value)?;
            }
            return map.end();
        }
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (key, value) in pairs.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Label and annotation names, each stored once for the life of the process, so maps of
/// them are built with `&'static str` keys. Bounded: a hostile payload may send a million
/// names; past [`Names::MAX`] names (or for a name longer than [`Names::LONGEST`]) maps are
/// built the ordinary way. At most 256 KiB, in a render worker that is replaced anyway.
static NAMES: Mutex<Names> = Mutex::new(Names::new());

struct Names {
    known: Option<HashSet<&'static str>>,
    /// The names of the last two maps interned (an alert's labels, then its annotations):
    /// the alerts of a notification mostly carry the same names, so most maps are one
    /// comparison with these rather than a hash per name.
    recent: [Vec<&'static str>; 2],
    /// Which of `recent` to replace next.
    older: usize,
}

impl Names {
    const MAX: usize = 2048;
    const LONGEST: usize = 128;

    const fn new() -> Self {
        Self {
            known: None,
            recent: [Vec::new(), Vec::new()],
            older: 0,
        }
    }

    fn intern(&mut self, name: &str) -> Option<&'static str> {
        let known = self.known.get_or_insert_with(HashSet::new);
        if let Some(&found) = known.get(name) {
            return Some(found);
        }
        if known.len() >= Self::MAX || name.len() > Self::LONGEST {
            return None;
        }
        let stored: &'static str = Box::leak(name.into());
        known.insert(stored);
        Some(stored)
    }
}

/// Fills `names` with the interned names of `pairs`; false if one cannot be interned.
fn interned(pairs: &KeyValues, names: &mut [&'static str]) -> bool {
    let mut known = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let same = |list: &Vec<&'static str>| {
        list.len() == pairs.len() && list.iter().zip(pairs.iter()).all(|(a, (b, _))| *a == b)
    };
    if let Some(list) = known.recent.iter().find(|list| same(list)) {
        names[..list.len()].copy_from_slice(list);
        return true;
    }
    for (slot, (key, _)) in names.iter_mut().zip(pairs.iter()) {
        match known.intern(key) {
            Some(name) => *slot = name,
            None => return false,
        }
    }
    let older = known.older;
    known.older = 1 - older;
    let list = &mut known.recent[older];
    list.clear();
    list.extend_from_slice(&names[..pairs.len()]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde view of the payload, which is what the context mirrors.
    fn by_serde(n: &Notification) -> Vec<Value> {
        n.alerts
            .iter()
            .map(|a| Value::try_from_serializable(a).unwrap())
            .collect()
    }

    #[test]
    fn each_alert_is_the_value_its_json_would_give() {
        let mention = MentionRules::default();
        let now = "2026-11-25T04:06:31Z".parse().unwrap();
        for (name, mut n) in crate::samples::all() {
            // Every shape of time: fractions, offsets, Go's zero time.
            if let Some(first) = n.alerts.first_mut() {
                first.starts_at = time::parse("2026-11-25T11:56:31.587181032+08:00").unwrap();
                first.ends_at = time::parse("2026-11-25T03:56:31.5Z").unwrap();
            }
            let context = build("p", &n, now, chrono_tz::UTC, Channel::DingTalk, &mention);
            let alerts = context.get("alerts").unwrap().as_array().unwrap();
            assert_eq!(alerts, by_serde(&n).as_slice(), "sample {name}");
            let labels = Value::try_from_serializable(&n.common_labels).unwrap();
            assert_eq!(context.get("commonLabels"), Some(&labels), "sample {name}");
        }
    }

    #[test]
    fn names_past_the_bound_make_ordinary_maps_that_read_the_same() {
        let mut many = KeyValues::new();
        for i in 0..STRUCT_FIELDS + 1 {
            many.insert(format!("many{i:05}"), "v");
        }
        assert_eq!(
            key_values(&many),
            Value::try_from_serializable(&many).unwrap()
        );
        // Past the bound (and for a name too long to keep) a name is not interned; a local
        // set, so the process-wide one other tests render with is left alone.
        let mut names = Names::new();
        for i in 0..Names::MAX {
            assert!(names.intern(&format!("name{i:05}")).is_some());
        }
        assert_eq!(names.intern("name00007"), Some("name00007"));
        assert_eq!(names.intern("one more"), None);
        let long = "x".repeat(Names::LONGEST + 1);
        let mut fresh = Names::new();
        assert_eq!(fresh.intern(&long), None);
        // A map whose name is not interned reads the same.
        let mut one = KeyValues::new();
        one.insert(long, "v");
        assert_eq!(
            key_values(&one),
            Value::try_from_serializable(&one).unwrap()
        );
    }
}
