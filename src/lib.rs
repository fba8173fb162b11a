//! alertrelay turns Prometheus Alertmanager webhooks into chat-robot messages: DingTalk,
//! WeCom and Feishu/Lark.
//!
//! A webhook arrives at `POST /send/<profile>` or `/<channel>/<profile>/send` ([`server`]);
//! its body is parsed into a typed [`alert::Notification`], rendered through the profile's
//! Tera template ([`render`]), cut to the robot's size cap ([`compose`]), and posted to the
//! profile's robot ([`channel`]) within its rate limits ([`delivery`]). Alertmanager is
//! answered 200 only when the robot accepted the message, and 5xx when it did not, so it
//! retries.
//!
//! | module | its one job |
//! |---|---|
//! | [`config`] | `profiles.yaml` and `--profile`/`--ding.profile` flags → validated [`config::Config`] |
//! | [`secret`] | secrets that never print |
//! | [`alert`] | the Alertmanager v4 payload |
//! | [`render`] | Tera templates, built-in and user's, and our filters |
//! | [`channel`] | what every robot shares (message, outcome, retry class, limits), and one module per robot protocol: [`channel::dingtalk`], [`channel::wecom`], [`channel::feishu`] |
//! | [`mention`] | a profile's `mention:` rules → who one notification's message mentions, and why |
//! | [`compose`] | rendered text → a message within the channel's size cap, cut at an alert |
//! | [`delivery`] | budget per robot (each channel's windows), merging, retries: delivered or why not |
//! | [`state`] | duplicate suppression: notifications delivered lately and being delivered now, in memory and with `state.redis` across replicas (and, through `state::redis`, each robot's budget and throttle) |
//! | [`sandbox`] | render workers: every render in a child process with capped memory and time |
//! | [`runtime`] | one immutable snapshot of config + templates + workers + robots |
//! | [`server`] | the HTTP router, handlers, status codes, graceful shutdown |
//! | [`web`] | `--web.config.file`: TLS through rustls, client certificates, basic auth, reloaded on change |
//! | [`migrate`] | a prometheus-webhook-dingtalk `config.yml` and its Go templates → `profiles.yaml` and Tera files |
//! | [`cli`], [`telemetry`] | flags and logging for the binary |

pub mod alert;
pub mod channel;
pub mod check;
pub mod cli;
pub mod compose;
pub mod config;
pub mod delivery;
pub mod mention;
pub mod metrics;
pub mod migrate;
pub mod preview;
pub mod reload;
pub mod render;
pub mod runtime;
pub mod samples;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod state;
pub mod telemetry;
mod utf8;
pub mod web;
