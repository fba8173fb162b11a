//! Merging notifications that wait for the same robot into as few messages as fit, in one
//! pass over the queue: each part is appended once, and the size is tracked as it grows.

use std::collections::VecDeque;

use super::Job;
use crate::alert::Status;
use crate::channel::{Channel, MessageKind, json_len_bound};
use crate::compose::{Composed, MENTION_BYTES};

/// A message being merged, part by part. It keeps an upper bound on its size as the channel
/// measures it, exact while nobody is mentioned (JSON escaping is per character, so text
/// lengths add up), so parts are added without measuring the message; only a bound made
/// loose by mentions that passes the cap has the message measured (and the bound reset).
pub(super) struct Merger {
    /// The merged message so far; its title is set when it is finished (or measured).
    message: Composed,
    /// The first part's title, which the merged title repeats.
    first_title: String,
    /// How many parts it holds.
    parts: usize,
    /// Never less than the length of the body as posted.
    size_bound: usize,
    /// Whether `size_bound` is the exact length (mentions make it an upper bound only: a
    /// mention appended to the text is dropped once another part's text holds it).
    exact: bool,
}

/// Where a message stood before a part was appended, to undo it.
struct Mark {
    text: usize,
    mobiles: usize,
    user_ids: usize,
    all: bool,
}

impl Merger {
    /// A message holding `first` alone.
    pub(super) fn new(first: &Composed) -> Self {
        Self {
            size_bound: first.size(),
            exact: true,
            first_title: first.title.clone(),
            message: first.clone(),
            parts: 1,
        }
    }

    /// The message type every part must share.
    pub(super) fn kind(&self) -> MessageKind {
        self.message.kind
    }

    /// The channel's cap for the message.
    pub(super) fn cap(&self) -> usize {
        self.message.channel.cap(self.message.kind)
    }

    /// Appends `part` if the merged body stays within `cap`; says whether it did. Costs the
    /// part's length, plus one measure of the body when mentions leave the bound unsure.
    pub(super) fn try_add(&mut self, part: &Composed, cap: usize) -> bool {
        let mention = &self.message.mention;
        let mark = Mark {
            text: self.message.text.len(),
            mobiles: mention.mobiles.len(),
            user_ids: mention.user_ids.len(),
            all: mention.all,
        };
        let channel = self.message.channel;
        let separator = channel.rule(self.message.kind);
        let kind = self.message.kind;
        let mut growth = channel.text_len(kind, separator) + channel.text_len(kind, &part.text);
        if channel.shows_title(self.message.kind) {
            growth += title_len(self.parts + 1) - title_len(self.parts);
        }
        self.message.text.push_str(separator);
        self.message.text.push_str(&part.text);
        growth += self.add_mentions(part);
        self.parts += 1;
        let mention = &self.message.mention;
        let exact = self.exact
            && mention.mobiles.is_empty()
            && mention.user_ids.is_empty()
            && mention.all == mark.all;
        let bound = self.size_bound + growth;
        if bound <= cap {
            (self.size_bound, self.exact) = (bound, exact);
        } else if exact || self.measure() > cap {
            self.undo(&mark);
            return false;
        }
        self.message.omitted += part.omitted;
        if part.status == Status::Firing {
            self.message.status = Status::Firing;
        }
        true
    }

    /// Adds the part's mentions not yet in the message; returns what they may add to the body.
    fn add_mentions(&mut self, part: &Composed) -> usize {
        let mention = &mut self.message.mention;
        let mut growth = 0;
        if part.mention.all && !mention.all {
            mention.all = true;
            growth += MENTION_BYTES;
        }
        for (have, new) in [
            (&mut mention.mobiles, &part.mention.mobiles),
            (&mut mention.user_ids, &part.mention.user_ids),
        ] {
            for who in new {
                if !have.contains(who) {
                    growth += 2 * json_len_bound(who) + MENTION_BYTES;
                    have.push(who.clone());
                }
            }
        }
        growth
    }

    /// The exact length of the body, which the bound becomes.
    fn measure(&mut self) -> usize {
        self.set_title();
        (self.size_bound, self.exact) = (self.message.size(), true);
        self.size_bound
    }

    fn undo(&mut self, mark: &Mark) {
        self.parts -= 1;
        self.message.text.truncate(mark.text);
        let mention = &mut self.message.mention;
        mention.mobiles.truncate(mark.mobiles);
        mention.user_ids.truncate(mark.user_ids);
        mention.all = mark.all;
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
        if !merger.try_add(&job.message, merger.cap()) {
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
        let robot = crate::channel::Robot {
            url: crate::channel::RobotUrl::parse(
                "http://127.0.0.1:1/robot/send?access_token=q",
                None,
            )
            .expect("a valid robot URL"),
            secret: None,
        };
        let windows = super::Windows::of(Channel::DingTalk, 20);
        let policy = super::Policy {
            windows,
            alone: windows,
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
            record: None,
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
