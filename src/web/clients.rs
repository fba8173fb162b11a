//! Who may connect: exporter-toolkit's `client_auth_type` (Go's five `tls.ClientAuthType`
//! values) and `client_allowed_sans` → a rustls client-certificate verifier.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::names;

/// A problem: the key it is about (for its line) and what is wrong.
type Problem = (&'static str, String);

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Parses the value; empty or absent is `NoClientCert`.
    pub(super) fn parse(text: Option<&str>) -> Result<Self, Problem> {
        Ok(match text.unwrap_or("") {
            "" | "NoClientCert" => Self::NoClientCert,
            "RequestClientCert" => Self::RequestClientCert,
            "RequireAnyClientCert" => Self::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => Self::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => Self::RequireAndVerifyClientCert,
            other => {
                return Err((
                    "client_auth_type",
                    format!(
                        "{other:?}: expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                    ),
                ));
            }
        })
    }
}

/// The client CA's PEM and the key it came from (`client_ca` or `client_ca_file`).
pub(super) struct ClientCa<'a> {
    pub(super) pem: &'a [u8],
    pub(super) key: &'static str,
}

/// The verifier for `auth`, trusting `ca`, requiring one of `sans` when not empty.
pub(super) fn verifier(
    auth: ClientAuth,
    ca: Option<ClientCa<'_>>,
    sans: Vec<String>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, Problem> {
    if !sans.is_empty()
        && !matches!(
            auth,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    {
        return Err((
            "client_allowed_sans",
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert".into(),
        ));
    }
    let verifier: Arc<dyn ClientCertVerifier> = match (auth, ca) {
        (ClientAuth::NoClientCert, Some(ca)) => {
            return Err((ca.key, "a client CA is configured without a client_auth_type that asks for client certificates".into()));
        }
        (ClientAuth::NoClientCert, None) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, _) => {
            Arc::new(AnyCertificate {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        (_, None) => {
            return Err((
                "client_auth_type",
                "verifying client certificates needs client_ca_file (or client_ca)".into(),
            ));
        }
        (_, Some(ca)) => {
            let builder = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(&ca)?),
                provider.clone(),
            );
            let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| (ca.key, e.to_string()))?
        }
    };
    if sans.is_empty() {
        return Ok(verifier);
    }
    Ok(Arc::new(AllowedSans {
        inner: verifier,
        sans,
    }))
}

fn roots(ca: &ClientCa<'_>) -> Result<RootCertStore, Problem> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.pem) {
        let cert = cert.map_err(|_| (ca.key, "not a PEM certificate".to_owned()))?;
        roots
            .add(cert)
            .map_err(|e| (ca.key, format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err((ca.key, "no PEM certificate in it".into()));
    }
    Ok(roots)
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken without checking
/// who issued it (Go's meaning; exporter-toolkit calls these insecure), but the client must
/// still prove it holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner check, the certificate must carry one of these
/// names (DNS, IP, e-mail or URI) exactly.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    sans: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = names::subject_alt_names(end_entity);
        if names.iter().any(|n| self.sans.contains(n)) {
            Ok(verified)
        } else {
            Err(rustls::Error::General(
                "client certificate SAN not allowed".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
