//! The real Prometheus tools: promtool on the alert rules and their unit tests, amtool and
//! promtool on the example configs, alertrelay check on the example profiles, systemd on the
//! unit, and the real Alertmanager delivering through alertrelay to the robot double.
//! `scripts/test.sh` installs the Debian packages; a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, free_port, spawn_app};
use crate::robot::{Protocol, Reply};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a tool from Debian's packages; panics, never skips, when it is missing.
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}; run scripts/test.sh, which installs it"))
}

fn assert_ok(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_accepts_every_rule_file() {
    let rules = files("rules", "yml");
    assert_eq!(rules.len(), 5, "{rules:?}");
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    let text = assert_ok(&run("promtool", &args));
    assert_eq!(text.matches("SUCCESS").count(), 5, "{text}");
}

#[test]
fn the_rule_unit_tests_pass_under_promtool() {
    let tests = files("rules/tests", "yml");
    assert_eq!(tests.len(), 5, "{tests:?}");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let text = assert_ok(&run("promtool", &args));
    assert!(!text.contains("FAILED"), "{text}");
}

/// Alertmanager routes by `project` (examples/alertmanager.yml): a rule that aggregates the
/// target's labels away sends its alerts to the default receiver. Each rule's promtool test
/// must expect a firing alert that still carries `project` and `env`.
#[test]
fn every_rule_is_tested_to_keep_the_project_and_env_labels() {
    let mut kept = std::collections::BTreeSet::new();
    for file in files("rules/tests", "yml") {
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for case in doc["tests"].as_array().unwrap() {
            for check in case["alert_rule_test"].as_array().unwrap() {
                let routed = check["exp_alerts"].as_array().unwrap().iter().any(|a| {
                    a["exp_labels"]["project"].is_string() && a["exp_labels"]["env"].is_string()
                });
                if routed {
                    kept.insert(check["alertname"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    for file in files("rules", "yml") {
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in doc["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let name = rule["alert"].as_str().unwrap();
                assert!(
                    kept.contains(name),
                    "{file}: {name} has no test keeping project/env"
                );
            }
        }
    }
}

#[test]
fn every_rule_has_severity_summary_and_description() {
    for file in files("rules", "yml") {
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in doc["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let name = rule["alert"].as_str().unwrap();
                assert!(rule["labels"]["severity"].is_string(), "{name}");
                assert!(rule["annotations"]["summary"].is_string(), "{name}");
                assert!(rule["annotations"]["description"].is_string(), "{name}");
                assert!(rule["for"].is_string(), "{name}");
            }
        }
    }
}

#[test]
fn promtool_accepts_the_example_prometheus_config() {
    let text = assert_ok(&run(
        "promtool",
        &["check", "config", "examples/prometheus.yml"],
    ));
    assert!(text.contains("5 rule files found"), "{text}");
}

#[test]
fn amtool_accepts_the_example_alertmanager_config() {
    assert_ok(&run(
        "amtool",
        &["check-config", "examples/alertmanager.yml"],
    ));
}

#[test]
fn every_example_profiles_file_passes_alertrelay_check() {
    let examples = files("examples/profiles", "yaml");
    assert!(examples.len() >= 3);
    for file in examples {
        let text = assert_ok(&run(
            env!("CARGO_BIN_EXE_alertrelay"),
            &["check", "--config.file", &file],
        ));
        assert!(text.contains("SUCCESS"), "{file}: {text}");
    }
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo("examples/alertrelay.service")).unwrap();
    for key in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key} missing");
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("alertrelay.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/alertrelay",
            env!("CARGO_BIN_EXE_alertrelay"),
        ),
    )
    .unwrap();
    let copy = copy.to_string_lossy().into_owned();
    let output = run("systemd-analyze", &["verify", &copy]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("alertrelay.service"),
        "{stderr}"
    );
    // Exposure 0 (locked down) .. 10 (unprotected); fail above 2.0.
    assert_ok(&run(
        "systemd-analyze",
        &["security", "--offline=true", "--threshold=20", &copy],
    ));
}

#[test]
fn the_container_file_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let text = std::fs::read_to_string(repo("examples/Containerfile")).unwrap();
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].ends_with(" AS build"));
    assert!(text.contains("COPY --from=build /src/target/dist/alertrelay"));
    assert!(text.contains("cargo build --profile dist --locked"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("USER ") && !l.contains("root"))
    );
    assert!(text.contains("EXPOSE 8060"));
    // Every path it copies from the repository exists.
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(repo(source).exists(), "{source} in {line}");
        }
    }
}

#[test]
fn the_kubernetes_manifest_runs_three_replicas_on_one_redis_and_mounts_its_configmap_as_a_directory()
 {
    let text = std::fs::read_to_string(repo("examples/kubernetes.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let named = |k: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == k && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {k} {name}"))
    };
    let kind = |k: &str| named(k, "alertrelay");
    let container = &kind("Deployment")["spec"]["template"]["spec"]["containers"][0];
    // Behind the web config only /-/healthy answers without the password, over HTTPS.
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/-/healthy", "{probe}");
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }
    let args = container["args"].as_array().unwrap();
    assert!(args.iter().any(|a| a == "--web.healthy-without-auth"));
    for mount in container["volumeMounts"].as_array().unwrap() {
        assert!(
            mount["subPath"].is_null(),
            "a subPath mount never sees ConfigMap or Secret updates"
        );
    }
    let replicas = &kind("Deployment")["spec"]["replicas"];
    assert_eq!(replicas, 3);
    let budget = &kind("PodDisruptionBudget")["spec"];
    assert_eq!(budget["minAvailable"], 2);
    let labels = &kind("Deployment")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&budget["selector"]["matchLabels"], labels);
    let redis = named("Deployment", "alertrelay-redis");
    let service = named("Service", "alertrelay-redis");
    assert_eq!(
        &service["spec"]["selector"],
        &redis["spec"]["template"]["metadata"]["labels"]
    );
    let profiles: serde_json::Value =
        serde_yaml_ng::from_str(kind("ConfigMap")["data"]["profiles.yaml"].as_str().unwrap())
            .unwrap();
    assert_eq!(&profiles["state"]["replicas"], replicas);
    assert!(
        profiles["state"]["redis"]
            .as_str()
            .unwrap()
            .contains("@alertrelay-redis:6379")
    );
    // The ConfigMap's files, laid out as the kubelet would, pass alertrelay check.
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in kind("ConfigMap")["data"].as_object().unwrap() {
        std::fs::write(dir.path().join(name), content.as_str().unwrap()).unwrap();
    }
    let file = dir.path().join("profiles.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_alertrelay"))
        .args(["check", "--config.file", &file.to_string_lossy()])
        .env("DINGTALK_OPS_TOKEN", "t")
        .env("DINGTALK_OPS_SECRET", "SECs")
        .env("REDIS_PASSWORD", "p")
        .output()
        .unwrap();
    assert_ok(&output);
    // The web config Secret, beside a certificate and key as cert-manager writes them, passes
    // alertrelay check --web.config.file.
    let web_secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "alertrelay-web")
        .expect("the web config Secret");
    let web_dir = tempfile::tempdir().unwrap();
    let web_yml = web_dir.path().join("web.yml");
    std::fs::write(
        &web_yml,
        web_secret["stringData"]["web.yml"].as_str().unwrap(),
    )
    .unwrap();
    let server = crate::web::Ca::new("cluster issuer").server();
    std::fs::write(web_dir.path().join("tls.crt"), &server.cert).unwrap();
    std::fs::write(web_dir.path().join("tls.key"), &server.key).unwrap();
    let web_flag = format!("--web.config.file={}", web_yml.display());
    assert!(
        args.iter()
            .any(|a| a == "--web.config.file=/etc/alertrelay-web/web.yml"),
        "{args:?}"
    );
    let text = assert_ok(&check_web(&web_flag, web_dir.path()));
    assert!(
        text.contains("SUCCESS: web config: HTTPS, basic auth for 1 user"),
        "{text}"
    );
}

#[test]
fn the_two_host_example_passes_alertrelay_check_and_amtool() {
    let text = std::fs::read_to_string(repo("examples/two-hosts/compose.yaml")).unwrap();
    let compose: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let services = compose["services"].as_object().unwrap();
    for name in ["redis", "alertrelay", "alertmanager"] {
        assert!(services.contains_key(name), "no service {name}");
    }
    assert_eq!(compose["services"]["redis"]["profiles"][0], "redis");
    for service in services.values() {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if let Some(file) = source.strip_prefix("./") {
                let path = format!("examples/two-hosts/{file}");
                assert!(repo(&path).exists(), "{path} mounted but missing");
            }
        }
    }
    let file = repo("examples/two-hosts/profiles.yaml");
    let profiles: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(profiles["state"]["replicas"], 2);
    let output = Command::new(env!("CARGO_BIN_EXE_alertrelay"))
        .args(["check", "--config.file", &file.to_string_lossy()])
        .env("DINGTALK_OPS_TOKEN", "t")
        .env("DINGTALK_OPS_SECRET", "SECs")
        .env("REDIS_PASSWORD", "p")
        // No such host: check warns that Redis does not answer yet, and passes.
        .env("REDIS_HOST", "redis.invalid")
        .output()
        .unwrap();
    assert_ok(&output);
    assert_ok(&run(
        "amtool",
        &["check-config", "examples/two-hosts/alertmanager.yml"],
    ));
}

/// `alertrelay check` on a web config alone, run in `dir` (which holds no profiles.yaml).
fn check_web(flag: &str, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alertrelay"))
        .args(["check", flag])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_example_web_config_passes_alertrelay_check() {
    let dir = tempfile::tempdir().unwrap();
    let web_yml = dir.path().join("web.yml");
    std::fs::copy(repo("examples/web.yml"), &web_yml).unwrap();
    let server = crate::web::Ca::new("example CA").server();
    std::fs::write(dir.path().join("tls.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &server.key).unwrap();
    let flag = format!("--web.config.file={}", web_yml.display());

    let text = assert_ok(&check_web(&flag, dir.path()));

    assert!(text.contains("SUCCESS: web config: HTTPS"), "{text}");
}

/// Where Alertmanager's log goes, in its directory.
const LOG: &str = "alertmanager.log";

/// A real Alertmanager on a free port, routing by `project` to alertrelay's profiles.
pub(crate) struct Alertmanager {
    _child: crate::helpers::Process,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start(relay: &TestApp) -> Self {
        let relay = format!("http://{}", relay.addr);
        let config = format!(
            "route:
  receiver: ops
  group_by: [alertname, project]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
  routes:
    - matchers: [project=\"wms\"]
      receiver: wms
    - matchers: [project=\"oms\"]
      receiver: oms
receivers:
  - name: ops
    webhook_configs: [{{url: {relay}/dingtalk/ops/send, send_resolved: true}}]
  - name: wms
    webhook_configs: [{{url: {relay}/dingtalk/wms/send, send_resolved: true}}]
  - name: oms
    webhook_configs: [{{url: {relay}/dingtalk/oms/send, send_resolved: true}}]
"
        );
        Self::start_with(&config).await
    }

    /// Alertmanager with this configuration.
    pub(crate) async fn start_with(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        #[allow(clippy::zombie_processes)] // `Process` kills and waits on drop.
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(LOG)).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus-alertmanager: {e}; run scripts/test.sh, which installs it")
            });
        let am = Self {
            _child: crate::helpers::Process(child),
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while !client
            .get(format!("{}/-/ready", am.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Alertmanager did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        am
    }

    /// What Alertmanager logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join(LOG)).unwrap_or_default()
    }

    pub(crate) async fn post(&self, alerts: serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }
}

pub(crate) fn alert(name: &str, project: &str) -> serde_json::Value {
    json!({
        "labels": {"alertname": name, "project": project, "instance": format!("{project}-01:9100"), "severity": "critical"},
        "annotations": {"summary": format!("{project} {name}"), "description": "磁盘 /data 使用超过 85%"},
        "startsAt": chrono::Utc::now().to_rfc3339(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    })
}

pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PROFILES: &str = "timeout: 2s
max_wait: 1s
profiles:
  ops:
    url: http://{robot}/robot/send?access_token=ops-token
  wms:
    url: http://{robot}/robot/send?access_token=wms-token
    mention: { mobiles: [\"13800000000\"] }
  oms:
    url: http://{robot}/robot/send?access_token=oms-token
    message: text
    mention: { user_ids: [\"oms-oncall\"] }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_firing_and_resolved_through_alertrelay_with_mentions() {
    let relay = spawn_app(PROFILES, &[]).await;
    let am = Alertmanager::start(&relay).await;

    let disk = alert("磁盘使用率告警", "wms");
    am.post(json!([disk.clone(), alert("内存使用率告警", "oms")]))
        .await;
    wait_until("both firing messages", || relay.robot.received().len() >= 2).await;

    let received = relay.robot.received();
    let wms = received
        .iter()
        .find(|r| r.token == "wms-token")
        .expect("wms message");
    assert_eq!(wms.msgtype(), "markdown");
    assert!(
        wms.text().contains("【故障】1 条告警") && wms.text().contains("磁盘使用率告警"),
        "{}",
        wms.text()
    );
    assert!(wms.text().contains("@13800000000"));
    assert_eq!(wms.body["at"]["atMobiles"][0], "13800000000");
    assert!(wms.text().contains(&am.url), "no link back to Alertmanager");
    let oms = received
        .iter()
        .find(|r| r.token == "oms-token")
        .expect("oms message");
    assert_eq!(oms.msgtype(), "text");
    assert!(
        oms.text().contains("内存使用率告警") && oms.text().contains("@oms-oncall"),
        "{}",
        oms.text()
    );
    assert!(
        received.iter().all(|r| r.token != "ops-token"),
        "routed to the wrong robot"
    );

    let mut resolved = disk;
    resolved["endsAt"] = json!(chrono::Utc::now().to_rfc3339());
    am.post(json!([resolved])).await;
    wait_until("the resolved message", || {
        relay
            .robot
            .received()
            .iter()
            .any(|r| r.token == "wms-token" && r.text().contains("【恢复】"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_retries_when_alertrelay_answers_5xx() {
    let relay = spawn_app(PROFILES, &[]).await;
    // More failures than alertrelay retries within its 1 s max_wait: it answers 5xx, and
    // Alertmanager must retry for the message to arrive.
    relay.robot.script(
        [Reply::Http(500), Reply::Errcode(-1, "busy")]
            .into_iter()
            .cycle()
            .take(8),
    );
    let am = Alertmanager::start(&relay).await;

    am.post(json!([alert("CPU使用率告警", "wms")])).await;
    wait_until("the message after retries", || {
        !relay.robot.received().is_empty()
    })
    .await;

    assert!(relay.robot.requests() > 8);
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains(
            "alertrelay_notifications_failed_total{profile=\"wms\",reason=\"unavailable\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertrelay_notifications_delivered_total{profile=\"wms\"} 1"),
        "{metrics}"
    );
}

const THREE_CHANNELS: &str = "timeout: 2s
max_wait: 1s
profiles:
  ops:
    url: http://{robot}/robot/send?access_token=ops-token
  wx:
    url: http://{robot}/cgi-bin/webhook/send?key=wx-key
    mention: { user_ids: [\"wx-oncall\"] }
  fs:
    url: http://{robot}/open-apis/bot/v2/hook/fs-token
    secret: SECfeishu
    mention: { user_ids: [\"ou_oncall\"] }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_firing_and_resolved_to_dingtalk_wecom_and_feishu() {
    let relay = spawn_app(THREE_CHANNELS, &[]).await;
    relay.robot.wecom_url("wx-key");
    relay
        .robot
        .require_feishu_signature("fs-token", "SECfeishu");
    let base = format!("http://{}", relay.addr);
    let am = Alertmanager::start_with(&format!(
        "route:
  receiver: ops
  group_by: [alertname, project]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
  routes:
    - matchers: [project=\"wms\"]
      receiver: wx
    - matchers: [project=\"oms\"]
      receiver: fs
receivers:
  - name: ops
    webhook_configs: [{{url: {base}/dingtalk/ops/send, send_resolved: true}}]
  - name: wx
    webhook_configs: [{{url: {base}/wecom/wx/send, send_resolved: true}}]
  - name: fs
    webhook_configs: [{{url: {base}/send/fs, send_resolved: true}}]
"
    ))
    .await;

    let alerts = [
        alert("主机宕机", "core"),
        alert("磁盘使用率告警", "wms"),
        alert("内存使用率告警", "oms"),
    ];
    am.post(json!(alerts)).await;
    wait_until("a firing message on each channel", || {
        relay.robot.received().len() >= 3
    })
    .await;

    let received = relay.robot.received();
    let on = |protocol: Protocol| {
        received
            .iter()
            .find(|r| r.protocol == protocol)
            .unwrap_or_else(|| panic!("no {protocol:?} message in {received:?}"))
    };
    let ding = on(Protocol::DingTalk);
    assert!(ding.text().contains("主机宕机"), "{}", ding.text());
    let wx = on(Protocol::WeCom);
    assert_eq!(wx.msgtype(), "markdown");
    assert!(wx.text().contains("磁盘使用率告警"), "{}", wx.text());
    assert!(wx.text().contains("<@wx-oncall>"), "{}", wx.text());
    let fs = on(Protocol::Feishu);
    assert_eq!(fs.msgtype(), "interactive");
    assert_eq!(fs.card_header_template(), Some("red"));
    assert!(fs.text().contains("内存使用率告警"), "{}", fs.text());
    assert!(
        fs.text().contains("<at id=ou_oncall></at>"),
        "{}",
        fs.text()
    );
    assert!(
        fs.card_buttons().iter().any(|b| b.url.starts_with(&am.url)),
        "no button to Alertmanager: {:?}",
        fs.card_buttons()
    );

    let resolved: Vec<serde_json::Value> = alerts
        .into_iter()
        .map(|mut a| {
            a["endsAt"] = json!(chrono::Utc::now().to_rfc3339());
            a
        })
        .collect();
    am.post(json!(resolved)).await;
    wait_until("a resolved message on each channel", || {
        let received = relay.robot.received();
        let resolved = |protocol: Protocol| {
            received
                .iter()
                .any(|r| r.protocol == protocol && r.text().contains("恢复"))
        };
        resolved(Protocol::DingTalk) && resolved(Protocol::WeCom) && resolved(Protocol::Feishu)
    })
    .await;
    let received = relay.robot.received();
    let green = received
        .iter()
        .filter(|r| r.protocol == Protocol::Feishu)
        .any(|r| r.card_header_template() == Some("green"));
    assert!(green, "the resolved Feishu card is not green");
    assert_eq!(
        relay.robot.requests(),
        received.len(),
        "something was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_cards_silence_button_silences_the_group_in_the_real_alertmanager() {
    let profiles = PROFILES.replace(
        "    mention: { mobiles: [\"13800000000\"] }\n",
        "    message: action_card\n",
    );
    let relay = spawn_app(&profiles, &[]).await;
    let am = Alertmanager::start(&relay).await;
    am.post(json!([alert("磁盘使用率告警", "wms")])).await;
    wait_until("the action card", || {
        relay
            .robot
            .received()
            .iter()
            .any(|r| r.token == "wms-token")
    })
    .await;

    let received = relay.robot.received();
    let card = received.iter().find(|r| r.token == "wms-token").unwrap();
    assert_eq!(card.msgtype(), "actionCard");
    let buttons = card.action_buttons();
    let (_, silence) = buttons
        .iter()
        .find(|(t, _)| t == "静默 2 小时")
        .expect("a silence button");
    let (page, fragment) = silence.split_once('#').unwrap();
    let filter = fragment
        .strip_prefix("/silences/new?filter=")
        .unwrap_or_else(|| panic!("{silence}"));
    // The link is the real Alertmanager's UI (the fragment is read by its script).
    let http = reqwest::Client::new();
    let ui = http.get(page).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("Alertmanager"));
    // Read as the UI reads it, the filter is the group's matchers: a silence made of them
    // silences the alert.
    let matchers = crate::channels::action_card::ui_matchers(
        &crate::channels::action_card::percent_decode(filter),
    );
    let expected: std::collections::BTreeMap<String, String> = [
        ("alertname".to_owned(), "磁盘使用率告警".to_owned()),
        ("project".to_owned(), "wms".to_owned()),
    ]
    .into();
    assert_eq!(matchers, expected);
    let now = chrono::Utc::now();
    let silence = json!({
        "matchers": matchers.iter().map(|(name, value)| json!({"name": name, "value": value, "isRegex": false, "isEqual": true})).collect::<Vec<_>>(),
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "createdBy": "alertrelay test",
        "comment": "from the action card's button",
    });
    let created = http
        .post(format!("{}/api/v2/silences", am.url))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );
    let started = Instant::now();
    loop {
        let alerts: serde_json::Value = http
            .get(format!("{}/api/v2/alerts", am.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = alerts[0]["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if state == "suppressed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not silenced: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
