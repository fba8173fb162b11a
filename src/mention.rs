//! Who a message @-mentions: a profile's `mention:` block (people always mentioned, extra
//! people for alerts that match a rule, people named by the alerts' own labels), checked once
//! when `profiles.yaml` is read, and resolved against a notification's alerts into the
//! channel-neutral [`Mention`] a robot is sent, with why each one is there.
//!
//! Hostile input stays bounded: mobiles are checked at load; a regular expression is at most
//! [`MAX_PATTERN_BYTES`] and runs in linear time (the `regex` crate); a label can add at most
//! [`MAX_LABEL_MENTIONS`] people to a message, and a value that is no mobile or user id is
//! skipped and counted (`Resolved::skipped`), never sent.

mod rules;

pub use rules::{MAX_LABEL_MENTIONS, MAX_PATTERN_BYTES, MentionRules, Rule, When, valid_mobile};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Notification, Status};
use crate::channel::Mention;

/// A notification's mentions, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Who the message mentions: the union over its alerts.
    pub mention: Mention,
    /// Why each one is mentioned, in the order they were found (once each).
    pub reasons: Vec<Reason>,
    /// Label values skipped: not a mobile or user id, or past [`MAX_LABEL_MENTIONS`].
    pub skipped: usize,
}

/// Why someone is mentioned, for previews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// `@所有人`, `@<mobile>` or `@<user id>`.
    pub who: String,
    /// What put them there: `mention.mobiles`, `mention.rules[0] (match severity=critical)`,
    /// `label owner_mobile of alert HighCPU`.
    pub why: String,
}

/// Who someone is, to add them once.
enum Who<'a> {
    All,
    Mobile(&'a str),
    User(&'a str),
}

impl MentionRules {
    /// Resolves the rules against every alert of `notification` (those a cut leaves out
    /// too: a critical alert that did not fit still pages its people). With `when: firing`,
    /// a notification with no firing alert mentions nobody, and rules and labels look at the
    /// firing alerts only.
    pub fn resolve(&self, notification: &Notification) -> Resolved {
        let mut out = Resolved::default();
        if self.when == When::Firing && notification.firing().next().is_none() {
            return out;
        }
        let counts = |alert: &&Alert| self.when == When::Always || alert.status == Status::Firing;
        if self.all {
            out.add(Who::All, || "mention.all".into());
        }
        for mobile in &self.mobiles {
            out.add(Who::Mobile(mobile), || "mention.mobiles".into());
        }
        for id in &self.user_ids {
            out.add(Who::User(id), || "mention.user_ids".into());
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(alert) = notification
                .alerts
                .iter()
                .filter(counts)
                .find(|a| rule.matches(a))
            else {
                continue;
            };
            let why = || {
                format!(
                    "mention.rules[{index}] ({}) matched alert {}",
                    rule.describe(),
                    alert.name()
                )
            };
            if rule.all {
                out.add(Who::All, why);
            }
            for mobile in &rule.mobiles {
                out.add(Who::Mobile(mobile), why);
            }
            for id in &rule.user_ids {
                out.add(Who::User(id), why);
            }
        }
        if !self.from_labels.is_empty() {
            let mut from_labels = 0;
            for alert in notification.alerts.iter().filter(counts) {
                for label in &self.from_labels {
                    let Some(values) = alert.labels.get(label) else {
                        continue;
                    };
                    for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                        out.add_from_label(label, value, &mut from_labels, || {
                            format!("label {label} of alert {}", alert.name())
                        });
                    }
                }
            }
        }
        out
    }
}

impl MentionRules {
    /// Everyone the rules could mention, labels aside: those always mentioned and those of
    /// every rule, for `check` to say what a channel cannot carry.
    pub fn anyone(&self) -> Mention {
        let mut out = Resolved::default();
        let people = std::iter::once((self.all, &self.mobiles, &self.user_ids))
            .chain(self.rules.iter().map(|r| (r.all, &r.mobiles, &r.user_ids)));
        for (all, mobiles, user_ids) in people {
            if all {
                out.add(Who::All, String::new);
            }
            for mobile in mobiles {
                out.add(Who::Mobile(mobile), String::new);
            }
            for id in user_ids {
                out.add(Who::User(id), String::new);
            }
        }
        out.mention
    }
}

impl Resolved {
    /// Adds `who` unless already there; says whether it was new.
    fn add(&mut self, who: Who, why: impl FnOnce() -> String) -> bool {
        let mention = &mut self.mention;
        let (list, word) = match who {
            Who::All if mention.all => return false,
            Who::All => {
                mention.all = true;
                self.reasons.push(Reason {
                    who: "@所有人".into(),
                    why: why(),
                });
                return true;
            }
            Who::Mobile(m) => (&mut mention.mobiles, m),
            Who::User(u) => (&mut mention.user_ids, u),
        };
        if list.iter().any(|have| have == word) {
            return false;
        }
        list.push(word.to_owned());
        self.reasons.push(Reason {
            who: format!("@{word}"),
            why: why(),
        });
        true
    }

    /// One value of a `from_labels` label: a mobile (digits, optional `+country`) or a user
    /// id; anything else, or a new person past the bound, is skipped and counted. A label
    /// whose name says `mobile` or `phone` holds mobiles only.
    fn add_from_label(
        &mut self,
        label: &str,
        value: &str,
        added: &mut usize,
        why: impl FnOnce() -> String,
    ) {
        let mobiles_only = label.contains("mobile") || label.contains("phone");
        let who = if mobiles_only
            || value.starts_with('+')
            || value.bytes().all(|b| b.is_ascii_digit())
        {
            valid_mobile(value).then_some(Who::Mobile(value))
        } else {
            valid_user_id(value).then_some(Who::User(value))
        };
        let Some(who) = who else {
            self.skipped += 1;
            return;
        };
        let known = match who {
            Who::Mobile(m) => self.mention.mobiles.iter().any(|have| have == m),
            Who::User(u) => self.mention.user_ids.iter().any(|have| have == u),
            Who::All => true,
        };
        if known {
            return;
        }
        if *added >= MAX_LABEL_MENTIONS {
            self.skipped += 1;
            return;
        }
        *added += 1;
        self.add(who, why);
    }
}

/// A user id a label may name: 1 to 64 letters, digits and `_.-@`, which every robot's ids
/// are made of; anything else (spaces, markup, a whole sentence) is not sent.
fn valid_user_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
}

#[cfg(test)]
mod tests;
