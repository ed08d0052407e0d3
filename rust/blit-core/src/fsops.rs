//! File-system primitives relative to open directory handles.
//!
//! Every destination operation names an entry by its parent directory's file
//! descriptor and a single component, and directories are opened with
//! `O_NOFOLLOW`. A symlink inside the destination is therefore never
//! followed, so a transfer cannot write or delete outside its tree.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

use crate::progress::{CancelToken, Progress};

/// Prefix and suffix of the temporary names that files are written under
/// before the rename into place. The next run deletes any it finds.
const TEMP_PREFIX: &[u8] = b".blit-";
const TEMP_SUFFIX: &[u8] = b".tmp";
const TEMP_RANDOM_LEN: usize = 16;

/// Size of one `copy_file_range` call, and so how often a copy reports
/// progress and checks for cancellation.
const COPY_CHUNK: usize = 8 << 20;

/// Buffer size of the read/write fallback.
const FALLBACK_BUFFER: usize = 1 << 20;

/// The kinds of entry that blit distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device node, which blit does not copy.
    Special(&'static str),
}

impl Kind {
    /// Classifies the file type of a `stat` result.
    pub fn of(stat: &Stat) -> Kind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Special("FIFO"),
            FileType::Socket => Kind::Special("socket"),
            FileType::CharacterDevice => Kind::Special("character device"),
            FileType::BlockDevice => Kind::Special("block device"),
            FileType::Unknown => Kind::Special("unknown file type"),
        }
    }
}

/// The metadata that a transfer compares and preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Entry type.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time.
    pub mtime_nsec: u32,
}

impl Meta {
    /// Extracts the compared fields of a `stat` result.
    pub fn from_stat(stat: &Stat) -> Meta {
        Meta {
            kind: Kind::of(stat),
            size: stat.st_size as u64,
            mode: stat.st_mode & 0o7777,
            mtime_sec: stat.st_mtime,
            mtime_nsec: stat.st_mtime_nsec as u32,
        }
    }

    /// Returns whether two modification times are equal. A destination that
    /// keeps whole seconds only (nanoseconds all zero) matches on seconds.
    pub fn same_mtime(&self, dest: &Meta) -> bool {
        self.mtime_sec == dest.mtime_sec
            && (self.mtime_nsec == dest.mtime_nsec || dest.mtime_nsec == 0)
    }

    fn timestamps(&self) -> Timestamps {
        let mtime = Timespec {
            tv_sec: self.mtime_sec,
            tv_nsec: self.mtime_nsec.into(),
        };
        Timestamps {
            last_access: mtime,
            last_modification: mtime,
        }
    }
}

/// Returns the metadata of `name` inside `dir`, not following a symlink.
pub fn stat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Meta> {
    let stat = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Meta::from_stat(&stat))
}

/// Opens the directory `name` inside `dir`, failing on a symlink.
pub fn open_dir_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::empty())?)
}

/// Opens a directory by path, following symlinks; used only for the roots
/// that the caller named.
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rfs::open(path, flags, Mode::empty())?)
}

/// Opens the regular file `name` inside `dir` for reading, failing on a
/// symlink.
pub fn open_file_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::empty())?)
}

/// Size of the buffer that `getdents64` fills when listing a directory.
const DIR_BUFFER: usize = 32 << 10;

/// Lists the names in a directory, without `.` and `..`.
///
/// This reads `getdents64` records straight from one buffer: listing
/// through `rustix::fs::Dir`, which allocates each name twice, took a
/// quarter of a no-op mirror's user time. The listing goes through a new
/// open file description of the directory, so threads that share `dir`
/// or a duplicate of it never move each other's read position.
pub fn read_dir_names(dir: impl AsFd) -> io::Result<Vec<OsString>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let listing = rfs::openat(dir, c".", flags, Mode::empty())?;
    let mut buffer = Vec::<u8>::with_capacity(DIR_BUFFER);
    let mut reader = rfs::RawDir::new(&listing, buffer.spare_capacity_mut());
    let mut names = Vec::new();
    while let Some(entry) = reader.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// Returns whether `name` has the shape of a blit temporary file.
pub fn is_temp_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == TEMP_PREFIX.len() + TEMP_RANDOM_LEN + TEMP_SUFFIX.len()
        && bytes.starts_with(TEMP_PREFIX)
        && bytes.ends_with(TEMP_SUFFIX)
        && bytes[TEMP_PREFIX.len()..TEMP_PREFIX.len() + TEMP_RANDOM_LEN]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// Returns a fresh temporary name. Names from concurrent processes differ
/// because the pid, the time and a counter go into the hash; a collision is
/// still caught by `O_EXCL` and retried.
fn temp_name() -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Read once: strace showed a `getpid` call for every file written,
    // since glibc no longer caches the pid. A forked child keeps the
    // parent's value, which the time and `O_EXCL` make harmless.
    static PID: OnceLock<u32> = OnceLock::new();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&PID.get_or_init(std::process::id).to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(&now.as_nanos().to_le_bytes());
    let hex = hasher.finalize().to_hex();
    let mut name = TEMP_PREFIX.to_vec();
    name.extend_from_slice(&hex.as_bytes()[..TEMP_RANDOM_LEN]);
    name.extend_from_slice(TEMP_SUFFIX);
    OsString::from(OsStr::from_bytes(&name))
}

/// A temporary file in a destination directory that is deleted on drop
/// unless [`TempFile::commit`] renamed it into place.
pub struct TempFile<'a> {
    dir: &'a OwnedFd,
    name: OsString,
    fd: Option<OwnedFd>,
}

impl<'a> TempFile<'a> {
    /// Creates a new, empty temporary file with mode 0600 in `dir`.
    pub fn create(dir: &'a OwnedFd) -> io::Result<TempFile<'a>> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        loop {
            let name = temp_name();
            match rfs::openat(dir, &name, flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => {
                    return Ok(TempFile {
                        dir,
                        name,
                        fd: Some(fd),
                    });
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Returns the open descriptor, for writing the content.
    pub fn fd(&self) -> &OwnedFd {
        self.fd
            .as_ref()
            .expect("the descriptor is open until commit")
    }

    /// Sets mode and modification time, optionally fsyncs, and renames the
    /// file to `final_name`, replacing any non-directory entry there.
    pub fn commit(mut self, final_name: &OsStr, meta: &Meta, fsync: bool) -> io::Result<()> {
        let fd = self.fd.take().expect("commit runs once");
        rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode))?;
        rfs::futimens(&fd, &meta.timestamps())?;
        if fsync {
            rfs::fsync(&fd)?;
        }
        drop(fd);
        let result = rfs::renameat(self.dir, &self.name, self.dir, final_name);
        if result.is_ok() {
            self.name.clear();
        }
        Ok(result?)
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        self.fd.take();
        if let Err(err) = rfs::unlinkat(self.dir, &self.name, AtFlags::empty()) {
            tracing::warn!(
                name = %self.name.to_string_lossy(),
                error = %err,
                "cannot remove temporary file; the next run removes it"
            );
        }
    }
}

/// Copies all of `src` into `dst` from their current offsets, with
/// `copy_file_range` when the kernel and file systems support it and a
/// read/write loop otherwise. Returns the number of bytes copied.
pub fn copy_data(
    src: &OwnedFd,
    dst: &OwnedFd,
    progress: &Progress,
    cancel: &CancelToken,
) -> io::Result<u64> {
    let mut copied = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        match rfs::copy_file_range(src, None, dst, None, COPY_CHUNK) {
            Ok(0) => return Ok(copied),
            Ok(n) => {
                copied += n as u64;
                progress.add_bytes_done(n as u64);
            }
            // Cross-device copies on old kernels, file systems without
            // support, and special files such as /proc entries.
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::PERM,
            ) if copied == 0 => return copy_buffered(src, dst, progress, cancel),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

fn copy_buffered(
    src: &OwnedFd,
    dst: &OwnedFd,
    progress: &Progress,
    cancel: &CancelToken,
) -> io::Result<u64> {
    let mut buffer = vec![0u8; FALLBACK_BUFFER];
    let mut copied = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let read = match rustix::io::read(src, &mut buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        };
        let mut written = 0;
        while written < read {
            match rustix::io::write(dst, &buffer[written..read]) {
                Ok(n) => written += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        copied += read as u64;
        progress.add_bytes_done(read as u64);
    }
}

/// Returns the BLAKE3 hash of a whole file.
pub fn hash_file(dir: impl AsFd, name: &OsStr) -> io::Result<blake3::Hash> {
    let fd = open_file_at(dir, name)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::from(fd))?;
    Ok(hasher.finalize())
}

/// Reads a symlink's target.
pub fn read_link_at(dir: impl AsFd, name: &OsStr) -> io::Result<OsString> {
    let target = rfs::readlinkat(dir, name, Vec::new())?;
    Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
}

/// Creates a symlink under a temporary name and renames it over `name`, so
/// an existing entry is replaced atomically.
pub fn replace_symlink_at(
    dir: &OwnedFd,
    name: &OsStr,
    target: &OsStr,
    meta: &Meta,
) -> io::Result<()> {
    let temp = loop {
        let temp = temp_name();
        match rfs::symlinkat(target, dir, &temp) {
            Ok(()) => break temp,
            Err(rustix::io::Errno::EXIST) => continue,
            Err(err) => return Err(err.into()),
        }
    };
    let finish = || -> io::Result<()> {
        rfs::utimensat(dir, &temp, &meta.timestamps(), AtFlags::SYMLINK_NOFOLLOW)?;
        rfs::renameat(dir, &temp, dir, name)?;
        Ok(())
    };
    let result = finish();
    if result.is_err() {
        let _ = rfs::unlinkat(dir, &temp, AtFlags::empty());
    }
    result
}

/// Sets the mode bits and modification time of the entry `name` in `dir`.
/// Symlinks get only the time, because Linux has no symlink modes.
pub fn set_meta_at(dir: &OwnedFd, name: &OsStr, meta: &Meta) -> io::Result<()> {
    if meta.kind != Kind::Symlink {
        rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
    }
    rfs::utimensat(dir, name, &meta.timestamps(), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Sets the mode bits and modification time of an open directory.
pub fn set_dir_meta(dir: &OwnedFd, meta: &Meta) -> io::Result<()> {
    rfs::fchmod(dir, Mode::from_raw_mode(meta.mode))?;
    rfs::futimens(dir, &meta.timestamps())?;
    Ok(())
}

/// Creates the directory `name` in `dir` with owner-only access; the
/// source's mode is applied after its contents are written.
pub fn mkdir_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?)
}

/// Removes a non-directory entry.
pub fn unlink_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Removes an empty directory.
pub fn rmdir_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Removes the entry `name` in `dir` and, for a directory, everything in
/// it, without following symlinks. Returns the number of entries removed.
pub fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> io::Result<u64> {
    let meta = stat_at(dir, name)?;
    if meta.kind != Kind::Dir {
        unlink_at(dir, name)?;
        return Ok(1);
    }
    let child = open_dir_at(dir, name)?;
    let mut removed = 0;
    for entry in read_dir_names(&child)? {
        removed += remove_tree_at(&child, &entry)?;
    }
    drop(child);
    rmdir_at(dir, name)?;
    Ok(removed + 1)
}

/// Fsyncs an open directory so that renames into it are durable.
pub fn fsync_dir(dir: &OwnedFd) -> io::Result<()> {
    Ok(rfs::fsync(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_recognized() {
        let name = temp_name();
        assert!(is_temp_name(&name), "{name:?}");
        assert!(!is_temp_name(OsStr::new(".blit-notatemp.tmp")));
        assert!(!is_temp_name(OsStr::new("file.tmp")));
        assert_ne!(temp_name(), temp_name());
    }

    #[test]
    fn seconds_only_destination_matches() {
        let source = Meta {
            kind: Kind::File,
            size: 1,
            mode: 0o644,
            mtime_sec: 10,
            mtime_nsec: 5,
        };
        let mut dest = source;
        assert!(source.same_mtime(&dest));
        dest.mtime_nsec = 0;
        assert!(source.same_mtime(&dest));
        dest.mtime_nsec = 6;
        assert!(!source.same_mtime(&dest));
        dest.mtime_nsec = 5;
        dest.mtime_sec = 11;
        assert!(!source.same_mtime(&dest));
    }
}
