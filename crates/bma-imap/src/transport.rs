//! The byte stream under the protocol: plain TCP or TLS (rustls, ring), and
//! the TLS configuration: certificates verified against the Mozilla roots
//! (webpki-roots) unless verification is explicitly turned off.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// Plain TCP or TLS over TCP.
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (implicit or after STARTTLS).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Taken apart during STARTTLS, or after a failed upgrade.
    Gone,
}

impl Transport {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// Accepts any certificate: only when the caller asked for `insecure`.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Where the certificates of servers are checked against.
#[derive(Clone, Debug, Default)]
pub enum TlsRoots {
    /// The Mozilla root store compiled in (webpki-roots).
    #[default]
    WebPki,
    /// Extra DER certificates, trusted in addition to the Mozilla roots
    /// (a private CA, a test server).
    WithExtra(Vec<Vec<u8>>),
}

/// A TLS connector: verification on unless `insecure`.
pub(crate) fn connector(roots: &TlsRoots, insecure: bool) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider.signature_verification_algorithms)))
            .with_no_client_auth()
    } else {
        let mut store = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let TlsRoots::WithExtra(extra) = roots {
            for der in extra {
                store.add(CertificateDer::from(der.clone())).map_err(|e| Error::Tls(format!("bad extra root: {e}")))?;
            }
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The same connector for another protocol of the project (ManageSieve in
/// `bma-platform`): one trust setting for every client we write.
pub fn tls_connector(roots: &TlsRoots, insecure: bool) -> Result<TlsConnector> {
    connector(roots, insecure)
}

/// Runs the TLS handshake over `tcp`.
pub(crate) async fn handshake(connector: &TlsConnector, host: &str, tcp: TcpStream) -> Result<Transport> {
    let name =
        ServerName::try_from(host.to_owned()).map_err(|e| Error::Tls(format!("invalid server name {host}: {e}")))?;
    let tls = connector.connect(name, tcp).await.map_err(|e| Error::Tls(e.to_string()))?;
    Ok(Transport::Tls(Box::new(tls)))
}
