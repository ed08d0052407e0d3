//! The `blit._blit` extension module: converts Python arguments to core
//! types, runs transfers with the GIL released, and maps core errors onto
//! the exception classes of `blit.errors`.

mod errors;
mod logging;
mod remote;
mod run;
mod types;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use blit_core::{Address, LocalOptions};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py_err;
use crate::types::{PyChange, PyFailure, PyProgress, PySummary};

/// Copies, or with `mirror=True` mirrors, `src` to `dst`. See
/// `blit.copy` for the full documentation.
#[pyfunction]
#[pyo3(signature = (
    src,
    dst,
    *,
    mirror = false,
    dry_run = false,
    exclude = Vec::new(),
    checksum = false,
    fsync = false,
    progress = None,
    threads = None,
))]
#[allow(clippy::too_many_arguments)]
fn copy(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    mirror: bool,
    dry_run: bool,
    exclude: Vec<Bound<'_, PyAny>>,
    checksum: bool,
    fsync: bool,
    progress: Option<Py<PyAny>>,
    threads: Option<&Bound<'_, PyAny>>,
) -> PyResult<PySummary> {
    let src = local_path(py, src, "source")?;
    let dst = local_path(py, dst, "destination")?;
    let exclude = patterns(py, &exclude)?;
    let threads = match threads {
        Some(threads) => thread_count(py, threads)?,
        None => 0,
    };
    let options = LocalOptions {
        mirror,
        dry_run,
        exclude,
        checksum,
        fsync,
        threads,
    };
    let summary = run::run_detached(py, progress, move |progress, cancel| {
        blit_core::run_local(&src, &dst, &options, progress.as_ref(), cancel)
    })?;
    Ok(PySummary::from(summary))
}

/// Converts exclude patterns, raising `InvalidArgumentError` for one that
/// is not a valid UTF-8 string.
pub(crate) fn patterns(py: Python<'_>, values: &[Bound<'_, PyAny>]) -> PyResult<Vec<String>> {
    values
        .iter()
        .map(|value| {
            value.extract::<String>().map_err(|_| {
                let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
                invalid_argument(
                    py,
                    format!("exclude pattern {shown} is not a valid UTF-8 string"),
                )
            })
        })
        .collect()
}

/// Checks a thread count from Python, raising `InvalidArgumentError` when
/// it is negative or above the engine's maximum.
fn thread_count(py: Python<'_>, threads: &Bound<'_, PyAny>) -> PyResult<usize> {
    match threads.extract::<usize>() {
        Ok(count) if count <= blit_core::MAX_THREADS => Ok(count),
        _ => Err(invalid_argument(
            py,
            format!(
                "threads = {threads} is out of range; give 1 to {}, or 0 for the default",
                blit_core::MAX_THREADS
            ),
        )),
    }
}

pub(crate) fn invalid_argument(py: Python<'_>, message: String) -> PyErr {
    to_py_err(
        py,
        &blit_core::Error::new(blit_core::ErrorKind::InvalidArgument, message),
    )
}

/// Converts a `str`, `bytes` or path-like argument to a local path, raising
/// `InvalidArgumentError` for a remote or v1-style address.
pub(crate) fn local_path(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    role: &str,
) -> PyResult<std::path::PathBuf> {
    let os = py.import("os")?;
    let fspath = os.call_method1("fspath", (value,))?;
    let text: OsString = match fspath.cast::<PyBytes>() {
        Ok(bytes) => OsString::from_vec(bytes.as_bytes().to_vec()),
        Err(_) => fspath.extract()?,
    };
    match Address::parse(&text).map_err(|err| to_py_err(py, &err))? {
        Address::Local(path) => Ok(path),
        // TODO: route remote addresses to push and pull once the daemon
        // client exists.
        Address::Remote(remote) => Err(invalid_argument(
            py,
            format!("{role} {remote} is a remote address, but this argument takes a local path"),
        )),
    }
}

#[pymodule]
fn _blit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", blit_core::VERSION)?;
    m.add("DEFAULT_THREADS", blit_core::default_threads())?;
    m.add("MAX_THREADS", blit_core::MAX_THREADS)?;
    m.add_function(wrap_pyfunction!(copy, m)?)?;
    m.add_class::<PySummary>()?;
    m.add_class::<PyFailure>()?;
    m.add_class::<PyChange>()?;
    m.add_class::<PyProgress>()?;
    m.add_class::<remote::PyClient>()?;
    m.add_class::<remote::PyEntry>()?;
    m.add_class::<remote::PyModuleInfo>()?;
    m.add_class::<remote::PyDaemonStatus>()?;
    m.add_function(wrap_pyfunction!(remote::blitd_main, m)?)?;
    m.add_function(wrap_pyfunction!(remote::check_config, m)?)?;
    Ok(())
}
