//! libblit: the C ABI of blit, over the same core and client as the Python
//! module, so that C programs see the same behaviour.
//!
//! Conventions, as in `include/blit.h`:
//!
//! - Every function returns a [`blit_result`], except `blit_version`,
//!   `blit_result_name` and the `_free` functions. Results go to
//!   out-parameters, written only on success (and for a transfer also on
//!   `BLIT_RESULT_PARTIAL`).
//! - Handles are opaque, made by a `_new`, `_connect` or a call that
//!   returns one, and freed with the matching `_free`, which accepts NULL.
//! - A NULL where a pointer is required, and invalid UTF-8 in an address,
//!   module name, token or pattern, return `BLIT_RESULT_INVALID_ARGUMENT`.
//!   Local paths are NUL-terminated bytes with no encoding.
//! - Every export runs inside a guard that catches Rust panics and returns
//!   `BLIT_RESULT_INTERNAL`; `blit_last_error` returns the message.
//! - SIGPIPE stays blocked in the threads that libblit starts (see the
//!   `sigpipe` module), so a lost daemon cannot end the C program.
//!
//! `tests/header.rs` checks that the committed header matches what
//! cbindgen generates from these sources.

// The exported types keep their C names so that cbindgen writes them into
// the header as they are.
#![allow(non_camel_case_types)]
// The exports take raw pointers from C, which has no `unsafe`; the header
// states the rules that callers follow, as rustls-ffi does.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// cbindgen writes the items of these modules into the header in this order,
// so the order reads as a tour of the interface: statuses and errors,
// options, transfers, the client, then the results.
mod result;

mod ffi;

mod options;

mod progress;

mod transfer;

mod client;

mod summary;

mod list;

mod sigpipe;

use std::ffi::c_char;

pub use client::{
    blit_client, blit_client_connect, blit_client_free, blit_client_list, blit_client_list_modules,
    blit_client_pull, blit_client_purge, blit_client_push, blit_client_status, blit_status,
    blit_status_active_sessions, blit_status_free, blit_status_uptime_seconds, blit_status_version,
};
pub use ffi::blit_last_error;
pub use list::{
    blit_entry, blit_entry_kind, blit_list, blit_list_free, blit_list_get, blit_list_len,
    blit_module, blit_module_list, blit_module_list_free, blit_module_list_get,
    blit_module_list_len,
};
pub use options::{
    blit_cancel, blit_cancel_free, blit_cancel_is_triggered, blit_cancel_new, blit_cancel_trigger,
    blit_options, blit_options_add_exclude, blit_options_clear_excludes, blit_options_free,
    blit_options_new, blit_options_set_cancel, blit_options_set_checksum, blit_options_set_dry_run,
    blit_options_set_force_grpc_data, blit_options_set_fsync, blit_options_set_mirror,
    blit_options_set_progress, blit_options_set_threads, blit_options_set_tls_ca,
    blit_options_set_token,
};
pub use progress::{blit_phase, blit_progress, blit_progress_callback};
pub use result::{blit_result, blit_result_name};
pub use summary::{
    blit_change, blit_change_kind, blit_failure, blit_summary, blit_summary_bytes,
    blit_summary_change, blit_summary_change_count, blit_summary_deleted, blit_summary_dry_run,
    blit_summary_failed, blit_summary_failure, blit_summary_failure_count, blit_summary_free,
    blit_summary_seconds, blit_summary_skipped, blit_summary_transferred,
};
pub use transfer::{blit_copy, blit_pull, blit_push};

/// The version of the C ABI that this header describes. It changes, and
/// with it the SONAME `libblit.so.1`, only when a function or type changes
/// incompatibly.
pub const BLIT_ABI_VERSION: u32 = 1;

/// Returns the version of blit, such as `"2.0.0"`, as a static
/// NUL-terminated string; do not free it. Safe to call from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn blit_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
