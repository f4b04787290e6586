//! A TLS client that does not check the server's certificate, for tests and benchmarks of
//! servers that make a self-signed certificate of their own at start (`ebb metrics-api`
//! without `--tls-cert-file`, prometheus-adapter), where what is measured is the answer or
//! its latency, not trust. rustls asks for a whole [`ServerCertVerifier`] to skip the check;
//! it is written once here so that every such client skips it the same way. Never for
//! production code: nothing outside tests and `crates/e2e` depends on this crate.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Accepts any server certificate, but still checks that the server holds its key (the
/// handshake signatures are verified with `provider`'s algorithms), so a handshake fails
/// for the usual reasons other than trust.
#[derive(Debug)]
pub struct AnyServerCertificate(Arc<CryptoProvider>);

impl AnyServerCertificate {
    /// For `ClientConfig::builder_with_provider(provider)…dangerous().with_custom_certificate_verifier(…)`.
    pub fn new(provider: Arc<CryptoProvider>) -> Arc<AnyServerCertificate> {
        Arc::new(AnyServerCertificate(provider))
    }
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
