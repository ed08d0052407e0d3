//! The control plane's connector for tonic: opens the TCP connection and,
//! for `blits://`, runs the TLS handshake itself, so that the client builds
//! its own rustls config and explains failed handshakes. A plain connection
//! watches the daemon's first byte to tell a daemon that requires TLS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use blit_core::{Error, ErrorKind, RemoteAddress};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tonic::codegen::http::Uri;

use crate::tls::{ClientTls, ConnectFailure, handshake_error, starts_tls_record, tls_required};
use crate::{CONNECT_TIMEOUT, source_chain};

/// A control-plane connection: plain TCP or TLS over TCP.
pub(crate) type ControlStream =
    TokioIo<Either<PlainStream, tokio_rustls::client::TlsStream<TcpStream>>>;

/// Connects to one daemon; tonic calls it for the first connection and for
/// each reconnection.
#[derive(Clone)]
pub(crate) struct Connector {
    address: RemoteAddress,
    tls: Option<Arc<ClientTls>>,
    failure: Arc<ConnectFailure>,
}

impl Connector {
    pub(crate) fn new(
        address: RemoteAddress,
        tls: Option<Arc<ClientTls>>,
        failure: Arc<ConnectFailure>,
    ) -> Connector {
        Connector {
            address,
            tls,
            failure,
        }
    }

    async fn connect(self) -> io::Result<ControlStream> {
        let target = (self.address.host.as_str(), self.address.port);
        let stream = TcpStream::connect(target).await?;
        // gRPC messages are small and latency-bound.
        stream.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(TokioIo::new(Either::Left(PlainStream {
                inner: stream,
                first_byte_checked: false,
                address: self.address.clone(),
                failure: Arc::clone(&self.failure),
            })));
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.control));
        let handshake = connector.connect(tls.server_name.clone(), stream);
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => {
                self.failure.clear();
                Ok(TokioIo::new(Either::Right(stream)))
            }
            Ok(Err(err)) => {
                let error = handshake_error(&self.address, &err);
                self.failure.record(&error);
                Err(io::Error::other(error.message().to_string()))
            }
            Err(_elapsed) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the TLS handshake took longer than {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = ControlStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<ControlStream>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Connects to the connector's own address; tonic's URI names the
    /// same host and port.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect())
    }
}

/// A plain control-plane connection that fails with [`tls_required`] when
/// the daemon's first byte starts a TLS record. A daemon that serves TLS
/// replies to the HTTP/2 preface with a TLS alert.
pub(crate) struct PlainStream {
    inner: TcpStream,
    first_byte_checked: bool,
    address: RemoteAddress,
    failure: Arc<ConnectFailure>,
}

impl PlainStream {
    /// Checks the daemon's first byte: returns the [`tls_required`] error,
    /// recorded for the client, when it starts a TLS record.
    fn check_first_byte(&mut self, first_byte: u8) -> Option<io::Error> {
        self.first_byte_checked = true;
        if !starts_tls_record(first_byte) {
            self.failure.clear();
            return None;
        }
        let error = tls_required(&self.address);
        self.failure.record(&error);
        Some(io::Error::new(
            io::ErrorKind::InvalidData,
            error.message().to_string(),
        ))
    }

    /// Replaces a write error with the [`tls_required`] error when the
    /// daemon's unread reply starts a TLS record. A daemon that serves TLS
    /// closes the connection after its alert, so a write may fail (with
    /// EPIPE) before the alert has been read.
    fn explain_write_error(&mut self, err: io::Error) -> io::Error {
        if self.first_byte_checked {
            return err;
        }
        let mut first = [0u8; 1];
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        match rustix::net::recv(&self.inner, &mut first, flags) {
            Ok((1, _)) => self.check_first_byte(first[0]).unwrap_or(err),
            _ => err,
        }
    }
}

impl AsyncRead for PlainStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(context, buffer);
        if this.first_byte_checked || !matches!(result, Poll::Ready(Ok(()))) {
            return result;
        }
        let Some(&first_byte) = buffer.filled().get(before) else {
            // End of stream before any byte.
            return result;
        };
        match this.check_first_byte(first_byte) {
            Some(err) => Poll::Ready(Err(err)),
            None => result,
        }
    }
}

impl AsyncWrite for PlainStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(context, bytes) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(this.explain_write_error(err))),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(context, buffers) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(this.explain_write_error(err))),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(context) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(this.explain_write_error(err))),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

/// Returns the error for a failed connection: the recorded TLS failure if
/// there is one, else the transport error with its sources.
pub(crate) fn connect_error(
    address: &RemoteAddress,
    failure: &ConnectFailure,
    err: &dyn std::error::Error,
) -> Error {
    failure.error().unwrap_or_else(|| {
        Error::new(
            ErrorKind::Network,
            format!(
                "cannot reach blitd at {}: {}; check that it runs and listens there",
                crate::tls::host_port(address),
                source_chain(err)
            ),
        )
    })
}
