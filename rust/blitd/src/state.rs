//! State that every RPC handler of a running daemon shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blit_core::{Error, ErrorKind, Result};
use blit_proto::v2::ModuleInfo;

use crate::auth::Authenticator;
use crate::config::{Config, ModuleConfig};
use crate::grants::GrantRegistry;
use crate::sessions::{SessionGuard, SessionTracker};

/// The configuration, session tracker and grant registry of a running
/// daemon. Handlers reach it through [`crate::Server::state`] or the
/// service that the server builds.
#[derive(Debug)]
pub struct DaemonState {
    config: Config,
    control_addr: SocketAddr,
    data_addr: SocketAddr,
    started: Instant,
    grants: Arc<GrantRegistry>,
    sessions: Arc<SessionTracker>,
    auth: Arc<Authenticator>,
}

impl DaemonState {
    pub(crate) fn new(
        config: Config,
        control_addr: SocketAddr,
        data_addr: SocketAddr,
        sessions: Arc<SessionTracker>,
        auth: Arc<Authenticator>,
    ) -> DaemonState {
        DaemonState {
            config,
            control_addr,
            data_addr,
            started: Instant::now(),
            grants: GrantRegistry::new(),
            sessions,
            auth,
        }
    }

    /// Returns the configuration that the daemon serves.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the module with this name.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::NotFound`] naming the module when no module has
    /// that name.
    pub fn module(&self, name: &str) -> Result<&ModuleConfig> {
        self.config.module(name).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "module {name:?} not found on this daemon; list the daemon's address \
                     (blit://HOST/) to see its modules"
                ),
            )
        })
    }

    /// Returns the `ModuleInfo` of every module, in config order.
    pub fn module_infos(&self) -> Vec<ModuleInfo> {
        self.config
            .modules
            .iter()
            .map(|module| ModuleInfo {
                name: module.name.clone(),
                comment: module.comment.clone(),
                read_only: module.read_only,
            })
            .collect()
    }

    /// Returns the bound address of the gRPC control plane.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// Returns the bound address of the data plane; its port goes into
    /// `DataGrant.data_port`.
    pub fn data_addr(&self) -> SocketAddr {
        self.data_addr
    }

    /// Returns the time since the server started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Returns the authenticator that checks each request's token.
    pub fn auth(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// Returns the registry of data-plane tokens.
    pub fn grants(&self) -> &Arc<GrantRegistry> {
        &self.grants
    }

    /// Starts a session that the Status RPC counts until the guard drops.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Network`] (gRPC UNAVAILABLE) once shutdown has
    /// begun, and [`ErrorKind::Internal`] if the OS random source fails.
    pub fn begin_session(&self) -> Result<SessionGuard> {
        self.sessions.begin()
    }

    /// Returns the number of running sessions.
    pub fn active_sessions(&self) -> usize {
        self.sessions.active()
    }

    /// Returns whether shutdown has begun, after which new sessions are
    /// rejected.
    pub fn is_shutting_down(&self) -> bool {
        self.sessions.is_draining()
    }
}
