//! The local copy and mirror engine.
//!
//! A transfer runs in two phases on a pool of worker threads. The scan walks
//! the source and the destination side by side, one directory per task, and
//! builds a [`plan::DirPlan`] tree holding only what must change; up-to-date
//! entries are counted and dropped. The apply phase then carries the plan
//! out, again one directory per task, with each directory's files written in
//! parallel. A dry run stops after the scan and lists the plan.

mod apply;
mod plan;
mod scan;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::fsops::{self, Kind, Meta};
use crate::progress::{CancelToken, Phase, Progress};
use crate::summary::{Change, ChangeKind, Failure, Summary};

use plan::DirPlan;

/// Stack size of each worker thread. Scan and apply recurse once per
/// directory level, so the stack bounds the depth of tree that they handle
/// together with [`MAX_DEPTH`]; the memory is reserved, not touched, until
/// a deep tree uses it.
const WORKER_STACK_SIZE: usize = 64 << 20;

/// Deepest directory nesting below the transfer root that is transferred;
/// a directory deeper than this is a failed entry.
pub(crate) const MAX_DEPTH: usize = 2048;

/// Options of a local copy or mirror.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Delete destination entries that the source lacks, except excluded
    /// ones.
    pub mirror: bool,
    /// Plan and list the changes without making any.
    pub dry_run: bool,
    /// Exclude patterns with rsync's rules (see [`crate::filter`]).
    pub exclude: Vec<String>,
    /// Compare files of equal size by BLAKE3 content hash instead of by
    /// modification time.
    pub checksum: bool,
    /// Fsync each written file and its directory before reporting success.
    pub fsync: bool,
    /// Worker threads, at most [`MAX_THREADS`]; 0 picks a default from the
    /// number of cores.
    pub threads: usize,
}

/// Largest accepted [`LocalOptions::threads`].
pub const MAX_THREADS: usize = 256;

/// Returns the worker count used when [`LocalOptions::threads`] is 0.
///
/// File operations mostly wait on the kernel, so twice the core count keeps
/// the disk busy; the bounds keep tiny and huge machines sensible.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).clamp(4, 32)
}

/// Copies or mirrors the local path `src` to the local path `dst`.
///
/// A directory source's contents go into `dst`, which is created if
/// missing. A single-file source goes into `dst` when that is an existing
/// directory or ends in `/`; otherwise `dst` is its new name.
///
/// # Errors
///
/// Returns an error when the transfer cannot start: a missing source, a
/// destination of the wrong type, overlapping source and destination, an
/// invalid exclude pattern, or cancellation. Failures of single entries do
/// not stop the transfer; they are counted and listed in the [`Summary`].
pub fn run_local(
    src: &Path,
    dst: &Path,
    options: &LocalOptions,
    progress: &Progress,
    cancel: &CancelToken,
) -> Result<Summary> {
    let started = Instant::now();
    let filter = Filter::new(&options.exclude)?;
    raise_open_file_limit();

    if options.threads > MAX_THREADS {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "threads = {} is too many; give 1 to {MAX_THREADS}, or 0 for the default",
                options.threads
            ),
        ));
    }
    let threads = match options.threads {
        0 => default_threads(),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("blit-worker-{index}"))
        .stack_size(WORKER_STACK_SIZE)
        .build()
        .map_err(|err| {
            Error::new(
                ErrorKind::ResourceExhausted,
                format!("cannot start {threads} worker threads: {err}"),
            )
        })?;

    tracing::debug!(src = %src.display(), dst = %dst.display(), ?options, threads, "local transfer starting");
    let context = Context {
        options,
        filter,
        progress,
        cancel,
        counts: Counts::default(),
    };
    let result = pool.install(|| run_phases(&context, src, dst));
    progress.set_phase(Phase::Done);
    result?;

    let summary = context.counts.into_summary(options.dry_run, started);
    tracing::debug!(
        transferred = summary.transferred,
        skipped = summary.skipped,
        deleted = summary.deleted,
        failed = summary.failed,
        bytes = summary.bytes,
        elapsed = ?summary.elapsed,
        "local transfer finished"
    );
    Ok(summary)
}

/// Shared state of one transfer.
struct Context<'a> {
    options: &'a LocalOptions,
    filter: Filter,
    progress: &'a Progress,
    cancel: &'a CancelToken,
    counts: Counts,
}

impl Context<'_> {
    fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    /// Records a failed entry and counts it as done.
    fn fail(&self, path: &Path, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(path = %path.display(), %message, "entry failed");
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        self.progress.add_entries_done(1);
        lock(&self.counts.failures).push(Failure {
            path: path.to_path_buf(),
            message,
        });
    }

    /// Lists and counts a planned change in a dry run; a real run counts
    /// changes as it makes them.
    fn record_change(&self, kind: ChangeKind, path: &Path) {
        if !self.options.dry_run {
            return;
        }
        if kind == ChangeKind::Delete {
            self.counts.deleted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.transferred.fetch_add(1, Ordering::Relaxed);
            self.progress.add_entries_done(1);
        }
        lock(&self.counts.changes).push(Change {
            kind,
            path: path.to_path_buf(),
        });
    }

    /// Counts one entry written by a real run.
    fn count_transferred(&self, bytes: u64) {
        self.counts.transferred.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.progress.add_entries_done(1);
    }
}

#[derive(Default)]
struct Counts {
    transferred: AtomicU64,
    skipped: AtomicU64,
    deleted: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    failures: Mutex<Vec<Failure>>,
    changes: Mutex<Vec<Change>>,
}

impl Counts {
    fn into_summary(self, dry_run: bool, started: Instant) -> Summary {
        let mut failures = self
            .failures
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        failures.sort_by(|a, b| a.path.cmp(&b.path));
        let mut changes = self.changes.into_inner().unwrap_or_else(|p| p.into_inner());
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Summary {
            transferred: self.transferred.into_inner(),
            skipped: self.skipped.into_inner(),
            deleted: self.deleted.into_inner(),
            failed: self.failed.into_inner(),
            bytes: self.bytes.into_inner(),
            elapsed: started.elapsed(),
            dry_run,
            failures,
            changes,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_phases(context: &Context<'_>, src: &Path, dst: &Path) -> Result<()> {
    let src_meta = std::fs::metadata(src).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("source {} not found; check the path", src.display()),
        )
        .with_path(src),
        _ => Error::io("cannot read source", src, err),
    })?;
    let src_link = std::fs::symlink_metadata(src).map(|m| m.file_type().is_symlink());
    if src_meta.is_dir() {
        run_directory(context, src, dst)
    } else if src_meta.is_file() || matches!(src_link, Ok(true)) {
        run_single(context, src, dst)
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "source {} is a special file; blit copies regular files, directories and symlinks",
                src.display()
            ),
        )
        .with_path(src))
    }
}

/// Transfers a directory tree.
fn run_directory(context: &Context<'_>, src: &Path, dst: &Path) -> Result<()> {
    check_no_overlap(src, dst, context.options.mirror)?;
    let src_dir =
        fsops::open_dir_path(src).map_err(|err| Error::io("cannot open source", src, err))?;
    let src_meta = stat_fd(&src_dir, src)?;

    let dst_dir = match std::fs::metadata(dst) {
        Ok(meta) if meta.is_dir() => Some(
            fsops::open_dir_path(dst)
                .map_err(|err| Error::io("cannot open destination", dst, err))?,
        ),
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "destination {} exists and is not a directory; a directory source needs a \
                     directory destination",
                    dst.display()
                ),
            )
            .with_path(dst));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(Error::io("cannot read destination", dst, err)),
    };
    let dst_root_meta = match &dst_dir {
        Some(fd) => Some(stat_fd(fd, dst)?),
        None => None,
    };

    context.progress.set_phase(Phase::Scanning);
    let root = scan::scan_root(context, &src_dir, dst_dir.as_ref(), src_meta, dst_root_meta)?;
    context.check_cancelled()?;
    if context.options.dry_run {
        return Ok(());
    }

    context.progress.set_phase(Phase::Transferring);
    let dst_dir = match dst_dir {
        Some(fd) => fd,
        None => {
            std::fs::create_dir_all(dst)
                .map_err(|err| Error::io("cannot create destination", dst, err))?;
            fsops::open_dir_path(dst)
                .map_err(|err| Error::io("cannot open destination", dst, err))?
        }
    };
    apply::apply_root(context, &src_dir, &dst_dir, &root);
    context.check_cancelled()
}

/// Transfers one file or symlink.
fn run_single(context: &Context<'_>, src: &Path, dst: &Path) -> Result<()> {
    let (src_parent, src_name) = split_parent(src)?;
    let dst_is_dir = std::fs::metadata(dst).is_ok_and(|m| m.is_dir());
    let dst_ends_in_slash = dst.as_os_str().as_bytes().ends_with(b"/");
    let (dst_parent, dst_name) = if dst_is_dir || dst_ends_in_slash {
        (dst.to_path_buf(), src_name.clone())
    } else {
        split_parent(dst)?
    };

    let src_dir = fsops::open_dir_path(&src_parent)
        .map_err(|err| Error::io("cannot open source directory", &src_parent, err))?;
    let dst_dir = fsops::open_dir_path(&dst_parent).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "destination directory {} not found; create it first",
                    dst_parent.display()
                ),
            )
            .with_path(&dst_parent)
        } else {
            Error::io("cannot open destination directory", &dst_parent, err)
        }
    })?;
    let meta = fsops::stat_at(&src_dir, &src_name)
        .map_err(|err| Error::io("cannot read source", src, err))?;

    context.progress.set_phase(Phase::Scanning);
    context.progress.add_entries_total(1);
    let mut root = DirPlan::container(meta);
    let rel = PathBuf::from(&dst_name);
    let dest = match fsops::stat_at(&dst_dir, &dst_name) {
        Ok(dest) => Some(dest),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(Error::io(
                "cannot read destination",
                &dst_parent.join(&dst_name),
                err,
            ));
        }
    };
    if dest.is_some_and(|d| d.kind == Kind::Dir) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "destination {} is a directory; name a path inside it or end it with '/'",
                dst.display()
            ),
        )
        .with_path(dst));
    }
    match fsops::read_dir_names(&dst_dir) {
        Ok(names) => {
            root.stale_temps = names
                .into_iter()
                .filter(|n| fsops::is_temp_name(n))
                .collect()
        }
        Err(err) => tracing::warn!(
            dir = %dst_parent.display(),
            error = %err,
            "cannot list the destination directory to remove stale temporary files"
        ),
    }
    let item = scan::compare_entry(
        context,
        &src_dir,
        Some(&dst_dir),
        &src_name,
        &dst_name,
        scan::RelPath {
            parent: Path::new(""),
            name: rel.as_os_str(),
        },
        meta,
        dest,
    );
    root.items.extend(item);
    if context.options.dry_run {
        return Ok(());
    }

    context.progress.set_phase(Phase::Transferring);
    apply::apply_items_from(context, &src_dir, &src_name, &dst_dir, &root);
    context.check_cancelled()
}

fn split_parent(path: &Path) -> Result<(PathBuf, OsString)> {
    let name = path.file_name().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_os_string()))
}

fn stat_fd(fd: &std::os::fd::OwnedFd, path: &Path) -> Result<Meta> {
    rustix::fs::fstat(fd)
        .map(|stat| Meta::from_stat(&stat))
        .map_err(|err| Error::io("cannot read", path, err.into()))
}

/// Rejects a destination inside the source (the walk would copy the copy)
/// and, for a mirror, a source inside the destination (it would be deleted).
fn check_no_overlap(src: &Path, dst: &Path, mirror: bool) -> Result<()> {
    let src_real =
        std::fs::canonicalize(src).map_err(|err| Error::io("cannot resolve", src, err))?;
    let dst_real = canonicalize_existing_prefix(dst)?;
    if dst_real == src_real {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "source {} and destination {} are the same directory",
                src.display(),
                dst.display()
            ),
        ));
    }
    if dst_real.starts_with(&src_real) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "destination {} is inside the source {}; choose a destination outside it",
                dst.display(),
                src.display()
            ),
        ));
    }
    if mirror && src_real.starts_with(&dst_real) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "source {} is inside the destination {}; a mirror would delete it",
                src.display(),
                dst.display()
            ),
        ));
    }
    Ok(())
}

/// Canonicalizes the longest existing prefix of `path` and appends the rest.
fn canonicalize_existing_prefix(path: &Path) -> Result<PathBuf> {
    let absolute =
        std::path::absolute(path).map_err(|err| Error::io("cannot resolve", path, err))?;
    let mut missing = Vec::new();
    let mut current = absolute.as_path();
    loop {
        match std::fs::canonicalize(current) {
            Ok(real) => {
                let mut result = real;
                result.extend(missing.iter().rev());
                return Ok(result);
            }
            Err(_) => match (current.parent(), current.file_name()) {
                (Some(parent), Some(name)) => {
                    missing.push(name.to_os_string());
                    current = parent;
                }
                _ => return Ok(absolute),
            },
        }
    }
}

/// Raises the soft limit on open files to the hard limit, once per process,
/// because each worker keeps a source and a destination directory open per
/// level of the tree it is in.
fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            if let Err(err) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(error = %err, "cannot raise the open-file limit");
            }
        }
    });
}

/// Returns `rel/name`, or `name` at the root.
fn join_rel(rel: &Path, name: &std::ffi::OsStr) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        rel.join(name)
    }
}
