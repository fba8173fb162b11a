//! One immutable snapshot of everything a request needs: the validated config, the compiled
//! templates and the robots. Built whole, then swapped whole, so a request that took a
//! snapshot at its start uses one configuration to its end.

use std::collections::BTreeMap;

use crate::config::{Config, ConfigError, Sources};
use crate::delivery::Policy;
use crate::dingtalk::Robot;
use crate::render::{RenderError, Renderer};

/// The snapshot.
pub struct Runtime {
    /// The configuration it was built from.
    pub config: Config,
    /// Templates compiled for that configuration.
    pub renderer: Renderer,
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
}

impl Runtime {
    /// Reads the configuration from its sources and builds a snapshot from it.
    pub fn load(sources: &Sources) -> Result<Self, BuildError> {
        Self::build(Config::load(sources)?)
    }

    /// Compiles the templates, renders every profile against the built-in samples, and sets
    /// up the robots of a validated configuration.
    pub fn build(config: Config) -> Result<Self, BuildError> {
        let renderer = Renderer::new(&config).map_err(BuildError::Templates)?;
        renderer
            .self_test(&config, chrono::Utc::now())
            .map_err(BuildError::Templates)?;
        let robots = config
            .profiles
            .iter()
            .map(|(name, profile)| (name.clone(), Robot::from(profile)))
            .collect();
        let policies = config
            .profiles
            .iter()
            .map(|(name, profile)| (name.clone(), Policy::of(&config, profile)))
            .collect();
        Ok(Self {
            config,
            renderer,
            robots,
            policies,
        })
    }
}
