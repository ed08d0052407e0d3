//! The data-plane listener: accepts TCP connections, reads each one's
//! token and hands the connection to the session that the token belongs to.
//!
//! When the daemon serves TLS, the TLS handshake comes first and the token
//! travels inside TLS. Before a connection's token is accepted, the daemon
//! writes nothing but its part of the TLS handshake, which ends with a TLS
//! alert when the handshake fails. A connection whose handshake fails, or
//! whose token is unknown, used, expired or late, is closed and logged with
//! its peer address and, when known, its session id, never with the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::grants::{
    DataConnection, DataStream, DataToken, GrantRegistry, RejectReason, TOKEN_LEN,
};
use crate::log_limit::LogLimiter;

/// Maximum connections that may wait for their token at once. Further
/// connections stay in the kernel's accept queue until a slot frees, so a
/// flood of idle connections costs at most this many tasks.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Pause after a failed `accept`, such as when the process is out of file
/// descriptors, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Runs the accept loop until `stop` is cancelled, then closes the listener.
/// Connections that are still presenting their token finish on their own.
/// With `tls`, every connection must complete a TLS handshake before its
/// token, and both must arrive within `token_timeout`.
pub(crate) async fn serve(
    listener: TcpListener,
    registry: Arc<GrantRegistry>,
    tls: Option<TlsAcceptor>,
    token_timeout: Duration,
    stop: CancellationToken,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let rejections = Arc::new(RejectionLog::new());
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = Arc::clone(&pending).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                error!(error = %err, "data plane: accepting a connection failed; retrying");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let registry = Arc::clone(&registry);
        let rejections = Arc::clone(&rejections);
        let tls = tls.clone();
        tokio::spawn(async move {
            admit(stream, peer, &registry, tls, token_timeout, &rejections).await;
            drop(permit);
        });
    }
}

/// Reads the connection's token and delivers the connection to its session,
/// or drops (closes) it.
async fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    registry: &GrantRegistry,
    tls: Option<TlsAcceptor>,
    token_timeout: Duration,
    rejections: &RejectionLog,
) {
    // Set before the TLS handshake, whose round trips it shortens.
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%peer, error = %err, "data plane: cannot set TCP_NODELAY");
    }
    let uses_tls = tls.is_some();
    let (stream, token) = match tokio::time::timeout(token_timeout, open(stream, tls)).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(reason)) => {
            rejections.log(peer, None, &reason);
            return;
        }
        Err(_) => {
            let expected = if uses_tls {
                "no TLS handshake and complete token"
            } else {
                "no complete token"
            };
            let reason = format!("{expected} within {} s", token_timeout.as_secs_f64());
            rejections.log(peer, None, &reason);
            return;
        }
    };

    let redemption = match registry.redeem(&token) {
        Ok(redemption) => redemption,
        Err(rejection) => {
            rejections.log(
                peer,
                rejection.session_id.as_deref(),
                rejection.reason.as_str(),
            );
            return;
        }
    };
    let session_id = Arc::clone(&redemption.session_id);
    match redemption.deliver(DataConnection { stream, peer }) {
        Ok(()) => debug!(%peer, session = %session_id, "data plane: connection admitted"),
        Err(_closed) => {
            rejections.log(peer, Some(&session_id), RejectReason::SessionEnded.as_str())
        }
    }
}

/// Completes the TLS handshake when `tls` is given, then reads the token.
/// Returns the reason for rejecting the connection on failure.
async fn open(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
) -> std::result::Result<(DataStream, DataToken), String> {
    let mut stream = match tls {
        None => DataStream::Plain(stream),
        Some(acceptor) => {
            let stream = acceptor
                .accept(stream)
                .await
                .map_err(|err| format!("TLS handshake failed: {err}"))?;
            DataStream::Tls(Box::new(stream))
        }
    };
    let mut token: DataToken = [0; TOKEN_LEN];
    stream
        .read_exact(&mut token)
        .await
        .map_err(|err| format!("failed to read its token: {err}"))?;
    Ok((stream, token))
}

/// Logs rejected connections, rate-limited by [`LogLimiter`]; the next line
/// logged after a flood carries the number left out.
struct RejectionLog {
    limiter: LogLimiter,
}

impl RejectionLog {
    fn new() -> RejectionLog {
        RejectionLog {
            limiter: LogLimiter::new(),
        }
    }

    fn log(&self, peer: SocketAddr, session_id: Option<&str>, reason: &str) {
        let Some(suppressed) = self.limiter.admit() else {
            return;
        };
        let session = session_id.unwrap_or("-");
        if suppressed > 0 {
            warn!(
                %peer,
                session,
                reason,
                suppressed,
                "data plane: connection rejected and closed ({suppressed} earlier rejections \
                 were not logged)"
            );
        } else {
            warn!(%peer, session, reason, "data plane: connection rejected and closed");
        }
    }
}
