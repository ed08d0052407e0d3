//! Validation and resolution of the relative paths that a peer sends.
//!
//! A peer path is a `/`-separated byte string. It is resolved one
//! component at a time from an open root directory with `O_NOFOLLOW`, so
//! neither `..`, an absolute path nor a symlink anywhere along it can reach
//! outside the root.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use blit_core::fsops;
use blit_core::{Error, ErrorKind, Result};

/// Longest accepted peer path in bytes, as Linux's `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 4096;

/// Splits a peer path into its components, rejecting anything that could
/// name an entry outside the root. The empty path is the root itself.
///
/// # Errors
///
/// Returns [`ErrorKind::InvalidArgument`] for a path that is too long,
/// starts with `/`, or has an empty, `.`, `..` or NUL-containing component.
pub fn components(path: &[u8]) -> Result<Vec<&OsStr>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid path {:?}: {why}", String::from_utf8_lossy(path)),
        )
    };
    if path.len() > MAX_PATH_LEN {
        return Err(invalid("longer than 4096 bytes"));
    }
    if path.starts_with(b"/") {
        return Err(invalid(
            "absolute paths are not allowed; give a path inside the module",
        ));
    }
    let mut parts = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" => return Err(invalid("empty path component")),
            b"." | b".." => return Err(invalid("'.' and '..' are not allowed")),
            _ if part.contains(&0) => return Err(invalid("NUL byte in path")),
            _ => parts.push(OsStr::from_bytes(part)),
        }
    }
    Ok(parts)
}

/// Opens the directory at `parts` below `root`, failing on any symlink.
pub fn open_dir(root: &OwnedFd, parts: &[&OsStr]) -> io::Result<OwnedFd> {
    let mut current = rustix::io::dup(root)?;
    for part in parts {
        current = fsops::open_dir_at(&current, part)?;
    }
    Ok(current)
}

/// The directory of the last file that one data connection read or wrote,
/// kept open for the next. The manifest lists a directory's files
/// together, so consecutive files usually share it, and reusing it saves
/// opening every component of the path again for each file.
#[derive(Default)]
pub struct DirCache {
    path: Vec<u8>,
    dir: Option<OwnedFd>,
}

impl DirCache {
    /// Returns the directory at the peer path `parent` below `root`,
    /// opened as [`open_dir`] does unless it is the one already open.
    ///
    /// # Errors
    ///
    /// Returns `InvalidInput` for a path that [`components`] rejects, and
    /// the error of opening any component.
    pub fn open(&mut self, root: &OwnedFd, parent: &[u8]) -> io::Result<&OwnedFd> {
        if self.dir.is_none() || self.path != parent {
            self.dir = None;
            let parts = components(parent)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))?;
            let dir = open_dir(root, &parts)?;
            self.path.clear();
            self.path.extend_from_slice(parent);
            self.dir = Some(dir);
        }
        Ok(self.dir.as_ref().expect("opened above"))
    }
}

/// Splits a peer path at its last `/` into the parent path and the name.
pub fn split_parent(path: &[u8]) -> (&[u8], &OsStr) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], OsStr::from_bytes(&path[slash + 1..])),
        None => (&[][..], OsStr::from_bytes(path)),
    }
}

/// Opens the directory at `parts` below `root`, creating missing
/// directories (mode 0755) and failing on any symlink.
pub fn create_dir(root: &OwnedFd, parts: &[&OsStr]) -> io::Result<OwnedFd> {
    let mut current = rustix::io::dup(root)?;
    for part in parts {
        match fsops::open_dir_at(&current, part) {
            Ok(next) => current = next,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match rustix::fs::mkdirat(&current, *part, rustix::fs::Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(err) => return Err(err.into()),
                }
                current = fsops::open_dir_at(&current, part)?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(current)
}

/// Joins components back into a peer path.
pub fn join(parts: &[&OsStr]) -> Vec<u8> {
    let mut path = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(part.as_bytes());
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_split() {
        assert!(components(b"").unwrap().is_empty());
        let parts = components(b"a/b c/\xff").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2].as_bytes(), b"\xff");
        assert_eq!(join(&parts), b"a/b c/\xff");
    }

    #[test]
    fn escaping_paths_rejected() {
        for path in [
            &b"/etc"[..],
            b"..",
            b"a/../b",
            b"a//b",
            b"a/",
            b"./a",
            b"a\0b",
        ] {
            let err = components(path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{path:?}");
        }
        assert!(components(&vec![b'a'; MAX_PATH_LEN + 1]).is_err());
    }

    #[test]
    fn symlink_component_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let root_fd = fsops::open_dir_path(root.path()).unwrap();

        assert!(open_dir(&root_fd, &[OsStr::new("link")]).is_err());
        assert!(create_dir(&root_fd, &[OsStr::new("link"), OsStr::new("x")]).is_err());
        assert!(!outside.path().join("x").exists());

        create_dir(&root_fd, &[OsStr::new("new"), OsStr::new("deep")]).unwrap();
        assert!(root.path().join("new/deep").is_dir());
    }
}
