//! State that every RPC handler of a running daemon shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blit_core::{Error, ErrorKind, Result};
use blit_proto::v2::ModuleInfo;

use crate::auth::Authenticator;
use crate::config::{Config, ModuleConfig};
use crate::grants::GrantRegistry;
use crate::hosts;
use crate::limits::{ConnectionLimits, ConnectionSlot};
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
    limits: Arc<ConnectionLimits>,
}

impl DaemonState {
    pub(crate) fn new(
        config: Config,
        control_addr: SocketAddr,
        data_addr: SocketAddr,
        sessions: Arc<SessionTracker>,
        auth: Arc<Authenticator>,
    ) -> DaemonState {
        let limits = ConnectionLimits::new(&config);
        DaemonState {
            config,
            control_addr,
            data_addr,
            started: Instant::now(),
            grants: GrantRegistry::new(),
            sessions,
            auth,
            limits,
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

    /// Returns the module with this name after checking its `hosts_allow`
    /// and `hosts_deny` rules against the peer's address.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::NotFound`] as [`DaemonState::module`] does, and
    /// [`ErrorKind::PermissionDenied`] naming the module and the peer's
    /// address when the rules reject the peer, or when the module has rules
    /// and the peer's address is unknown.
    pub fn module_for_peer(&self, name: &str, peer: Option<SocketAddr>) -> Result<&ModuleConfig> {
        let module = self.module(name)?;
        if !module.has_host_rules() {
            return Ok(module);
        }
        let Some(peer) = peer else {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "module {name:?} admits peers by address (hosts_allow, hosts_deny), and the \
                     address of this connection is unknown"
                ),
            ));
        };
        if module.admits(peer.ip()) {
            return Ok(module);
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "module {name:?} does not admit peer {}: its hosts_allow and hosts_deny rules \
                 in the daemon's config reject that address",
                hosts::canonical(peer.ip())
            ),
        ))
    }

    /// Returns whether a module appears in the module list for this peer:
    /// the peer passes its host rules, and the module has `list = true`
    /// unless `show_unlisted` (for admin tokens).
    pub(crate) fn is_listed_for(
        &self,
        module: &ModuleConfig,
        peer: Option<SocketAddr>,
        show_unlisted: bool,
    ) -> bool {
        let admitted =
            !module.has_host_rules() || peer.is_some_and(|peer| module.admits(peer.ip()));
        admitted && (module.list || show_unlisted)
    }

    /// Returns the `ModuleInfo` of every module, in config order.
    pub fn module_infos(&self) -> Vec<ModuleInfo> {
        self.config.modules.iter().map(module_info).collect()
    }

    /// Takes a slot for one operation in `module`, which the operation keeps
    /// until it ends.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::ResourceExhausted`] naming the limit when the
    /// daemon or the module runs its `max_connections` operations already.
    pub(crate) fn acquire_slot(&self, module: &ModuleConfig) -> Result<ConnectionSlot> {
        let index = self
            .config
            .modules
            .iter()
            .position(|candidate| candidate.name == module.name)
            .expect("modules come from this daemon's config");
        self.limits.acquire(index, &module.name)
    }

    /// Returns the counters of the `max_connections` limits.
    pub(crate) fn limits(&self) -> &Arc<ConnectionLimits> {
        &self.limits
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

/// Returns the `ModuleInfo` of a module, as the module list shows it.
pub(crate) fn module_info(module: &ModuleConfig) -> ModuleInfo {
    ModuleInfo {
        name: module.name.clone(),
        comment: module.comment.clone(),
        read_only: module.read_only,
    }
}
