//! Plumbing shared by every export: the panic guard, the thread-local last
//! error, and the checks that turn C pointers into Rust references.
//!
//! An export runs its body inside [`guard`], which catches panics, stores
//! the message of a failure for `blit_last_error` and returns the status.
//! Bodies check every pointer argument before doing any work, and write
//! out-parameters only once the work has succeeded.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::result::blit_result;

/// A failed call: the status to return and the message for
/// `blit_last_error`.
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) result: blit_result,
    message: String,
    /// Whether the message concerns an argument of the C call, and so
    /// needs the name of the function in front to make sense.
    about_argument: bool,
}

/// The result of an export's body.
pub(crate) type CallResult = Result<(), CallError>;

impl CallError {
    /// Creates an error about an argument of the call, such as a NULL
    /// pointer; the guard puts the function's name in front.
    pub(crate) fn argument(message: impl Into<String>) -> CallError {
        CallError {
            result: blit_result::InvalidArgument,
            message: message.into(),
            about_argument: true,
        }
    }

    /// Creates the status for a transfer that finished with failed entries.
    pub(crate) fn partial(message: String) -> CallError {
        CallError {
            result: blit_result::Partial,
            message,
            about_argument: false,
        }
    }
}

impl From<blit_core::Error> for CallError {
    fn from(err: blit_core::Error) -> CallError {
        CallError {
            result: blit_result::from_kind(err.kind()),
            message: err.message().to_string(),
            about_argument: false,
        }
    }
}

thread_local! {
    /// The message of the most recent guarded call on this thread; empty
    /// after a call that succeeded.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs the body of the export `function`, turning a panic into
/// [`blit_result::Internal`] and recording the message of any failure for
/// `blit_last_error`.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> CallResult) -> blit_result {
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    let (result, message) = match outcome {
        Ok(Ok(())) => (blit_result::Ok, String::new()),
        Ok(Err(err)) if err.about_argument => (err.result, format!("{function}: {}", err.message)),
        Ok(Err(err)) => (err.result, err.message),
        Err(payload) => (
            blit_result::Internal,
            format!(
                "{function}: internal error: {}; this is a bug in blit, please report it",
                panic_message(payload.as_ref())
            ),
        ),
    };
    // Replacing a String does not panic in practice. The catch keeps the
    // rule that nothing unwinds out of an export even so.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| set_last_error(message)));
    result
}

/// Runs the body of a `_free` function, which returns nothing, so that a
/// panic in a destructor stops there.
pub(crate) fn guard_free(body: impl FnOnce()) {
    let _ = panic::catch_unwind(AssertUnwindSafe(body));
}

/// Returns the text that a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

/// Copies the last error message of this thread into a caller's buffer.
///
/// The message is the one set by the most recent call on the calling
/// thread, and is empty when that call returned `BLIT_RESULT_OK`. It names
/// the path, module or address involved and suggests the next step. Calls to
/// `blit_last_error`, `blit_result_name`, `blit_version` and the `_free`
/// functions leave it unchanged.
///
/// Writes at most `len - 1` bytes of the message and a NUL into `buf`,
/// cutting the message at a UTF-8 character boundary if it does not fit.
/// When `out_len` is not NULL, stores the full length of the message in
/// bytes, without the NUL, so that a caller can retry with a larger buffer
/// when `*out_len >= len`. Pass `buf = NULL` and `len = 0` to ask for the
/// length only.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` if `buf` is NULL while `len` is
/// not 0, and leaves the message unchanged in that case too.
#[unsafe(no_mangle)]
pub extern "C" fn blit_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> blit_result {
    if buf.is_null() && len != 0 {
        return blit_result::InvalidArgument;
    }
    let copied = panic::catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.with(|last| {
            let message = last.borrow();
            if len > 0 {
                let mut end = message.len().min(len - 1);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                // SAFETY: the caller provides `len` writable bytes at `buf`,
                // and `end < len` leaves room for the NUL.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), end);
                    *buf.add(end) = 0;
                }
            }
            if !out_len.is_null() {
                // SAFETY: the caller passes NULL or a writable `size_t`.
                unsafe { *out_len = message.len() };
            }
        })
    }));
    match copied {
        Ok(()) => blit_result::Ok,
        Err(_) => blit_result::Internal,
    }
}

/// A checked out-parameter: not NULL, written once the call has succeeded.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks that the out-parameter `name` is not NULL.
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Out<T>, CallError> {
        NonNull::new(ptr)
            .map(Out)
            .ok_or_else(|| CallError::argument(format!("{name} is NULL")))
    }

    /// Stores the result of the call.
    pub(crate) fn write(self, value: T) {
        // SAFETY: the caller of the export passes a pointer to writable
        // memory for a `T`, checked for NULL in `new`.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Borrows the handle `name`, rejecting NULL.
///
/// The C caller guarantees that a non-NULL handle came from the matching
/// `_new` function (or a call that creates one) and was not freed.
pub(crate) fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, CallError> {
    // SAFETY: see above; `as_ref` returns None for NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| CallError::argument(format!("{name} is NULL")))
}

/// Borrows the handle `name` for changes, rejecting NULL.
pub(crate) fn handle_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, CallError> {
    // SAFETY: as for `handle`; the header forbids changing a handle from
    // two threads at once.
    unsafe { ptr.as_mut() }.ok_or_else(|| CallError::argument(format!("{name} is NULL")))
}

/// Moves a value into a new handle that the caller frees with the matching
/// `_free` function.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op.
pub(crate) fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller passes a handle from `into_handle` that it has
        // not freed before.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Reads the NUL-terminated argument `name` as bytes, rejecting NULL.
pub(crate) fn c_bytes<'a>(ptr: *const c_char, name: &str) -> Result<&'a [u8], CallError> {
    if ptr.is_null() {
        return Err(CallError::argument(format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the
    // call.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// Reads the NUL-terminated argument `name` as UTF-8 text, rejecting NULL
/// and invalid UTF-8.
pub(crate) fn c_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, CallError> {
    let bytes = c_bytes(ptr, name)?;
    std::str::from_utf8(bytes).map_err(|_| {
        CallError::argument(format!(
            "{name} {:?} is not valid UTF-8",
            String::from_utf8_lossy(bytes)
        ))
    })
}

/// Reads the NUL-terminated argument `name` as a file-system path, which
/// may be any bytes, as on POSIX.
pub(crate) fn c_path(ptr: *const c_char, name: &str) -> Result<PathBuf, CallError> {
    let bytes = c_bytes(ptr, name)?;
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)).to_path_buf())
}

/// Copies bytes into a buffer with a NUL after them, so that C can read
/// them either with their length or as a C string.
pub(crate) fn nul_terminated(bytes: &[u8]) -> Box<[u8]> {
    let mut buffer = Vec::with_capacity(bytes.len() + 1);
    buffer.extend_from_slice(bytes);
    buffer.push(0);
    buffer.into_boxed_slice()
}

/// Copies text into a NUL-terminated buffer, replacing any NUL inside it
/// with U+FFFD so that C reads the whole text.
pub(crate) fn c_text(text: &str) -> Box<[u8]> {
    if text.contains('\0') {
        nul_terminated(text.replace('\0', "\u{FFFD}").as_bytes())
    } else {
        nul_terminated(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 512];
        let mut len = 0;
        assert_eq!(
            blit_last_error(buf.as_mut_ptr(), buf.len(), &mut len),
            blit_result::Ok
        );
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(text.to_bytes().len(), len);
        text.to_str().expect("messages are UTF-8").to_string()
    }

    #[test]
    fn guard_turns_panic_into_internal() {
        let result = guard("blit_test", || panic!("boom"));

        assert_eq!(result, blit_result::Internal);
        let message = last_error();
        assert!(
            message.starts_with("blit_test: internal error: boom"),
            "{message}"
        );
    }

    #[test]
    fn guard_prefixes_argument_errors() {
        let result = guard("blit_test", || Err(CallError::argument("src is NULL")));

        assert_eq!(result, blit_result::InvalidArgument);
        assert_eq!(last_error(), "blit_test: src is NULL");
    }

    #[test]
    fn guard_clears_message_on_success() {
        guard("blit_test", || Err(CallError::argument("src is NULL")));

        assert_eq!(guard("blit_test", || Ok(())), blit_result::Ok);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn last_error_truncates_at_char_boundary() {
        guard("blit_test", || Err(CallError::argument("é")));
        // "blit_test: é" is 13 bytes; 12 of them end inside the "é".
        let mut buf = [1 as c_char; 12];
        let mut len = 0;

        assert_eq!(
            blit_last_error(buf.as_mut_ptr(), buf.len(), &mut len),
            blit_result::Ok
        );
        assert_eq!(len, 13);
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(text.to_bytes(), b"blit_test: ");
    }

    #[test]
    fn last_error_reports_length_only() {
        guard("blit_test", || Err(CallError::argument("x")));
        let mut len = 0;

        assert_eq!(
            blit_last_error(std::ptr::null_mut(), 0, &mut len),
            blit_result::Ok
        );
        assert_eq!(len, "blit_test: x".len());
        assert_eq!(
            blit_last_error(std::ptr::null_mut(), 4, &mut len),
            blit_result::InvalidArgument
        );
    }

    #[test]
    fn c_str_rejects_invalid_utf8() {
        let bytes = b"mod\xff\0";

        let err = c_str(bytes.as_ptr().cast(), "module").unwrap_err();

        assert_eq!(err.result, blit_result::InvalidArgument);
        assert!(err.message.contains("not valid UTF-8"), "{}", err.message);
    }

    #[test]
    fn c_text_replaces_nul() {
        assert_eq!(&*c_text("a\0b"), "a\u{FFFD}b\0".as_bytes());
    }
}
