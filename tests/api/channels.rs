//! WeCom and Feishu keep every promise DingTalk keeps: the same webhook answers, paths,
//! signing, mentions, retries, rate budgets, size cuts, metrics and previews, proven against
//! the robot doubles that speak each protocol. Shared here: a channel's profile on a double,
//! posting to a path, and following numbered alerts through merged messages.

use serde_json::Value;

use crate::helpers::{TestApp, distinct, payload, spawn_app_with_robot};
use crate::robot::{Limits, Protocol, Received, RobotDouble};

pub(crate) mod action_card;
mod answers;
mod cut;
mod feishu;
mod limits;
mod paths;
mod preview;
mod throttle;
mod wecom;

/// The token (WeCom key, Feishu hook token) of the `ops` profile's robot.
pub const TOKEN: &str = "ops-token-4711";

/// Quick failures: one request may take 2 s, a notification 2 s in all.
pub const QUICK: &str = "timeout: 2s\nmax_wait: 2s\n";

/// Room to wait for a minute's budget, as the delivery tests give DingTalk.
pub const PATIENT: &str = "timeout: 2s\nmax_wait: 90s\n";

/// The two channels beside DingTalk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chan {
    WeCom,
    Feishu,
}

impl Chan {
    /// The name in paths, answers and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::WeCom => "wecom",
            Self::Feishu => "feishu",
        }
    }

    /// The double's protocol for this channel.
    pub fn protocol(self) -> Protocol {
        match self {
            Self::WeCom => Protocol::WeCom,
            Self::Feishu => Protocol::Feishu,
        }
    }

    /// The webhook URL of the double's robot `token`, which the double now knows.
    pub fn url(self, robot: &RobotDouble, token: &str) -> String {
        match self {
            Self::WeCom => robot.wecom_url(token),
            Self::Feishu => robot.feishu_url(token),
        }
    }

    /// The webhook URL of a robot the double does not know.
    pub fn unknown_url(self, robot: &RobotDouble, token: &str) -> String {
        match self {
            Self::WeCom => format!("http://{}/cgi-bin/webhook/send?key={token}", robot.addr),
            Self::Feishu => format!("http://{}/open-apis/bot/v2/hook/{token}", robot.addr),
        }
    }

    /// The channel's own path for a profile.
    pub fn path(self, profile: &str) -> String {
        format!("/{}/{profile}/send", self.name())
    }

    /// The code the robot answers when it is sent too much.
    pub fn frequency_code(self) -> i64 {
        match self {
            Self::WeCom => 45_009,
            Self::Feishu => 11_232,
        }
    }

    /// The robot's own names for its answer's code and message.
    pub fn fields(self) -> (&'static str, &'static str) {
        match self {
            Self::WeCom => ("errcode", "errmsg"),
            Self::Feishu => ("code", "msg"),
        }
    }

    /// The `message:` values the channel takes: its default first, then text.
    pub fn kinds(self) -> [&'static str; 2] {
        match self {
            Self::WeCom => ["markdown", "text"],
            Self::Feishu => ["card", "text"],
        }
    }
}

/// A profile block `name` for the robot at `url`, with extra profile keys.
pub fn profile(name: &str, url: &str, extra: &str) -> String {
    format!("  {name}:\n    url: {url}\n{extra}")
}

/// A server whose `ops` profile posts to `chan`'s robot [`TOKEN`] on a double with `limits`.
pub async fn spawn_with(chan: Chan, globals: &str, extra: &str, limits: Limits) -> TestApp {
    let robot = RobotDouble::start_with(limits).await;
    let url = chan.url(&robot, TOKEN);
    let yaml = format!("{globals}profiles:\n{}", profile("ops", &url, extra));
    spawn_app_with_robot(robot, &yaml, &[]).await
}

/// [`spawn_with`] with quick failures and the robots' real limits.
pub async fn spawn(chan: Chan, extra: &str) -> TestApp {
    spawn_with(chan, QUICK, extra, Limits::REAL).await
}

/// Posts `body` as JSON to `path` of the app.
pub async fn post(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Status and JSON body of an answer.
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The test-data payload `name` with `edit` applied.
pub fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&payload(name)).unwrap();
    edit(&mut value);
    value.to_string()
}

/// A one-alert firing notification whose instance is `host-<i>`, to follow it through merges;
/// a notification of its own (its own `groupKey`), not a duplicate of another number.
pub fn numbered(i: usize) -> String {
    let body = edited("firing_single.json", |n| {
        n["alerts"][0]["labels"]["instance"] = Value::from(format!("host-{i}:9100"));
        n["commonLabels"]["instance"] = Value::from(format!("host-{i}:9100"));
    });
    distinct(&body, i)
}

/// The firing payload with its one alert repeated `count` times.
pub fn many_alerts(count: usize) -> Vec<u8> {
    let mut big: Value = serde_json::from_str(&payload("firing_single.json")).unwrap();
    let alert = big["alerts"][0].clone();
    big["alerts"] = Value::Array(vec![alert; count]);
    serde_json::to_vec(&big).unwrap()
}

/// The numbers of every `host-<i>` in the received texts, sorted, each once.
pub fn delivered_hosts(received: &[Received]) -> Vec<usize> {
    let mut hosts: Vec<usize> = received
        .iter()
        .flat_map(|r| {
            let text = r.text();
            text.match_indices("host-")
                .filter_map(|(at, _)| {
                    let digits: String = text[at + 5..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    digits.parse().ok()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// The line `alertrelay_robot_requests_total` has for this profile, channel and code.
pub fn robot_requests(profile: &str, chan: Chan, code: &str) -> String {
    format!(
        "alertrelay_robot_requests_total{{profile=\"{profile}\",channel=\"{}\",code=\"{code}\"}}",
        chan.name()
    )
}
