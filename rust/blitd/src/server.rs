//! The running daemon: the gRPC control plane and the TCP data plane on
//! bound listeners, and their graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blit_core::{Error, ErrorKind, Result};
use blit_proto::v2::blit_server::BlitServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{error, info, warn};

use crate::auth::Authenticator;
use crate::config::{AuthMode, Config};
use crate::data_plane;
use crate::service::BlitService;
use crate::sessions::SessionTracker;
use crate::state::DaemonState;
use crate::tls::ServerTls;

/// Time that running sessions get to finish after a shutdown request.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Time that a data-plane connection gets to send its token.
pub const DEFAULT_DATA_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` on the control plane, such as when the
/// process is out of file descriptors, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Settings of a server that do not come from the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Time that running sessions get to finish after shutdown begins; the
    /// sessions still running then are cancelled.
    pub shutdown_timeout: Duration,
    /// Time that a data-plane connection gets to send its token before it
    /// is closed.
    pub data_token_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            data_token_timeout: DEFAULT_DATA_TOKEN_TIMEOUT,
        }
    }
}

/// Result of a shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every RPC and session finished within the shutdown timeout.
    Drained,
    /// These sessions were still running at the timeout and were cancelled.
    SessionsCancelled(Vec<String>),
}

/// Largest gRPC message accepted or sent, in bytes. Clients keep manifest
/// batches near 1 MiB; the margin covers batches of long paths.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Checks what [`Config::load`] leaves to the server: that the
/// `[daemon.tls]` certificate chain and key, when configured, can be read
/// and belong together.
///
/// # Errors
///
/// Returns an error naming the file and its `[daemon.tls]` key:
/// [`ErrorKind::NotFound`] or [`ErrorKind::PermissionDenied`] for a file
/// that cannot be read, [`ErrorKind::InvalidArgument`] for invalid PEM or a
/// key that does not match the certificate.
pub fn check_servable(config: &Config) -> Result<()> {
    load_tls(config).map(|_| ())
}

fn load_tls(config: &Config) -> Result<Option<ServerTls>> {
    config.daemon.tls.as_ref().map(ServerTls::load).transpose()
}

/// A daemon serving on bound listeners.
///
/// Tests start one on `127.0.0.1:0` with a data port of 0 and read the bound
/// addresses from [`Server::control_addr`] and [`Server::data_addr`].
#[derive(Debug)]
pub struct Server {
    state: Arc<DaemonState>,
    sessions: Arc<SessionTracker>,
    options: ServerOptions,
    /// Cancelled when shutdown begins: both accept loops stop and the
    /// control plane closes its connections once their RPCs finish.
    stop: CancellationToken,
    /// Cancels `stop` when the server is dropped without
    /// [`Server::shutdown`], so a dropped server stops accepting.
    _stop_on_drop: DropGuard,
    control_task: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    data_task: JoinHandle<()>,
}

impl Server {
    /// Binds the control plane on `listen_addr` and the data plane on
    /// `data_port` of the same IP address, then serves both on the current
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns the error of [`check_servable`], or an error naming the
    /// address when a listener cannot be bound.
    pub async fn start(config: Config, options: ServerOptions) -> Result<Server> {
        let tls = load_tls(&config)?;
        let auth = Authenticator::new(&config)?;
        let listen_addr = config.daemon.listen_addr;
        let control_listener = bind(listen_addr, "control plane", "listen_addr").await?;
        let data_bind_addr = SocketAddr::new(listen_addr.ip(), config.daemon.data_port);
        let data_listener = bind(data_bind_addr, "data plane", "data_port").await?;
        let control_addr = local_addr(&control_listener, listen_addr)?;
        let data_addr = local_addr(&data_listener, data_bind_addr)?;

        let sessions = SessionTracker::new();
        let state = Arc::new(DaemonState::new(
            config,
            control_addr,
            data_addr,
            Arc::clone(&sessions),
            Arc::clone(&auth),
        ));
        let stop = CancellationToken::new();
        tokio::spawn(crate::auth::watch(Arc::clone(state.auth()), stop.clone()));
        let data_task = tokio::spawn(data_plane::serve(
            data_listener,
            Arc::clone(state.grants()),
            tls.as_ref().map(ServerTls::data_plane),
            options.data_token_timeout,
            stop.clone(),
        ));
        let control = tonic::transport::Server::builder();
        let control = match &tls {
            Some(tls) => control.tls_config(tls.control_plane()).map_err(|err| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("cannot use the [daemon.tls] certificate and key: {err}"),
                )
            })?,
            None => control,
        };
        let control_task = tokio::spawn(serve_control(
            control,
            control_listener,
            BlitService::new(Arc::clone(&state)),
            stop.clone(),
        ));
        log_start(&state);
        Ok(Server {
            state,
            sessions,
            options,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            control_task,
            data_task,
        })
    }

    /// Returns the bound address of the gRPC control plane.
    pub fn control_addr(&self) -> SocketAddr {
        self.state.control_addr()
    }

    /// Returns the bound address of the data plane.
    pub fn data_addr(&self) -> SocketAddr {
        self.state.data_addr()
    }

    /// Returns the state that the RPC handlers share.
    pub fn state(&self) -> &Arc<DaemonState> {
        &self.state
    }

    /// Serves until `signal` completes, then shuts down as
    /// [`Server::shutdown`] does.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Network`] if the control plane fails before the
    /// signal.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<ShutdownOutcome> {
        tokio::select! {
            () = signal => Ok(self.shutdown().await),
            result = &mut self.control_task => {
                self.stop.cancel();
                let message = match result {
                    Ok(Ok(())) => "the control plane stopped unexpectedly".to_string(),
                    Ok(Err(err)) => format!("the control plane failed: {err}"),
                    Err(err) => format!("the control plane task failed: {err}"),
                };
                error!("{message}");
                Err(Error::new(ErrorKind::Network, format!("{message}; restart blitd")))
            }
        }
    }

    /// Stops accepting RPCs and data connections, waits up to the shutdown
    /// timeout for running RPCs and sessions to finish, and cancels those
    /// still running then.
    ///
    /// NOTE: after the timeout the control plane's accept loop is aborted.
    /// A cancelled handler still runs until it checks its cancellation, or
    /// until the runtime stops when the process exits.
    pub async fn shutdown(self) -> ShutdownOutcome {
        let Server {
            state,
            sessions,
            options,
            stop,
            _stop_on_drop,
            mut control_task,
            data_task,
        } = self;
        let timeout = options.shutdown_timeout;
        info!(
            active_sessions = sessions.active(),
            timeout_seconds = timeout.as_secs_f64(),
            "blitd stopping: no longer accepting RPCs or data connections; waiting for running \
             sessions to finish"
        );
        sessions.start_draining();
        stop.cancel();

        let drained = tokio::time::timeout(timeout, async {
            let control = (&mut control_task).await;
            let data = data_task.await;
            sessions.wait_idle().await;
            (control, data)
        })
        .await;

        let outcome = match drained {
            Ok((control, data)) => {
                match control {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => error!(error = %err, "control plane failed while stopping"),
                    Err(err) => error!(error = %err, "control plane task failed while stopping"),
                }
                if let Err(err) = data {
                    error!(error = %err, "data plane task failed while stopping");
                }
                ShutdownOutcome::Drained
            }
            Err(_elapsed) => {
                let cancelled = sessions.cancel_all();
                control_task.abort();
                warn!(
                    timeout_seconds = timeout.as_secs_f64(),
                    sessions = ?cancelled,
                    "blitd cancelled {} sessions that were still running at the shutdown timeout",
                    cancelled.len()
                );
                ShutdownOutcome::SessionsCancelled(cancelled)
            }
        };
        info!(uptime_seconds = state.uptime().as_secs(), "blitd stopped");
        outcome
    }
}

async fn bind(addr: SocketAddr, plane: &str, key: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        Error::new(
            ErrorKind::from_io(&err),
            format!(
                "cannot listen on {addr} for the {plane}: {err}; stop the process that uses the \
                 port or change {key} in the config"
            ),
        )
    })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr> {
    listener.local_addr().map_err(|err| {
        Error::new(
            ErrorKind::Network,
            format!("cannot read the bound address of the listener on {requested}: {err}"),
        )
    })
}

/// Serves the gRPC service on `listener` until `stop` is cancelled and every
/// open connection has finished its RPCs. When `builder` has a TLS config,
/// tonic runs the TLS handshake on each accepted connection (tonic 0.14
/// applies it to a custom incoming stream as well).
///
/// NOTE: tonic 0.14.5 logs a failed TLS handshake only at debug level, as
/// "tls accept error" with target `tonic::transport::server::io_stream`.
async fn serve_control(
    mut builder: tonic::transport::Server,
    listener: TcpListener,
    service: BlitService,
    stop: CancellationToken,
) -> std::result::Result<(), tonic::transport::Error> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(accept_control(listener, sender, stop.clone()));
    builder
        .add_service(
            BlitServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .serve_with_incoming_shutdown(ReceiverStream::new(receiver), stop.cancelled_owned())
        .await
}

/// Accepts control-plane connections until `stop` is cancelled, then closes
/// the listener. The accept loop of tonic 0.14.5 retries a failed `accept`
/// at once, which spins when the process is out of file descriptors, so this loop
/// pauses and logs instead.
async fn accept_control(
    listener: TcpListener,
    connections: mpsc::Sender<std::io::Result<TcpStream>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                // gRPC messages are small and latency-bound.
                if let Err(err) = stream.set_nodelay(true) {
                    warn!(error = %err, "control plane: cannot set TCP_NODELAY");
                }
                if connections.send(Ok(stream)).await.is_err() {
                    break;
                }
            }
            Err(err) => {
                error!(error = %err, "control plane: accepting a connection failed; retrying");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

fn log_start(state: &DaemonState) {
    let config = state.config();
    info!(
        version = blit_core::VERSION,
        control = %state.control_addr(),
        data = %state.data_addr(),
        tls = config.daemon.tls.is_some(),
        modules = config.modules.len(),
        "blitd started"
    );
    for module in &config.modules {
        info!(
            module = %module.name,
            path = ?module.path,
            read_only = module.read_only,
            "serving module"
        );
    }
    if config.modules.is_empty() {
        warn!("no modules configured; add [[modules]] entries to the config to serve directories");
    }
    if config.daemon.tls.is_none() && !state.control_addr().ip().is_loopback() {
        warn!(
            "TLS is off on a non-loopback address: tokens and file contents cross the network \
             unencrypted; add [daemon.tls] to the config (`blitd tls self-signed` writes a \
             certificate)"
        );
    }
    if config.daemon.auth == AuthMode::None {
        warn!(
            "authentication is off (auth = \"none\"): every local user and process can read and \
             change every module that is not read-only"
        );
    }
}
