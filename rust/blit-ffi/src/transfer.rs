//! The transfers: `blit_copy`, which routes on its addresses like the
//! Python module's `blit.copy`, and the explicit `blit_push` and
//! `blit_pull`.

use std::ffi::{OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blit_core::{Address, RemoteAddress, Summary};

use crate::client::{blit_client, remote_address};
use crate::ffi::{CallError, Out, c_bytes, c_path, c_str, guard};
use crate::options::blit_options;
use crate::progress::run_polled;
use crate::result::blit_result;
use crate::summary::{blit_summary, finish};

/// Checks a local path argument, rejecting a remote or v1-style
/// (`HOST:MODULE/PATH`) address as the Python module does.
fn local_path(path: &Path, role: &str) -> Result<PathBuf, CallError> {
    match Address::parse(path.as_os_str())? {
        Address::Local(path) => Ok(path),
        Address::Remote(remote) => Err(CallError::argument(format!(
            "{role} {remote} is a remote address, but this argument takes a local path"
        ))),
    }
}

/// Rejects options that apply only to a local copy.
fn check_remote_options(options: &blit_options) -> Result<(), CallError> {
    if options.threads() != 0 {
        return Err(CallError::argument(format!(
            "threads = {} applies only to a local transfer; leave it at 0 for a push or pull",
            options.threads()
        )));
    }
    Ok(())
}

/// Returns the module and path that a push or pull address names.
fn module_path(url: &RemoteAddress) -> Result<(String, Vec<u8>), CallError> {
    match &url.module {
        Some(module) => Ok((module.clone(), url.path.clone().into_bytes())),
        None => Err(CallError::argument(format!(
            "{url} names no module; give blit://HOST[:PORT]/MODULE[/PATH]"
        ))),
    }
}

/// Pushes `src` into `path` of `module` through `client`.
pub(crate) fn push(
    client: &blit_client,
    src: &Path,
    module: String,
    path: Vec<u8>,
    options: &blit_options,
) -> Result<Summary, CallError> {
    let src = local_path(src, "src")?;
    check_remote_options(options)?;
    let transfer = options.transfer_options();
    let inner = Arc::clone(&client.inner);
    let summary = run_polled(&options.hooks(), move |progress, cancel| {
        ::blit_client::push(&inner, &src, &module, &path, &transfer, progress, cancel)
    })?;
    Ok(summary)
}

/// Pulls `path` of `module` through `client` into `dst`.
pub(crate) fn pull(
    client: &blit_client,
    module: String,
    path: Vec<u8>,
    dst: &Path,
    options: &blit_options,
) -> Result<Summary, CallError> {
    let dst = local_path(dst, "dst")?;
    check_remote_options(options)?;
    let transfer = options.transfer_options();
    let inner = Arc::clone(&client.inner);
    let summary = run_polled(&options.hooks(), move |progress, cancel| {
        ::blit_client::pull(&inner, &module, &path, &dst, &transfer, progress, cancel)
    })?;
    Ok(summary)
}

/// Connects to the daemon of `url` and pushes `src` to it.
fn push_to(src: &Path, url: &RemoteAddress, options: &blit_options) -> Result<Summary, CallError> {
    check_remote_options(options)?;
    let (module, path) = module_path(url)?;
    let client = blit_client::connect(url, options)?;
    push(&client, src, module, path, options)
}

/// Connects to the daemon of `url` and pulls from it into `dst`.
fn pull_from(
    url: &RemoteAddress,
    dst: &Path,
    options: &blit_options,
) -> Result<Summary, CallError> {
    check_remote_options(options)?;
    let (module, path) = module_path(url)?;
    let client = blit_client::connect(url, options)?;
    pull(&client, module, path, dst, options)
}

/// Copies a local path to another local path.
fn copy_local(src: PathBuf, dst: PathBuf, options: &blit_options) -> Result<Summary, CallError> {
    if options.force_grpc_data() {
        return Err(CallError::argument(
            "force_grpc_data applies only to a push or pull; give a blit:// address on one side \
             or turn it off",
        ));
    }
    let local = options.local_options();
    let summary = run_polled(&options.hooks(), move |progress, cancel| {
        blit_core::run_local(&src, &dst, &local, progress, cancel)
    })?;
    Ok(summary)
}

/// Copies `src` to `dst`, or with `blit_options_set_mirror` mirrors it.
///
/// Both are NUL-terminated byte strings. A local path may be any bytes, as
/// on POSIX. Either side may instead be a daemon address,
/// `blit://HOST[:PORT]/MODULE[/PATH]` (UTF-8): a local `src` and a remote
/// `dst` is a push, a remote `src` and a local `dst` a pull, each connecting
/// with the token and TLS CA of `options`. A directory source's contents go
/// into `dst`, which is created if missing. A single-file source goes into
/// `dst` when that is an existing directory or ends in `/`; otherwise `dst`
/// is its new name. Files are written under a temporary name and renamed
/// into place, so an interrupted transfer leaves no partial file.
///
/// `options` may be NULL for the defaults. The call blocks until the
/// transfer ends and runs the progress callback of `options` on the calling
/// thread.
///
/// On `BLIT_RESULT_OK` and on `BLIT_RESULT_PARTIAL` (some entries failed),
/// stores a new summary in `*out_summary`; free it with
/// `blit_summary_free`. On any other status `*out_summary` is unchanged.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` for a NULL argument, two remote
/// sides, a v1-style `HOST:MODULE/PATH` or a malformed address. It also
/// returns it for a thread count with a remote side, and for
/// `force_grpc_data` with two local sides. Returns `BLIT_RESULT_NOT_FOUND`
/// for a missing source or module, and `BLIT_RESULT_CANCELLED` after
/// cancellation. Otherwise it returns the status of the first error that
/// stopped the transfer.
#[unsafe(no_mangle)]
pub extern "C" fn blit_copy(
    src: *const c_char,
    dst: *const c_char,
    options: *const blit_options,
    out_summary: *mut *mut blit_summary,
) -> blit_result {
    guard("blit_copy", || {
        let src = c_bytes(src, "src")?;
        let dst = c_bytes(dst, "dst")?;
        let out = Out::new(out_summary, "out_summary")?;
        let options = blit_options::read(options);
        let src = Address::parse(OsStr::from_bytes(src))?;
        let dst = Address::parse(OsStr::from_bytes(dst))?;
        let result = match (src, dst) {
            (Address::Local(src), Address::Local(dst)) => copy_local(src, dst, &options),
            (Address::Local(src), Address::Remote(dst)) => push_to(&src, &dst, &options),
            (Address::Remote(src), Address::Local(dst)) => pull_from(&src, &dst, &options),
            (Address::Remote(src), Address::Remote(dst)) => Err(CallError::argument(format!(
                "remote to remote is not supported yet: {src} -> {dst}; pull to a local \
                 directory, then push from it"
            ))),
        };
        finish(result, out)
    })
}

/// Pushes the local file or directory `src` (NUL-terminated bytes) to
/// `url`, `blit://HOST[:PORT]/MODULE[/PATH]`, connecting with the token and
/// TLS CA of `options`.
///
/// A directory source's contents go into the directory that `url` names,
/// which is created if missing. A single-file source goes into `url` when
/// that is an existing directory or ends in `/`; otherwise `url` is the
/// file's new name. Summary, options and statuses are as for `blit_copy`.
/// In addition, `BLIT_RESULT_UNAUTHENTICATED` means that the daemon rejected
/// the token, and `BLIT_RESULT_PERMISSION_DENIED` a read-only module or a
/// token without the write permission. `BLIT_RESULT_NETWORK` means that the
/// daemon cannot be reached or the connection was lost.
#[unsafe(no_mangle)]
pub extern "C" fn blit_push(
    src: *const c_char,
    url: *const c_char,
    options: *const blit_options,
    out_summary: *mut *mut blit_summary,
) -> blit_result {
    guard("blit_push", || {
        let src = c_path(src, "src")?;
        let url = c_str(url, "url")?;
        let out = Out::new(out_summary, "out_summary")?;
        let options = blit_options::read(options);
        let url = remote_address(url, "url")?;
        finish(push_to(&src, &url, &options), out)
    })
}

/// Pulls the file or directory that `url`, `blit://HOST[:PORT]/MODULE[/PATH]`,
/// names into the local path `dst` (NUL-terminated bytes), connecting with
/// the token and TLS CA of `options`.
///
/// `dst` follows the rules of `blit_copy`'s destination. Summary, options
/// and statuses are as for `blit_push`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_pull(
    url: *const c_char,
    dst: *const c_char,
    options: *const blit_options,
    out_summary: *mut *mut blit_summary,
) -> blit_result {
    guard("blit_pull", || {
        let url = c_str(url, "url")?;
        let dst = c_path(dst, "dst")?;
        let out = Out::new(out_summary, "out_summary")?;
        let options = blit_options::read(options);
        let url = remote_address(url, "url")?;
        finish(pull_from(&url, &dst, &options), out)
    })
}
