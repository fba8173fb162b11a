//! `--web.config.file`: TLS, client certificates, basic auth, reload of the web config and
//! its certificate files, and the real Alertmanager posting through all of it. Certificates
//! are made here with rcgen; nothing is checked in.

mod alertmanager;
mod auth;
mod binary;
mod rotation;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alertrelay::server::{self, AppState};
use alertrelay::web::{self, Web};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::sync::oneshot;

use crate::helpers::{ops_yaml, payload};
use crate::robot::RobotDouble;

/// A certificate authority made for one test.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub(crate) struct Leaf {
    pub(crate) cert: String,
    pub(crate) key: String,
    pub(crate) der: Vec<u8>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub(crate) fn server(&self) -> Leaf {
        self.leaf(
            "alertrelay",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate named `name` (its CN and a DNS SAN).
    pub(crate) fn client(&self, name: &str) -> Leaf {
        self.leaf(name, &[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, cn: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// alertrelay behind a web config, with a robot double (profile `ops`) behind it.
pub(crate) struct WebApp {
    pub(crate) addr: SocketAddr,
    pub(crate) web: Web,
    pub(crate) state: AppState,
    pub(crate) robot: RobotDouble,
    /// Holds profiles.yaml, web.yml and the certificate files.
    pub(crate) dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

impl WebApp {
    /// Serves with `web_yml` written to `web.yml`, beside `files` (name, content), watched.
    pub(crate) async fn start(web_yml: &str, files: &[(&str, &str)]) -> Self {
        Self::start_with(web_yml, files, false).await
    }

    pub(crate) async fn start_with(
        web_yml: &str,
        files: &[(&str, &str)],
        healthy_without_auth: bool,
    ) -> Self {
        let robot = RobotDouble::start().await;
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        std::fs::write(dir.path().join("web.yml"), web_yml).unwrap();
        let profiles = dir.path().join("profiles.yaml");
        let yaml = ops_yaml("").replace("{robot}", &robot.addr.to_string());
        std::fs::write(&profiles, yaml).unwrap();
        let state = crate::helpers::state_from(&profiles).await;
        let web = Web::load(
            Some(&dir.path().join("web.yml")),
            healthy_without_auth,
            state.metrics.clone(),
        )
        .unwrap();
        let state = state.with_web(web.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        web::watch::spawn(web.clone(), std::future::pending());
        let (served, router) = (web.clone(), server::router(state.clone()));
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            server::run_web(listener, &served, router, shutdown, Duration::from_secs(1)).await
        });
        Self {
            addr,
            web,
            state,
            robot,
            dir,
            _shutdown: tx,
        }
    }

    pub(crate) fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub(crate) fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn metrics(&self) -> String {
        self.state.metrics.encode()
    }

    /// Waits until the `/metrics` text satisfies `done` (a reload gauge says what it waits for).
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&self.metrics()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client trusting `ca`, showing `identity` when given.
pub(crate) fn client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .tls_info(true)
        .timeout(Duration::from_secs(10));
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder
}

/// The DER of the certificate the server answered with.
pub(crate) fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS answer")
        .to_vec()
}

/// A web.yml serving `server.crt`/`server.key`, with `extra` lines under tls_server_config.
pub(crate) fn tls_yml(extra: &str) -> String {
    format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}")
}

/// Posts a notification for `ops`.
pub(crate) async fn send(
    client: &reqwest::Client,
    url: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(payload("firing_single.json"))
        .send()
        .await
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
