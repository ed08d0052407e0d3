//! The process signals that ask the daemon to shut down.

use blit_core::Result;

/// Handlers for SIGTERM and SIGINT, installed before the server starts so
/// that a signal arriving during startup is not lost.
pub struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers; must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns [`blit_core::ErrorKind::Internal`] if a handler cannot be installed.
    pub fn install() -> Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use blit_core::{Error, ErrorKind};
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|err| {
                    Error::new(
                        ErrorKind::Internal,
                        format!("cannot install the {name} handler: {err}"),
                    )
                })
            };
            Ok(ShutdownSignals {
                terminate: install(SignalKind::terminate(), "SIGTERM")?,
                interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignals {})
        }
    }

    /// Waits for the next shutdown signal and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(err) => {
                    tracing::error!(error = %err, "cannot wait for Ctrl-C; serving until killed");
                    std::future::pending().await
                }
            }
        }
    }
}
