//! Resolution of client paths inside a module.
//!
//! Every path is split into components that cannot escape (no `..`, no
//! absolute path) and opened one component at a time with `O_NOFOLLOW`
//! from the module's root, so a symlink inside the module never leads a
//! request outside it.
//!
//! A path that the module's `exclude` patterns match, or that lies inside
//! an excluded directory, is reported to readers (list, pull, purge) with
//! the same NOT_FOUND message as a missing path, so they cannot tell that
//! it exists. Each check runs before the path is opened, because opening
//! it could fail in ways that reveal what is there.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use blit_core::fsops::{self, Kind};
use blit_core::{Error, ErrorKind, Result};
use blit_transfer::paths;

use crate::config::ModuleConfig;

/// A client path with at most one trailing `/` removed, which for a
/// single-file push means "into this directory".
pub(crate) struct ClientPath {
    pub path: Vec<u8>,
    pub trailing_slash: bool,
}

impl ClientPath {
    /// Parses and checks a path from a request.
    pub(crate) fn parse(module: &ModuleConfig, raw: &[u8]) -> Result<ClientPath> {
        let (path, trailing_slash) = match raw.strip_suffix(b"/") {
            Some(stripped) => (stripped.to_vec(), true),
            None => (raw.to_vec(), false),
        };
        paths::components(&path).map_err(|err| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("module {}: {}", module.name, err.message()),
            )
        })?;
        Ok(ClientPath {
            path,
            trailing_slash,
        })
    }

    pub(crate) fn components(&self) -> Vec<&OsStr> {
        paths::components(&self.path).expect("checked by parse")
    }

    pub(crate) fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// Returns the path relative to the module's root; empty for the root.
    pub(crate) fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }
}

/// Returns the error for a path that does not exist, which is also the
/// error for an excluded path.
pub(crate) fn not_found(module: &ModuleConfig, path: &ClientPath) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{} not found in module {}", path.display(), module.name),
    )
}

/// Rejects, as not found, a path to read or delete that lies inside an
/// excluded directory or is excluded as a non-directory. Call it before
/// opening the path; [`check_not_excluded_dir`] adds the directory-only
/// patterns once the entry is known to be a directory.
pub(crate) fn check_readable(module: &ModuleConfig, path: &ClientPath) -> Result<()> {
    let filter = module.exclude.read_filter();
    if filter.is_excluded_with_ancestors(path.as_path(), false) {
        return Err(not_found(module, path));
    }
    Ok(())
}

/// Rejects, as not found, a directory that a directory-only pattern
/// excludes.
pub(crate) fn check_not_excluded_dir(module: &ModuleConfig, path: &ClientPath) -> Result<()> {
    if module
        .exclude
        .read_filter()
        .is_excluded(path.as_path(), true)
    {
        return Err(not_found(module, path));
    }
    Ok(())
}

/// Rejects a push into a path that the module's `exclude` patterns match,
/// whatever its kind, or that lies inside an excluded directory.
pub(crate) fn check_writable_path(module: &ModuleConfig, path: &Path) -> Result<()> {
    if module
        .exclude
        .write_filter()
        .is_excluded_with_ancestors(path, false)
    {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} in module {} is excluded by the module's exclude patterns, so clients \
                 cannot write it; push to another path",
                path.display(),
                module.name
            ),
        ));
    }
    Ok(())
}

/// Rejects writes and deletions in a read-only module.
pub(crate) fn check_writable(module: &ModuleConfig, operation: &str) -> Result<()> {
    if module.read_only {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "module {} is read-only; {operation} needs a writable module",
                module.name
            ),
        ));
    }
    Ok(())
}

/// Opens a module's root directory.
pub(crate) fn open_root(module: &ModuleConfig) -> Result<OwnedFd> {
    fsops::open_dir_path(&module.path).map_err(|err| {
        tracing::error!(module = %module.name, path = %module.path.display(), error = %err, "cannot open module root");
        Error::new(
            ErrorKind::Internal,
            format!("module {} is unavailable on the daemon: its directory cannot be opened", module.name),
        )
    })
}

/// The target of a read request: a directory, or one file or symlink.
pub(crate) enum Source {
    Dir(OwnedFd),
    Single { dir: OwnedFd, name: OsString },
}

/// Opens the entry that `path` names in `module` for reading.
pub(crate) fn open_source(module: &ModuleConfig, path: &ClientPath) -> Result<Source> {
    check_readable(module, path)?;
    let root = open_root(module)?;
    let parts = path.components();
    let Some((last, parents)) = parts.split_last() else {
        return Ok(Source::Dir(root));
    };
    let not_found = || not_found(module, path);
    let escapes = |err: std::io::Error| map_open_error(module, path, err);
    let parent = paths::open_dir(&root, parents).map_err(escapes)?;
    let meta = match fsops::stat_at(&parent, last) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(err) => return Err(escapes(err)),
    };
    match meta.kind {
        Kind::Dir => {
            check_not_excluded_dir(module, path)?;
            Ok(Source::Dir(
                fsops::open_dir_at(&parent, last).map_err(escapes)?,
            ))
        }
        Kind::File | Kind::Symlink => Ok(Source::Single {
            dir: parent,
            name: last.to_os_string(),
        }),
        Kind::Special(what) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} in module {} is a {what}, which blit does not transfer",
                path.display(),
                module.name
            ),
        )),
    }
}

/// Explains a failure to open a path component: a missing directory, or
/// a symlink or file where a directory is needed.
pub(crate) fn map_open_error(
    module: &ModuleConfig,
    path: &ClientPath,
    err: std::io::Error,
) -> Error {
    match err.raw_os_error() {
        Some(libc_eloop) if libc_eloop == rustix::io::Errno::LOOP.raw_os_error() => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} in module {} passes through a symlink, which blitd does not follow",
                path.display(),
                module.name
            ),
        ),
        Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => Error::new(
            ErrorKind::Conflict,
            format!(
                "{} in module {}: a path component is not a directory",
                path.display(),
                module.name
            ),
        ),
        _ if err.kind() == std::io::ErrorKind::NotFound => not_found(module, path),
        _ => Error::new(
            ErrorKind::from_io(&err),
            format!("{} in module {}: {err}", path.display(), module.name),
        ),
    }
}
