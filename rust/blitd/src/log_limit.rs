//! A limit on repeated log lines, so that a flood of bad requests cannot
//! fill the disk with logs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Admits at most [`LogLimiter::MAX_LINES`] lines per
/// [`LogLimiter::WINDOW`].
pub(crate) struct LogLimiter {
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub(crate) const MAX_LINES: u32 = 20;
    pub(crate) const WINDOW: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> LogLimiter {
        LogLimiter {
            state: Mutex::new(Window {
                started: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Returns `None` when this line must be left out, or the number of
    /// lines left out since the last one logged, which the caller reports.
    pub(crate) fn admit(&self) -> Option<u64> {
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
            return None;
        }
        window.logged += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

/// A client's address as log lines show it: `127.0.0.1:40112`, or
/// `unknown` when the transport did not report one.
pub(crate) struct PeerAddr(pub Option<std::net::SocketAddr>);

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(address) => address.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_caps_lines_per_window() {
        let limiter = LogLimiter::new();
        let admitted = (0..LogLimiter::MAX_LINES + 5)
            .filter(|_| limiter.admit().is_some())
            .count();
        assert_eq!(admitted, LogLimiter::MAX_LINES as usize);
        let window = limiter.state.lock().unwrap();
        assert_eq!(window.suppressed, 5);
    }
}
