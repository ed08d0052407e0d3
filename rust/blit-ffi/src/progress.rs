//! Progress reporting and cancellation: a transfer runs on a worker thread
//! while the calling thread polls its counters, calls the C callback and
//! forwards cancellation, as the Python module does.

use std::ffi::{c_int, c_void};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use blit_core::{CancelToken, Error, ErrorKind, Phase, Progress, ProgressSnapshot, Summary};

use crate::ffi::{nul_terminated, panic_message};
use crate::sigpipe::without_sigpipe;

/// How often the calling thread wakes to report progress and check the
/// cancel token.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The stage that a transfer is in.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum blit_phase {
    /// Walking the source and comparing it with the destination; totals
    /// still grow.
    Scanning = 0,
    /// Writing files, links and directories; totals are final.
    Transferring = 1,
    /// Finished, successfully or not.
    Done = 2,
}

/// A snapshot of a running transfer's counters, passed to the progress
/// callback and valid only during that call.
#[repr(C)]
pub struct blit_progress {
    /// The stage of the transfer.
    pub phase: blit_phase,
    /// Source entries handled so far, whether copied, skipped or failed.
    pub entries_done: u64,
    /// Source entries found so far.
    pub entries_total: u64,
    /// File bytes written so far.
    pub bytes_done: u64,
    /// File bytes that the transfer has to write.
    pub bytes_total: u64,
    /// The path most recently started, relative to the transfer root,
    /// followed by a NUL; NULL before the first entry.
    pub current_path: *const u8,
    /// Length of `current_path` in bytes, without the NUL.
    pub current_path_len: usize,
}

/// The progress callback; see `blit_options_set_progress`. Returning
/// non-zero cancels the transfer.
#[allow(non_camel_case_types)]
pub type blit_progress_callback =
    Option<unsafe extern "C" fn(progress: *const blit_progress, user_data: *mut c_void) -> c_int>;

/// The progress callback and cancel token of one call.
pub(crate) struct Hooks {
    pub(crate) callback: blit_progress_callback,
    pub(crate) user_data: *mut c_void,
    pub(crate) cancel: Option<CancelToken>,
}

impl Hooks {
    /// Calls the callback with `snapshot`; returns whether it asked to
    /// cancel.
    fn report(&self, snapshot: &ProgressSnapshot) -> bool {
        let Some(callback) = self.callback else {
            return false;
        };
        let path = snapshot
            .current_path
            .as_ref()
            .map(|path| nul_terminated(path.as_os_str().as_encoded_bytes()));
        let progress = blit_progress {
            phase: match snapshot.phase {
                Phase::Scanning => blit_phase::Scanning,
                Phase::Transferring => blit_phase::Transferring,
                Phase::Done => blit_phase::Done,
            },
            entries_done: snapshot.entries_done,
            entries_total: snapshot.entries_total,
            bytes_done: snapshot.bytes_done,
            bytes_total: snapshot.bytes_total,
            current_path: path.as_ref().map_or(std::ptr::null(), |path| path.as_ptr()),
            current_path_len: path.as_ref().map_or(0, |path| path.len() - 1),
        };
        // SAFETY: the caller registered a C function with this signature and
        // vouches for `user_data`; `progress` outlives the call.
        unsafe { callback(&progress, self.user_data) != 0 }
    }

    fn cancel_triggered(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }
}

/// Runs `work` on a new thread and waits for it on the calling thread.
///
/// Every [`POLL_INTERVAL`], and once when the work has ended, the calling
/// thread forwards a triggered cancel token and calls the progress callback.
/// A callback that returns non-zero cancels the work and is not called
/// again. When cancellation was requested and the work then fails, the
/// result is a cancellation error whatever the work reported, because the
/// failure follows from the cancellation (for example a closed session).
/// Work that finished anyway returns its summary.
pub(crate) fn run_polled<F>(hooks: &Hooks, work: F) -> blit_core::Result<Summary>
where
    F: FnOnce(&Arc<Progress>, &CancelToken) -> blit_core::Result<Summary> + Send + 'static,
{
    let progress = Progress::new();
    let cancel = CancelToken::new();
    if hooks.cancel_triggered() {
        return Err(Error::cancelled());
    }
    let (sender, receiver) = mpsc::channel();
    let worker = {
        let progress = Arc::clone(&progress);
        let cancel = cancel.clone();
        // The worker and the threads it starts inherit the blocked SIGPIPE.
        without_sigpipe(|| {
            std::thread::Builder::new()
                .name("blit-transfer".to_string())
                .spawn(move || {
                    let result = work(&progress, &cancel);
                    // The receiver lives until this thread is joined.
                    let _ = sender.send(result);
                })
        })
        .map_err(|err| {
            Error::new(
                ErrorKind::ResourceExhausted,
                format!("cannot start a transfer thread: {err}"),
            )
        })?
    };

    // Whether the caller requested cancellation. The work may cancel
    // `cancel` itself to stop its own threads after a failure, which is no
    // request from the caller.
    let mut cancel_requested = false;
    let result = loop {
        let finished = match receiver.recv_timeout(POLL_INTERVAL) {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(Error::new(
                ErrorKind::Internal,
                "the transfer thread stopped without a result",
            ))),
        };
        if !cancel_requested && hooks.cancel_triggered() {
            cancel.cancel();
            cancel_requested = true;
        }
        // The callback is not called again once cancellation was requested.
        if !cancel_requested && hooks.report(&progress.snapshot()) {
            cancel.cancel();
            cancel_requested = true;
        }
        if let Some(result) = finished {
            break result;
        }
    };
    let joined = worker.join();

    if let Err(payload) = joined {
        return Err(Error::new(
            ErrorKind::Internal,
            format!(
                "the transfer thread panicked: {}; this is a bug in blit, please report it",
                panic_message(payload.as_ref())
            ),
        ));
    }
    match result {
        Err(_) if cancel_requested => Err(Error::cancelled()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// The snapshots that the test callback received, and whether it
    /// requests cancellation.
    #[derive(Default)]
    struct Seen {
        calls: u32,
        last_phase: Option<blit_phase>,
        last_bytes_done: u64,
        cancel: bool,
    }

    unsafe extern "C" fn record(progress: *const blit_progress, user_data: *mut c_void) -> c_int {
        let seen = unsafe { &mut *user_data.cast::<Seen>() };
        let progress = unsafe { &*progress };
        seen.calls += 1;
        seen.last_phase = Some(progress.phase);
        seen.last_bytes_done = progress.bytes_done;
        c_int::from(seen.cancel)
    }

    fn hooks(seen: &mut Seen) -> Hooks {
        Hooks {
            callback: Some(record),
            user_data: std::ptr::from_mut(seen).cast(),
            cancel: None,
        }
    }

    /// Work that runs until it is cancelled, then fails as the core does.
    fn until_cancelled(
        progress: &Arc<Progress>,
        cancel: &CancelToken,
    ) -> blit_core::Result<Summary> {
        progress.set_phase(Phase::Transferring);
        while !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(Error::cancelled())
    }

    #[test]
    fn callback_sees_final_snapshot() {
        let mut seen = Seen::default();

        let result = run_polled(&hooks(&mut seen), |progress, _| {
            progress.add_bytes_done(42);
            progress.set_phase(Phase::Done);
            Ok(Summary::default())
        });

        assert!(result.is_ok());
        assert!(seen.calls >= 1);
        assert_eq!(seen.last_phase, Some(blit_phase::Done));
        assert_eq!(seen.last_bytes_done, 42);
    }

    #[test]
    fn nonzero_return_cancels_work() {
        let mut seen = Seen {
            cancel: true,
            ..Seen::default()
        };

        let result = run_polled(&hooks(&mut seen), until_cancelled);

        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
        // The callback asked to cancel on its first call and got no more.
        assert_eq!(seen.calls, 1);
    }

    #[test]
    fn failure_after_cancel_reports_cancelled() {
        let mut seen = Seen {
            cancel: true,
            ..Seen::default()
        };

        let result = run_polled(&hooks(&mut seen), |progress, cancel| {
            until_cancelled(progress, cancel)
                .map_err(|_| Error::new(ErrorKind::Network, "the push session closed"))
        });

        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn work_cancelling_itself_keeps_its_error() {
        let mut seen = Seen::default();

        // As a push does when its session breaks: stop its own threads
        // through the token, then report the failure.
        let result = run_polled(&hooks(&mut seen), |_, cancel| {
            cancel.cancel();
            Err(Error::new(ErrorKind::Network, "the push session closed"))
        });

        assert_eq!(result.unwrap_err().kind(), ErrorKind::Network);
    }

    #[test]
    fn triggered_token_stops_work() {
        let token = CancelToken::new();
        let hooks = Hooks {
            callback: None,
            user_data: std::ptr::null_mut(),
            cancel: Some(token.clone()),
        };
        let started = Arc::new(AtomicBool::new(false));
        let trigger = std::thread::spawn({
            let token = token.clone();
            move || {
                std::thread::sleep(Duration::from_millis(50));
                token.cancel();
            }
        });

        let result = run_polled(&hooks, {
            let started = Arc::clone(&started);
            move |progress, cancel| {
                started.store(true, Ordering::Relaxed);
                until_cancelled(progress, cancel)
            }
        });

        trigger.join().unwrap();
        assert!(started.load(Ordering::Relaxed));
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn token_triggered_before_start_skips_work() {
        let token = CancelToken::new();
        token.cancel();
        let hooks = Hooks {
            callback: None,
            user_data: std::ptr::null_mut(),
            cancel: Some(token),
        };

        let result = run_polled(&hooks, |_, _| panic!("the work must not start"));

        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn worker_panic_becomes_internal() {
        let hooks = Hooks {
            callback: None,
            user_data: std::ptr::null_mut(),
            cancel: None,
        };

        let result = run_polled(&hooks, |_, _| panic!("worker failed"));

        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("worker failed"), "{}", err.message());
    }
}
