//! Runs a core operation on a worker thread while the calling thread
//! releases the GIL, reports progress to a Python callback, and turns Ctrl-C
//! into cancellation.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use blit_core::{CancelToken, Progress, Summary};
use pyo3::prelude::*;

use crate::errors::to_py_err;
use crate::types::PyProgress;

/// How often the caller's thread wakes to check for signals and report
/// progress.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Runs `work` on a new thread and waits for it without holding the GIL.
///
/// Every [`POLL_INTERVAL`] and once at the end, the calling thread takes the
/// GIL, runs pending signal handlers (Ctrl-C raises `KeyboardInterrupt`)
/// and calls `callback` with a progress snapshot. If either raises, the
/// work is cancelled, its temporary files are removed, and the exception
/// propagates once the worker has stopped.
pub(crate) fn run_detached<F>(
    py: Python<'_>,
    callback: Option<Py<PyAny>>,
    work: F,
) -> PyResult<Summary>
where
    F: FnOnce(&Arc<Progress>, &CancelToken) -> blit_core::Result<Summary> + Send + 'static,
{
    crate::logging::install();
    let progress = Progress::new();
    let cancel = CancelToken::new();
    let (sender, receiver) = mpsc::channel();
    // `detach` needs a `Sync` closure; the lock is only ever taken here.
    let receiver = std::sync::Mutex::new(receiver);
    let worker = {
        let progress = Arc::clone(&progress);
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("blit-transfer".to_string())
            .spawn(move || {
                let result = work(&progress, &cancel);
                // The receiver is gone only if the caller's thread panicked.
                let _ = sender.send(result);
            })
            .map_err(|err| {
                pyo3::exceptions::PyOSError::new_err(format!(
                    "cannot start a transfer thread: {err}"
                ))
            })?
    };

    let mut interrupted: Option<PyErr> = None;
    let result = loop {
        let received = py.detach(|| {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            receiver.recv_timeout(POLL_INTERVAL)
        });
        let finished = match received {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(blit_core::Error::new(
                blit_core::ErrorKind::Internal,
                "the transfer thread stopped without a result",
            ))),
        };
        if interrupted.is_none() {
            let check = py.check_signals().and_then(|()| match &callback {
                Some(callback) => callback
                    .call1(py, (PyProgress::from(progress.snapshot()),))
                    .map(drop),
                None => Ok(()),
            });
            if let Err(err) = check {
                cancel.cancel();
                interrupted = Some(err);
            }
        }
        if let Some(result) = finished {
            break result;
        }
    };
    py.detach(|| worker.join()).ok();

    if let Some(err) = interrupted {
        return Err(err);
    }
    result.map_err(|err| to_py_err(py, &err))
}
