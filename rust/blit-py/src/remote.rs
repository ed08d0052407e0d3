//! The `Client` class and the conversions for push, pull, list and purge.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use blit_client::{ClientOptions, TransferOptions};
use blit_core::{Address, RemoteAddress};
use pyo3::prelude::*;

use crate::errors::to_py_err;
use crate::types::PySummary;
use crate::{invalid_argument, patterns, run::run_detached};

/// One entry of a remote listing.
#[pyclass(name = "Entry", module = "blit", frozen)]
pub(crate) struct PyEntry {
    path: PathBuf,
    /// `"file"`, `"dir"` or `"symlink"`.
    #[pyo3(get)]
    kind: &'static str,
    /// Size in bytes; 0 for directories and symlinks.
    #[pyo3(get)]
    size: u64,
    /// Permission bits.
    #[pyo3(get)]
    mode: u32,
    /// Modification time in nanoseconds since the Unix epoch.
    #[pyo3(get)]
    mtime_ns: i128,
    link_target: Option<PathBuf>,
}

#[pymethods]
impl PyEntry {
    /// Path relative to the listed path.
    #[getter]
    fn path(&self) -> &OsStr {
        self.path.as_os_str()
    }

    /// Target of a symlink, else `None`.
    #[getter]
    fn link_target(&self) -> Option<&OsStr> {
        self.link_target.as_ref().map(|p| p.as_os_str())
    }

    fn __repr__(&self) -> String {
        format!(
            "Entry(path={:?}, kind={:?}, size={})",
            self.path, self.kind, self.size
        )
    }
}

impl From<blit_transfer::Entry> for PyEntry {
    fn from(entry: blit_transfer::Entry) -> PyEntry {
        PyEntry {
            path: PathBuf::from(OsStr::from_bytes(&entry.path)),
            kind: match entry.kind {
                blit_transfer::EntryKind::File => "file",
                blit_transfer::EntryKind::Dir => "dir",
                blit_transfer::EntryKind::Symlink => "symlink",
            },
            size: entry.size,
            mode: entry.mode,
            mtime_ns: i128::from(entry.mtime_sec) * 1_000_000_000 + i128::from(entry.mtime_nsec),
            link_target: (entry.kind == blit_transfer::EntryKind::Symlink)
                .then(|| PathBuf::from(OsStr::from_bytes(&entry.link_target))),
        }
    }
}

/// A module that a daemon exports.
#[pyclass(name = "Module", module = "blit", frozen)]
pub(crate) struct PyModuleInfo {
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    comment: String,
    #[pyo3(get)]
    read_only: bool,
}

#[pymethods]
impl PyModuleInfo {
    fn __repr__(&self) -> String {
        format!(
            "Module(name={:?}, comment={:?}, read_only={})",
            self.name,
            self.comment,
            if self.read_only { "True" } else { "False" }
        )
    }
}

impl From<blit_client::ModuleInfo> for PyModuleInfo {
    fn from(module: blit_client::ModuleInfo) -> PyModuleInfo {
        PyModuleInfo {
            name: module.name,
            comment: module.comment,
            read_only: module.read_only,
        }
    }
}

/// The daemon's status.
#[pyclass(name = "DaemonStatus", module = "blit", frozen)]
pub(crate) struct PyDaemonStatus {
    #[pyo3(get)]
    version: String,
    #[pyo3(get)]
    uptime_seconds: u64,
    #[pyo3(get)]
    active_sessions: u32,
    #[pyo3(get)]
    modules: Vec<Py<PyModuleInfo>>,
}

/// A connection to one blitd; see `blit.Client`.
#[pyclass(name = "Client", module = "blit", frozen)]
pub(crate) struct PyClient {
    inner: Arc<blit_client::Client>,
    address: RemoteAddress,
}

/// Parses a daemon URL (`blit://HOST[:PORT]/...`).
fn remote_address(py: Python<'_>, url: &str) -> PyResult<RemoteAddress> {
    match Address::parse(OsStr::new(url)).map_err(|err| to_py_err(py, &err))? {
        Address::Remote(remote) => Ok(remote),
        Address::Local(_) => Err(invalid_argument(
            py,
            format!("{url:?} is not a daemon address; give blit://HOST[:PORT]/MODULE/PATH"),
        )),
    }
}

impl PyClient {
    /// Splits `MODULE/PATH`, or a full URL naming this client's daemon, into
    /// the module and the path inside it.
    fn module_path(&self, py: Python<'_>, target: &str) -> PyResult<(String, Vec<u8>)> {
        let (module, path) = if target.starts_with("blit://") || target.starts_with("blits://") {
            let remote = remote_address(py, target)?;
            // The scheme must match too, or a blits:// target would travel
            // over this client's plain connection.
            if remote.host != self.address.host
                || remote.port != self.address.port
                || remote.tls != self.address.tls
            {
                return Err(invalid_argument(
                    py,
                    format!(
                        "{target} names another daemon than this client's {}",
                        self.address
                    ),
                ));
            }
            (remote.module.unwrap_or_default(), remote.path.into_bytes())
        } else {
            let trimmed = target.trim_start_matches('/');
            match trimmed.split_once('/') {
                Some((module, path)) => (module.to_string(), path.as_bytes().to_vec()),
                None => (trimmed.to_string(), Vec::new()),
            }
        };
        if module.is_empty() {
            return Err(invalid_argument(
                py,
                format!("{target:?} names no module; give MODULE or MODULE/PATH"),
            ));
        }
        Ok((module, path))
    }
}

#[allow(clippy::too_many_arguments)]
fn transfer_options(
    py: Python<'_>,
    mirror: bool,
    dry_run: bool,
    exclude: &[Bound<'_, PyAny>],
    checksum: bool,
    fsync: bool,
    force_grpc_data: bool,
) -> PyResult<TransferOptions> {
    Ok(TransferOptions {
        mirror,
        checksum,
        exclude: patterns(py, exclude)?,
        fsync,
        dry_run,
        force_grpc_data,
    })
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (url, *, token = None, tls_ca = None))]
    fn new(
        py: Python<'_>,
        url: &str,
        token: Option<String>,
        tls_ca: Option<PathBuf>,
    ) -> PyResult<PyClient> {
        crate::logging::install();
        let address = remote_address(py, url)?;
        let options = ClientOptions { token, tls_ca };
        let connect_address = address.clone();
        let client = py
            .detach(|| blit_client::Client::connect(&connect_address, &options))
            .map_err(|err| to_py_err(py, &err))?;
        Ok(PyClient {
            inner: Arc::new(client),
            address,
        })
    }

    /// Returns the daemon's address, as `blit://HOST:PORT/`.
    #[getter]
    fn url(&self) -> String {
        let mut daemon = self.address.clone();
        daemon.module = None;
        daemon.path.clear();
        daemon.to_string()
    }

    fn status(&self, py: Python<'_>) -> PyResult<PyDaemonStatus> {
        let inner = Arc::clone(&self.inner);
        let status = py
            .detach(|| inner.status())
            .map_err(|err| to_py_err(py, &err))?;
        let modules = status
            .modules
            .into_iter()
            .map(|m| Py::new(py, PyModuleInfo::from(m)))
            .collect::<PyResult<_>>()?;
        Ok(PyDaemonStatus {
            version: status.version,
            uptime_seconds: status.uptime_seconds,
            active_sessions: status.active_sessions,
            modules,
        })
    }

    fn list_modules(&self, py: Python<'_>) -> PyResult<Vec<PyModuleInfo>> {
        let inner = Arc::clone(&self.inner);
        let modules = py
            .detach(|| inner.list_modules())
            .map_err(|err| to_py_err(py, &err))?;
        Ok(modules.into_iter().map(PyModuleInfo::from).collect())
    }

    #[pyo3(signature = (path, *, recursive = false))]
    fn list(&self, py: Python<'_>, path: &str, recursive: bool) -> PyResult<Vec<PyEntry>> {
        let (module, inner_path) = self.module_path(py, path)?;
        let inner = Arc::clone(&self.inner);
        let entries = py
            .detach(|| inner.list(&module, &inner_path, recursive))
            .map_err(|err| to_py_err(py, &err))?;
        Ok(entries.into_iter().map(PyEntry::from).collect())
    }

    fn purge(&self, py: Python<'_>, paths: Vec<String>) -> PyResult<u64> {
        let mut module = None;
        let mut inner_paths = Vec::new();
        for path in &paths {
            let (name, inner_path) = self.module_path(py, path)?;
            if module.as_ref().is_some_and(|m| m != &name) {
                return Err(invalid_argument(
                    py,
                    "purge takes paths of one module per call".into(),
                ));
            }
            module = Some(name);
            inner_paths.push(inner_path);
        }
        let Some(module) = module else {
            return Err(invalid_argument(py, "purge needs at least one path".into()));
        };
        let inner = Arc::clone(&self.inner);
        py.detach(|| inner.purge(&module, &inner_paths))
            .map_err(|err| to_py_err(py, &err))
    }

    #[pyo3(signature = (src, dest, *, mirror = false, dry_run = false, exclude = Vec::new(), checksum = false, fsync = false, progress = None, force_grpc_data = false))]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dest: &str,
        mirror: bool,
        dry_run: bool,
        exclude: Vec<Bound<'_, PyAny>>,
        checksum: bool,
        fsync: bool,
        progress: Option<Py<PyAny>>,
        force_grpc_data: bool,
    ) -> PyResult<PySummary> {
        let src = crate::local_path(py, src, "source")?;
        let (module, path) = self.module_path(py, dest)?;
        let options = transfer_options(
            py,
            mirror,
            dry_run,
            &exclude,
            checksum,
            fsync,
            force_grpc_data,
        )?;
        let inner = Arc::clone(&self.inner);
        let summary = run_detached(py, progress, move |progress, cancel| {
            blit_client::push(&inner, &src, &module, &path, &options, progress, cancel)
        })?;
        Ok(PySummary::from(summary))
    }

    #[pyo3(signature = (source, dst, *, mirror = false, dry_run = false, exclude = Vec::new(), checksum = false, fsync = false, progress = None, force_grpc_data = false))]
    #[allow(clippy::too_many_arguments)]
    fn pull(
        &self,
        py: Python<'_>,
        source: &str,
        dst: &Bound<'_, PyAny>,
        mirror: bool,
        dry_run: bool,
        exclude: Vec<Bound<'_, PyAny>>,
        checksum: bool,
        fsync: bool,
        progress: Option<Py<PyAny>>,
        force_grpc_data: bool,
    ) -> PyResult<PySummary> {
        let dst = crate::local_path(py, dst, "destination")?;
        let (module, path) = self.module_path(py, source)?;
        let options = transfer_options(
            py,
            mirror,
            dry_run,
            &exclude,
            checksum,
            fsync,
            force_grpc_data,
        )?;
        let inner = Arc::clone(&self.inner);
        let summary = run_detached(py, progress, move |progress, cancel| {
            blit_client::pull(&inner, &module, &path, &dst, &options, progress, cancel)
        })?;
        Ok(PySummary::from(summary))
    }

    fn __repr__(&self) -> String {
        format!("Client({:?})", self.url())
    }
}

/// Runs the blitd daemon with command-line arguments, as the `blitd`
/// console script does, and returns its exit status.
#[pyfunction]
pub(crate) fn blitd_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| blitd::run_with_args(argv))
}

/// Validates daemon config text with the daemon's own parser and raises the
/// `blit.errors` class of the parser's error: `InvalidArgumentError` for an
/// invalid config, with a message that starts with `origin:LINE:` for
/// errors tied to one line and with `origin:` for the others.
#[pyfunction]
pub(crate) fn check_config(py: Python<'_>, text: &str, origin: &str) -> PyResult<()> {
    // The parser checks that module directories exist, so it touches the
    // file system; release the GIL as for any other I/O.
    let origin = std::path::Path::new(origin);
    match py.detach(|| blitd::config::Config::parse(text, origin)) {
        Ok(_) => Ok(()),
        Err(err) => Err(to_py_err(py, &err)),
    }
}
