//! The `mention:` block as `profiles.yaml` writes it, checked while it is read (so the YAML
//! parser reports the line): mobiles, regular expressions, rule shapes and their bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;

/// A regular expression in `match_re` may be at most this long.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// At most this many people are mentioned from alert labels in one message; more are
/// skipped and counted.
pub const MAX_LABEL_MENTIONS: usize = 20;

/// At most this many rules, and this many people in one list.
const MAX_RULES: usize = 100;
const MAX_LIST: usize = 100;

/// The memory one compiled expression may take (the `regex` crate refuses larger ones).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A profile's `mention:` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMention", into = "RawMention")]
pub struct MentionRules {
    /// @所有人 in every message.
    pub all: bool,
    /// Mentioned in every message, by the mobile number of their account.
    pub mobiles: Vec<String>,
    /// Mentioned in every message, by user id.
    pub user_ids: Vec<String>,
    /// Whether a message with no firing alert mentions anyone.
    pub when: When,
    /// Extra mentions for messages holding an alert that matches.
    pub rules: Vec<Rule>,
    /// Labels whose values (comma-separated mobiles or user ids) are mentioned.
    pub from_labels: Vec<String>,
}

/// When a profile mentions anyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// In every message, recoveries too (as before rules existed).
    #[default]
    Always,
    /// Only in messages with a firing alert; rules and labels look at firing alerts only.
    Firing,
}

/// One rule: who to add when an alert's labels match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct Rule {
    /// Labels that must equal these values (a missing label is empty).
    pub equal: BTreeMap<String, String>,
    /// Labels that must match these expressions whole, as Alertmanager's `=~` does.
    pub like: BTreeMap<String, Pattern>,
    /// @所有人.
    pub all: bool,
    /// By mobile number.
    pub mobiles: Vec<String>,
    /// By user id.
    pub user_ids: Vec<String>,
}

/// A compiled `match_re` expression, anchored at both ends, with its source.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Pattern {
    fn new(source: &str) -> Result<Self, String> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "match_re: an expression of {} bytes is over the {MAX_PATTERN_BYTES}-byte bound",
                source.len()
            ));
        }
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("match_re: {source:?} is not a valid expression ({e})"))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }
}

impl MentionRules {
    /// True when no message of the profile mentions anyone.
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.mobiles.is_empty()
            && self.user_ids.is_empty()
            && self.rules.is_empty()
            && self.from_labels.is_empty()
    }
}

impl Rule {
    /// Whether `alert`'s labels satisfy every matcher of the rule.
    pub(super) fn matches(&self, alert: &Alert) -> bool {
        let value = |name: &str| alert.labels.get(name).unwrap_or_default();
        self.equal.iter().all(|(name, want)| value(name) == want)
            && self
                .like
                .iter()
                .all(|(name, pattern)| pattern.regex.is_match(value(name)))
    }

    /// The matchers as Alertmanager writes them: `severity="critical", team=~"db|dba"`.
    pub(super) fn describe(&self) -> String {
        let equal = self.equal.iter().map(|(k, v)| format!("{k}={v:?}"));
        let like = self
            .like
            .iter()
            .map(|(k, p)| format!("{k}=~{:?}", p.source));
        equal.chain(like).collect::<Vec<_>>().join(", ")
    }
}

/// A mobile number as DingTalk and WeCom take it: 5 to 20 digits, optionally after a
/// `+country` code (`+86-13800000000` or `+8613800000000`).
pub fn valid_mobile(text: &str) -> bool {
    let number = match text.strip_prefix('+') {
        Some(rest) => match rest.split_once('-') {
            Some((country, number)) => {
                if !(1..=4).contains(&country.len()) || !all_digits(country) {
                    return false;
                }
                number
            }
            None => rest,
        },
        None => text,
    };
    (5..=20).contains(&number.len()) && all_digits(number)
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

/// The block as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMention {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    mobiles: Vec<String>,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    when: When,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    from_labels: Vec<String>,
}

impl TryFrom<RawMention> for MentionRules {
    type Error = String;

    fn try_from(raw: RawMention) -> Result<Self, String> {
        check_people("mobiles", &raw.mobiles, &raw.user_ids)?;
        if raw.rules.len() > MAX_RULES {
            return Err(format!("rules: at most {MAX_RULES} rules"));
        }
        if raw.from_labels.len() > MAX_LIST {
            return Err(format!("from_labels: at most {MAX_LIST} labels"));
        }
        Ok(Self {
            all: raw.all,
            mobiles: raw.mobiles,
            user_ids: raw.user_ids,
            when: raw.when,
            rules: raw.rules,
            from_labels: raw.from_labels,
        })
    }
}

impl From<MentionRules> for RawMention {
    fn from(rules: MentionRules) -> Self {
        Self {
            all: rules.all,
            mobiles: rules.mobiles,
            user_ids: rules.user_ids,
            when: rules.when,
            rules: rules.rules,
            from_labels: rules.from_labels,
        }
    }
}

/// Refuses a mobile that is no mobile number, an empty user id, and lists past the bound.
fn check_people(key: &str, mobiles: &[String], user_ids: &[String]) -> Result<(), String> {
    if mobiles.len() > MAX_LIST || user_ids.len() > MAX_LIST {
        return Err(format!("{key}: at most {MAX_LIST} people in a list"));
    }
    if let Some(bad) = mobiles.iter().find(|m| !valid_mobile(m)) {
        return Err(format!(
            "{key}: {bad:?} is not a mobile number (5 to 20 digits, optionally after +country, as in \"+86-13800000000\")"
        ));
    }
    if user_ids.iter().any(|id| id.trim().is_empty()) {
        return Err("user_ids: an empty user id".into());
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    equal: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "match_re",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    like: BTreeMap<String, String>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    mobiles: Vec<String>,
    #[serde(default)]
    user_ids: Vec<String>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        if raw.equal.is_empty() && raw.like.is_empty() {
            return Err(
                "rules: a rule needs match or match_re (labels the alert must have)".into(),
            );
        }
        if !raw.all && raw.mobiles.is_empty() && raw.user_ids.is_empty() {
            return Err("rules: a rule mentions no one (set all, mobiles or user_ids)".into());
        }
        check_people("rules: mobiles", &raw.mobiles, &raw.user_ids)?;
        let like = raw
            .like
            .iter()
            .map(|(name, source)| Ok((name.clone(), Pattern::new(source)?)))
            .collect::<Result<_, String>>()
            .map_err(|e| format!("rules: {e}"))?;
        Ok(Self {
            equal: raw.equal,
            like,
            all: raw.all,
            mobiles: raw.mobiles,
            user_ids: raw.user_ids,
        })
    }
}

impl From<Rule> for RawRule {
    fn from(rule: Rule) -> Self {
        Self {
            equal: rule.equal,
            like: rule
                .like
                .into_iter()
                .map(|(name, pattern)| (name, pattern.source))
                .collect(),
            all: rule.all,
            mobiles: rule.mobiles,
            user_ids: rule.user_ids,
        }
    }
}
