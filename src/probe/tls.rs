//! TLS client configurations for probes and fetches: rustls with the ring provider and the
//! Mozilla roots from `webpki-roots` (the same stack lettre uses, so the binary carries one TLS
//! implementation and no OpenSSL).
//!
//! A configuration is built once per distinct `(tls_verify, ca_file)` pair and shared; building
//! one parses ~150 root certificates, far too slow to repeat on every check.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Failure, ProbeError};

/// Which client configuration a check needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsKey {
    /// Verify the server's certificate chain and name.
    pub verify: bool,
    /// Extra PEM bundle trusted on top of the Mozilla roots (only meaningful with `verify`).
    pub ca_file: Option<PathBuf>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration for `key`. Fails when the CA file cannot be read, holds no
/// certificate, or holds a certificate rustls refuses as a trust anchor.
pub fn client_config(key: &TlsKey) -> Result<Arc<ClientConfig>, ProbeError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ProbeError::Tls)?;
    let mut config = if key.verify {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &key.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    // HTTP/1.1 only: say so in ALPN so a server offering h2 does not pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The verifying client configuration every outbound HTTPS client shares (receivers,
/// Alertmanager, the OTLP exporter): ring, the Mozilla roots plus `ca_file`, HTTP/1.1.
pub(crate) fn verifying_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ProbeError> {
    client_config(&TlsKey {
        verify: true,
        ca_file: ca_file.map(Path::to_owned),
    })
}

/// Reads a PEM bundle and checks it holds at least one certificate rustls accepts as a trust
/// anchor; returns the file's bytes (for clients such as tonic that take PEM themselves).
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<u8>, ProbeError> {
    add_ca_file(&mut RootCertStore::empty(), path)
}

/// Adds every certificate of the PEM bundle at `path` to `roots`; returns the file's bytes.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<Vec<u8>, ProbeError> {
    let ca_error = |reason: String| ProbeError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ca_error(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("unusable certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(ca_error("no PEM certificate in the file".to_owned()));
    }
    Ok(pem)
}

/// Accepts any certificate (for `tls_verify: false`) but still checks the handshake signatures,
/// so the session is at least bound to the key in the presented certificate.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Classifies a failed handshake: an expired certificate is its own failure (with the
/// certificate's `notAfter` when rustls reports it), everything else is `tls`.
pub fn handshake_failure(err: &std::io::Error) -> Failure {
    let rustls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
            not_after,
            ..
        })) => Failure::CertExpired {
            not_after_ms: i64::try_from(not_after.as_secs())
                .ok()
                .and_then(|s| s.checked_mul(1000)),
        },
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)) => {
            Failure::CertExpired { not_after_ms: None }
        }
        Some(e) => Failure::Tls(e.to_string()),
        None => Failure::Tls(err.to_string()),
    }
}

/// A client connection: plain TCP or TLS over TCP (the probes' and the outbound HTTP client's).
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
