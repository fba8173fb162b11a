//! One immutable snapshot of everything a request needs: the validated config, the compiled
//! templates and the robots. Built whole, then swapped whole, so a request that took a
//! snapshot at its start uses one configuration to its end.

use std::collections::BTreeMap;

use crate::channel::Robot;
use crate::config::{Config, ConfigError, Sources};
use crate::delivery::Policy;
use crate::render::{RenderError, Renderer, Spec};
use crate::sandbox::{Sandbox, SandboxError};

/// The snapshot.
pub struct Runtime {
    /// The configuration it was built from.
    pub config: Config,
    /// Templates compiled for that configuration, for what the gateway renders itself: the
    /// built-in fallback, and what previews show of a profile.
    pub renderer: Renderer,
    /// The render workers every webhook message, preview and self-test is rendered in.
    pub sandbox: Sandbox,
    /// Each profile's robot, by profile name.
    pub robots: BTreeMap<String, Robot>,
    /// Each profile's delivery policy (its robot's budget is shared with other profiles, so
    /// it is worked out once here, not per webhook).
    pub policies: BTreeMap<String, Policy>,
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Templates that do not compile, or fail on the sample payloads.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Templates(Vec<RenderError>),
    /// No render worker could be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl Runtime {
    /// Reads the configuration and the templates from their sources and builds a snapshot.
    pub async fn load(sources: &Sources) -> Result<Self, BuildError> {
        let sources = sources.clone();
        let (config, spec) = tokio::task::spawn_blocking(move || read(&sources))
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))?;
        Self::build_from(config, spec).await
    }

    /// Builds a snapshot of a validated configuration: reads and compiles the templates,
    /// renders every profile against the built-in samples in render workers, and sets up
    /// the robots.
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let spec = Spec::load(&config).map_err(BuildError::Templates)?;
        Self::build_from(config, spec).await
    }

    async fn build_from(config: Config, spec: Spec) -> Result<Self, BuildError> {
        let renderer = Renderer::from_spec(&spec).map_err(BuildError::Templates)?;
        let sandbox = Sandbox::new(&spec)?;
        sandbox
            .self_test(&renderer, chrono::Utc::now())
            .await
            .map_err(BuildError::Templates)?;
        let robots = config
            .profiles
            .iter()
            .map(|(name, profile)| {
                let robot = Robot {
                    url: profile.url.clone(),
                    secret: profile.secret.clone(),
                };
                (name.clone(), robot)
            })
            .collect();
        let policies = policies(&config);
        Ok(Self {
            config,
            renderer,
            sandbox,
            robots,
            policies,
        })
    }

    /// Keeps `state` (the block the process started with) in place of the one this snapshot
    /// read: Redis is connected once, at start, so a reload must not change what delivery
    /// believes about it (each replica's share of a budget while Redis is away).
    pub fn keep_state(&mut self, state: crate::config::StateConfig) {
        self.config.state = state;
        self.policies = policies(&self.config);
    }
}

fn policies(config: &Config) -> BTreeMap<String, Policy> {
    config
        .profiles
        .iter()
        .map(|(name, profile)| (name.clone(), Policy::of(config, profile)))
        .collect()
}

/// The blocking part of a load: the config file, then the templates it names.
fn read(sources: &Sources) -> Result<(Config, Spec), BuildError> {
    let config = Config::load(sources)?;
    let spec = Spec::load(&config).map_err(BuildError::Templates)?;
    Ok((config, spec))
}
