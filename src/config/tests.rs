use super::*;

fn load(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(yaml, Path::new("/nonexistent/profiles.yaml"))
}

fn invalid(yaml: &str) -> (Option<usize>, String) {
    match load(yaml).unwrap_err() {
        ConfigError::Invalid(problems) => (problems[0].line, problems[0].message.clone()),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

const URL: &str = "https://oapi.dingtalk.com/robot/send?access_token=tok123";

#[test]
fn a_minimal_profile_gets_every_default() {
    let config = load(&format!("profiles:\n  ops:\n    url: {URL}\n")).unwrap();
    assert_eq!(config.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(config.timeout, Duration::from_secs(5));
    assert_eq!(config.templates_dir, None);
    let ops = &config.profiles["ops"];
    assert_eq!(ops.message, MessageKind::Markdown);
    assert!(ops.secret.is_none() && ops.template.is_none() && ops.mention.is_empty());
}

#[test]
fn every_documented_key_is_read() {
    let yaml = format!(
        "timezone: Europe/Berlin\ntimeout: 1m30s\nmax_body_bytes: 1000\nprofiles:\n  ops:\n    url: {URL}\n    secret: SECxyz\n    message: text\n    title: \"{{{{ status }}}}\"\n    mention: {{ all: true, mobiles: [\"13800000000\"], user_ids: [\"u1\"] }}\n"
    );
    let config = load(&yaml).unwrap();
    assert_eq!(config.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(config.timeout, Duration::from_secs(90));
    assert_eq!(config.max_body_bytes, 1000);
    let ops = &config.profiles["ops"];
    assert_eq!(ops.secret.as_ref().unwrap().expose(), "SECxyz");
    assert_eq!(ops.message, MessageKind::Text);
    assert_eq!(ops.title.as_deref(), Some("{{ status }}"));
    assert_eq!(
        ops.mention.anyone(),
        Mention {
            all: true,
            mobiles: vec!["13800000000".into()],
            user_ids: vec!["u1".into()]
        }
    );
}

#[test]
fn a_prometheus_webhook_dingtalk_config_is_refused_with_the_migrate_hint() {
    let yaml = "timeout: 5s\ntargets:\n  webhook1:\n    url: https://oapi.dingtalk.com/robot/send?access_token=x\n";

    let (line, message) = invalid(yaml);

    assert_eq!(line, Some(2));
    assert_eq!(
        message,
        "this is a prometheus-webhook-dingtalk config; run `alertrelay migrate --from /nonexistent/profiles.yaml`"
    );
}

#[test]
fn a_bad_mobile_in_a_mention_is_refused_with_its_file_and_line() {
    let yaml = format!(
        "profiles:\n  ops:\n    url: {URL}\n    mention:\n      all: false\n      mobiles: [\"138-0000\"]\n"
    );
    let problem = match load(&yaml).unwrap_err() {
        ConfigError::Invalid(problems) => problems[0].to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert!(
        problem.starts_with("/nonexistent/profiles.yaml:6: "),
        "{problem}"
    );
    assert!(
        problem.contains("\"138-0000\" is not a mobile number"),
        "{problem}"
    );
}

#[test]
fn a_bad_mobile_in_a_mention_rule_is_refused_with_a_line_in_its_block() {
    let yaml = format!(
        "profiles:\n  ops:\n    url: {URL}\n    mention:\n      rules:\n        - match: {{ severity: critical }}\n          mobiles: [\"x\"]\n"
    );
    let (line, message) = invalid(&yaml);
    assert!(matches!(line, Some(4..=7)), "{line:?} {message}");
    assert!(
        message.contains("\"x\" is not a mobile number"),
        "{message}"
    );
}

#[test]
fn the_rate_limit_margin_defaults_to_a_second_and_can_be_set() {
    let default = load(&format!("profiles:\n  ops:\n    url: {URL}\n")).unwrap();
    let set = load(&format!(
        "rate_limit_margin: 2500ms\nprofiles:\n  ops:\n    url: {URL}\n"
    ))
    .unwrap();

    assert_eq!(default.rate_limit_margin, Duration::from_secs(1));
    assert_eq!(set.rate_limit_margin, Duration::from_millis(2500));
}

#[test]
fn an_unknown_key_is_rejected_with_its_line() {
    let (line, message) = invalid(&format!(
        "profiles:\n  ops:\n    url: {URL}\n    secrte: x\n"
    ));
    assert_eq!(line, Some(4));
    assert!(message.contains("unknown field `secrte`"), "{message}");
}

#[test]
fn an_unknown_time_zone_is_rejected_with_its_line() {
    let (line, message) = invalid("\ntimezone: Asia/Shangai\n");
    assert_eq!(line, Some(2));
    assert!(
        message.contains("unknown time zone \"Asia/Shangai\""),
        "{message}"
    );
}

#[test]
fn a_bad_url_is_rejected_without_echoing_it() {
    let (line, message) = invalid(
        "profiles:\n  ops:\n    url: https://oapi.dingtalk.com/robot/send?token=secret99\n",
    );
    assert_eq!(line, Some(3));
    assert!(message.contains("access_token"), "{message}");
    assert!(!message.contains("secret99"), "{message}");
}

#[test]
fn a_bad_duration_is_rejected() {
    let (line, message) = invalid("timeout: fast\n");
    assert_eq!(line, Some(1));
    assert!(message.contains("invalid duration"), "{message}");
}

#[test]
fn a_missing_template_is_rejected_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let file = dir.path().join("profiles.yaml");
    let yaml = format!("profiles:\n  ops:\n    url: {URL}\n    template: nope.tera\n");
    let err = Config::from_yaml(&yaml, &file).unwrap_err().to_string();
    assert!(err.contains("profiles.yaml:4:"), "{err}");
    assert!(err.contains("template \"nope.tera\" not found"), "{err}");
}

#[test]
fn secrets_come_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.secret"), "SECfromfile\n").unwrap();
    // SAFETY: tests in this module read only variables they set themselves.
    unsafe { std::env::set_var("ALERTRELAY_TEST_SECRET", "SECfromenv") };
    let yaml = format!(
        "profiles:\n  ops:\n    url: {URL}\n    secret: ${{ALERTRELAY_TEST_SECRET}}\n  db:\n    url: {URL}\n    secret_file: db.secret\n"
    );
    let config = Config::from_yaml(&yaml, &dir.path().join("p.yaml")).unwrap();
    assert_eq!(
        config.profiles["ops"].secret.as_ref().unwrap().expose(),
        "SECfromenv"
    );
    assert_eq!(
        config.profiles["db"].secret.as_ref().unwrap().expose(),
        "SECfromfile"
    );
}

#[test]
fn a_missing_environment_variable_is_an_error() {
    let (line, message) = invalid(&format!(
        "profiles:\n  ops:\n    url: {URL}\n    secret: ${{ALERTRELAY_UNSET_VAR}}\n"
    ));
    assert_eq!(line, Some(4));
    assert!(
        message.contains("ALERTRELAY_UNSET_VAR is not set"),
        "{message}"
    );
}

#[test]
fn flag_profiles_merge_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(&file, format!("profiles:\n  ops:\n    url: {URL}\n")).unwrap();
    let sources = Sources {
        file: file.clone(),
        file_required: false,
        flag_profiles: vec![("db".into(), URL.into())],
    };
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.profiles.keys().collect::<Vec<_>>(), ["db", "ops"]);
}

#[test]
fn the_same_profile_in_file_and_flag_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.yaml");
    std::fs::write(&file, format!("profiles:\n  ops:\n    url: {URL}\n")).unwrap();
    let sources = Sources {
        file,
        file_required: false,
        flag_profiles: vec![("ops".into(), URL.into())],
    };
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(err.contains("\"ops\" is defined both"), "{err}");
}

#[test]
fn no_file_and_no_flags_is_a_clear_error() {
    let sources = Sources {
        file: "/nonexistent/profiles.yaml".into(),
        ..Sources::default()
    };
    let err = Config::load(&sources).unwrap_err();
    assert!(matches!(err, ConfigError::NoProfiles { .. }), "{err}");
    assert!(err.to_string().contains("--ding.profile"));
}

#[test]
fn flags_alone_are_enough_without_a_file() {
    let sources = Sources {
        file: "/nonexistent/profiles.yaml".into(),
        file_required: false,
        flag_profiles: vec![("ops".into(), URL.into())],
    };
    assert!(Config::load(&sources).unwrap().profiles.contains_key("ops"));
}

#[test]
fn an_explicit_missing_file_is_an_error() {
    let sources = Sources {
        file: "/nonexistent/profiles.yaml".into(),
        file_required: true,
        flag_profiles: vec![("ops".into(), URL.into())],
    };
    assert!(matches!(
        Config::load(&sources).unwrap_err(),
        ConfigError::Read { .. }
    ));
}

#[test]
fn environment_references_may_carry_a_default() {
    assert_eq!(
        expand_env("a=${ALERTRELAY_UNSET_VAR:-fallback}").unwrap(),
        "a=fallback"
    );
    assert_eq!(expand_env("plain").unwrap(), "plain");
    assert!(expand_env("${UNCLOSED").is_err());
}

#[test]
fn every_broken_profile_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let yaml = format!(
        "profiles:\n  a:\n    url: {URL}\n    template: x.tera\n  b:\n    url: {URL}\n    template: y.tera\n"
    );
    let err = Config::from_yaml(&yaml, &dir.path().join("p.yaml")).unwrap_err();
    let ConfigError::Invalid(problems) = err else {
        panic!("{err}")
    };
    let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [Some(4), Some(7)]);
}

#[test]
fn the_body_budget_defaults_to_64_mib_and_zero_is_refused_with_its_line() {
    let profiles = format!("profiles:\n  ops:\n    url: {URL}\n");
    let config = load(&profiles).unwrap();
    assert_eq!(config.max_body_bytes_in_flight, 64 * 1024 * 1024);

    let set = load(&format!("max_body_bytes_in_flight: 5000\n{profiles}")).unwrap();
    let (line, message) = invalid(&format!(
        "timeout: 1s\nmax_body_bytes_in_flight: 0\n{profiles}"
    ));

    assert_eq!(set.max_body_bytes_in_flight, 5000);
    assert_eq!(line, Some(2), "{message}");
    assert!(message.contains("nonzero"), "{message}");
}

#[test]
fn a_second_yaml_document_is_refused_at_its_line_saying_why() {
    let (line, message) = invalid(&format!("profiles:\n  ops:\n    url: {URL}\n---\nx: 1\n"));
    assert_eq!(line, Some(5));
    assert!(
        message.contains("text after the first YAML document"),
        "{message}"
    );
}

const WECOM: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1";
const FEISHU: &str = "https://open.feishu.cn/open-apis/bot/v2/hook/t-1";

#[test]
fn each_channel_is_inferred_from_its_url_with_its_own_defaults() {
    let config = load(&format!(
        "profiles:\n  d:\n    url: {URL}\n  w:\n    url: {WECOM}\n  f:\n    url: {FEISHU}\n  proxied:\n    url: http://proxy:8080/cgi-bin/webhook/send?key=k-2\n"
    ))
    .unwrap();
    let p = |name: &str| &config.profiles[name];
    assert_eq!(
        [
            p("d").channel,
            p("w").channel,
            p("f").channel,
            p("proxied").channel
        ],
        [
            Channel::DingTalk,
            Channel::WeCom,
            Channel::Feishu,
            Channel::WeCom
        ]
    );
    assert_eq!(
        [p("d").message, p("w").message, p("f").message],
        [
            MessageKind::Markdown,
            MessageKind::Markdown,
            MessageKind::Card
        ]
    );
    assert_eq!(
        [p("d").rate_limit, p("w").rate_limit, p("f").rate_limit],
        [20, 20, 100]
    );
}

#[test]
fn a_set_channel_wins_over_the_url_and_checks_it_for_its_token() {
    let yaml = "profiles:\n  w:\n    url: http://127.0.0.1:1/robot/send?access_token=t\n    channel: wecom\n";
    let (line, message) = invalid(yaml);
    assert_eq!(line, Some(3), "{message}");
    assert!(message.contains("has no key query parameter"), "{message}");
    let yaml = "profiles:\n  w:\n    url: http://127.0.0.1:1/x/webhook?key=k\n    channel: wecom\n";
    assert_eq!(load(yaml).unwrap().profiles["w"].channel, Channel::WeCom);
}

#[test]
fn each_channels_url_must_carry_its_token_with_the_line() {
    for (url, says) in [
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send", "key"),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/",
            "hook token",
        ),
        ("https://oapi.dingtalk.com/robot/send", "access_token"),
    ] {
        let (line, message) = invalid(&format!("profiles:\n  p:\n    url: {url}\n"));
        assert_eq!(line, Some(3), "{message}");
        assert!(message.contains(says), "{url}: {message}");
        assert!(!message.contains(url), "the URL is echoed: {message}");
    }
}

#[test]
fn message_types_are_checked_per_channel_with_the_line() {
    let (line, message) = invalid(&format!(
        "profiles:\n  p:\n    url: {URL}\n    message: card\n"
    ));
    assert_eq!(line, Some(4), "{message}");
    assert!(
        message.contains("DingTalk robots take markdown or text"),
        "{message}"
    );
    let (_, message) = invalid(&format!(
        "profiles:\n  p:\n    url: {FEISHU}\n    message: markdown\n"
    ));
    assert!(
        message.contains("Feishu robots take card or text"),
        "{message}"
    );
    let config = load(&format!(
        "profiles:\n  p:\n    url: {FEISHU}\n    message: text\n"
    ))
    .unwrap();
    assert_eq!(config.profiles["p"].message, MessageKind::Text);
}

#[test]
fn a_wecom_profile_with_a_secret_is_refused_with_the_line() {
    let (line, message) = invalid(&format!(
        "profiles:\n  p:\n    url: {WECOM}\n    secret: SECx\n"
    ));
    assert_eq!(line, Some(4), "{message}");
    assert!(message.contains("WeCom robots are not signed"), "{message}");
    assert!(!message.contains("SECx"), "{message}");
}

#[test]
fn an_unknown_channel_is_refused_with_its_line() {
    let (line, message) = invalid(&format!(
        "profiles:\n  p:\n    url: {URL}\n    channel: slack\n"
    ));
    assert_eq!(line, Some(4), "{message}");
    assert!(message.contains("slack"), "{message}");
}

#[test]
fn the_state_block_is_read_and_checked_with_its_line() {
    let config = load(&format!(
        "state:\n  redis: redis://:pw@redis:6379/0\n  key_prefix: team-a\n  replicas: 3\nprofiles:\n  p:\n    url: {URL}\n"
    ))
    .unwrap();
    assert_eq!(
        config.state.redis.as_ref().unwrap().expose(),
        "redis://:pw@redis:6379/0"
    );
    assert_eq!(
        (config.state.key_prefix.as_str(), config.state.replicas),
        ("team-a", 3)
    );
    assert!(
        !format!("{:?}", config.state).contains("pw"),
        "the URL's password printed"
    );
    let default = load(&format!("profiles:\n  p:\n    url: {URL}\n")).unwrap();
    assert_eq!(default.state, StateConfig::default());

    for (block, line, says) in [
        ("  redis: http://redis:6379\n", 2, "redis://"),
        ("  key_prefix: \"a b\"\n", 2, "key_prefix"),
        ("  replicas: 0\n", 2, "at least 1"),
        ("  redis: redis://r\n  nope: 1\n", 3, "nope"),
    ] {
        let (at, message) = invalid(&format!("state:\n{block}profiles:\n  p:\n    url: {URL}\n"));
        assert_eq!(at, Some(line), "{block}: {message}");
        assert!(message.contains(says), "{block}: {message}");
    }
}
