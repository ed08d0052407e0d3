//! Authentication and authorization of RPCs.
//!
//! With `auth = "token"`, every RPC must carry `authorization: Bearer
//! TOKEN`. A missing, unknown, revoked or expired token gets the same
//! UNAUTHENTICATED message, so a caller cannot tell which it was. A valid
//! token outside its modules or without the permission gets
//! PERMISSION_DENIED naming the module and the permission. The token store
//! is reloaded when its file changes, so created and revoked tokens take
//! effect without a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use blit_core::{Error, ErrorKind, Result};
use tonic::Status;

use crate::config::{AuthMode, Config};
use crate::log_limit::{LogLimiter, PeerAddr};
use crate::tokens::{Permission, TokenRecord, TokenStore, unix_now};

/// How often the daemon checks the token store for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The message of every authentication failure.
const UNAUTHENTICATED: &str = "missing, unknown, revoked or expired token; supply a valid token \
                               with --token-file PATH (token= in Python) or the BLIT_TOKEN \
                               environment variable";

/// The caller of a request.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Any caller of a daemon with `auth = "none"`: every permission.
    Anonymous,
    /// A caller that presented a valid token.
    Token(TokenRecord),
}

impl Identity {
    /// Returns the token name for logs, or `-` without authentication.
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "-",
            Identity::Token(record) => &record.name,
        }
    }

    /// Returns whether the caller has `permission` in `module`. Admin
    /// grants daemon-wide operations only, not access to module content.
    pub fn may(&self, module: &str, permission: Permission) -> bool {
        match self {
            Identity::Anonymous => true,
            Identity::Token(record) => {
                record.covers_module(module) && record.permissions.contains(&permission)
            }
        }
    }

    /// Returns whether the caller has the admin permission.
    pub fn is_admin(&self) -> bool {
        match self {
            Identity::Anonymous => true,
            Identity::Token(record) => record.permissions.contains(&Permission::Admin),
        }
    }

    /// Returns whether the caller presented a token with the admin
    /// permission. Unlike [`Identity::is_admin`], this is false without
    /// authentication, so `list = false` hides a module from everyone when
    /// `auth = "none"`.
    pub fn has_admin_token(&self) -> bool {
        match self {
            Identity::Anonymous => false,
            Identity::Token(record) => record.permissions.contains(&Permission::Admin),
        }
    }

    /// Checks a permission, returning PERMISSION_DENIED naming the module
    /// and the missing permission.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::PermissionDenied`].
    pub fn require(&self, module: &str, permission: Permission) -> Result<()> {
        if self.may(module, permission) {
            return Ok(());
        }
        let reason = match self {
            Identity::Token(record) if !record.covers_module(module) => {
                format!("token {:?} is not scoped to module {module}", record.name)
            }
            _ => format!(
                "token {:?} lacks the {permission} permission in module {module}",
                self.name()
            ),
        };
        Err(Error::new(ErrorKind::PermissionDenied, reason))
    }
}

/// The daemon's view of the token store.
pub struct Authenticator {
    mode: AuthMode,
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    denials: LogLimiter,
    reload_errors: LogLimiter,
}

struct Loaded {
    fingerprint: Option<(i64, i64, u64, u64)>,
    store: Arc<TokenStore>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Returns the modification time, size and inode of a file, which change
/// whenever `blitd token` replaces it.
fn fingerprint(path: &std::path::Path) -> Option<(i64, i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.mtime(), meta.mtime_nsec(), meta.size(), meta.ino()))
}

impl Authenticator {
    /// Loads the token store that the config names.
    ///
    /// # Errors
    ///
    /// Returns the store's error when it exists but cannot be read or
    /// parsed.
    pub fn new(config: &Config) -> Result<Arc<Authenticator>> {
        let path = match config.daemon.auth {
            AuthMode::None => None,
            AuthMode::Token => config.daemon.token_file.clone(),
        };
        let (fingerprint, store) = match &path {
            Some(path) => (fingerprint(path), TokenStore::load(path)?),
            None => (None, TokenStore::default()),
        };
        if let Some(path) = &path {
            if store.records().is_empty() {
                tracing::warn!(
                    token_file = %path.display(),
                    "the token store has no tokens, so every request is rejected; create one \
                     with 'blitd token create'"
                );
            }
        }
        Ok(Arc::new(Authenticator {
            mode: config.daemon.auth,
            path,
            loaded: RwLock::new(Loaded {
                fingerprint,
                store: Arc::new(store),
            }),
            denials: LogLimiter::new(),
            reload_errors: LogLimiter::new(),
        }))
    }

    /// Reloads the store if its file changed. A store that cannot be read
    /// keeps the previous tokens in force and is logged.
    pub fn reload_if_changed(&self) {
        let Some(path) = &self.path else {
            return;
        };
        let current = fingerprint(path);
        let unchanged = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .fingerprint
            == current;
        if unchanged {
            return;
        }
        match TokenStore::load(path) {
            Ok(store) => {
                tracing::info!(token_file = %path.display(), tokens = store.records().len(), "token store reloaded");
                let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
                loaded.fingerprint = current;
                loaded.store = Arc::new(store);
            }
            Err(err) => {
                // Fail closed: keeping the old tokens would keep a revoked
                // one working. The file is read again on the next check.
                let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
                // No fingerprint, so the next check retries even if only the
                // file's owner or mode gets fixed.
                loaded.fingerprint = None;
                loaded.store = Arc::new(TokenStore::default());
                drop(loaded);
                if self.reload_errors.admit().is_some() {
                    tracing::error!(
                        token_file = %path.display(),
                        error = %err,
                        "cannot reload the token store; rejecting every token until it can be \
                         read (check its owner and permissions)"
                    );
                }
            }
        }
    }

    /// Authenticates a request from its metadata.
    ///
    /// # Errors
    ///
    /// Returns UNAUTHENTICATED, with the same message for every reason.
    pub fn authenticate<T>(
        &self,
        request: &tonic::Request<T>,
        rpc: &str,
    ) -> std::result::Result<Identity, Status> {
        if self.mode == AuthMode::None {
            return Ok(Identity::Anonymous);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                // The scheme name is case-insensitive (RFC 6750).
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
            .map(str::trim);
        let store = Arc::clone(&self.loaded.read().unwrap_or_else(|p| p.into_inner()).store);
        match presented.and_then(|token| store.authenticate(token, unix_now())) {
            Some(record) => Ok(Identity::Token(record.clone())),
            None => {
                let reason = if presented.is_some() {
                    "unknown, revoked or expired token"
                } else {
                    "no token"
                };
                self.log_denial(request.remote_addr(), "-", rpc, reason);
                Err(Status::unauthenticated(UNAUTHENTICATED))
            }
        }
    }

    /// Logs a denied request with the peer, the token name (never the
    /// token) and the reason, rate-limited.
    pub fn log_denial(&self, peer: Option<SocketAddr>, token_name: &str, rpc: &str, reason: &str) {
        let Some(suppressed) = self.denials.admit() else {
            return;
        };
        tracing::warn!(peer = %PeerAddr(peer), token = token_name, rpc, reason, suppressed, "request denied");
    }
}

/// Reloads the store every [`RELOAD_INTERVAL`] until `stop` is cancelled.
pub(crate) async fn watch(
    authenticator: Arc<Authenticator>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut interval = tokio::time::interval(RELOAD_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let authenticator = Arc::clone(&authenticator);
                // Reading the file blocks; keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || authenticator.reload_if_changed()).await;
            }
            _ = stop.cancelled() => return,
        }
    }
}
