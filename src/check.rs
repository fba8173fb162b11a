//! `alertrelay check`: the validation a reload does, offline, for configs kept in git.

use std::io::Write;

use crate::config::{ConfigError, Sources};
use crate::runtime::{BuildError, Runtime};

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
            for (name, profile) in &config.profiles {
                let channel = profile.channel;
                for warning in channel.unsupported_mentions(profile.message, &profile.mention) {
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
