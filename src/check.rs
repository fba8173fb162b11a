//! `alertrelay check`: the validation a reload does, offline, for configs kept in git.

use std::io::Write;
use std::path::Path;

use crate::config::{ConfigError, Sources, StateConfig};
use crate::runtime::{BuildError, Runtime};
use crate::state::redis::{RedisState, StateError};
use crate::web::Web;

/// `alertrelay check`: the web config when `--web.config.file` is given, and the profiles
/// unless only a web config was asked about (no `--config.file`, no profile flags, and no
/// `profiles.yaml` where the default points). Returns whether everything checked is valid.
pub async fn check_all(
    sources: &Sources,
    web_config: Option<&Path>,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    let mut valid = true;
    if let Some(file) = web_config {
        valid &= web(file, out)?;
    }
    let profiles_asked = sources.file_required
        || !sources.flag_profiles.is_empty()
        || sources.file.exists()
        || web_config.is_none();
    if profiles_asked {
        valid &= check(sources, out).await?;
    }
    Ok(valid)
}

/// Checks a `--web.config.file`: YAML, keys, files readable, key matching its certificate,
/// bcrypt hashes; each problem with file and line.
pub fn web(file: &Path, out: &mut impl Write) -> std::io::Result<bool> {
    writeln!(out, "Checking {}", file.display())?;
    match Web::check(file) {
        Ok(summary) => {
            writeln!(out, "  SUCCESS: web config: {summary}")?;
            Ok(true)
        }
        Err(error) => {
            writeln!(out, "  FAILED:\n{error}")?;
            Ok(false)
        }
    }
}

/// Checks the configuration from `sources`, writing a report like `promtool check config`'s.
/// Returns whether it is valid.
pub async fn check(sources: &Sources, out: &mut impl Write) -> std::io::Result<bool> {
    writeln!(out, "Checking {}", sources.file.display())?;
    match Runtime::load(sources).await {
        Ok(runtime) => {
            let config = &runtime.config;
            let templates = config.templates_dir.as_ref().map_or_else(
                || "built-in templates only".to_owned(),
                |d| format!("templates from {}", d.display()),
            );
            writeln!(
                out,
                "  SUCCESS: {} profiles ({}), {templates}",
                config.profiles.len(),
                config
                    .profiles
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
            match shared_state(&config.state).await {
                Err(error) => {
                    writeln!(out, "  FAILED: state.redis: {error}")?;
                    return Ok(false);
                }
                Ok(Some(unreachable)) => {
                    writeln!(
                        out,
                        "  WARNING: state.redis: {unreachable} (until it answers, each replica keeps to rate_limit / replicas and suppresses duplicates in memory)"
                    )?;
                }
                Ok(None) => {}
            }
            for warning in replica_warnings(config) {
                writeln!(out, "  WARNING: {warning}")?;
            }
            for (name, profile) in &config.profiles {
                let channel = profile.channel;
                for warning in
                    channel.unsupported_mentions(profile.message, &profile.mention.anyone())
                {
                    writeln!(out, "  WARNING: profile {name:?}: {warning}")?;
                }
            }
            Ok(true)
        }
        Err(error) => {
            writeln!(out, "  FAILED:")?;
            for problem in problems(&error) {
                writeln!(out, "{problem}")?;
            }
            Ok(false)
        }
    }
}

/// Connects to `state.redis`, when set: a wrong URL, password or certificate is an error
/// (the operator must fix it); Redis merely unreachable is `Ok(Some(why))`, a warning, for
/// replicas may start before Redis does and fall back until it answers.
pub async fn shared_state(config: &StateConfig) -> Result<Option<StateError>, StateError> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    match RedisState::connect(url.expose(), &config.key_prefix).await {
        Ok(_) => Ok(None),
        Err(error) if error.is_misconfigured() => Err(error),
        Err(error) => Ok(Some(error)),
    }
}

/// What `state.replicas` does not do as an operator may expect: nothing without
/// `state.redis`; or a robot budget smaller than the replicas, whose shares (at least one
/// message each) add up to more than the budget while Redis is away.
fn replica_warnings(config: &crate::config::Config) -> Vec<String> {
    let replicas = config.state.replicas;
    if config.state.redis.is_none() {
        return match replicas {
            1 => Vec::new(),
            n => vec![format!(
                "state.replicas: {n} has no effect without state.redis; replicas without it each keep a whole budget per robot"
            )],
        };
    }
    let mut warnings = Vec::new();
    for (name, profile) in &config.profiles {
        let policy = crate::delivery::Policy::of(config, profile);
        for (window, share) in policy.windows.iter().zip(policy.alone.iter()) {
            let together = u64::from(share.limit) * u64::from(replicas);
            if together > u64::from(window.limit) {
                warnings.push(format!(
                    "profile {name:?}: {} a {:?} among {replicas} replicas: while Redis is away each sends {} ({together} together)",
                    window.limit, window.length, share.limit
                ));
            }
        }
    }
    warnings
}

/// One line per problem.
fn problems(error: &BuildError) -> Vec<String> {
    match error {
        BuildError::Config(ConfigError::Invalid(problems)) => {
            problems.iter().map(ToString::to_string).collect()
        }
        BuildError::Templates(errors) => errors.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    }
}
