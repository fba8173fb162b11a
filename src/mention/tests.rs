use super::*;
use crate::alert::Notification;

fn rules(yaml: &str) -> MentionRules {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn refused(yaml: &str) -> String {
    serde_yaml_ng::from_str::<MentionRules>(yaml)
        .unwrap_err()
        .to_string()
}

fn fixture(name: &str) -> Notification<'static> {
    let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap();
    Notification::from_json(&text).unwrap().into_owned()
}

fn whos(resolved: &Resolved) -> Vec<&str> {
    resolved.reasons.iter().map(|r| r.who.as_str()).collect()
}

#[test]
fn the_old_shape_mentions_the_same_people_in_every_message() {
    let rules = rules("{ all: true, mobiles: [\"13800000000\"], user_ids: [\"u1\"] }");

    for name in ["firing_group", "resolved"] {
        let resolved = rules.resolve(&fixture(name));
        assert!(resolved.mention.all);
        assert_eq!(resolved.mention.mobiles, ["13800000000"]);
        assert_eq!(resolved.mention.user_ids, ["u1"]);
        assert_eq!(whos(&resolved), ["@所有人", "@13800000000", "@u1"]);
    }
}

#[test]
fn a_match_rule_mentions_everyone_when_one_alert_of_the_group_matches() {
    let rules = rules("rules: [{ match: { severity: critical }, all: true }]");

    let resolved = rules.resolve(&fixture("firing_group"));

    assert!(resolved.mention.all);
    assert_eq!(
        resolved.reasons[0].why,
        "mention.rules[0] (severity=\"critical\") matched alert 磁盘使用率告警"
    );
    assert!(!rules.resolve(&fixture("resolved")).mention.all);
}

#[test]
fn a_match_re_rule_matches_the_whole_value_as_alertmanager_does() {
    let rules = rules(
        "rules: [{ match_re: { project: \"wm|om\" }, mobiles: [\"13900000000\"] }, { match_re: { project: \"w.s|x\" }, mobiles: [\"13700000000\"] }]",
    );

    let resolved = rules.resolve(&fixture("firing_group"));

    // "wm" is only a part of "wms": an anchored expression does not match it.
    assert_eq!(resolved.mention.mobiles, ["13700000000"]);
    assert!(resolved.reasons[0].why.contains("project=~\"w.s|x\""));
}

#[test]
fn a_rule_with_match_and_match_re_needs_both() {
    let rules = rules(
        "rules: [{ match: { severity: critical }, match_re: { project: oms }, user_ids: [dba] }]",
    );

    // The critical alert is in wms, the oms alert is a warning.
    assert!(rules.resolve(&fixture("firing_group")).mention.is_empty());
}

#[test]
fn when_firing_a_resolved_only_notification_mentions_no_one() {
    let rules = rules(
        "{ all: true, mobiles: [\"13800000000\"], when: firing, rules: [{ match: { severity: warning }, user_ids: [u2] }], from_labels: [owner] }",
    );
    let mut resolved_only = fixture("resolved");
    resolved_only.alerts[0]
        .labels
        .insert("owner", "u3".to_owned());

    let resolved = rules.resolve(&resolved_only);

    assert!(resolved.mention.is_empty(), "{resolved:?}");
    assert!(resolved.reasons.is_empty());
    // And by default, `always`, the recovery mentions them as before.
    let always = MentionRules {
        when: When::Always,
        ..rules
    };
    assert_eq!(
        always.resolve(&resolved_only).mention.user_ids,
        ["u2", "u3"]
    );
}

#[test]
fn when_firing_rules_look_at_the_firing_alerts_only() {
    let rules =
        rules("{ when: firing, rules: [{ match: { project: oms }, user_ids: [oms-oncall] }] }");

    // In the mixed fixture the oms alert is the resolved one.
    let resolved = rules.resolve(&fixture("mixed_firing_resolved"));

    assert!(resolved.mention.is_empty(), "{resolved:?}");
}

#[test]
fn label_values_are_split_at_commas_and_each_is_mentioned_once() {
    let rules = rules("from_labels: [owner_mobile, owner_userid]");
    let mut n = fixture("firing_group");
    n.alerts[0]
        .labels
        .insert("owner_mobile", " 13800000001, +86-13800000002 ,".to_owned());
    n.alerts[1]
        .labels
        .insert("owner_mobile", "13800000001".to_owned());
    n.alerts[1]
        .labels
        .insert("owner_userid", "zhang.san".to_owned());

    let resolved = rules.resolve(&n);

    assert_eq!(resolved.mention.mobiles, ["13800000001", "+86-13800000002"]);
    assert_eq!(resolved.mention.user_ids, ["zhang.san"]);
    assert_eq!(resolved.skipped, 0);
    assert_eq!(
        resolved.reasons[0].why,
        "label owner_mobile of alert 磁盘使用率告警"
    );
}

#[test]
fn a_bad_label_value_is_skipped_and_counted_and_the_rest_still_mentioned() {
    let rules = rules("from_labels: [owner]");
    let mut n = fixture("firing_group");
    n.alerts[0].labels.insert(
        "owner",
        "138, +86-1380000000x, <at user_id=\"all\">, 13800000003, @all me".to_owned(),
    );

    let resolved = rules.resolve(&n);

    assert_eq!(resolved.mention.mobiles, ["13800000003"]);
    assert!(resolved.mention.user_ids.is_empty());
    assert!(!resolved.mention.all);
    assert_eq!(resolved.skipped, 4);
}

#[test]
fn labels_mention_at_most_the_bound_of_people_in_one_message() {
    let rules = rules("from_labels: [owner]");
    let mut n = fixture("firing_group");
    let many: Vec<String> = (0..1000).map(|i| format!("1380000{i:04}")).collect();
    n.alerts[0].labels.insert("owner", many.join(","));

    let resolved = rules.resolve(&n);

    assert_eq!(resolved.mention.mobiles.len(), MAX_LABEL_MENTIONS);
    assert_eq!(resolved.skipped, 1000 - MAX_LABEL_MENTIONS);
}

#[test]
fn a_mobile_is_digits_with_an_optional_country_code() {
    for good in [
        "13800000000",
        "+8613800000000",
        "+86-13800000000",
        "+1-5550100",
    ] {
        assert!(valid_mobile(good), "{good}");
    }
    for bad in [
        "",
        "138",
        "138-0000-0000",
        "+",
        "+86-",
        "+12345-13800000000",
        "1380000000a",
        " 13800000000",
        "１３８００００００００",
    ] {
        assert!(!valid_mobile(bad), "{bad}");
    }
}

#[test]
fn a_bad_mobile_or_rule_is_refused_when_read() {
    assert!(refused("mobiles: [\"138-0000\"]").contains("is not a mobile number"));
    assert!(
        refused("rules: [{ match: { a: b }, mobiles: [\"x\"] }]")
            .contains("is not a mobile number")
    );
    assert!(refused("rules: [{ all: true }]").contains("needs match or match_re"));
    assert!(refused("rules: [{ match: { a: b } }]").contains("mentions no one"));
    assert!(
        refused("rules: [{ match_re: { a: \"(\" }, all: true }]")
            .contains("not a valid expression")
    );
    assert!(refused("when: sometimes").contains("unknown variant"));
    assert!(refused("rule: []").contains("unknown field"));
}

#[test]
fn an_expression_past_the_bound_is_refused_and_a_large_one_stays_linear() {
    let long = "a".repeat(MAX_PATTERN_BYTES + 1);
    let yaml = format!("rules: [{{ match_re: {{ a: \"{long}\" }}, all: true }}]");
    assert!(refused(&yaml).contains("-byte bound"));
    // A classic catastrophic-backtracking shape: linear in the regex crate.
    let rules = rules("rules: [{ match_re: { instance: \"(a+)+$\" }, all: true }]");
    let mut n = fixture("firing_group");
    n.alerts[0]
        .labels
        .insert("instance", format!("{}!", "a".repeat(100_000)));
    let started = std::time::Instant::now();
    assert!(!rules.resolve(&n).mention.all);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn the_rules_read_back_as_written_for_render_workers() {
    let yaml = "{ all: false, mobiles: [\"13800000000\"], when: firing, rules: [{ match: { severity: critical }, all: true }, { match_re: { team: \"db|dba\" }, mobiles: [\"13900000000\"] }], from_labels: [owner_mobile] }";
    let rules = rules(yaml);

    let again: MentionRules =
        serde_json::from_str(&serde_json::to_string(&rules).unwrap()).unwrap();

    assert_eq!(again, rules);
    assert_eq!(again.anyone().mobiles, ["13800000000", "13900000000"]);
    assert!(again.anyone().all);
}
