//! From a [`DatabaseUrl`] to a connection: libpq's `sslmode` and `sslrootcert` read here
//! (tokio-postgres knows only `disable`, `prefer` and `require`), TLS through rustls with the
//! ring provider, and the client settings every connection of the store gets.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::{DatabaseUrl, StoreError};

/// How long establishing a connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalives, so that a silently dead peer is noticed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// libpq's TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// `disable` or `allow`: no TLS.
    Disable,
    /// `prefer` (libpq's default): TLS when the server offers it, without verification.
    Prefer,
    /// `require`: TLS, without verification unless `sslrootcert` is given (then as
    /// `verify-ca`, as libpq does).
    Require,
    /// `verify-ca`: TLS, the chain verified, not the host name.
    VerifyCa,
    /// `verify-full`: TLS, the chain and the host name verified.
    VerifyFull,
}

/// What a store needs to open connections: tokio-postgres's settings and the TLS connector.
#[derive(Clone)]
pub(crate) struct ConnectSettings {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: RustlsConnect,
    /// `host:port/dbname`, for messages.
    pub(crate) server: String,
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ConnectSettings {
    /// Reads the URL; errors name the setting and never the password.
    pub(crate) fn parse(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let invalid = |problem: String| StoreError::InvalidDatabaseUrl {
            setting: url.setting().to_owned(),
            problem,
        };
        let (base, query) = match url.expose().split_once('?') {
            Some((base, query)) => (base, query),
            None => (url.expose(), ""),
        };
        let mut mode = TlsMode::Prefer;
        let mut root_cert: Option<String> = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    mode = match percent_decode(value).as_str() {
                        "disable" | "allow" => TlsMode::Disable,
                        "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" => TlsMode::VerifyCa,
                        "verify-full" => TlsMode::VerifyFull,
                        _ => {
                            return Err(invalid(
                                "sslmode must be disable, allow, prefer, require, verify-ca or verify-full".into(),
                            ));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" => {
                    return Err(invalid(format!(
                        "`{key}` is not supported (no client certificates); authenticate with a password"
                    )));
                }
                _ => passed.push(pair),
            }
        }
        let rebuilt = if passed.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let rebuilt = zeroize::Zeroizing::new(rebuilt);
        let mut config = tokio_postgres::Config::from_str(&rebuilt)
            .map_err(|e| invalid(format!("cannot be read: {e}")))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("the URL names no host".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("provider-config");
        }
        config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
        let root_cert = root_cert.or_else(default_root_cert);
        if mode == TlsMode::Require && root_cert.is_some() {
            mode = TlsMode::VerifyCa;
        }
        let tls = match mode {
            TlsMode::Disable => {
                config.ssl_mode(SslMode::Disable);
                RustlsConnect(None)
            }
            TlsMode::Prefer | TlsMode::Require => {
                config.ssl_mode(if mode == TlsMode::Prefer {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                RustlsConnect(Some(Arc::new(client_config(Arc::new(
                    AcceptAnyCertificate(provider()),
                )))))
            }
            TlsMode::VerifyCa | TlsMode::VerifyFull => {
                config.ssl_mode(SslMode::Require);
                let roots = load_roots(root_cert.as_deref()).map_err(invalid)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::new(provider()),
                )
                .build()
                .map_err(|e| invalid(format!("cannot use the root certificates: {e}")))?;
                let verifier: Arc<dyn ServerCertVerifier> = if mode == TlsMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                };
                RustlsConnect(Some(Arc::new(client_config(verifier))))
            }
        };
        let server = server_name(&config);
        Ok(Self {
            config,
            tls,
            server,
        })
    }
}

/// `host:port/dbname` of the first host, for messages.
fn server_name(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`, when it exists.
fn default_root_cert() -> Option<String> {
    let path = private_fs::home_dir()?.join(".postgresql/root.crt");
    path.is_file().then(|| path.display().to_string())
}

/// The roots in a PEM file, or the system's (`sslrootcert=system`, or none given).
fn load_roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(file) if file != "system" => {
            let path = PathBuf::from(file);
            let pem =
                std::fs::read(&path).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                found += 1;
            }
            if found == 0 {
                return Err(format!(
                    "sslrootcert {}: no PEM certificate in the file",
                    path.display()
                ));
            }
        }
        _ => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no system root certificates were found; give sslrootcert=/path/to/ca.pem"
                        .into(),
                );
            }
        }
    }
    Ok(roots)
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn client_config(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// `require` and `prefer`: encryption without authentication of the server (libpq's
/// semantics; use `verify-full` against anything but a trusted network). The handshake
/// signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(CryptoProvider);

impl ServerCertVerifier for AcceptAnyCertificate {
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

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS hook on rustls; `None` when TLS is off (`sslmode=disable`, so it is
/// never asked for).
#[derive(Clone)]
pub(crate) struct RustlsConnect(Option<Arc<ClientConfig>>);

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnectOne, io::Error> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnectOne {
            config: self.0.clone(),
            name,
        })
    }
}

/// One TLS handshake.
pub(crate) struct RustlsConnectOne {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnectOne {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, io::Error>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let config = self.config.ok_or_else(|| {
                io::Error::new(io::ErrorKind::Unsupported, "TLS is off (sslmode=disable)")
            })?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for RustlsStream {
    // SCRAM channel binding is not offered (the server accepts SCRAM without it).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// `%XX` decoding of a query value (invalid escapes are kept as written).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<ConnectSettings, StoreError> {
        ConnectSettings::parse(&DatabaseUrl::parse(url).unwrap())
    }

    #[test]
    fn libpq_ssl_modes_are_understood() {
        let s = settings("postgres://u:SENTINEL@db.example:6543/app").unwrap();
        assert_eq!(s.server, "db.example:6543/app");
        assert_eq!(s.config.get_ssl_mode(), SslMode::Prefer);
        assert!(!format!("{s:?}").contains("SENTINEL"));
        let s = settings("postgres://u@h/app?sslmode=disable").unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Disable);
        assert!(s.tls.0.is_none());
        let s = settings("postgres://u@h/app?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(s.config.get_application_name(), Some("x"));
        for bad in [
            "postgres://u@h/app?sslmode=sometimes",
            "postgres://u@h/app?sslcert=/c.pem",
            "postgres://u@h/app?bogus=1",
            "postgres://u@h/app?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        ] {
            let e = settings(bad).unwrap_err();
            assert!(
                matches!(e, StoreError::InvalidDatabaseUrl { .. }),
                "{bad}: {e}"
            );
        }
        assert_eq!(percent_decode("%2Ftmp%2fca.pem%zz"), "/tmp/ca.pem%zz");
    }
}
