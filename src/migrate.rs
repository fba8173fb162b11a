//! `alertrelay migrate`: a prometheus-webhook-dingtalk `config.yml` (and its Go templates)
//! → an equivalent `profiles.yaml` (and Tera templates), with a comment on each value saying
//! where it came from and a note for everything that could not be carried over.
//!
//! | part | its job |
//! |---|---|
//! | `source` | the peer's config file as it reads it |
//! | `lex`, `translate` | Go templates → Tera, one note per action left out |
//! | `plan` | what to write: profiles, template files, secrets, notes |
//! | `write` | the YAML text with its comments, and the files on disk |

mod lex;
mod plan;
mod source;
mod translate;
mod write;

use std::path::{Path, PathBuf};

pub use plan::{Migration, plan};
pub use translate::Note;
pub use write::write;

/// What `alertrelay migrate` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The prometheus-webhook-dingtalk `config.yml`.
    pub from: PathBuf,
    /// The `profiles.yaml` to write; template files go to `templates/` beside it.
    pub out: PathBuf,
    /// Write tokens and secrets as `${ENV}` references, their values to an env file beside
    /// `out` (mode 0600), instead of into `profiles.yaml`.
    pub secrets_to_env: bool,
    /// Replace files that exist.
    pub force: bool,
}

impl Options {
    /// The templates directory the written profiles use.
    pub fn templates_dir(&self) -> PathBuf {
        self.out_dir().join("templates")
    }

    /// The env file secrets go to with `--secrets-to-env`.
    pub fn env_file(&self) -> PathBuf {
        let stem = self
            .out
            .file_stem()
            .map_or_else(|| "profiles".into(), |s| s.to_string_lossy().into_owned());
        self.out_dir().join(format!("{stem}.env"))
    }

    fn out_dir(&self) -> &Path {
        self.out.parent().unwrap_or(Path::new(""))
    }
}

/// Why a migration could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config is not one prometheus-webhook-dingtalk would read.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong (never a secret: serde names keys, not values).
        message: String,
    },
    /// A file to write exists and `--force` was not given.
    #[error("{0} exists; pass --force to replace it")]
    Exists(String),
    /// A file could not be written.
    #[error("cannot write {file}: {source}")]
    Write {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The hint a `targets:` file gets when alertrelay is started with it.
pub fn hint(file: &Path) -> String {
    format!(
        "this is a prometheus-webhook-dingtalk config; run `alertrelay migrate --from {}`",
        file.display()
    )
}
