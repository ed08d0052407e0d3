//! `blit_options`, the settings of a transfer or a connection, and
//! `blit_cancel`, a token that stops transfers from another thread.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;

use blit_client::{ClientOptions, TransferOptions};
use blit_core::{CancelToken, Filter, LocalOptions, MAX_THREADS};

use crate::ffi::{
    CallError, Out, c_bytes, c_path, c_str, free_handle, guard, guard_free, handle, handle_mut,
    into_handle,
};
use crate::progress::{Hooks, blit_progress_callback};
use crate::result::blit_result;

/// Settings for transfers and connections, made with `blit_options_new`
/// and freed with `blit_options_free`.
///
/// A function that takes a `const blit_options *` reads it during the call
/// only, so one handle may serve many calls, and several threads may read it
/// at once. It is not synchronized: do not call a setter while another
/// thread uses the handle.
#[derive(Clone)]
pub struct blit_options {
    mirror: bool,
    dry_run: bool,
    exclude: Vec<String>,
    checksum: bool,
    fsync: bool,
    threads: usize,
    token: Option<String>,
    tls_ca: Option<PathBuf>,
    force_grpc_data: bool,
    progress: blit_progress_callback,
    user_data: *mut c_void,
    cancel: Option<CancelToken>,
}

impl Default for blit_options {
    fn default() -> blit_options {
        blit_options {
            mirror: false,
            dry_run: false,
            exclude: Vec::new(),
            checksum: false,
            fsync: false,
            threads: 0,
            token: None,
            tls_ca: None,
            force_grpc_data: false,
            progress: None,
            user_data: std::ptr::null_mut(),
            cancel: None,
        }
    }
}

impl blit_options {
    /// Copies the options argument of a call, or returns the defaults for
    /// NULL.
    pub(crate) fn read(ptr: *const blit_options) -> blit_options {
        match handle(ptr, "options") {
            Ok(options) => options.clone(),
            Err(_) => blit_options::default(),
        }
    }

    pub(crate) fn local_options(&self) -> LocalOptions {
        LocalOptions {
            mirror: self.mirror,
            dry_run: self.dry_run,
            exclude: self.exclude.clone(),
            checksum: self.checksum,
            fsync: self.fsync,
            threads: self.threads,
        }
    }

    pub(crate) fn transfer_options(&self) -> TransferOptions {
        TransferOptions {
            mirror: self.mirror,
            checksum: self.checksum,
            exclude: self.exclude.clone(),
            fsync: self.fsync,
            dry_run: self.dry_run,
            force_grpc_data: self.force_grpc_data,
        }
    }

    // The struct update keeps this compiling when `ClientOptions` gains a
    // field, which then takes its default.
    #[allow(clippy::needless_update)]
    pub(crate) fn client_options(&self) -> ClientOptions {
        ClientOptions {
            token: self.token.clone(),
            tls_ca: self.tls_ca.clone(),
            ..ClientOptions::default()
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn force_grpc_data(&self) -> bool {
        self.force_grpc_data
    }

    pub(crate) fn hooks(&self) -> Hooks {
        Hooks {
            callback: self.progress,
            user_data: self.user_data,
            cancel: self.cancel.clone(),
        }
    }
}

/// Creates options with the defaults: copy without deleting, compare by
/// size and mtime, no excludes, no fsync, the token from `BLIT_TOKEN`, no
/// progress callback and no cancel token.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_options_free`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_new(out: *mut *mut blit_options) -> blit_result {
    guard("blit_options_new", || {
        let out = Out::new(out, "out")?;
        out.write(into_handle(blit_options::default()));
        Ok(())
    })
}

/// Frees options. NULL is a no-op. Calls that have returned keep no
/// reference to them.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_free(options: *mut blit_options) {
    guard_free(|| free_handle(options));
}

/// Runs a setter body on the options handle.
fn set(
    function: &str,
    options: *mut blit_options,
    body: impl FnOnce(&mut blit_options) -> Result<(), CallError>,
) -> blit_result {
    guard(function, || body(handle_mut(options, "options")?))
}

/// Makes transfers mirror: also delete destination entries that the source
/// lacks, except excluded ones. Off by default.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_mirror(options: *mut blit_options, mirror: bool) -> blit_result {
    set("blit_options_set_mirror", options, |options| {
        options.mirror = mirror;
        Ok(())
    })
}

/// Makes transfers dry runs: they change nothing and list the changes they
/// would make in the summary. Off by default.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_dry_run(
    options: *mut blit_options,
    dry_run: bool,
) -> blit_result {
    set("blit_options_set_dry_run", options, |options| {
        options.dry_run = dry_run;
        Ok(())
    })
}

/// Adds an exclude pattern with rsync's rules. A pattern without `/`
/// matches a name at any depth, and a leading `/` anchors it at the
/// transfer root. A trailing `/` matches directories only. `*` stays within
/// one path component, and `**` crosses them.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` for NULL, invalid UTF-8 or a
/// malformed pattern, and then adds nothing.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_add_exclude(
    options: *mut blit_options,
    pattern: *const c_char,
) -> blit_result {
    set("blit_options_add_exclude", options, |options| {
        let pattern = c_str(pattern, "pattern")?.to_string();
        Filter::new(std::slice::from_ref(&pattern))?;
        options.exclude.push(pattern);
        Ok(())
    })
}

/// Removes every exclude pattern.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_clear_excludes(options: *mut blit_options) -> blit_result {
    set("blit_options_clear_excludes", options, |options| {
        options.exclude.clear();
        Ok(())
    })
}

/// Makes transfers compare files of equal size by BLAKE3 hash instead of
/// by modification time. Off by default.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_checksum(
    options: *mut blit_options,
    checksum: bool,
) -> blit_result {
    set("blit_options_set_checksum", options, |options| {
        options.checksum = checksum;
        Ok(())
    })
}

/// Makes transfers fsync each file and its directory before reporting
/// success; for a push, the daemon does. Off by default, as in `cp` and
/// `rsync`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_fsync(options: *mut blit_options, fsync: bool) -> blit_result {
    set("blit_options_set_fsync", options, |options| {
        options.fsync = fsync;
        Ok(())
    })
}

/// Sets the number of worker threads of a local copy; 0, the default, picks
/// a number from the core count. A push or pull rejects any value but 0.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` above 256, the engine's maximum.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_threads(
    options: *mut blit_options,
    threads: u32,
) -> blit_result {
    set("blit_options_set_threads", options, |options| {
        let count = usize::try_from(threads).unwrap_or(usize::MAX);
        if count > MAX_THREADS {
            return Err(CallError::argument(format!(
                "threads = {threads} is out of range; give 1 to {MAX_THREADS}, or 0 for the default"
            )));
        }
        options.threads = count;
        Ok(())
    })
}

/// Sets the bearer token for the daemon, copying the string. NULL clears
/// it, and connections then read the `BLIT_TOKEN` environment variable.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` for a token that is not valid
/// UTF-8. A token with characters that are not printable ASCII is rejected
/// when a connection is made.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_token(
    options: *mut blit_options,
    token: *const c_char,
) -> blit_result {
    set("blit_options_set_token", options, |options| {
        options.token = if token.is_null() {
            None
        } else {
            // Unlike `c_str`, the error leaves the token out of the message.
            let bytes = c_bytes(token, "token")?;
            let token = std::str::from_utf8(bytes)
                .map_err(|_| CallError::argument("token is not valid UTF-8"))?;
            Some(token.to_string())
        };
        Ok(())
    })
}

/// Sets a PEM file of CA certificates that a `blits://` connection trusts
/// besides the system's trust roots, copying the path. NULL clears it.
/// Connecting to a `blit://` address with a CA set returns
/// `BLIT_RESULT_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_tls_ca(
    options: *mut blit_options,
    path: *const c_char,
) -> blit_result {
    set("blit_options_set_tls_ca", options, |options| {
        options.tls_ca = if path.is_null() {
            None
        } else {
            Some(c_path(path, "path")?)
        };
        Ok(())
    })
}

/// Makes a push or pull carry file bytes inside the gRPC stream instead of
/// over the daemon's data port. Off by default; a local copy rejects it.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_force_grpc_data(
    options: *mut blit_options,
    force_grpc_data: bool,
) -> blit_result {
    set("blit_options_set_force_grpc_data", options, |options| {
        options.force_grpc_data = force_grpc_data;
        Ok(())
    })
}

/// Sets the progress callback of transfers, or clears it when `callback`
/// is NULL.
///
/// A transfer runs on a worker thread while the calling thread waits. About
/// every 100 ms, and once more when the work has ended, the calling thread
/// calls `callback` with a snapshot of the counters and `user_data`. The
/// snapshot is valid only during the callback. Returning non-zero cancels
/// the transfer, which then returns `BLIT_RESULT_CANCELLED` unless it had
/// already finished. Once the transfer is cancelled, through the callback or
/// a cancel token, the callback is not called again for it.
///
/// libblit does not touch `user_data`; it must stay valid while a transfer
/// with these options runs. The callback must not unwind (C++ exceptions,
/// `longjmp`) through libblit.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_progress(
    options: *mut blit_options,
    callback: blit_progress_callback,
    user_data: *mut c_void,
) -> blit_result {
    set("blit_options_set_progress", options, |options| {
        options.progress = callback;
        options.user_data = user_data;
        Ok(())
    })
}

/// Attaches a cancel token to the options, or detaches it when `cancel` is
/// NULL. Transfers with these options stop within about 100 ms of
/// `blit_cancel_trigger` and return `BLIT_RESULT_CANCELLED`.
///
/// The options keep their own reference to the token, so `cancel` may be
/// freed at any time; triggering it needs the handle.
#[unsafe(no_mangle)]
pub extern "C" fn blit_options_set_cancel(
    options: *mut blit_options,
    cancel: *const blit_cancel,
) -> blit_result {
    set("blit_options_set_cancel", options, |options| {
        options.cancel = if cancel.is_null() {
            None
        } else {
            Some(handle(cancel, "cancel")?.token.clone())
        };
        Ok(())
    })
}

/// A cancellation token, made with `blit_cancel_new` and freed with
/// `blit_cancel_free`. Attach it to options with `blit_options_set_cancel`
/// and trigger it from any thread.
///
/// Every function on it may be called from several threads at once. Once
/// triggered it stays triggered, so make a new token for the next
/// transfer.
pub struct blit_cancel {
    token: CancelToken,
}

/// Creates a cancel token that is not triggered.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_cancel_free`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_cancel_new(out: *mut *mut blit_cancel) -> blit_result {
    guard("blit_cancel_new", || {
        let out = Out::new(out, "out")?;
        out.write(into_handle(blit_cancel {
            token: CancelToken::new(),
        }));
        Ok(())
    })
}

/// Frees a cancel token. NULL is a no-op. Options that it was attached to
/// keep working, but can no longer be cancelled through it.
#[unsafe(no_mangle)]
pub extern "C" fn blit_cancel_free(cancel: *mut blit_cancel) {
    guard_free(|| free_handle(cancel));
}

/// Triggers the token: every running and future transfer whose options carry
/// it stops, removes its temporary files and returns
/// `BLIT_RESULT_CANCELLED`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_cancel_trigger(cancel: *const blit_cancel) -> blit_result {
    guard("blit_cancel_trigger", || {
        handle(cancel, "cancel")?.token.cancel();
        Ok(())
    })
}

/// Stores in `*out` whether the token has been triggered.
#[unsafe(no_mangle)]
pub extern "C" fn blit_cancel_is_triggered(
    cancel: *const blit_cancel,
    out: *mut bool,
) -> blit_result {
    guard("blit_cancel_is_triggered", || {
        let cancel = handle(cancel, "cancel")?;
        let out = Out::new(out, "out")?;
        out.write(cancel.token.is_cancelled());
        Ok(())
    })
}
