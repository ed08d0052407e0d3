//! Prompt cancellation of a remote transfer: a watcher thread that, when the
//! cancel token fires, shuts the data sockets down and ends the gRPC request
//! stream, so blocked reads and writes return at once instead of after the
//! file in flight.

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use blit_core::CancelToken;

/// How often the watcher checks the token.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A running watcher; dropping it stops the watcher.
pub(crate) struct CancelWatch {
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CancelWatch {
    /// Starts watching `cancel` on behalf of `sockets` and `abort`.
    pub(crate) fn start(
        cancel: CancelToken,
        sockets: Vec<TcpStream>,
        abort: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> CancelWatch {
        let finished = Arc::new(AtomicBool::new(false));
        let watching = Arc::clone(&finished);
        let thread = std::thread::Builder::new()
            .name("blit-cancel".to_string())
            .spawn(move || {
                while !watching.load(Ordering::Relaxed) {
                    if cancel.is_cancelled() {
                        for socket in &sockets {
                            // The peer may have closed it already.
                            let _ = socket.shutdown(Shutdown::Both);
                        }
                        if let Some(abort) = abort {
                            let _ = abort.send(());
                        }
                        tracing::debug!("transfer cancelled; data connections shut down");
                        return;
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
            })
            .ok();
        CancelWatch { finished, thread }
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A request stream that ends early when its abort signal fires, which
/// the daemon reads as an abandoned session.
pub(crate) struct AbortableStream<T> {
    inner: tokio_stream::wrappers::ReceiverStream<T>,
    abort: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl<T> AbortableStream<T> {
    pub(crate) fn new(
        inner: tokio_stream::wrappers::ReceiverStream<T>,
        abort: tokio::sync::oneshot::Receiver<()>,
    ) -> AbortableStream<T> {
        AbortableStream {
            inner,
            abort: Some(abort),
        }
    }
}

impl<T> tokio_stream::Stream for AbortableStream<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        use std::future::Future;
        use std::task::Poll;
        if let Some(abort) = self.abort.as_mut() {
            match std::pin::Pin::new(abort).poll(context) {
                Poll::Ready(Ok(())) => return Poll::Ready(None),
                // The watcher ended without cancelling: stop polling it.
                Poll::Ready(Err(_)) => self.abort = None,
                Poll::Pending => {}
            }
        }
        std::pin::Pin::new(&mut self.inner).poll_next(context)
    }
}
