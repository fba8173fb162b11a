//! What a migration writes: the profiles (with where each value came from), the translated
//! template files, the secrets moved to the environment, and the notes for the person.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::source::{BUILTIN_NAMES, PwdConfig, PwdMessage, PwdTarget, only_template_call};
use super::translate::{Define, defines, translate};
use super::{MigrateError, Options};
use crate::mention::valid_mobile;

/// A migration, made but not written.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The `profiles.yaml` text, comments included.
    pub profiles_yaml: String,
    /// Template files for the templates directory: (file name, text). A translation with
    /// parts left out is written as `<name>.draft`, which alertrelay does not load.
    pub templates: Vec<(String, String)>,
    /// With `--secrets-to-env`: (variable, value) for the env file.
    pub env: Vec<(String, String)>,
    /// What the person should know, one a line: values that changed, actions of a template
    /// left out (with file and line), secrets copied in clear.
    pub notes: Vec<String>,
}

/// Reads `options.from` (and the Go templates it names) and plans the migration.
pub fn plan(options: &Options) -> Result<Migration, MigrateError> {
    let file = options.from.display().to_string();
    let text = std::fs::read_to_string(&options.from).map_err(|source| MigrateError::Read {
        file: file.clone(),
        source,
    })?;
    let config: PwdConfig = serde_yaml_ng::from_str(&text).map_err(|e| MigrateError::Invalid {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let base = options.from.parent().unwrap_or(Path::new(""));
    let mut planner = Planner {
        file: file.clone(),
        options,
        defines: BTreeMap::new(),
        migration: Migration {
            profiles_yaml: String::new(),
            templates: Vec::new(),
            env: Vec::new(),
            notes: Vec::new(),
        },
    };
    let paths: Vec<&String> = config.template.iter().chain(&config.templates).collect();
    for path in paths {
        planner.read_templates(base, path)?;
    }
    planner.header(&config);
    let default_text = planner.default_text(config.default_message.as_ref());
    for (name, target) in &config.targets {
        planner.profile(name, target, config.default_message.as_ref(), &default_text);
    }
    Ok(planner.migration)
}

struct Planner<'o> {
    file: String,
    options: &'o Options,
    defines: BTreeMap<String, Define>,
    migration: Migration,
}

/// How one part (title or body) of a profile is written.
enum Part {
    /// alertrelay's built-in template.
    Builtin(String),
    /// Translated Tera text.
    Tera(String),
    /// A translation with parts left out: kept as a draft, the built-in is used.
    Draft(String),
}

impl Planner<'_> {
    fn note(&mut self, note: String) {
        self.migration.notes.push(note);
    }

    fn push(&mut self, line: &str) {
        self.migration.profiles_yaml.push_str(line);
        self.migration.profiles_yaml.push('\n');
    }

    /// Reads the `define`s of one `templates:` entry (a path, or a `*` pattern of file names).
    fn read_templates(&mut self, base: &Path, path: &str) -> Result<(), MigrateError> {
        for file in expand(base, path) {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|source| MigrateError::Read {
                file: name.clone(),
                source,
            })?;
            let found = defines(&name, &text).map_err(|message| MigrateError::Invalid {
                file: name.clone(),
                message,
            })?;
            self.defines.extend(found);
        }
        Ok(())
    }

    fn header(&mut self, config: &PwdConfig) {
        let file = self.file.clone();
        self.push(&format!(
            "# Written by `alertrelay migrate --from {file}` from a prometheus-webhook-dingtalk config."
        ));
        self.push("# Each value says where it came from. Check it: alertrelay check --config.file <this file>");
        if let Some(timeout) = &config.timeout {
            match crate::config::parse_duration(timeout) {
                Ok(_) => self.push(&format!(
                    "timeout: {timeout}                  # {file}: timeout"
                )),
                Err(e) => self.note(format!(
                    "{file}: timeout {timeout:?} is left out ({e}); the default 5s applies"
                )),
            }
        }
        if config.no_builtin_template {
            self.note(format!(
                "{file}: no_builtin_template has no equivalent: alertrelay's built-in templates are always there; ignored"
            ));
        }
        self.push("profiles:");
    }

    /// The body of `default_message`, translated once for every target that uses it.
    fn default_text(&mut self, default: Option<&PwdMessage>) -> Option<(Part, String)> {
        let text = default?.text.as_deref()?;
        let place = format!("{} default_message.text", self.file);
        let part = self.part(text, &place, "default_message.md.tera");
        Some((part, "default_message.text".to_owned()))
    }

    fn profile(
        &mut self,
        name: &str,
        target: &PwdTarget,
        default: Option<&PwdMessage>,
        default_text: &Option<(Part, String)>,
    ) {
        let key = format!("targets.{name}");
        self.push(&format!(
            "  {name}:                           # {}: {key}",
            self.file
        ));
        let url = self.secret_url(name, &target.url);
        self.push(&format!("    url: {}   # {key}.url", yaml_string(&url)));
        if let Some(secret) = &target.secret {
            let value = self.secret(name, "SECRET", secret, &format!("{key}.secret"));
            self.push(&format!(
                "    secret: {}   # {key}.secret",
                yaml_string(&value)
            ));
        }
        let message = target.message.as_ref();
        // A key the target leaves out is the default message's, then the program's default.
        let (title, title_from) = match (
            message.and_then(|m| m.title.as_deref()),
            default.and_then(|d| d.title.as_deref()),
        ) {
            (Some(title), _) => (Some(title), format!("{key}.message.title")),
            (None, Some(title)) => (Some(title), "default_message.title".to_owned()),
            (None, None) => (None, String::new()),
        };
        if let Some(title) = title {
            let place = format!("{} {title_from}", self.file);
            match self.part(title, &place, "") {
                Part::Builtin(why) => self.push(&format!("    # title: the built-in title ({title_from}: {why})")),
                Part::Tera(tera) => self.push(&format!("    title: {}   # {title_from}, translated to Tera", yaml_string(&without_markers(tera.trim())))),
                Part::Draft(tera) => self.push(&format!(
                    "    # title: {}   # {title_from}: not translated whole (see the notes); the built-in title is used",
                    yaml_string(tera.trim())
                )),
            }
        }
        match message.and_then(|m| m.text.as_deref()) {
            Some(text) => {
                let file_name = format!("{name}.md.tera");
                let place = format!("{} {key}.message.text", self.file);
                let part = self.part(text, &place, &file_name);
                self.template_line(&part, &file_name, &format!("{key}.message.text"));
            }
            None => {
                if let Some((part, from)) = default_text {
                    self.template_line(part, "default_message.md.tera", from);
                }
            }
        }
        if let Some(mention) = &target.mention {
            self.mention(&key, mention.all, &mention.mobiles);
        }
    }

    fn template_line(&mut self, part: &Part, file_name: &str, from: &str) {
        match part {
            Part::Builtin(why) => self.push(&format!("    # template: the built-in template ({from}: {why})")),
            Part::Tera(_) => self.push(&format!("    template: {file_name}   # {from}, translated to Tera")),
            Part::Draft(_) => self.push(&format!(
                "    # template: {file_name}   # {from}: not translated whole, see templates/{file_name}.draft and the notes; the built-in template is used"
            )),
        }
    }

    /// A title or body: the built-in when it only calls the peer's own template, else its
    /// translation (a body's written to `file_name`).
    fn part(&mut self, text: &str, place: &str, file_name: &str) -> Part {
        if let Some(name) = only_template_call(text)
            && BUILTIN_NAMES.contains(&name)
            && !self.defines.contains_key(name)
        {
            return Part::Builtin(format!("prometheus-webhook-dingtalk's {name:?}"));
        }
        let translation = translate(text, place, 1, &self.defines);
        let complete = translation.complete();
        for note in &translation.notes {
            self.migration.notes.push(note.to_string());
        }
        let tera = translation.tera;
        if !complete {
            if !file_name.is_empty() {
                self.add_template(format!("{file_name}.draft"), &tera);
            }
            return Part::Draft(tera);
        }
        if !file_name.is_empty() {
            self.add_template(file_name.to_owned(), &tera);
        }
        Part::Tera(tera)
    }

    fn add_template(&mut self, name: String, tera: &str) {
        if self.migration.templates.iter().any(|(n, _)| *n == name) {
            return;
        }
        let text = format!(
            "{{# Translated by `alertrelay migrate` from Go templates. #}}\n{}\n",
            tera.trim()
        );
        self.migration.templates.push((name, text));
    }

    fn mention(&mut self, key: &str, all: bool, mobiles: &[String]) {
        let (good, bad): (Vec<&String>, Vec<&String>) =
            mobiles.iter().partition(|m| valid_mobile(m));
        for mobile in &bad {
            self.note(format!(
                "{}: {key}.mention.mobiles: {mobile:?} is not a mobile number (digits, optionally +country); left out",
                self.file
            ));
        }
        let list: Vec<String> = good.iter().map(|m| yaml_string(m)).collect();
        self.push(&format!(
            "    mention: {{ all: {all}, mobiles: [{}] }}   # {key}.mention",
            list.join(", ")
        ));
    }

    /// The URL, its `access_token` moved to the environment with `--secrets-to-env`.
    fn secret_url(&mut self, name: &str, url: &str) -> String {
        const KEY: &str = "access_token=";
        let Some(at) = url.find(KEY).map(|at| at + KEY.len()) else {
            return url.to_owned();
        };
        let end = url[at..].find(['&', '#']).map_or(url.len(), |e| at + e);
        let from = format!("targets.{name}.url's access_token");
        let token = self.secret(name, "TOKEN", &url[at..end], &from);
        format!("{}{token}{}", &url[..at], &url[end..])
    }

    /// A secret as written: an `${ENV}` reference (its value kept for the env file) with
    /// `--secrets-to-env`, else the value itself, with a note.
    fn secret(&mut self, name: &str, what: &str, value: &str, from: &str) -> String {
        if !self.options.secrets_to_env {
            self.note(format!(
                "{}: {from} is copied into profiles.yaml in clear; keep the file private, or migrate again with --secrets-to-env",
                self.file
            ));
            return value.to_owned();
        }
        let variable = format!("DINGTALK_{}_{what}", env_name(name));
        self.migration
            .env
            .push((variable.clone(), value.to_owned()));
        format!("${{{variable}}}")
    }
}

/// A title without the comments that mark where an inlined `define` starts and ends (a
/// body file keeps them, for the person reading it).
fn without_markers(tera: &str) -> String {
    let mut out = String::with_capacity(tera.len());
    let mut rest = tera;
    while let Some(open) = rest.find("{#") {
        let Some(close) = rest[open..].find("#}").map(|c| open + c + 2) else {
            break;
        };
        let comment =
            rest[open + 2..close - 2].trim_matches(|c: char| c == '-' || c.is_whitespace());
        out.push_str(&rest[..open]);
        if !(comment.starts_with("from template ") || comment.starts_with("end of ")) {
            out.push_str(&rest[open..close]);
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// `NAME` in upper case with every other character `_`, for an environment variable.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A YAML double-quoted scalar: JSON's string syntax is a subset of it.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// The files of a `templates:` entry: the path itself, or the files of its directory whose
/// names match a pattern with `*`, sorted. Relative paths are read from the config's
/// directory, else from the working directory (where prometheus-webhook-dingtalk ran).
fn expand(base: &Path, path: &str) -> Vec<PathBuf> {
    let resolved = {
        let beside = base.join(path);
        let beside_dir = beside.parent().is_some_and(Path::is_dir);
        if beside.exists() || (path.contains('*') && beside_dir) {
            beside
        } else {
            PathBuf::from(path)
        }
    };
    let Some(pattern) = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return vec![resolved];
    };
    let Some((prefix, suffix)) = pattern.split_once('*') else {
        return vec![resolved];
    };
    let dir = resolved.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.len() >= prefix.len() + suffix.len()
                        && n.starts_with(prefix)
                        && n.ends_with(suffix)
                })
        })
        .collect();
    files.sort();
    files
}
