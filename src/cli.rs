//! Command-line flags, named as Prometheus and prometheus-webhook-dingtalk name theirs, so
//! existing unit files and habits carry over.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Sources;

/// The file read when `--config.file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "profiles.yaml";

/// alertrelay: Prometheus Alertmanager webhooks to DingTalk, WeCom and Feishu robots.
#[derive(Debug, Parser)]
#[command(name = "alertrelay", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a command alertrelay serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on for webhooks and the web endpoints (":8060" means every interface).
    #[arg(
        long = "web.listen-address",
        value_name = "ADDRESS",
        default_value = ":8060"
    )]
    pub listen_address: String,

    /// The profiles file [default: profiles.yaml; optional when --profile is given].
    #[arg(long = "config.file", value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// A robot as NAME=URL, served at `/send/NAME` and `/<channel>/NAME/send`, its channel
    /// (dingtalk, wecom, feishu) read from the URL; repeatable, merged with the file.
    #[arg(long = "profile", value_name = "NAME=URL", value_parser = parse_profile_flag, global = true)]
    pub neutral_profiles: Vec<(String, String)>,

    /// The same as --profile, as prometheus-webhook-dingtalk spells it.
    #[arg(long = "ding.profile", value_name = "NAME=URL", value_parser = parse_profile_flag, global = true)]
    pub profiles: Vec<(String, String)>,

    /// Allow POST/PUT /-/reload (as in Prometheus; off by default).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Serve the /preview page and API (renders template text sent by a browser; switch it
    /// off where the listen address is reachable by people who should not).
    #[arg(long = "web.enable-preview", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_preview: bool,

    /// How much to log.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// The exporter-toolkit web configuration (TLS, client certificates, basic auth, response
    /// headers), as Prometheus and Alertmanager read it; reloaded when it or a file it names
    /// changes.
    #[arg(long = "web.config.file", value_name = "FILE", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Answer /-/healthy without basic auth (for kubelet probes); off by default.
    #[arg(long = "web.healthy-without-auth")]
    pub healthy_without_auth: bool,

    /// How long shutdown waits for deliveries in flight.
    #[arg(long = "web.shutdown-timeout", value_name = "DURATION", default_value = "30s", value_parser = crate::config::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Check the configuration and templates without serving (like `promtool check config`):
    /// prints each problem with file and line, exits 1 when there is one.
    Check,
    /// Write a profiles.yaml (and Tera templates) equivalent to a prometheus-webhook-dingtalk
    /// config.yml; prints a note for everything it could not carry over.
    Migrate(MigrateArgs),
}

/// `alertrelay migrate` flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct MigrateArgs {
    /// The prometheus-webhook-dingtalk config.yml to read.
    #[arg(long = "from", value_name = "FILE")]
    pub from: PathBuf,
    /// The profiles.yaml to write; translated templates go to templates/ beside it.
    #[arg(long = "out", value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    pub out: PathBuf,
    /// Write tokens and secrets as ${ENV} references, their values to an env file beside
    /// --out (mode 0600), instead of into profiles.yaml.
    #[arg(long = "secrets-to-env")]
    pub secrets_to_env: bool,
    /// Replace files that exist.
    #[arg(long = "force")]
    pub force: bool,
}

impl MigrateArgs {
    /// The options of the migration.
    pub fn options(&self) -> crate::migrate::Options {
        crate::migrate::Options {
            from: self.from.clone(),
            out: self.out.clone(),
            secrets_to_env: self.secrets_to_env,
            force: self.force,
        }
    }
}

/// `--log.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything, including each delivered notification.
    Debug,
    /// Startup, reloads and every notification not delivered.
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `level=info msg=delivered profile=ops`, like Prometheus.
    Logfmt,
    /// One JSON object a line.
    Json,
}

impl Cli {
    /// Where the configuration comes from.
    pub fn sources(&self) -> Sources {
        Sources {
            file: self
                .config_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE)),
            file_required: self.config_file.is_some(),
            flag_profiles: self
                .profiles
                .iter()
                .chain(&self.neutral_profiles)
                .cloned()
                .collect(),
        }
    }

    /// The socket address to bind; a bare ":port" listens on every interface.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let text = &self.listen_address;
        let full = if text.starts_with(':') {
            format!("0.0.0.0{text}")
        } else {
            text.clone()
        };
        full.parse()
            .map_err(|e| format!("--web.listen-address {text:?}: {e}"))
    }
}

fn parse_profile_flag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => {
            Ok((name.to_owned(), url.to_owned()))
        }
        _ => Err(
            "expected NAME=URL, e.g. ops=https://oapi.dingtalk.com/robot/send?access_token=..."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn prometheus_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "alertrelay",
            "--web.listen-address=127.0.0.1:9000",
            "--ding.profile=ops=https://oapi.dingtalk.com/robot/send?access_token=a",
            "--ding.profile",
            "db=https://oapi.dingtalk.com/robot/send?access_token=b",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.listen_addr().unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(cli.profiles[0].0, "ops");
        assert_eq!(
            cli.profiles[1],
            (
                "db".into(),
                "https://oapi.dingtalk.com/robot/send?access_token=b".into()
            )
        );
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(!cli.sources().file_required);
    }

    #[test]
    fn the_defaults_are_prometheus_conventions() {
        let cli = Cli::try_parse_from(["alertrelay"]).unwrap();
        assert_eq!(cli.listen_addr().unwrap().to_string(), "0.0.0.0:8060");
        assert_eq!(cli.sources().file, PathBuf::from("profiles.yaml"));
        assert_eq!(cli.log_level, LogLevel::Info);
    }

    #[test]
    fn check_takes_the_config_file_after_the_command() {
        let cli = Cli::try_parse_from(["alertrelay", "check", "--config.file", "x.yaml"]).unwrap();
        assert_eq!(cli.command, Some(Command::Check));
        assert!(cli.sources().file_required);
        assert_eq!(cli.sources().file, PathBuf::from("x.yaml"));
    }

    #[test]
    fn migrate_takes_from_out_and_secrets_to_env() {
        let cli = Cli::try_parse_from([
            "alertrelay",
            "migrate",
            "--from",
            "config.yml",
            "--out",
            "p.yaml",
            "--secrets-to-env",
        ])
        .unwrap();
        let Some(Command::Migrate(args)) = cli.command else {
            panic!("not migrate: {:?}", cli.command);
        };
        let options = args.options();
        assert_eq!(options.from, PathBuf::from("config.yml"));
        assert_eq!(options.out, PathBuf::from("p.yaml"));
        assert!(options.secrets_to_env && !options.force);
        assert_eq!(options.env_file(), PathBuf::from("p.env"));
        let default = Cli::try_parse_from(["alertrelay", "migrate", "--from", "c.yml"]).unwrap();
        assert!(
            matches!(default.command, Some(Command::Migrate(a)) if a.out == Path::new("profiles.yaml"))
        );
    }

    #[test]
    fn the_preview_can_be_switched_off() {
        assert!(Cli::try_parse_from(["alertrelay"]).unwrap().enable_preview);
        let off = Cli::try_parse_from(["alertrelay", "--web.enable-preview=false"]).unwrap();
        assert!(!off.enable_preview);
    }

    #[test]
    fn neutral_profile_flags_join_the_dingtalk_ones() {
        let cli = Cli::try_parse_from([
            "alertrelay",
            "--profile=wx=https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            "--ding.profile=ops=https://oapi.dingtalk.com/robot/send?access_token=a",
        ])
        .unwrap();
        let names: Vec<String> = cli
            .sources()
            .flag_profiles
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["ops", "wx"]);
    }

    #[test]
    fn check_takes_the_web_config_file_after_the_command() {
        let cli =
            Cli::try_parse_from(["alertrelay", "check", "--web.config.file", "web.yml"]).unwrap();
        assert_eq!(cli.web_config_file, Some(PathBuf::from("web.yml")));
        assert!(!cli.healthy_without_auth);
        let cli = Cli::try_parse_from(["alertrelay", "--web.healthy-without-auth"]).unwrap();
        assert!(cli.healthy_without_auth);
    }

    #[test]
    fn a_profile_flag_without_a_url_is_refused() {
        assert!(Cli::try_parse_from(["alertrelay", "--ding.profile=ops"]).is_err());
    }
}
