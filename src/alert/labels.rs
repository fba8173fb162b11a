//! Labels and annotations: a small string-to-string map, sorted by key.
//!
//! An alert carries about ten labels and a few annotations, and a webhook body can carry
//! thousands of alerts, so the map is a sorted vector of strings borrowed from the webhook
//! body rather than a `BTreeMap<String, String>`: parsing copies and allocates nothing for
//! them (only a string with a JSON escape in it is unescaped into its own allocation), and
//! Alertmanager sends keys already sorted (Go marshals maps in key order), so building it
//! is a push per entry. It serializes as a JSON object, in key order, as a `BTreeMap` would.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Text, owned};

/// Up to this many entries, a lookup scans rather than bisects.
const LINEAR: usize = 16;

/// Labels or annotations, sorted by key, each key once; the strings are borrowed from the
/// payload (`'a`) or owned.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyValues<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> KeyValues<'a> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if present (even when empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        let found = if self.0.len() <= LINEAR {
            // Length and first byte first: most keys are told apart without `memcmp`.
            let first = key.as_bytes().first();
            self.0.iter().find(|(k, _)| {
                let k: &str = k;
                k.len() == key.len() && k.as_bytes().first() == first && k == key
            })
        } else {
            self.find(key).ok().map(|index| &self.0[index])
        };
        found.map(|(_, value)| value.as_ref())
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Option<Cow<'a, str>> {
        let (key, value) = (key.into(), value.into());
        // In key order, as Alertmanager sends them: append.
        if self.0.last().is_none_or(|(last, _)| before(last, &key)) {
            self.0.push((key, value));
            return None;
        }
        match self.find(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.0[index].1, value)),
            Err(index) => {
                self.0.insert(index, (key, value));
                None
            }
        }
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same map owning its strings, free of the payload it was parsed from.
    pub fn into_owned(self) -> KeyValues<'static> {
        KeyValues(
            self.0
                .into_iter()
                .map(|(k, v)| (owned(k), owned(v)))
                .collect(),
        )
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }
}

/// `a < b`, deciding on the first byte when it differs, as it does for most label names,
/// without a call to `memcmp`.
fn before(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

impl fmt::Debug for KeyValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K: Into<Cow<'a, str>>, V: Into<Cow<'a, str>>> FromIterator<(K, V)> for KeyValues<'a> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = Self::new();
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }
}

impl Serialize for KeyValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for KeyValues<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(KeyValuesVisitor(PhantomData))
    }
}

struct KeyValuesVisitor<'a>(PhantomData<KeyValues<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for KeyValuesVisitor<'a> {
    type Value = KeyValues<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<KeyValues<'a>, A::Error> {
        let mut map = KeyValues(Vec::with_capacity(access.size_hint().unwrap_or(8).min(64)));
        while let Some((Text(key), Text(value))) = access.next_entry()? {
            // A repeated key keeps its last value, as JSON parsers into maps do.
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_sorted_and_unique_whatever_the_order() {
        let map: KeyValues = [("b", "2"), ("a", "1"), ("c", "3"), ("a", "one")]
            .into_iter()
            .collect();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [("a", "one"), ("b", "2"), ("c", "3")]
        );
        assert_eq!(map.get("a"), Some("one"));
        assert_eq!(map.get("z"), None);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn json_round_trips_as_an_object_in_key_order() {
        let map: KeyValues = serde_json::from_str(r#"{"z":"last","a":"","m":"中"}"#).unwrap();
        assert_eq!(map.get("a"), Some(""));
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":"","m":"中","z":"last"}"#
        );
        let error = serde_json::from_str::<KeyValues>(r#"{"a":1}"#).unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }
}
