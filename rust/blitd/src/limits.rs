//! The `max_connections` limits: concurrent operations per module and in
//! the whole daemon.
//!
//! An operation takes a [`ConnectionSlot`] before it starts its work and
//! keeps it until it ends. A push or pull session keeps its slot until the
//! session task ends, which is after its data connections closed, and a
//! list or purge keeps it while it runs. The slot is released when it is
//! dropped, so every end path (success, error, client disconnect,
//! cancellation at shutdown) frees it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use blit_core::{Error, ErrorKind, Result};

use crate::config::Config;
use crate::log_limit::{LogLimiter, PeerAddr};

/// Counters of running operations, checked against the configured limits.
pub(crate) struct ConnectionLimits {
    /// The `[daemon]` limit, or 0 for none.
    daemon_max: u32,
    /// The limit of each module in config order, or 0 for none.
    module_max: Vec<u32>,
    counts: Mutex<Counts>,
    rejections: LogLimiter,
}

struct Counts {
    daemon: u32,
    modules: Vec<u32>,
}

impl ConnectionLimits {
    pub(crate) fn new(config: &Config) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            daemon_max: config.daemon.max_connections,
            module_max: config.modules.iter().map(|m| m.max_connections).collect(),
            counts: Mutex::new(Counts {
                daemon: 0,
                modules: vec![0; config.modules.len()],
            }),
            rejections: LogLimiter::new(),
        })
    }

    /// Takes a slot for one operation in the module at `module_index` (its
    /// position in the config), named `module_name` in the error.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::ResourceExhausted`] naming the limit when the
    /// daemon or the module already runs its maximum number of operations.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        module_index: usize,
        module_name: &str,
    ) -> Result<ConnectionSlot> {
        let mut counts = self.lock();
        if self.daemon_max != 0 && counts.daemon >= self.daemon_max {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "blitd has reached its max_connections = {} (in [daemon]); try again later",
                    self.daemon_max
                ),
            ));
        }
        let module_max = self.module_max[module_index];
        if module_max != 0 && counts.modules[module_index] >= module_max {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "module {module_name:?} has reached max_connections = {module_max}; try again \
                     later"
                ),
            ));
        }
        counts.daemon += 1;
        counts.modules[module_index] += 1;
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            module_index,
        })
    }

    /// Logs a request rejected with RESOURCE_EXHAUSTED, such as one beyond a
    /// limit, at most [`LogLimiter::MAX_LINES`] lines per
    /// [`LogLimiter::WINDOW`], so a client that retries in a loop cannot
    /// flood the log.
    pub(crate) fn log_rejection(
        &self,
        peer: Option<SocketAddr>,
        token_name: &str,
        rpc: &str,
        error: &str,
    ) {
        let Some(suppressed) = self.rejections.admit() else {
            return;
        };
        tracing::warn!(peer = %PeerAddr(peer), token = token_name, rpc, error, suppressed, "request rejected");
    }

    /// Returns the number of running operations in the daemon and in the
    /// module at `module_index`.
    #[cfg(test)]
    fn active(&self, module_index: usize) -> (u32, u32) {
        let counts = self.lock();
        (counts.daemon, counts.modules[module_index])
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Each critical section updates both counters together, so they stay
        // consistent even if a holder panicked.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("daemon_max", &self.daemon_max)
            .field("module_max", &self.module_max)
            .finish_non_exhaustive()
    }
}

/// One running operation, counted against the limits until dropped.
pub(crate) struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    module_index: usize,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.daemon -= 1;
        counts.modules[self.module_index] -= 1;
    }
}

impl std::fmt::Debug for ConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSlot")
            .field("module_index", &self.module_index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn limits(daemon: u32, modules: &[u32]) -> (Arc<ConnectionLimits>, Vec<tempfile::TempDir>) {
        let dirs: Vec<_> = modules
            .iter()
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let mut text = format!("[daemon]\nauth = \"none\"\nmax_connections = {daemon}\n");
        for (index, (max, dir)) in modules.iter().zip(&dirs).enumerate() {
            text.push_str(&format!(
                "[[modules]]\nname = \"m{index}\"\npath = {:?}\nmax_connections = {max}\n",
                dir.path()
            ));
        }
        let config = Config::parse(&text, Path::new("test.toml")).unwrap();
        (ConnectionLimits::new(&config), dirs)
    }

    #[test]
    fn module_limit_rejects_and_frees() {
        let (limits, _dirs) = limits(0, &[2, 0]);
        let first = limits.acquire(0, "m0").unwrap();
        let second = limits.acquire(0, "m0").unwrap();
        let err = limits.acquire(0, "m0").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
        assert!(
            err.message()
                .contains("module \"m0\" has reached max_connections = 2"),
            "{}",
            err.message()
        );
        // The other module has no limit.
        let other = limits.acquire(1, "m1").unwrap();
        assert_eq!(limits.active(0), (3, 2));
        drop(first);
        let third = limits.acquire(0, "m0").unwrap();
        drop((second, third, other));
        assert_eq!(limits.active(0), (0, 0));
        assert_eq!(limits.active(1), (0, 0));
    }

    #[test]
    fn daemon_limit_spans_modules() {
        let (limits, _dirs) = limits(2, &[0, 0]);
        let first = limits.acquire(0, "m0").unwrap();
        let second = limits.acquire(1, "m1").unwrap();
        let err = limits.acquire(1, "m1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
        assert!(
            err.message().contains("max_connections = 2 (in [daemon])"),
            "{}",
            err.message()
        );
        drop(first);
        let third = limits.acquire(1, "m1").unwrap();
        assert_eq!(limits.active(1), (2, 2));
        drop((second, third));
    }

    #[test]
    fn rejected_acquire_counts_nothing() {
        let (limits, _dirs) = limits(1, &[1]);
        let held = limits.acquire(0, "m0").unwrap();
        assert!(limits.acquire(0, "m0").is_err());
        assert_eq!(limits.active(0), (1, 1));
        drop(held);
        assert_eq!(limits.active(0), (0, 0));
    }
}
