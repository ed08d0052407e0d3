//! `blit_client`, a connection to one daemon, with status, list, list
//! modules, purge, push and pull.

use std::ffi::{OsStr, c_char};
use std::sync::Arc;

use blit_core::{Address, RemoteAddress};

use crate::ffi::{
    CallError, Out, c_bytes, c_path, c_str, c_text, free_handle, guard, guard_free, handle,
    into_handle,
};
use crate::list::{blit_list, blit_module_list};
use crate::options::blit_options;
use crate::result::blit_result;
use crate::sigpipe::without_sigpipe;
use crate::summary::{blit_summary, finish};
use crate::transfer::{pull, push};

/// A connection to one daemon, made with `blit_client_connect` and freed
/// with `blit_client_free`.
///
/// Several threads may call functions on one client at once; each call
/// makes its own requests over the client's connection. Free it only when
/// no call on it is running.
pub struct blit_client {
    pub(crate) inner: Arc<::blit_client::Client>,
    address: RemoteAddress,
}

/// Parses a daemon address, rejecting a local path.
pub(crate) fn remote_address(url: &str, role: &str) -> Result<RemoteAddress, CallError> {
    match Address::parse(OsStr::new(url))? {
        Address::Remote(remote) => Ok(remote),
        Address::Local(_) => Err(CallError::argument(format!(
            "{role} {url:?} is not a daemon address; give blit://HOST[:PORT]/MODULE/PATH"
        ))),
    }
}

impl blit_client {
    /// Connects to the daemon that `address` names, with the token and CA
    /// of `options`.
    pub(crate) fn connect(
        address: &RemoteAddress,
        options: &blit_options,
    ) -> Result<blit_client, CallError> {
        // The client's runtime threads inherit the blocked SIGPIPE, and the
        // TLS handshake writes from this thread.
        let client =
            without_sigpipe(|| ::blit_client::Client::connect(address, &options.client_options()))?;
        Ok(blit_client {
            inner: Arc::new(client),
            address: address.clone(),
        })
    }

    /// Splits `MODULE/PATH`, or a full address of this client's daemon,
    /// into the module and the path inside it.
    ///
    /// The module must be UTF-8. In the `MODULE/PATH` form the path may be
    /// any bytes, so that C can name every file that a listing returns.
    pub(crate) fn module_path(
        &self,
        target: &[u8],
        role: &str,
    ) -> Result<(String, Vec<u8>), CallError> {
        let target_text = String::from_utf8_lossy(target);
        let (module, path) = if target.starts_with(b"blit://") || target.starts_with(b"blits://") {
            let text = std::str::from_utf8(target).map_err(|_| {
                CallError::argument(format!("{role} {target_text:?} is not valid UTF-8"))
            })?;
            let remote = remote_address(text, role)?;
            if remote.host != self.address.host || remote.port != self.address.port {
                return Err(CallError::argument(format!(
                    "{role} {text} names another daemon than this client's {}",
                    self.daemon_url()
                )));
            }
            (remote.module.unwrap_or_default(), remote.path.into_bytes())
        } else {
            let start = target
                .iter()
                .position(|&b| b != b'/')
                .unwrap_or(target.len());
            let trimmed = &target[start..];
            let (module, path) = match trimmed.iter().position(|&b| b == b'/') {
                Some(slash) => (&trimmed[..slash], trimmed[slash + 1..].to_vec()),
                None => (trimmed, Vec::new()),
            };
            let module = std::str::from_utf8(module).map_err(|_| {
                CallError::argument(format!(
                    "the module name in {role} {target_text:?} is not valid UTF-8"
                ))
            })?;
            (module.to_string(), path)
        };
        if module.is_empty() {
            return Err(CallError::argument(format!(
                "{role} {target_text:?} names no module; give MODULE or MODULE/PATH"
            )));
        }
        Ok((module, path))
    }

    /// Returns the daemon's address, as `blit://HOST:PORT/`.
    fn daemon_url(&self) -> String {
        let mut daemon = self.address.clone();
        daemon.module = None;
        daemon.path.clear();
        daemon.to_string()
    }
}

/// Connects to the daemon that `url` names, `blit://HOST[:PORT]/` or
/// `blits://HOST[:PORT]/` for TLS; a module and path in the URL are ignored.
/// The connection uses the token and TLS CA of `options`, which may be NULL
/// for the defaults. The token comes from `blit_options_set_token`, else
/// from the `BLIT_TOKEN` environment variable.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_client_free`. Connecting does not check the token: the first
/// request does.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` for a NULL or malformed URL,
/// invalid UTF-8, a token that is not printable ASCII, or a TLS CA with a
/// `blit://` URL, and `BLIT_RESULT_NETWORK` when the daemon cannot be
/// reached or its certificate cannot be verified.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_connect(
    url: *const c_char,
    options: *const blit_options,
    out: *mut *mut blit_client,
) -> blit_result {
    guard("blit_client_connect", || {
        let url = c_str(url, "url")?;
        let out = Out::new(out, "out")?;
        let options = blit_options::read(options);
        let address = remote_address(url, "url")?;
        let client = blit_client::connect(&address, &options)?;
        out.write(into_handle(client));
        Ok(())
    })
}

/// Closes the connection and frees the client. NULL is a no-op. No call on
/// the client may be running.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_free(client: *mut blit_client) {
    guard_free(|| free_handle(client));
}

/// The daemon's status, returned by `blit_client_status` and freed with
/// `blit_status_free`. It does not change, so several threads may read it
/// at once.
pub struct blit_status {
    version: Box<[u8]>,
    uptime_seconds: u64,
    active_sessions: u32,
}

/// Asks the daemon for its version, uptime and running sessions.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_status_free`. Use `blit_client_list_modules` for the modules.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_status(
    client: *const blit_client,
    out: *mut *mut blit_status,
) -> blit_result {
    guard("blit_client_status", || {
        let client = handle(client, "client")?;
        let out = Out::new(out, "out")?;
        let status = without_sigpipe(|| client.inner.status())?;
        out.write(into_handle(blit_status {
            version: c_text(&status.version),
            uptime_seconds: status.uptime_seconds,
            active_sessions: status.active_sessions,
        }));
        Ok(())
    })
}

/// Frees a status. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn blit_status_free(status: *mut blit_status) {
    guard_free(|| free_handle(status));
}

/// Stores a pointer to the daemon's version, as NUL-terminated UTF-8 owned
/// by the status, in `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_status_version(
    status: *const blit_status,
    out: *mut *const c_char,
) -> blit_result {
    guard("blit_status_version", || {
        let status = handle(status, "status")?;
        let out = Out::new(out, "out")?;
        out.write(status.version.as_ptr().cast());
        Ok(())
    })
}

/// Stores the seconds since the daemon started in `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_status_uptime_seconds(
    status: *const blit_status,
    out: *mut u64,
) -> blit_result {
    guard("blit_status_uptime_seconds", || {
        let status = handle(status, "status")?;
        let out = Out::new(out, "out")?;
        out.write(status.uptime_seconds);
        Ok(())
    })
}

/// Stores the number of sessions that the daemon runs now in `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_status_active_sessions(
    status: *const blit_status,
    out: *mut u32,
) -> blit_result {
    guard("blit_status_active_sessions", || {
        let status = handle(status, "status")?;
        let out = Out::new(out, "out")?;
        out.write(status.active_sessions);
        Ok(())
    })
}

/// Lists the modules that the caller may read.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_module_list_free`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_list_modules(
    client: *const blit_client,
    out: *mut *mut blit_module_list,
) -> blit_result {
    guard("blit_client_list_modules", || {
        let client = handle(client, "client")?;
        let out = Out::new(out, "out")?;
        let modules = without_sigpipe(|| client.inner.list_modules())?;
        out.write(into_handle(blit_module_list::new(modules)));
        Ok(())
    })
}

/// Lists the entries under `path`, which is `MODULE[/PATH]` or a full
/// address of this client's daemon: one level, or with `recursive` the
/// whole subtree.
///
/// On success, stores a new handle in `*out`; free it with
/// `blit_list_free`.
///
/// Returns `BLIT_RESULT_NOT_FOUND` for a missing module or path, and
/// `BLIT_RESULT_INVALID_ARGUMENT` for a module name that is not UTF-8 or a
/// path that leaves the module.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_list(
    client: *const blit_client,
    path: *const c_char,
    recursive: bool,
    out: *mut *mut blit_list,
) -> blit_result {
    guard("blit_client_list", || {
        let client = handle(client, "client")?;
        let target = c_bytes(path, "path")?;
        let out = Out::new(out, "out")?;
        let (module, inner_path) = client.module_path(target, "path")?;
        let entries = without_sigpipe(|| client.inner.list(&module, &inner_path, recursive))?;
        out.write(into_handle(blit_list::new(entries)));
        Ok(())
    })
}

/// Deletes `count` paths (files or whole trees), each `MODULE/PATH` or a
/// full address of this client's daemon, all in one module. Never deletes a
/// module's root.
///
/// On success, stores the number of entries deleted in `*out_deleted`.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` when `count` is 0, the paths name
/// two modules, or one names a module's root. Returns
/// `BLIT_RESULT_NOT_FOUND` for a missing path, and
/// `BLIT_RESULT_PERMISSION_DENIED` for a read-only module or a token without
/// the delete permission.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_purge(
    client: *const blit_client,
    paths: *const *const c_char,
    count: usize,
    out_deleted: *mut u64,
) -> blit_result {
    guard("blit_client_purge", || {
        let client = handle(client, "client")?;
        if paths.is_null() {
            return Err(CallError::argument("paths is NULL"));
        }
        let out = Out::new(out_deleted, "out_deleted")?;
        if count == 0 {
            return Err(CallError::argument("count is 0; give at least one path"));
        }
        // SAFETY: the caller passes an array of `count` string pointers.
        let paths = unsafe { std::slice::from_raw_parts(paths, count) };
        let mut module: Option<String> = None;
        let mut inner_paths = Vec::with_capacity(count);
        for (index, path) in paths.iter().enumerate() {
            let name = format!("paths[{index}]");
            let (path_module, inner_path) = client.module_path(c_bytes(*path, &name)?, &name)?;
            if module.as_ref().is_some_and(|m| *m != path_module) {
                return Err(CallError::argument(
                    "the paths name more than one module; purge one module per call",
                ));
            }
            module = Some(path_module);
            inner_paths.push(inner_path);
        }
        let module = module.expect("count is at least 1");
        let deleted = without_sigpipe(|| client.inner.purge(&module, &inner_paths))?;
        out.write(deleted);
        Ok(())
    })
}

/// Pushes the local file or directory `src` to `dest`, which is
/// `MODULE[/PATH]` or a full address of this client's daemon. The rules,
/// options and results are those of `blit_push`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_push(
    client: *const blit_client,
    src: *const c_char,
    dest: *const c_char,
    options: *const blit_options,
    out_summary: *mut *mut blit_summary,
) -> blit_result {
    guard("blit_client_push", || {
        let client = handle(client, "client")?;
        let src = c_path(src, "src")?;
        let dest = c_bytes(dest, "dest")?;
        let out = Out::new(out_summary, "out_summary")?;
        let options = blit_options::read(options);
        let (module, path) = client.module_path(dest, "dest")?;
        finish(push(client, &src, module, path, &options), out)
    })
}

/// Pulls `source`, which is `MODULE[/PATH]` or a full address of this
/// client's daemon, into the local path `dst`. The rules, options and
/// results are those of `blit_pull`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_client_pull(
    client: *const blit_client,
    source: *const c_char,
    dst: *const c_char,
    options: *const blit_options,
    out_summary: *mut *mut blit_summary,
) -> blit_result {
    guard("blit_client_pull", || {
        let client = handle(client, "client")?;
        let source = c_bytes(source, "source")?;
        let dst = c_path(dst, "dst")?;
        let out = Out::new(out_summary, "out_summary")?;
        let options = blit_options::read(options);
        let (module, path) = client.module_path(source, "source")?;
        finish(pull(client, module, path, &dst, &options), out)
    })
}
