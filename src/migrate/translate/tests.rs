use super::*;

fn tera(go: &str) -> String {
    let t = translate(go, "t", 1, &BTreeMap::new());
    assert!(t.complete(), "{:?}", t.notes);
    t.tera
}

#[test]
fn fields_of_the_notification_and_of_an_alert_get_their_tera_names() {
    assert_eq!(
        tera("{{ .CommonLabels.alertname }}"),
        "{{ (commonLabels.alertname or \"\") }}"
    );
    assert_eq!(
        tera("{{ .ExternalURL }} {{ .Status }}"),
        "{{ externalURL }} {{ status }}"
    );
    assert_eq!(
        tera(
            "{{ range .Alerts.Firing }}{{ .Labels.instance }} {{ .Annotations.summary }}{{ end }}"
        ),
        "{% for alert in firing %}{{ (alert.labels.instance or \"\") }} {{ (alert.annotations.summary or \"\") }}{% endfor %}"
    );
    assert_eq!(
        tera("{{ range .Alerts }}{{ .StartsAt.Format \"2006-01-02 15:04:05\" }}{{ end }}"),
        "{% for alert in alerts %}{{ alert.startsAt | localtime(format=\"%Y-%m-%d %H:%M:%S\") }}{% endfor %}"
    );
}

#[test]
fn conditions_lengths_and_functions_translate() {
    assert_eq!(
        tera(
            "{{ if eq .Status \"firing\" }}F{{ else if gt (len .Alerts.Resolved) 0 }}R{{ else }}-{{ end }}"
        ),
        "{% if status == \"firing\" %}F{% elif (resolved | length) > 0 %}R{% else %}-{% endif %}"
    );
    assert_eq!(tera("{{ .Alerts.Firing | len }}"), "{{ firing | length }}");
    assert_eq!(tera("{{ len .Alerts }}"), "{{ alerts | length }}");
    assert_eq!(
        tera("{{ index .GroupLabels \"alertname\" | toUpper }}"),
        "{{ (groupLabels[\"alertname\"] or \"\") | upper }}"
    );
    assert_eq!(
        tera(
            "{{ range .Alerts }}{{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value | markdown }}{{ end }}{{ end }}"
        ),
        "{% for alert in alerts %}{% for key2, value2 in alert.labels %}{{ key2 }}={{ value2 | md_escape }}{% endfor %}{% endfor %}"
    );
    assert_eq!(tera("{{- /* note */ -}}"), "{#- note -#}");
    assert_eq!(tera("a {% b"), "a {{ \"{%\" }} b");
}

#[test]
fn a_users_define_is_inlined_with_its_dot() {
    let defines = defines(
        "my.tmpl",
        "{{ define \"list\" }}{{ range . }}- {{ .Labels.instance }}\n{{ end }}{{ end }}\n{{ define \"title\" }}[{{ .Status }}]{{ end }}",
    )
    .unwrap();
    assert_eq!(defines["list"].line, 1);

    let t = translate(
        "{{ template \"title\" . }} {{ template \"list\" .Alerts.Firing }}",
        "cfg",
        1,
        &defines,
    );

    assert!(t.complete(), "{:?}", t.notes);
    assert!(t.tera.contains("[{{ status }}]"), "{}", t.tera);
    assert!(
        t.tera
            .contains("{% for alert in firing %}- {{ (alert.labels.instance or \"\") }}"),
        "{}",
        t.tera
    );
}

#[test]
fn an_untranslatable_action_is_left_out_with_its_place_and_line() {
    let go =
        "ok {{ .Status }}\n{{ with .CommonLabels }}{{ .x }}{{ end }}\n{{ printf \"%s\" .Status }}";

    let t = translate(go, "config.yml targets.a.message.text", 1, &BTreeMap::new());

    assert!(!t.complete());
    let notes: Vec<String> = t.notes.iter().map(ToString::to_string).collect();
    assert!(
        notes[0].starts_with("config.yml targets.a.message.text:2: `{{ with .CommonLabels }}`: `with` has no Tera translation"),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("config.yml targets.a.message.text:3: `{{ printf \"%s\" .Status }}`: the function `printf`")), "{notes:?}");
    assert!(
        t.tera.contains("{# left out: with .CommonLabels #}"),
        "{}",
        t.tera
    );
    assert!(t.tera.starts_with("ok {{ status }}"));
}

#[test]
fn the_peers_own_templates_cannot_be_inlined() {
    let t = translate(
        "{{ template \"ding.link.content\" . }} more",
        "x",
        1,
        &BTreeMap::new(),
    );
    assert!(!t.complete());
    assert!(t.notes[0].why.contains("prometheus-webhook-dingtalk's own"));
}

#[test]
fn go_time_layouts_become_strftime() {
    assert_eq!(
        go_layout("2006-01-02 15:04:05").unwrap(),
        "%Y-%m-%d %H:%M:%S"
    );
    assert_eq!(go_layout("Jan _2 03:04PM MST").unwrap(), "%b %e %I:%M%p %Z");
    assert!(go_layout("2006-1-2").is_err());
}

#[test]
fn a_define_that_calls_itself_is_cut_off_at_the_depth_bound_with_a_note() {
    let defines = defines(
        "loop.tmpl",
        "{{ define \"a\" }}x{{ template \"a\" . }}{{ end }}",
    )
    .unwrap();

    let t = translate("{{ template \"a\" . }}", "cfg", 1, &defines);

    assert!(!t.complete());
    assert_eq!(t.tera.matches('x').count(), MAX_DEPTH);
    assert!(
        t.notes[0].why.contains("nest deeper than 8"),
        "{:?}",
        t.notes
    );
}

#[test]
fn broken_go_templates_are_notes_not_panics() {
    for go in [
        "{{ .A",
        "{{ if }}",
        "{{ end }}",
        "{{ (.A }}",
        "{{ \"x }}",
        "{{ .A.B.C.D.E }}",
        "{{ | }}",
        "{{ range .Alerts }}{{ else }}{{ end }}",
    ] {
        let t = translate(go, "x", 1, &BTreeMap::new());
        assert!(!t.complete(), "{go}: {}", t.tera);
    }
}
