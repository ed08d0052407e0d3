//! Tracking of running push, pull and list sessions.
//!
//! A handler calls [`crate::DaemonState::begin_session`] and keeps the
//! returned [`SessionGuard`] for as long as the session runs. The tracker
//! counts live guards for the Status RPC, lets shutdown wait until none is
//! left, and cancels the remaining ones when the shutdown timeout runs out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use blit_core::{CancelToken, Error, ErrorKind, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Both cancellation signals of one session: the flag that the blocking
/// transfer engine polls and the token that async handlers await.
#[derive(Clone, Default)]
struct SessionCancel {
    flag: CancelToken,
    token: CancellationToken,
}

impl SessionCancel {
    fn cancel(&self) {
        self.flag.cancel();
        self.token.cancel();
    }
}

/// The set of running sessions.
pub(crate) struct SessionTracker {
    sessions: Mutex<HashMap<Arc<str>, SessionCancel>>,
    /// Number of entries in `sessions`, published so that shutdown can await
    /// zero without polling.
    count: watch::Sender<usize>,
    draining: AtomicBool,
}

impl SessionTracker {
    pub(crate) fn new() -> Arc<SessionTracker> {
        Arc::new(SessionTracker {
            sessions: Mutex::new(HashMap::new()),
            count: watch::Sender::new(0),
            draining: AtomicBool::new(false),
        })
    }

    /// Registers a new session with a fresh random id.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::Network`] (gRPC UNAVAILABLE) once shutdown has
    /// begun, and [`ErrorKind::Internal`] if the OS random source fails.
    pub(crate) fn begin(self: &Arc<Self>) -> Result<SessionGuard> {
        let mut sessions = self.lock();
        // Checked under the lock, so no session can start after
        // `start_draining` returns.
        if self.draining.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Network,
                "blitd is shutting down and accepts no new sessions; retry after it restarts",
            ));
        }
        let id: Arc<str> = loop {
            let id = new_session_id()?;
            if !sessions.contains_key(id.as_str()) {
                break id.into();
            }
        };
        let cancel = SessionCancel::default();
        sessions.insert(Arc::clone(&id), cancel.clone());
        self.count.send_replace(sessions.len());
        Ok(SessionGuard {
            id,
            cancel,
            tracker: Arc::clone(self),
        })
    }

    /// Returns the number of running sessions.
    pub(crate) fn active(&self) -> usize {
        self.lock().len()
    }

    /// Rejects new sessions from now on.
    pub(crate) fn start_draining(&self) {
        let _sessions = self.lock();
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Returns whether shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Waits until no session is running.
    pub(crate) async fn wait_idle(&self) {
        let mut count = self.count.subscribe();
        // `wait_for` fails only when the sender is dropped, and `self` owns it.
        let _ = count.wait_for(|&active| active == 0).await;
    }

    /// Cancels every running session and returns their ids.
    pub(crate) fn cancel_all(&self) -> Vec<String> {
        let sessions = self.lock();
        for cancel in sessions.values() {
            cancel.cancel();
        }
        sessions.keys().map(|id| id.to_string()).collect()
    }

    fn end(&self, id: &str) {
        let mut sessions = self.lock();
        sessions.remove(id);
        self.count.send_replace(sessions.len());
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, SessionCancel>> {
        // The map stays consistent even if a holder panicked, because every
        // critical section is a single insert, remove or read.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for SessionTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTracker")
            .field("active", &self.active())
            .field("draining", &self.is_draining())
            .finish()
    }
}

/// A running session, counted by the Status RPC until the guard is dropped.
///
/// Shutdown waits for every guard to drop, up to the shutdown timeout, and
/// then cancels the sessions that are still running: handlers pass
/// [`SessionGuard::cancel_token`] to the transfer engine or await
/// [`SessionGuard::cancelled`].
pub struct SessionGuard {
    id: Arc<str>,
    cancel: SessionCancel,
    tracker: Arc<SessionTracker>,
}

impl SessionGuard {
    /// Returns the session id: 16 hex digits, used in logs and in
    /// `DataGrant.session_id`. It is not a secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Returns the flag that the blocking transfer engine polls; it is set
    /// when the daemon cancels this session.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel.flag
    }

    /// Completes when the daemon cancels this session.
    pub async fn cancelled(&self) {
        self.cancel.token.cancelled().await;
    }

    /// Returns whether the daemon has cancelled this session.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.token.is_cancelled()
    }
}

impl std::fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGuard")
            .field("id", &self.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.tracker.end(&self.id);
    }
}

/// Creates a session id of 64 random bits as 16 lowercase hex digits.
fn new_session_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot read the OS random source for a session id: {err}"),
        )
    })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_until_dropped() {
        let tracker = SessionTracker::new();
        let first = tracker.begin().unwrap();
        let second = tracker.begin().unwrap();
        assert_eq!(tracker.active(), 2);
        assert_ne!(first.id(), second.id());
        assert_eq!(first.id().len(), 16);
        drop(first);
        assert_eq!(tracker.active(), 1);
        drop(second);
        assert_eq!(tracker.active(), 0);
    }

    #[test]
    fn draining_rejects_new_sessions() {
        let tracker = SessionTracker::new();
        let running = tracker.begin().unwrap();
        tracker.start_draining();
        let err = tracker.begin().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network);
        assert!(err.message().contains("shutting down"), "{}", err.message());
        assert_eq!(tracker.active(), 1);
        drop(running);
    }

    #[test]
    fn cancel_all_sets_both_signals() {
        let tracker = SessionTracker::new();
        let guard = tracker.begin().unwrap();
        assert!(!guard.is_cancelled());
        assert!(!guard.cancel_token().is_cancelled());
        let cancelled = tracker.cancel_all();
        assert_eq!(cancelled, vec![guard.id().to_string()]);
        assert!(guard.is_cancelled());
        assert!(guard.cancel_token().is_cancelled());
    }

    #[tokio::test]
    async fn wait_idle_returns_after_last_drop() {
        let tracker = SessionTracker::new();
        let guard = tracker.begin().unwrap();
        let waiter = tokio::spawn({
            let tracker = Arc::clone(&tracker);
            async move { tracker.wait_idle().await }
        });
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(30), waiter)
            .await
            .expect("wait_idle did not return after the last session ended")
            .unwrap();
    }
}
