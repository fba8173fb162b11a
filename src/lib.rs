//! alertrelay turns Prometheus Alertmanager webhooks into DingTalk robot messages.
//!
//! A webhook arrives at `POST /dingtalk/<profile>/send` ([`server`]); its body is parsed into
//! a typed [`alert::Notification`], rendered through the profile's Tera template
//! ([`render`]), and posted to the profile's robot ([`dingtalk`]). Alertmanager is answered
//! 200 only when DingTalk accepted the message, and 5xx when it did not, so it retries.
//!
//! | module | its one job |
//! |---|---|
//! | [`config`] | `profiles.yaml` and `--ding.profile` flags → validated [`config::Config`] |
//! | [`secret`] | secrets and robot URLs that never print |
//! | [`alert`] | the Alertmanager v4 payload |
//! | [`render`] | Tera templates, built-in and user's, and our filters |
//! | [`dingtalk`] | the robot protocol: body, signing, errcodes |
//! | [`sandbox`] | render workers: every render in a child process with capped memory and time |
//! | [`runtime`] | one immutable snapshot of config + templates + workers + robots |
//! | [`server`] | the HTTP router, handlers, status codes, graceful shutdown |
//! | [`cli`], [`telemetry`] | flags and logging for the binary |

pub mod alert;
pub mod check;
pub mod cli;
pub mod compose;
pub mod config;
pub mod delivery;
pub mod dingtalk;
pub mod metrics;
pub mod preview;
pub mod reload;
pub mod render;
pub mod runtime;
pub mod samples;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod telemetry;
