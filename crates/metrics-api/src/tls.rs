//! The HTTPS side: the serving certificate (from files, re-read when they change, or
//! self-signed at start) and the client certificate policy.
//!
//! Like the Go servers, the TLS layer asks for a client certificate but requires none, and
//! accepts any it proves possession of: probes connect without one, and a certificate from
//! the wrong CA gets a 401 with a reason rather than a failed handshake. Its chain is then
//! checked against the requestheader CA (`authn.rs`) before any API answer.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ebb_runtime::Shutdown;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use crate::{Error, Result};

/// How often certificate files (serving pair, requestheader CA) are re-read: two small local
/// files, cheap to read, and a rotated certificate is served within seconds.
pub const FILE_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The crypto provider of every TLS object here (the workspace builds rustls with ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// The current TLS configuration; replaced when the certificate files change.
pub struct Tls {
    current: RwLock<Arc<ServerConfig>>,
    origin: ServingCert,
    loaded: RwLock<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    pub fn new(origin: ServingCert) -> Result<Tls> {
        let (cert_pem, key_pem) = match &origin {
            ServingCert::Files { cert, key } => (read(cert)?, read(key)?),
            ServingCert::SelfSigned => {
                let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
                let certified = rcgen::generate_simple_self_signed(names)?;
                tracing::info!("serving with a self-signed certificate made at start");
                (
                    certified.cert.pem().into_bytes(),
                    certified.signing_key.serialize_pem().into_bytes(),
                )
            }
        };
        let config = server_config(&cert_pem, &key_pem, &origin)?;
        Ok(Tls {
            current: RwLock::new(config),
            origin,
            loaded: RwLock::new((cert_pem, key_pem)),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().expect("tls lock").clone()
    }

    /// Re-reads the files every [`FILE_RELOAD_INTERVAL`]; a pair that does not load is logged and
    /// the previous one kept.
    pub async fn reload_until(&self, shutdown: Shutdown) {
        let ServingCert::Files { cert, key } = &self.origin else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(FILE_RELOAD_INTERVAL) => {}
                () = shutdown.requested() => return,
            }
            let (Ok(cert_pem), Ok(key_pem)) = (read(cert), read(key)) else {
                tracing::warn!(
                    "cannot read {} or {}: keeping the loaded certificate",
                    cert.display(),
                    key.display()
                );
                continue;
            };
            if *self.loaded.read().expect("tls lock") == (cert_pem.clone(), key_pem.clone()) {
                continue;
            }
            match server_config(&cert_pem, &key_pem, &self.origin) {
                Ok(config) => {
                    *self.current.write().expect("tls lock") = config;
                    *self.loaded.write().expect("tls lock") = (cert_pem, key_pem);
                    tracing::info!("serving certificate reloaded from {}", cert.display());
                }
                Err(error) => tracing::warn!("keeping the loaded certificate: {error}"),
            }
        }
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.clone(),
        source,
    })
}

/// PEM certificates, at least one.
pub fn certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| Error::Pem {
            path: origin.to_owned(),
            reason: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            path: origin.to_owned(),
            reason: "no certificate (PEM `CERTIFICATE` block) in it".to_owned(),
        });
    }
    Ok(certs)
}

fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: &ServingCert,
) -> Result<Arc<ServerConfig>> {
    let (cert_origin, key_origin) = match origin {
        ServingCert::Files { cert, key } => (cert.display().to_string(), key.display().to_string()),
        ServingCert::SelfSigned => (
            "self-signed certificate".to_owned(),
            "self-signed key".to_owned(),
        ),
    };
    let certs = certificates(cert_pem, &cert_origin)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| Error::Pem {
        path: key_origin,
        reason: error.to_string(),
    })?;
    let provider = provider();
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(AnyClientCert { provider }))
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Asks for a client certificate, requires none, and accepts any whose key signs the
/// handshake: the chain is judged after the handshake, per request path.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hint: a Go client whose certificate's issuer is not in the hints sends none.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
