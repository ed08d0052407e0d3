//! TLS for `blits://` addresses: the trust roots (the system's, plus an
//! optional CA file), the rustls configs of both planes, and errors that
//! explain a failed handshake and name the fix.

use std::path::Path;
use std::sync::{Arc, Mutex};

use blit_core::{Error, ErrorKind, RemoteAddress, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// ALPN protocol of gRPC over TLS.
const ALPN_H2: &[u8] = b"h2";

/// The client's TLS settings for one daemon.
#[derive(Debug)]
pub(crate) struct ClientTls {
    /// Config of the control plane, which negotiates HTTP/2 by ALPN.
    pub(crate) control: Arc<ClientConfig>,
    /// Config of data connections, which carry blit's frames and no ALPN.
    pub(crate) data: Arc<ClientConfig>,
    /// The name that the daemon's certificate must be valid for: the
    /// address's host, a DNS name or an IP address.
    pub(crate) server_name: ServerName<'static>,
}

impl ClientTls {
    /// Builds the configs for `address`, trusting the system's CA
    /// certificates and those in the PEM file `ca_file`.
    ///
    /// # Errors
    ///
    /// Returns an error naming `ca_file` when it cannot be read or contains
    /// no valid certificate, [`ErrorKind::Network`] (as for a certificate that
    /// fails verification) when no trusted certificate is left at all, and
    /// [`ErrorKind::InvalidArgument`] when the host cannot be a TLS server
    /// name.
    pub(crate) fn new(address: &RemoteAddress, ca_file: Option<&Path>) -> Result<ClientTls> {
        let mut roots = RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        if !system.errors.is_empty() {
            tracing::debug!(errors = ?system.errors, "some system CA certificates could not be loaded");
        }
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path)?;
        }
        if roots.is_empty() {
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "cannot verify blitd at {}: the system has no trusted CA certificates; pass \
                     the CA certificate of blitd with --tls-ca FILE (tls_ca= in Python)",
                    host_port(address)
                ),
            ));
        }
        let server_name = ServerName::try_from(address.host.clone()).map_err(|err| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{address}: the host {:?} cannot be checked against a TLS certificate: {err}",
                    address.host
                ),
            )
        })?;

        let data =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|err| {
                    Error::new(ErrorKind::Internal, format!("cannot set up TLS: {err}"))
                })?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut control = data.clone();
        control.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(ClientTls {
            control: Arc::new(control),
            data: Arc::new(data),
            server_name,
        })
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let invalid = |reason: String| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the CA file {} is invalid: {reason}; give the PEM file of the CA that signed \
                 the certificate of blitd (ca.pem of `blitd tls self-signed`)",
                path.display()
            ),
        )
        .with_path(path)
    };
    let pem = std::fs::read(path).map_err(|err| Error::io("cannot read the CA file", path, err))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| invalid(err.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("it contains no PEM CERTIFICATE block".to_string()));
    }
    for cert in certs {
        roots.add(cert).map_err(|err| invalid(err.to_string()))?;
    }
    Ok(())
}

/// Returns `HOST:PORT` of `address`, with an IPv6 host in brackets.
pub(crate) fn host_port(address: &RemoteAddress) -> String {
    if address.host.contains(':') {
        format!("[{}]:{}", address.host, address.port)
    } else {
        format!("{}:{}", address.host, address.port)
    }
}

/// Returns `address` with the other scheme, for messages that suggest it.
fn with_tls(address: &RemoteAddress, tls: bool) -> String {
    let mut other = address.clone();
    other.tls = tls;
    other.to_string()
}

/// The reason that connections to the daemon fail, when the transport's own
/// error would not tell the user what to do: a TLS mismatch or a
/// certificate that cannot be verified. Shared by the connector, which
/// records it, and the client, which reports it in place of the transport
/// error.
#[derive(Debug, Default)]
pub(crate) struct ConnectFailure {
    recorded: Mutex<Option<(ErrorKind, String)>>,
}

impl ConnectFailure {
    pub(crate) fn record(&self, error: &Error) {
        *self.lock() = Some((error.kind(), error.message().to_string()));
    }

    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    /// Returns the recorded failure as an error, if there is one.
    pub(crate) fn error(&self) -> Option<Error> {
        self.lock()
            .as_ref()
            .map(|(kind, message)| Error::new(*kind, message.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(ErrorKind, String)>> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Returns the error for a plain (`blit://`) connection whose peer replied
/// with TLS.
pub(crate) fn tls_required(address: &RemoteAddress) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "blitd at {} requires TLS; use {}",
            host_port(address),
            with_tls(address, true)
        ),
    )
}

/// Returns whether `first_byte`, the first byte that a daemon sent on a
/// plain connection, starts a TLS record (an alert or a handshake message).
/// A plain daemon sends an HTTP/2 SETTINGS frame first, whose first byte is
/// the high byte of its 24-bit length and therefore 0.
pub(crate) fn starts_tls_record(first_byte: u8) -> bool {
    const ALERT: u8 = 21;
    const HANDSHAKE: u8 = 22;
    matches!(first_byte, ALERT | HANDSHAKE)
}

/// Converts a failed TLS handshake with the daemon into an error that names
/// the fix, such as passing `--tls-ca` or using `blit://`.
pub(crate) fn handshake_error(address: &RemoteAddress, err: &std::io::Error) -> Error {
    let target = host_port(address);
    let Some(tls_error) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return Error::new(
            ErrorKind::Network,
            format!("the TLS handshake with blitd at {target} failed: {err}"),
        );
    };
    match tls_error {
        rustls::Error::InvalidCertificate(cert_error) => certificate_error(address, cert_error),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "blitd at {target} does not serve TLS (its reply is not TLS); use {}, or add \
                     [daemon.tls] to the config of blitd",
                    with_tls(address, false)
                ),
            )
        }
        other => Error::new(
            ErrorKind::Network,
            format!("the TLS handshake with blitd at {target} failed: {other}"),
        ),
    }
}

fn certificate_error(address: &RemoteAddress, err: &CertificateError) -> Error {
    let target = host_port(address);
    let advice = match err {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "connect with a name that the certificate is valid for, or create one for {} \
                 (`blitd tls self-signed --host {}`)",
                address.host, address.host
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "check the clocks of both machines, or give blitd a certificate that is valid now"
                .to_string()
        }
        _ => "if blitd uses a certificate from its own CA (such as one from `blitd tls \
              self-signed`), pass that CA's certificate with --tls-ca FILE (tls_ca= in Python)"
            .to_string(),
    };
    Error::new(
        ErrorKind::Network,
        format!("cannot verify the TLS certificate of blitd at {target}: {err}; {advice}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_record_bytes_recognized() {
        assert!(starts_tls_record(21));
        assert!(starts_tls_record(22));
        assert!(!starts_tls_record(0));
    }
}
