//! Merging notifications that wait for the same robot into as few messages as fit, in one
//! pass over the queue: each part is appended once, and the size is tracked as it grows.

use std::collections::VecDeque;

use super::Job;
use crate::compose::Composed;
use crate::config::MessageKind;
use crate::dingtalk::{MAX_BODY_BYTES, json_len_bound};

/// What a growing message may have gained per part besides its text and new mentions: the
/// title's count gaining a digit, and the blank line before mentions the text lacks.
const PART_SLACK: usize = 8;

/// A message being merged, part by part. It keeps an upper bound on its body's size, so most
/// parts are added without measuring the body; only when the bound passes the cap is the
/// exact body measured (and the bound reset to it).
pub(super) struct Merger {
    /// The merged message so far; its title is set when it is finished (or measured).
    message: Composed,
    /// The first part's title, which the merged title repeats.
    first_title: String,
    /// How many parts it holds.
    parts: usize,
    /// Never less than the length of the body as posted.
    size_bound: usize,
}

impl Merger {
    /// A message holding `first` alone.
    pub(super) fn new(first: &Composed) -> Self {
        Self {
            size_bound: first.body_len(),
            first_title: first.title.clone(),
            message: first.clone(),
            parts: 1,
        }
    }

    /// The message type every part must share.
    pub(super) fn kind(&self) -> MessageKind {
        self.message.kind
    }

    /// Appends `part` if the merged body stays within `cap`; says whether it did. Costs the
    /// part's length, plus one measure of the body when the bound alone cannot tell.
    pub(super) fn try_add(&mut self, part: &Composed, cap: usize) -> bool {
        let separator = separator(self.message.kind);
        let (text_len, mobiles, users, all) = (
            self.message.text.len(),
            self.message.mention.mobiles.len(),
            self.message.mention.user_ids.len(),
            self.message.mention.all,
        );
        let mut growth = json_len_bound(separator) + json_len_bound(&part.text) + PART_SLACK;
        growth += title_len(self.parts + 1) - title_len(self.parts);
        self.message.text.push_str(separator);
        self.message.text.push_str(&part.text);
        let mention = &mut self.message.mention;
        mention.all |= part.mention.all;
        for (have, new) in [
            (&mut mention.mobiles, &part.mention.mobiles),
            (&mut mention.user_ids, &part.mention.user_ids),
        ] {
            for who in new {
                if !have.contains(who) {
                    // In the `at` array and, when the text lacks it, appended as `@who `.
                    growth += 2 * json_len_bound(who) + 8;
                    have.push(who.clone());
                }
            }
        }
        self.parts += 1;
        let bound = self.size_bound + growth;
        if bound <= cap {
            self.size_bound = bound;
        } else {
            self.set_title();
            let exact = self.message.body_len();
            if exact > cap {
                self.parts -= 1;
                self.message.text.truncate(text_len);
                self.message.mention.mobiles.truncate(mobiles);
                self.message.mention.user_ids.truncate(users);
                self.message.mention.all = all;
                return false;
            }
            self.size_bound = exact;
        }
        self.message.omitted += part.omitted;
        true
    }

    /// The merged message.
    pub(super) fn finish(mut self) -> Composed {
        self.set_title();
        self.message
    }

    fn set_title(&mut self) {
        self.message.title = if self.parts > 1 {
            format!("[合并{}条] {}", self.parts, self.first_title)
        } else {
            self.first_title.clone()
        };
    }
}

/// Between two parts: a rule, so each part keeps its own headings.
fn separator(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Markdown => "\n\n---\n\n",
        MessageKind::Text => "\n\n====================\n\n",
    }
}

/// The bytes the `[合并N条] ` prefix adds to the title of `parts` parts (none for one).
fn title_len(parts: usize) -> usize {
    if parts < 2 {
        return 0;
    }
    "[合并条] ".len() + parts.to_string().len()
}

/// Takes the next batch off the queue and the message it sends: the first job alone while the
/// budget has a slot for every waiting job; otherwise the first job merged with as many
/// following ones of the same message type as fit under the size cap, in arrival order.
/// One pass over the jobs it looks at; the queue is rebuilt once.
pub(super) fn take(queue: &mut VecDeque<Job>, free_slots: usize) -> Option<(Vec<Job>, Composed)> {
    let first = queue.pop_front()?;
    if queue.len() < free_slots {
        let message = first.message.clone();
        return Some((vec![first], message));
    }
    let mut merger = Merger::new(&first.message);
    let mut chosen = Vec::new();
    let mut end = queue.len();
    for (index, job) in queue.iter().enumerate() {
        if job.message.kind != merger.kind() {
            continue;
        }
        if !merger.try_add(&job.message, MAX_BODY_BYTES) {
            end = index;
            break;
        }
        chosen.push(index);
    }
    let mut batch = Vec::with_capacity(chosen.len() + 1);
    batch.push(first);
    let mut kept = Vec::new();
    let mut chosen = chosen.into_iter().peekable();
    for (index, job) in queue.drain(..end).enumerate() {
        if chosen.next_if_eq(&index).is_some() {
            batch.push(job);
        } else {
            kept.push(job);
        }
    }
    for job in kept.into_iter().rev() {
        queue.push_front(job);
    }
    Some((batch, merger.finish()))
}

/// A robot's queue of waiting notifications, for the benchmark: merged as the robot's worker
/// merges it while its budget is spent.
pub struct MergeQueue(VecDeque<Job>);

impl MergeQueue {
    /// A queue holding `messages`, in order, as webhooks for one robot.
    pub fn new(messages: Vec<Composed>) -> Self {
        let robot = crate::dingtalk::Robot {
            url: crate::secret::RobotUrl::parse("http://127.0.0.1:1/robot/send?access_token=q")
                .expect("a valid robot URL"),
            secret: None,
        };
        let policy = super::Policy {
            rate_limit: 20,
            timeout: std::time::Duration::from_secs(5),
            max_wait: std::time::Duration::from_secs(90),
            throttle_penalty: std::time::Duration::from_secs(600),
            rate_limit_margin: std::time::Duration::from_secs(1),
        };
        let now = tokio::time::Instant::now();
        let jobs = messages.into_iter().map(|message| Job {
            profile: "bench".into(),
            robot: robot.clone(),
            message,
            policy,
            enqueued: now,
            deadline: now + policy.max_wait,
            reply: tokio::sync::oneshot::channel().0,
        });
        Self(jobs.collect())
    }

    /// Takes batches off the queue until it is empty, as the worker does with no slot free;
    /// returns the messages it would send.
    pub fn drain(mut self) -> Vec<Composed> {
        std::iter::from_fn(|| take(&mut self.0, 0).map(|(_, message)| message)).collect()
    }
}

#[cfg(test)]
mod tests;
