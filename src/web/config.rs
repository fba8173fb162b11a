//! `--web.config.file`: the exporter-toolkit web configuration (the format Prometheus,
//! Alertmanager and the exporters read), parsed and validated into what the listener uses.
//! Every key of that format is either honoured or refused with file and line; none is
//! silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::WebError;
use super::auth::Users;
use super::tls;
use crate::config::{Problem, locate};

/// The raw file, as serde reads it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<tls::RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Newer exporter-toolkit versions have a token-bucket limiter; refused, never ignored.
    #[serde(default)]
    rate_limit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit lets a web config add to every answer.
const HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// A validated web configuration: what one snapshot of the listener serves with.
pub(crate) struct WebConfig {
    /// `None`: plain HTTP (no `tls_server_config`, or one with nothing set).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// `basic_auth_users`; empty means no authentication.
    pub(crate) users: Users,
    /// `http_server_config.headers`, added to every answer.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Every file this configuration was read from (web.yml, certificates, key, CA), for
    /// the watcher.
    pub(crate) files: Vec<PathBuf>,
}

/// Shows what is configured, never a key or a hash.
impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.len())
            .field("headers", &self.headers)
            .field("files", &self.files)
            .finish()
    }
}

impl WebConfig {
    /// Without `--web.config.file`: plain HTTP, no authentication, no extra headers.
    pub(crate) fn plain() -> Self {
        Self {
            tls: None,
            users: Users::none(),
            headers: Vec::new(),
            files: Vec::new(),
        }
    }

    /// One line on what this configuration does, for `alertrelay check`.
    pub(crate) fn summary(&self) -> String {
        let tls = if self.tls.is_some() {
            "HTTPS"
        } else {
            "plain HTTP"
        };
        let users = match self.users.len() {
            0 => "no basic auth".to_owned(),
            1 => "basic auth for 1 user".to_owned(),
            n => format!("basic auth for {n} users"),
        };
        let headers = match self.headers.len() {
            1 => "1 extra header".to_owned(),
            n => format!("{n} extra headers"),
        };
        format!("{tls}, {users}, {headers}")
    }

    /// Reads and validates `file`, and the certificate, key and CA files it names.
    pub(crate) fn load(file: &Path) -> Result<Self, WebError> {
        let text = std::fs::read_to_string(file).map_err(|source| WebError::Read {
            file: file.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, file)
    }

    /// Parses and validates web config text; `file` names it in errors and anchors the
    /// relative paths in it (as exporter-toolkit does).
    pub(crate) fn from_yaml(text: &str, file: &Path) -> Result<Self, WebError> {
        let name = file.display().to_string();
        let problem = |line: Option<usize>, message: String| {
            WebError::Invalid(Problem {
                file: name.clone(),
                line,
                message,
            })
        };
        let raw: RawWebConfig = serde_yaml_ng::from_str::<Option<RawWebConfig>>(text)
            .map_err(|e| {
                let line = e.location().map(|l| l.line());
                problem(line, without_values(&strip_location(&e.to_string())))
            })?
            .unwrap_or_default();
        if let Some((line, message)) = unsupported(&raw, text) {
            return Err(problem(line, message));
        }
        let base = file.parent().unwrap_or(Path::new(""));
        let mut files = vec![file.to_path_buf()];
        let tls = match &raw.tls_server_config {
            Some(raw_tls) if !raw_tls.is_empty() => {
                let built = tls::server_config(raw_tls, base).map_err(|(key, message)| {
                    let line = at(text, &["tls_server_config", key]);
                    problem(line, format!("tls_server_config.{key}: {message}"))
                })?;
                files.extend(built.files);
                Some(Arc::new(built.config))
            }
            _ => None,
        };
        let http = raw.http_server_config.unwrap_or_default();
        let headers = headers(http.headers.unwrap_or_default()).map_err(|(header, message)| {
            problem(
                at(text, &["http_server_config", "headers", &header]),
                message,
            )
        })?;
        let users = Users::new(raw.basic_auth_users.unwrap_or_default())
            .map_err(|(user, message)| problem(at(text, &["basic_auth_users", &user]), message))?;
        Ok(Self {
            tls,
            users,
            headers,
            files,
        })
    }
}

/// The line of the key at `path`, or else of its parent.
fn at(text: &str, path: &[&str]) -> Option<usize> {
    locate(text, path).or_else(|| locate(text, &path[..path.len() - 1]))
}

/// Keys of the format that alertrelay cannot honour: refused, with their line.
fn unsupported(raw: &RawWebConfig, text: &str) -> Option<(Option<usize>, String)> {
    if raw.rate_limit.is_some() {
        return Some((
            locate(text, &["rate_limit"]),
            "rate_limit is not supported by alertrelay; remove it (each robot's rate budget is kept by alertrelay itself)".into(),
        ));
    }
    let http2 = raw.http_server_config.as_ref().and_then(|h| h.http2);
    if http2 == Some(true) {
        return Some((
            locate(text, &["http_server_config", "http2"]),
            "http_server_config.http2: alertrelay serves HTTP/1.1 only; set http2: false or leave it out".into(),
        ));
    }
    None
}

/// Validates `http_server_config.headers` as exporter-toolkit does: only its five headers,
/// with the values browsers accept. An error names the header (for its line).
fn headers(
    raw: BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, (String, String)> {
    let mut out = Vec::new();
    for (name, value) in raw {
        let Some(known) = HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) else {
            return Err((
                name.clone(),
                format!(
                    "http_server_config.headers: {name:?} cannot be configured; the headers that can are {}",
                    HEADERS.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            continue; // "Unset if blank."
        }
        let allowed: &[&str] = match *known {
            "X-Frame-Options" => &["deny", "sameorigin"],
            "X-Content-Type-Options" => &["nosniff"],
            _ => &[],
        };
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
            return Err((
                name,
                format!(
                    "http_server_config.headers: {known} must be {}",
                    allowed.join(" or ")
                ),
            ));
        }
        let value = HeaderValue::from_str(&value).map_err(|_| {
            (
                name.clone(),
                format!("http_server_config.headers: {known}: not a valid header value"),
            )
        })?;
        out.push((HeaderName::from_static(lower(known)), value));
    }
    Ok(out)
}

/// The lower-case spelling `HeaderName::from_static` wants.
fn lower(known: &str) -> &'static str {
    match known {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

/// serde_yaml_ng's message without its " at line N column M" (the line is reported apart).
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A parser message with any quoted string value taken out: a key or a password hash put
/// where a map was expected would otherwise be echoed (`invalid type: string "..."`).
fn without_values(message: &str) -> String {
    let Some(start) = message.find("string \"") else {
        return message.to_owned();
    };
    let rest = &message[start + "string \"".len()..];
    let end = rest.find("\", expected").map_or(rest.len(), |e| e + 1);
    format!("{}a string{}", &message[..start], &rest[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, String> {
        WebConfig::from_yaml(text, Path::new("/etc/alertrelay/web.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_file_means_plain_http_without_auth() {
        let config = load("# nothing yet\n").unwrap();
        assert!(config.tls.is_none());
        assert!(config.users.is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_with_file_and_line() {
        let error = load("basic_auth_users: {}\ntls_server_config:\n  cert_fle: x\n").unwrap_err();
        assert!(error.starts_with("/etc/alertrelay/web.yml:3: "), "{error}");
        assert!(error.contains("cert_fle"), "{error}");
    }

    #[test]
    fn rate_limit_and_http2_are_refused_not_ignored() {
        let error = load("rate_limit:\n  interval: 1s\n  burst: 5\n").unwrap_err();
        assert!(
            error.starts_with("/etc/alertrelay/web.yml:1: rate_limit"),
            "{error}"
        );
        let error = load("http_server_config:\n  http2: true\n").unwrap_err();
        assert!(error.starts_with("/etc/alertrelay/web.yml:2: "), "{error}");
        assert!(load("http_server_config:\n  http2: false\n").is_ok());
    }

    #[test]
    fn only_exporter_toolkit_headers_with_valid_values_are_taken() {
        let config = load(
            "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n    X-XSS-Protection: ''\n",
        )
        .unwrap();
        let names: Vec<&str> = config.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["strict-transport-security", "x-frame-options"]);
        let error =
            load("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").unwrap_err();
        assert!(error.starts_with("/etc/alertrelay/web.yml:3: "), "{error}");
        let error = load("http_server_config:\n  headers:\n    Server: nginx\n").unwrap_err();
        assert!(error.contains("\"Server\" cannot be configured"), "{error}");
    }

    #[test]
    fn a_string_where_a_map_belongs_is_not_echoed() {
        let error = load("basic_auth_users: \"$2y$10$secretsecret\"\n").unwrap_err();
        assert!(!error.contains("secretsecret"), "{error}");
        assert!(error.contains(":1: "), "{error}");
    }
}
