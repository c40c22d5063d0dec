//! How bioxen trusts a pool's certificate.
//!
//! Verified against the system roots by default. A pool's certificate is self-signed
//! after installation, so a researcher can pin it by its SHA-256 fingerprint
//! (`tls_fingerprint`), the way SSH pins host keys; turning verification off is an
//! explicit choice that the dashboard keeps on screen as a warning.

pub use bioxen_config::tls::{TlsMode, parse_fingerprint};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// `sha256:AB:CD:…` (upper-case hex pairs, as xapi prints them) of a certificate.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    format!("sha256:{}", hex_pairs(digest.as_ref()))
}

pub fn hex_pairs(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The crypto provider bioxen uses everywhere (ring: it builds fastest here).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide default, for libraries that look it up.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client config that accepts only the pinned certificate.
pub fn pinned_config(pin: [u8; 32]) -> rustls::ClientConfig {
    config_with(Arc::new(CertCheck {
        check: Check::Pin(pin),
        provider: provider(),
    }))
}

fn config_with(verifier: Arc<CertCheck>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// What to do with the certificate a pool presents.
#[derive(Debug)]
enum Check {
    /// Accept it only if its SHA-256 is this one.
    Pin([u8; 32]),
    /// Refuse it, keeping its fingerprint (to show which one to pin).
    Record(std::sync::Mutex<Option<String>>),
}

/// A certificate verifier by fingerprint; the handshake signatures are still checked
/// with the provider's algorithms.
#[derive(Debug)]
struct CertCheck {
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        match &self.check {
            Check::Pin(pin) if digest.as_ref() == pin => Ok(ServerCertVerified::assertion()),
            Check::Pin(pin) => Err(rustls::Error::General(format!(
                "certificate fingerprint mismatch: the pool presents sha256:{}, but sha256:{} is pinned",
                hex_pairs(digest.as_ref()),
                hex_pairs(pin)
            ))),
            Check::Record(seen) => {
                *crate::lock(seen) = Some(fingerprint(end_entity.as_ref()));
                Err(rustls::Error::General("probe only".into()))
            }
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to `host:port` only to learn the certificate it presents, so an error
/// about an untrusted certificate can show the fingerprint to pin.
pub async fn probe_fingerprint(host: &str, port: u16) -> Option<String> {
    let probe = Arc::new(CertCheck {
        check: Check::Record(std::sync::Mutex::new(None)),
        provider: provider(),
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config_with(probe.clone())));
    let name = ServerName::try_from(host.to_string()).ok()?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .ok()?
    .ok()?;
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connector.connect(name, tcp),
    )
    .await;
    match &probe.check {
        Check::Record(seen) => seen.lock().ok()?.clone(),
        Check::Pin(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let fp = fingerprint(b"certificate bytes");
        assert!(
            fp.starts_with("sha256:") && fp.len() == 7 + 32 * 3 - 1,
            "{fp}"
        );
        let bytes = parse_fingerprint(&fp).unwrap();
        assert_eq!(
            fingerprint(b"certificate bytes"),
            format!("sha256:{}", hex_pairs(&bytes))
        );
        assert!(parse_fingerprint(&fp.to_lowercase().replace("sha256:", "")).is_ok());
        assert!(parse_fingerprint("sha256:AB:CD").is_err());
        assert_eq!(TlsMode::from_config(false, "").unwrap(), TlsMode::Insecure);
        assert_eq!(TlsMode::from_config(true, "").unwrap(), TlsMode::Verify);
    }
}
