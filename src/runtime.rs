//! One immutable snapshot of everything a request needs: the validated config, the compiled
//! templates and the robots. Built whole, then swapped whole, so a request that took a
//! snapshot at its start uses one configuration to its end.

use std::collections::BTreeMap;

use crate::config::{Config, ConfigError};
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
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A template does not compile.
    #[error("template {0}")]
    Template(#[from] RenderError),
}

impl Runtime {
    /// Compiles the templates and sets up the robots of a validated configuration.
    pub fn build(config: Config) -> Result<Self, BuildError> {
        let renderer = Renderer::new(&config)?;
        let robots = config
            .profiles
            .iter()
            .map(|(name, profile)| (name.clone(), Robot::from(profile)))
            .collect();
        Ok(Self {
            config,
            renderer,
            robots,
        })
    }
}
