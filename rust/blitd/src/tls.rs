//! TLS on both planes: loads the `[daemon.tls]` certificate chain and
//! private key once, and builds the control plane's tonic config and the
//! data plane's rustls config from them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use blit_core::{Error, ErrorKind, Result};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// Time that a control-plane connection gets to complete its TLS handshake.
pub(crate) const CONTROL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's certificate chain and private key, checked to parse and to
/// belong together, in the forms that the two planes take.
#[derive(Clone)]
pub(crate) struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    data_plane: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never appears in debug output.
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// Returns rustls's `ring` crypto provider, the one that blit builds with.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTls {
    /// Reads and checks the files that `config` names.
    ///
    /// # Errors
    ///
    /// Returns an error naming the file and its `[daemon.tls]` key when a
    /// file cannot be read or contains no PEM certificate or key, or when
    /// the key does not match the first certificate.
    pub(crate) fn load(config: &TlsConfig) -> Result<ServerTls> {
        let cert_pem = read_pem_file(&config.cert, "cert")?;
        let key_pem = read_pem_file(&config.key, "key")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| invalid_file(&config.cert, "cert", &err.to_string()))?;
        if chain.is_empty() {
            return Err(invalid_file(
                &config.cert,
                "cert",
                "it contains no PEM CERTIFICATE block",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            invalid_file(
                &config.key,
                "key",
                &format!("it contains no usable PEM private key ({err})"),
            )
        })?;

        // tonic builds the control plane's rustls config with the process's
        // default provider; installing ring here keeps that choice explicit.
        // An error only means that a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut data_plane = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| tls_setup_error(&err))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "[daemon.tls] cert {} and key {} cannot be used together: {err}; give \
                         the key that belongs to the first certificate of the chain",
                        config.cert.display(),
                        config.key.display()
                    ),
                )
            })?;
        // TLS 1.3 session tickets would be the only bytes that the daemon
        // writes before it has read the client's data-plane token, and data
        // connections never resume a session.
        data_plane.send_tls13_tickets = 0;
        data_plane.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});

        Ok(ServerTls {
            cert_pem,
            key_pem,
            data_plane: Arc::new(data_plane),
        })
    }

    /// Returns the control plane's TLS config for tonic's server.
    pub(crate) fn control_plane(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(CONTROL_HANDSHAKE_TIMEOUT)
    }

    /// Returns the acceptor for data-plane connections.
    pub(crate) fn data_plane(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.data_plane))
    }
}

fn read_pem_file(path: &Path, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| {
        let message = format!(
            "cannot read [daemon.tls] {key} {}: {err}; check the path in the config",
            path.display()
        );
        Error::new(ErrorKind::from_io(&err), message).with_path(path)
    })
}

fn invalid_file(path: &Path, key: &str, reason: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "[daemon.tls] {key} {} is invalid: {reason}; `blitd tls self-signed` writes a \
             working pair",
            path.display()
        ),
    )
    .with_path(path)
}

fn tls_setup_error(err: &rustls::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("cannot set up TLS: {err}"))
}
