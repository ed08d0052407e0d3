//! The data-plane listener: accepts TCP connections, reads each one's
//! token and hands the connection to the session that the token belongs to.
//!
//! Nothing is written to a connection before its token is accepted. A
//! connection whose token is unknown, used, expired or late is closed and
//! logged with its peer address and, when known, its session id, never with
//! the token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::grants::{DataConnection, DataToken, GrantRegistry, RejectReason, TOKEN_LEN};

/// Maximum connections that may wait for their token at once. Further
/// connections stay in the kernel's accept queue until a slot frees, so a
/// flood of idle connections costs at most this many tasks.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Pause after a failed `accept`, such as when the process is out of file
/// descriptors, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Runs the accept loop until `stop` is cancelled, then closes the listener.
/// Connections that are still presenting their token finish on their own.
pub(crate) async fn serve(
    listener: TcpListener,
    registry: Arc<GrantRegistry>,
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
        tokio::spawn(async move {
            admit(stream, peer, &registry, token_timeout, &rejections).await;
            drop(permit);
        });
    }
}

/// Reads the connection's token and delivers the connection to its session,
/// or drops (closes) it.
async fn admit(
    mut stream: TcpStream,
    peer: SocketAddr,
    registry: &GrantRegistry,
    token_timeout: Duration,
    rejections: &RejectionLog,
) {
    let mut token: DataToken = [0; TOKEN_LEN];
    match tokio::time::timeout(token_timeout, stream.read_exact(&mut token)).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            rejections.log(peer, None, &format!("failed to read its token: {err}"));
            return;
        }
        Err(_) => {
            let reason = format!("no complete token within {} s", token_timeout.as_secs_f64());
            rejections.log(peer, None, &reason);
            return;
        }
    }

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
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%peer, error = %err, "data plane: cannot set TCP_NODELAY");
    }
    let session_id = Arc::clone(&redemption.session_id);
    match redemption.deliver(DataConnection { stream, peer }) {
        Ok(()) => debug!(%peer, session = %session_id, "data plane: connection admitted"),
        Err(_closed) => {
            rejections.log(peer, Some(&session_id), RejectReason::SessionEnded.as_str())
        }
    }
}

/// Logs rejected connections, at most [`RejectionLog::MAX_LINES`] lines per
/// [`RejectionLog::WINDOW`]; the next line logged after a quiet spell
/// carries the number left out.
struct RejectionLog {
    state: Mutex<RejectionWindow>,
}

struct RejectionWindow {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl RejectionLog {
    const MAX_LINES: u32 = 20;
    const WINDOW: Duration = Duration::from_secs(10);

    fn new() -> RejectionLog {
        RejectionLog {
            state: Mutex::new(RejectionWindow {
                started: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    fn log(&self, peer: SocketAddr, session_id: Option<&str>, reason: &str) {
        let suppressed = {
            let mut window = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            if now.duration_since(window.started) >= Self::WINDOW {
                window.started = now;
                window.logged = 0;
            }
            if window.logged >= Self::MAX_LINES {
                window.suppressed += 1;
                return;
            }
            window.logged += 1;
            std::mem::take(&mut window.suppressed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_log_limits_lines() {
        let log = RejectionLog::new();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..RejectionLog::MAX_LINES + 5 {
            log.log(peer, None, "unknown token");
        }
        let window = log.state.lock().unwrap();
        assert_eq!(window.logged, RejectionLog::MAX_LINES);
        assert_eq!(window.suppressed, 5);
    }
}
