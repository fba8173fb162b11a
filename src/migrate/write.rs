//! Writes a planned migration: `profiles.yaml`, the template files beside it in
//! `templates/`, and with `--secrets-to-env` the env file (readable by its owner only).
//! Nothing is replaced without `--force`, and nothing is written when a file is in the way.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{MigrateError, Migration, Options};

/// Writes `migration` where `options` say; returns the files written.
pub fn write(migration: &Migration, options: &Options) -> Result<Vec<PathBuf>, MigrateError> {
    let templates = options.templates_dir();
    let mut files: Vec<(PathBuf, &str, bool)> =
        vec![(options.out.clone(), &migration.profiles_yaml, false)];
    for (name, text) in &migration.templates {
        files.push((templates.join(name), text, false));
    }
    let env: String = migration
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    if !migration.env.is_empty() {
        files.push((options.env_file(), &env, true));
    }
    if !options.force
        && let Some((path, _, _)) = files.iter().find(|(path, _, _)| path.exists())
    {
        return Err(MigrateError::Exists(path.display().to_string()));
    }
    if !migration.templates.is_empty() {
        std::fs::create_dir_all(&templates).map_err(|source| MigrateError::Write {
            file: templates.display().to_string(),
            source,
        })?;
    }
    for (path, text, private) in &files {
        write_file(path, text, *private).map_err(|source| MigrateError::Write {
            file: path.display().to_string(),
            source,
        })?;
    }
    Ok(files.into_iter().map(|(path, _, _)| path).collect())
}

fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    if private {
        open.mode(0o600);
    }
    let mut file = open.open(path)?;
    file.write_all(text.as_bytes())
}
