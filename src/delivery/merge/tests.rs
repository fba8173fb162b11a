//! The merger against a plain reference: join every part, then measure the whole body.

use super::*;
use crate::channel::dingtalk::MAX_BODY_BYTES;
use crate::config::Mention;

fn part(kind: MessageKind, text: &str, mobiles: &[&str]) -> Composed {
    part_for(Channel::DingTalk, kind, text, mobiles)
}

/// A part for `channel`; `who` are mentioned the way the channel can (user ids where
/// mobiles cannot be).
fn part_for(channel: Channel, kind: MessageKind, text: &str, who: &[&str]) -> Composed {
    let who: Vec<String> = who.iter().map(|m| (*m).into()).collect();
    let by_id =
        channel == Channel::Feishu || (channel, kind) == (Channel::WeCom, MessageKind::Markdown);
    let (mobiles, user_ids) = if by_id { (vec![], who) } else { (who, vec![]) };
    Composed {
        channel,
        kind,
        title: format!("t-{}\"\n", text.len()),
        text: text.into(),
        mention: Mention {
            all: false,
            mobiles,
            user_ids,
        },
        mentions_skipped: 0,
        buttons: vec![],
        buttons_left_out: vec![],
        status: if text.len().is_multiple_of(3) {
            Status::Firing
        } else {
            Status::Resolved
        },
        link: "http://am:9093".into(),
        omitted: 1,
        cut: crate::compose::Cut::default(),
        fallback: None,
    }
}

/// What merging means, written the slow way: every part joined, mentions a union.
fn reference(parts: &[&Composed]) -> Composed {
    let mut merged = parts[0].clone();
    for part in &parts[1..] {
        merged.text = format!(
            "{}{}{}",
            merged.text,
            part.channel.rule(part.kind),
            part.text
        );
        for mobile in &part.mention.mobiles {
            if !merged.mention.mobiles.contains(mobile) {
                merged.mention.mobiles.push(mobile.clone());
            }
        }
        for id in &part.mention.user_ids {
            if !merged.mention.user_ids.contains(id) {
                merged.mention.user_ids.push(id.clone());
            }
        }
        if part.status == Status::Firing {
            merged.status = Status::Firing;
        }
        merged.omitted += part.omitted;
    }
    if parts.len() > 1 {
        merged.title = format!("[合并{}条] {}", parts.len(), parts[0].title);
    }
    merged
}

#[test]
fn merged_parts_keep_their_text_and_join_their_mentions() {
    let a = part(MessageKind::Markdown, "### A", &["1", "2"]);
    let b = part(MessageKind::Markdown, "### B", &["2", "3"]);
    let mut merger = Merger::new(&a);

    assert!(merger.try_add(&b, MAX_BODY_BYTES));
    let merged = merger.finish();

    assert_eq!(merged.text, "### A\n\n---\n\n### B");
    assert_eq!(merged.title, "[合并2条] t-5\"\n");
    assert_eq!(merged.mention.mobiles, ["1", "2", "3"]);
    assert_eq!(merged.omitted, 2);
}

#[test]
fn the_merger_takes_a_part_exactly_when_the_whole_message_still_fits_on_every_channel() {
    // Parts of every size, with escapes (newlines, quotes, control bytes) and mentions, so
    // the size bound is far from exact and the merger must measure near the cap.
    let mut rng = fastrand::Rng::with_seed(13);
    for round in 0..600 {
        let cap = rng.usize(500..6_000);
        // Half the rounds mention nobody: then the merger's size is exact and never measured.
        let mentions = rng.bool();
        let channel = Channel::ALL[rng.usize(..3)];
        let kind = channel.kinds()[rng.usize(..channel.kinds().len())];
        let pieces = [
            "a",
            "故障",
            "\n",
            "\"",
            "\u{1}",
            "@138 ",
            "### h\n- x\n",
            "<@<at<AT",
        ];
        let parts: Vec<Composed> = (0..40)
            .map(|_| {
                let text: String = (0..rng.usize(1..200))
                    .map(|_| pieces[rng.usize(..pieces.len())])
                    .collect();
                let mobiles = ["138", "139", "\"q\""];
                let mention = &mobiles[..rng.usize(..=mobiles.len()) * usize::from(mentions)];
                part_for(channel, kind, &text, mention)
            })
            .collect();
        let mut merger = Merger::new(&parts[0]);
        let mut taken = vec![&parts[0]];
        for next in &parts[1..] {
            let mut candidate = taken.clone();
            candidate.push(next);
            let fits = reference(&candidate).size() <= cap;

            assert_eq!(merger.try_add(next, cap), fits, "round {round}");
            if !fits {
                break;
            }
            taken = candidate;
        }
        let merged = merger.finish();
        let expected = reference(&taken);
        assert_eq!(merged.text, expected.text, "round {round}");
        assert_eq!(merged.title, expected.title, "round {round}");
        assert_eq!(merged.mention, expected.mention, "round {round}");
        assert_eq!(merged.status, expected.status, "round {round}");
    }
}

#[test]
fn a_batch_skips_other_message_types_and_leaves_them_queued_in_order() {
    let kinds = [
        MessageKind::Markdown,
        MessageKind::Text,
        MessageKind::Markdown,
        MessageKind::Text,
        MessageKind::Markdown,
    ];
    let messages = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| part(*kind, &format!("part {i}"), &[]))
        .collect();
    let mut queue = MergeQueue::new(messages).0;

    let (batch, message) = take(&mut queue, 0).unwrap();

    assert_eq!(batch.len(), 3);
    assert_eq!(message.text, "part 0\n\n---\n\npart 2\n\n---\n\npart 4");
    let left: Vec<&str> = queue.iter().map(|job| job.message.text.as_str()).collect();
    assert_eq!(left, ["part 1", "part 3"]);
}

#[test]
fn a_queue_is_merged_into_full_messages_and_loses_no_part() {
    let messages: Vec<Composed> = (0..5_000)
        .map(|i| part(MessageKind::Text, &format!("alert {i:04}\nhost-{i}"), &[]))
        .collect();

    let merged = MergeQueue::new(messages).drain();

    let texts: String = merged.iter().map(|m| m.text.as_str()).collect();
    for i in [0, 1, 2_500, 4_999] {
        assert!(texts.contains(&format!("alert {i:04}\n")), "{i} lost");
    }
    assert_eq!(texts.matches("alert ").count(), 5_000);
    assert!(merged.iter().all(|m| m.size() <= MAX_BODY_BYTES));
    // Full messages: each but the last had no room for one more part.
    let last = merged.len() - 1;
    assert!(
        merged[..last]
            .iter()
            .all(|m| m.size() > MAX_BODY_BYTES - 60)
    );
}
