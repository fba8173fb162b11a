//! Merging notifications that wait for the same robot into as few messages as fit.

use std::collections::VecDeque;

use super::Job;
use crate::compose::Composed;
use crate::config::{Mention, MessageKind};
use crate::dingtalk::MAX_BODY_BYTES;

/// Takes the next batch off the queue: the first job alone while the budget has a slot for
/// every waiting job; otherwise the first job merged with as many following ones of the same
/// message type as fit under the size cap, in arrival order.
pub(super) fn take(queue: &mut VecDeque<Job>, free_slots: usize) -> Vec<Job> {
    let Some(first) = queue.pop_front() else {
        return Vec::new();
    };
    let mut batch = vec![first];
    if queue.len() < free_slots {
        return batch;
    }
    let kind = batch[0].message.kind;
    let mut index = 0;
    while index < queue.len() {
        if queue[index].message.kind != kind {
            index += 1;
            continue;
        }
        let mut parts: Vec<&Composed> = batch.iter().map(|j| &j.message).collect();
        parts.push(&queue[index].message);
        if !merge(&parts).fits(MAX_BODY_BYTES) {
            break;
        }
        batch.extend(queue.remove(index));
    }
    batch
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
        let mut messages = Vec::new();
        while !self.0.is_empty() {
            let batch = take(&mut self.0, 0);
            let parts: Vec<&Composed> = batch.iter().map(|job| &job.message).collect();
            messages.push(merge(&parts));
        }
        messages
    }
}

/// One message holding every part, each keeping its own headings; mentions are the union.
pub fn merge(parts: &[&Composed]) -> Composed {
    let first = parts[0];
    if parts.len() == 1 {
        return first.clone();
    }
    let separator = match first.kind {
        MessageKind::Markdown => "\n\n---\n\n",
        MessageKind::Text => "\n\n====================\n\n",
    };
    let text = parts
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(separator);
    let mut mention = Mention::default();
    for part in parts {
        mention.all |= part.mention.all;
        for mobile in &part.mention.mobiles {
            if !mention.mobiles.contains(mobile) {
                mention.mobiles.push(mobile.clone());
            }
        }
        for user in &part.mention.user_ids {
            if !mention.user_ids.contains(user) {
                mention.user_ids.push(user.clone());
            }
        }
    }
    Composed {
        kind: first.kind,
        title: format!("[合并{}条] {}", parts.len(), first.title),
        text,
        mention,
        omitted: parts.iter().map(|p| p.omitted).sum(),
        fallback: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(text: &str, mobiles: &[&str]) -> Composed {
        Composed {
            kind: MessageKind::Markdown,
            title: format!("t-{text}"),
            text: text.into(),
            mention: Mention {
                all: false,
                mobiles: mobiles.iter().map(|m| (*m).into()).collect(),
                user_ids: vec![],
            },
            omitted: 0,
            fallback: None,
        }
    }

    #[test]
    fn merged_parts_keep_their_text_and_join_their_mentions() {
        let (a, b) = (part("### A", &["1", "2"]), part("### B", &["2", "3"]));
        let merged = merge(&[&a, &b]);
        assert_eq!(merged.text, "### A\n\n---\n\n### B");
        assert_eq!(merged.title, "[合并2条] t-### A");
        assert_eq!(merged.mention.mobiles, ["1", "2", "3"]);
    }
}
