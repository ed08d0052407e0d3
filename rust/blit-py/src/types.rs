//! Python classes for transfer results and progress.

use std::path::PathBuf;

use blit_core::{Change, Failure, ProgressSnapshot, Summary};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One entry that could not be transferred or deleted.
#[pyclass(name = "Failure", module = "blit", frozen)]
pub(crate) struct PyFailure {
    path: PathBuf,
    /// The reason the entry failed.
    #[pyo3(get)]
    message: String,
}

#[pymethods]
impl PyFailure {
    /// Path relative to the source root, or for a failed deletion to the
    /// destination root.
    #[getter]
    fn path(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }

    fn __repr__(&self) -> String {
        format!("Failure(path={:?}, message={:?})", self.path, self.message)
    }
}

/// One change that a dry run would make.
#[pyclass(name = "Change", module = "blit", frozen)]
pub(crate) struct PyChange {
    path: PathBuf,
    /// `"copy"`, `"symlink"`, `"mkdir"`, `"metadata"` or `"delete"`.
    #[pyo3(get)]
    action: &'static str,
}

#[pymethods]
impl PyChange {
    /// Path relative to the destination root.
    #[getter]
    fn path(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }

    fn __repr__(&self) -> String {
        format!("Change(action={:?}, path={:?})", self.action, self.path)
    }
}

/// Counts and details of a finished transfer.
#[pyclass(name = "Summary", module = "blit", frozen)]
pub(crate) struct PySummary {
    #[pyo3(get)]
    transferred: u64,
    #[pyo3(get)]
    skipped: u64,
    #[pyo3(get)]
    deleted: u64,
    #[pyo3(get)]
    failed: u64,
    #[pyo3(get)]
    bytes: u64,
    #[pyo3(get)]
    seconds: f64,
    #[pyo3(get)]
    dry_run: bool,
    failures: Vec<Py<PyFailure>>,
    changes: Vec<Py<PyChange>>,
    inner: Summary,
}

impl From<Summary> for PySummary {
    fn from(summary: Summary) -> PySummary {
        Python::attach(|py| {
            let failures = summary
                .failures
                .iter()
                .map(|failure: &Failure| {
                    Py::new(
                        py,
                        PyFailure {
                            path: failure.path.clone(),
                            message: failure.message.clone(),
                        },
                    )
                    .expect("allocating a small Python object")
                })
                .collect();
            let changes = summary
                .changes
                .iter()
                .map(|change: &Change| {
                    Py::new(
                        py,
                        PyChange {
                            path: change.path.clone(),
                            action: change.kind.as_str(),
                        },
                    )
                    .expect("allocating a small Python object")
                })
                .collect();
            PySummary {
                transferred: summary.transferred,
                skipped: summary.skipped,
                deleted: summary.deleted,
                failed: summary.failed,
                bytes: summary.bytes,
                seconds: summary.elapsed.as_secs_f64(),
                dry_run: summary.dry_run,
                failures,
                changes,
                inner: summary,
            }
        })
    }
}

#[pymethods]
impl PySummary {
    /// Returns every failed entry, sorted by path.
    #[getter]
    fn failures(&self, py: Python<'_>) -> Vec<Py<PyFailure>> {
        self.failures.iter().map(|f| f.clone_ref(py)).collect()
    }

    /// For a dry run, every change it would make, sorted by path.
    #[getter]
    fn changes(&self, py: Python<'_>) -> Vec<Py<PyChange>> {
        self.changes.iter().map(|c| c.clone_ref(py)).collect()
    }

    /// Returns whether no entry failed.
    #[getter]
    fn ok(&self) -> bool {
        self.failed == 0
    }

    /// Returns the summary as a dict with the stable keys of `--json`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("transferred", self.transferred)?;
        dict.set_item("skipped", self.skipped)?;
        dict.set_item("deleted", self.deleted)?;
        dict.set_item("failed", self.failed)?;
        dict.set_item("bytes", self.bytes)?;
        dict.set_item("seconds", self.seconds)?;
        dict.set_item("dry_run", self.dry_run)?;
        let failures = self
            .inner
            .failures
            .iter()
            .map(|f| {
                let item = PyDict::new(py);
                item.set_item("path", f.path.as_os_str())?;
                item.set_item("message", &f.message)?;
                Ok(item)
            })
            .collect::<PyResult<Vec<_>>>()?;
        dict.set_item("failures", failures)?;
        let changes = self
            .inner
            .changes
            .iter()
            .map(|c| {
                let item = PyDict::new(py);
                item.set_item("action", c.kind.as_str())?;
                item.set_item("path", c.path.as_os_str())?;
                Ok(item)
            })
            .collect::<PyResult<Vec<_>>>()?;
        dict.set_item("changes", changes)?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!(
            "Summary(transferred={}, skipped={}, deleted={}, failed={}, bytes={}, seconds={:.3}, \
             dry_run={})",
            self.transferred,
            self.skipped,
            self.deleted,
            self.failed,
            self.bytes,
            self.seconds,
            if self.dry_run { "True" } else { "False" }
        )
    }
}

/// A snapshot of a running transfer, passed to the `progress` callback.
#[pyclass(name = "Progress", module = "blit", frozen)]
pub(crate) struct PyProgress {
    /// `"scanning"`, `"transferring"` or `"done"`.
    #[pyo3(get)]
    phase: &'static str,
    #[pyo3(get)]
    entries_done: u64,
    #[pyo3(get)]
    entries_total: u64,
    #[pyo3(get)]
    bytes_done: u64,
    #[pyo3(get)]
    bytes_total: u64,
    current_path: Option<PathBuf>,
}

impl From<ProgressSnapshot> for PyProgress {
    fn from(snapshot: ProgressSnapshot) -> PyProgress {
        PyProgress {
            phase: snapshot.phase.as_str(),
            entries_done: snapshot.entries_done,
            entries_total: snapshot.entries_total,
            bytes_done: snapshot.bytes_done,
            bytes_total: snapshot.bytes_total,
            current_path: snapshot.current_path,
        }
    }
}

#[pymethods]
impl PyProgress {
    /// Returns the path most recently started, relative to the transfer root.
    #[getter]
    fn current_path(&self) -> Option<&std::ffi::OsStr> {
        self.current_path.as_ref().map(|p| p.as_os_str())
    }

    fn __repr__(&self) -> String {
        format!(
            "Progress(phase={:?}, entries={}/{}, bytes={}/{})",
            self.phase, self.entries_done, self.entries_total, self.bytes_done, self.bytes_total
        )
    }
}
