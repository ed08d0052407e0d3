//! Keeps SIGPIPE from killing the C program when a daemon closes a
//! connection that libblit writes to.
//!
//! Some socket writes (`writev`, `sendfile`, `splice`) raise SIGPIPE on a
//! closed connection, and its default action ends the process. Rust
//! programs and Python ignore SIGPIPE at startup, but a C program usually
//! keeps the default.
//!
//! libblit therefore blocks SIGPIPE on the calling thread while it starts
//! threads or uses sockets there. Threads inherit the mask of the thread
//! that creates them, so the client runtime and the transfer threads keep
//! SIGPIPE blocked for life, and their writes to a closed connection fail
//! with `EPIPE` instead. A SIGPIPE raised on the calling thread meanwhile is
//! taken off its pending set before the mask is restored, as libpq does.
//! The program's mask and handlers thus stay as they were.

use std::mem::MaybeUninit;
use std::ptr;

/// Runs `work` with SIGPIPE blocked on the calling thread.
pub(crate) fn without_sigpipe<T>(work: impl FnOnce() -> T) -> T {
    let _block = SigpipeBlock::new();
    work()
}

/// SIGPIPE blocked on this thread until drop, unless it already was.
struct SigpipeBlock {
    sigpipe: libc::sigset_t,
    previous: libc::sigset_t,
    /// Whether this value blocked SIGPIPE and so must restore the mask.
    blocked: bool,
    /// Whether a SIGPIPE was pending before, which this value must leave.
    was_pending: bool,
}

impl SigpipeBlock {
    fn new() -> SigpipeBlock {
        let sigpipe = sigpipe_set();
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both sets are valid for the call; `previous` is written
        // when the call returns 0.
        let changed =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &sigpipe, previous.as_mut_ptr()) } == 0;
        if !changed {
            return SigpipeBlock {
                sigpipe,
                // SAFETY: a zeroed sigset_t is a valid empty set on Linux,
                // and it is never used because `blocked` is false.
                previous: unsafe { std::mem::zeroed() },
                blocked: false,
                was_pending: false,
            };
        }
        // SAFETY: pthread_sigmask returned 0, so it wrote `previous`.
        let previous = unsafe { previous.assume_init() };
        // SAFETY: `previous` is an initialized set.
        let already_blocked = unsafe { libc::sigismember(&previous, libc::SIGPIPE) } == 1;
        SigpipeBlock {
            sigpipe,
            previous,
            blocked: !already_blocked,
            was_pending: sigpipe_pending(),
        }
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        if !self.blocked {
            return;
        }
        if !self.was_pending && sigpipe_pending() {
            let no_wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: the set is initialized; a NULL info pointer is allowed.
            unsafe { libc::sigtimedwait(&self.sigpipe, ptr::null_mut(), &no_wait) };
        }
        // SAFETY: `previous` is the mask that pthread_sigmask returned.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, ptr::null_mut()) };
    }
}

/// Returns a signal set that contains only SIGPIPE.
fn sigpipe_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set, and sigaddset takes a valid
    // signal number.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

/// Returns whether a SIGPIPE is pending for this thread or the process.
fn sigpipe_pending() -> bool {
    let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending initializes the set when it returns 0.
    unsafe {
        libc::sigpending(pending.as_mut_ptr()) == 0
            && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn sigpipe_blocked() -> bool {
        let mut current = MaybeUninit::<libc::sigset_t>::uninit();
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), current.as_mut_ptr());
            libc::sigismember(current.as_ptr(), libc::SIGPIPE) == 1
        }
    }

    #[test]
    fn write_to_closed_socket_fails_with_epipe() {
        // Run on a new thread, whose mask starts from the harness's, so that
        // the change stays out of other tests.
        std::thread::spawn(|| {
            let (ours, theirs) = UnixStream::pair().unwrap();
            drop(theirs);
            // As in a C program: SIGPIPE's default action ends the process,
            // so this test dies if the block does not hold.
            let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };

            // write(2) raises SIGPIPE, unlike send(2) with MSG_NOSIGNAL,
            // which std uses for sockets.
            let written = without_sigpipe(|| {
                let written = unsafe { libc::write(ours.as_raw_fd(), b"x".as_ptr().cast(), 1) };
                (written, io::Error::last_os_error())
            });

            unsafe { libc::signal(libc::SIGPIPE, previous) };
            assert_eq!(written.0, -1);
            assert_eq!(written.1.kind(), io::ErrorKind::BrokenPipe);
            assert!(!sigpipe_pending());
            assert!(!sigpipe_blocked());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn mask_left_alone_when_already_blocked() {
        std::thread::spawn(|| {
            let set = sigpipe_set();
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };

            without_sigpipe(|| ());

            assert!(sigpipe_blocked());
        })
        .join()
        .unwrap();
    }
}
