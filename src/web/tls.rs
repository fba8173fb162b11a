//! `tls_server_config` → a rustls `ServerConfig`: the certificate and key (checked to match),
//! client certificates as exporter-toolkit's `client_auth_type` names them, versions, cipher
//! suites and curves (client certificates: `clients`). What rustls cannot do (TLS 1.0/1.1, CBC suites, P-521) is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

use super::clients::{self, ClientAuth, ClientCa};

/// The raw `tls_server_config` block. `key` is a secret: this type has no `Debug`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

impl RawTls {
    /// Nothing that asks for TLS is set: exporter-toolkit then serves plain HTTP.
    pub(super) fn is_empty(&self) -> bool {
        let blank = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
        let no_path = |p: &Option<PathBuf>| p.as_ref().is_none_or(|p| p.as_os_str().is_empty());
        blank(&self.cert)
            && blank(&self.key)
            && blank(&self.client_ca)
            && blank(&self.client_auth_type)
            && no_path(&self.cert_file)
            && no_path(&self.key_file)
            && no_path(&self.client_ca_file)
    }
}

/// A built config and the files it was read from.
pub(super) struct Built {
    pub(super) config: ServerConfig,
    pub(super) files: Vec<PathBuf>,
}

/// A problem: the key it is about (for its line) and what is wrong, never a key's bytes.
type Problem = (&'static str, String);

/// Builds the rustls config; relative paths are taken from `base` (web.yml's directory).
pub(super) fn server_config(raw: &RawTls, base: &Path) -> Result<Built, Problem> {
    let mut files = Vec::new();
    let cert = pem_source(
        &raw.cert,
        &raw.cert_file,
        base,
        ("cert", "cert_file"),
        &mut files,
    )?;
    let key = pem_source(
        &raw.key,
        &raw.key_file,
        base,
        ("key", "key_file"),
        &mut files,
    )?;
    let key_name = if raw.key.is_some() { "key" } else { "key_file" };
    let cert_name = if raw.cert.is_some() {
        "cert"
    } else {
        "cert_file"
    };
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err((
            "cert_file",
            "both a certificate (cert_file or cert) and a key (key_file or key) are needed".into(),
        ));
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|_| (cert_name, "not a PEM certificate".to_owned()))?;
    if chain.is_empty() {
        return Err((cert_name, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|_| {
        (
            key_name,
            "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".to_owned(),
        )
    })?;
    let provider = Arc::new(provider(raw)?);
    let versions = versions(raw)?;
    let verifier = client_verifier(raw, base, &provider, &mut files)?;
    let certified = rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| (key_name, key_problem(&e)))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| ("min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Built { config, files })
}

fn key_problem(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InconsistentKeys(_) => "the key does not match the certificate".into(),
        _ => "the key cannot be used (rustls supports RSA, ECDSA P-256/P-384 and Ed25519 keys)"
            .into(),
    }
}

/// Inline PEM or a file, not both; `None` when neither is set.
fn pem_source(
    inline: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
    (inline_key, file_key): (&'static str, &'static str),
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, Problem> {
    let inline = inline.as_deref().filter(|s| !s.is_empty());
    let file = file.as_deref().filter(|p| !p.as_os_str().is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err((
            file_key,
            format!("{inline_key} and {file_key} are both set; set one"),
        )),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(path)) => {
            let path = base.join(path);
            let bytes =
                std::fs::read(&path).map_err(|e| (file_key, format!("{}: {e}", path.display())))?;
            files.push(path);
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

fn version(name: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match name {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(format!("{name}: rustls supports TLS12 and TLS13 only")),
        other => Err(format!("{other:?}: expected TLS12 or TLS13")),
    }
}

fn versions(raw: &RawTls) -> Result<Vec<&'static SupportedProtocolVersion>, Problem> {
    let min =
        version(raw.min_version.as_deref().unwrap_or("TLS12")).map_err(|m| ("min_version", m))?;
    let max =
        version(raw.max_version.as_deref().unwrap_or("TLS13")).map_err(|m| ("max_version", m))?;
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let position = |v| all.iter().position(|a| std::ptr::eq(*a, v)).unwrap_or(0);
    if position(min) > position(max) {
        return Err(("max_version", "max_version is below min_version".into()));
    }
    Ok(all[position(min)..=position(max)].to_vec())
}

/// ring's provider with the configured TLS 1.2 suites and curves, in the configured order.
fn provider(raw: &RawTls) -> Result<CryptoProvider, Problem> {
    let mut provider = ring::default_provider();
    if let Some(names) = raw.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let mut suites: Vec<SupportedCipherSuite> = Vec::new();
        for name in names {
            suites.push(cipher_suite(name).map_err(|m| ("cipher_suites", m))?);
        }
        // TLS 1.3's suites are not configurable, as in Go.
        suites.extend(
            ring::DEFAULT_CIPHER_SUITES
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = suites;
    }
    if let Some(names) = raw.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
        for name in names {
            groups.push(curve(name).map_err(|m| ("curve_preferences", m))?);
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

/// A TLS 1.2 suite by its Go name.
fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    use ring::cipher_suite as s;
    Ok(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => s::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => s::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            s::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Err(format!(
                "{name} is a TLS 1.3 suite; TLS 1.3 suites are not configurable (as in Go), list TLS 1.2 suites only"
            ));
        }
        other if other.starts_with("TLS_") => {
            return Err(format!(
                "{other} is not offered by rustls, which has only ECDHE suites with AES-GCM or ChaCha20-Poly1305 for TLS 1.2"
            ));
        }
        other => return Err(format!("{other:?} is not a cipher suite name")),
    })
}

/// A key-exchange group by its Go name.
fn curve(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(ring::kx_group::X25519),
        "CurveP256" => Ok(ring::kx_group::SECP256R1),
        "CurveP384" => Ok(ring::kx_group::SECP384R1),
        "CurveP521" | "X25519MLKEM768" => Err(format!(
            "{name} is not offered by rustls with ring; use X25519, CurveP256 or CurveP384"
        )),
        other => Err(format!(
            "{other:?}: expected X25519, CurveP256 or CurveP384"
        )),
    }
}

fn client_verifier(
    raw: &RawTls,
    base: &Path,
    provider: &Arc<CryptoProvider>,
    files: &mut Vec<PathBuf>,
) -> Result<Arc<dyn ClientCertVerifier>, Problem> {
    let auth = ClientAuth::parse(raw.client_auth_type.as_deref())?;
    let keys = ("client_ca", "client_ca_file");
    let pem = pem_source(&raw.client_ca, &raw.client_ca_file, base, keys, files)?;
    let key = if raw.client_ca.is_some() {
        keys.0
    } else {
        keys.1
    };
    let ca = pem.as_deref().map(|pem| ClientCa { pem, key });
    let sans = raw.client_allowed_sans.clone().unwrap_or_default();
    clients::verifier(auth, ca, sans, provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_go_name_of_a_tls12_suite_rustls_has_is_taken() {
        for name in [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ] {
            let suite = cipher_suite(name).unwrap();
            assert_eq!(suite.version(), &rustls::version::TLS12, "{name}");
        }
        assert!(
            cipher_suite("TLS_AES_128_GCM_SHA256")
                .unwrap_err()
                .contains("TLS 1.3")
        );
        assert!(cipher_suite("TLS_RSA_WITH_AES_128_GCM_SHA256").is_err());
        assert!(cipher_suite("aes").is_err());
    }

    #[test]
    fn versions_run_from_min_to_max_and_a_max_below_the_min_is_refused() {
        let raw = |min: &str, max: &str| RawTls {
            min_version: Some(min.into()),
            max_version: Some(max.into()),
            ..RawTls::default()
        };
        assert_eq!(versions(&raw("TLS12", "TLS13")).unwrap().len(), 2);
        let only13 = versions(&raw("TLS13", "TLS13")).unwrap();
        assert_eq!(only13, [&rustls::version::TLS13]);
        assert_eq!(
            versions(&raw("TLS13", "TLS12")).err().unwrap().0,
            "max_version"
        );
        assert_eq!(
            versions(&raw("TLS11", "TLS13")).err().unwrap().0,
            "min_version"
        );
    }

    #[test]
    fn a_tls_block_with_nothing_set_means_plain_http() {
        assert!(RawTls::default().is_empty());
        let with_cert = RawTls {
            cert_file: Some("server.crt".into()),
            ..RawTls::default()
        };
        assert!(!with_cert.is_empty());
    }
}
