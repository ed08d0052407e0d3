//! `blit_list`, the entries of a remote directory, and `blit_module_list`,
//! the modules of a daemon.

use std::ffi::c_char;

use blit_client::ModuleInfo;
use blit_transfer::{Entry, EntryKind};

use crate::ffi::{Out, c_text, free_handle, guard, guard_free, handle, nul_terminated};
use crate::result::blit_result;
use crate::summary::item;

/// The type of a listed entry.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum blit_entry_kind {
    /// A regular file.
    File = 0,
    /// A directory.
    Dir = 1,
    /// A symbolic link.
    Symlink = 2,
}

/// One entry of a remote listing. Owned by its list and valid until
/// `blit_list_free`.
#[repr(C)]
pub struct blit_entry {
    /// Path relative to the listed path, followed by a NUL. The bytes are
    /// the daemon's file name bytes and need not be UTF-8.
    pub path: *const u8,
    /// Length of `path` in bytes, without the NUL.
    pub path_len: usize,
    /// The entry's type.
    pub kind: blit_entry_kind,
    /// Size in bytes; 0 for directories and symlinks.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time, below 1,000,000,000.
    pub mtime_nsec: u32,
    /// Target of a symlink followed by a NUL; an empty string for other
    /// kinds.
    pub link_target: *const u8,
    /// Length of `link_target` in bytes, without the NUL.
    pub link_target_len: usize,
}

/// The entries under a remote path, returned by `blit_client_list` and
/// freed with `blit_list_free`.
///
/// A list does not change, so several threads may read it at once.
pub struct blit_list {
    entries: Vec<blit_entry>,
    /// The bytes that `entries` point into, one heap buffer each.
    _strings: Vec<Box<[u8]>>,
}

impl blit_list {
    pub(crate) fn new(entries: Vec<Entry>) -> blit_list {
        let mut strings = Vec::with_capacity(entries.len() * 2);
        let entries = entries
            .into_iter()
            .map(|entry| {
                let path = nul_terminated(&entry.path);
                let link_target = nul_terminated(&entry.link_target);
                let listed = blit_entry {
                    path: path.as_ptr(),
                    path_len: entry.path.len(),
                    kind: match entry.kind {
                        EntryKind::File => blit_entry_kind::File,
                        EntryKind::Dir => blit_entry_kind::Dir,
                        EntryKind::Symlink => blit_entry_kind::Symlink,
                    },
                    size: entry.size,
                    mode: entry.mode,
                    mtime_sec: entry.mtime_sec,
                    mtime_nsec: entry.mtime_nsec,
                    link_target: link_target.as_ptr(),
                    link_target_len: entry.link_target.len(),
                };
                strings.push(path);
                strings.push(link_target);
                listed
            })
            .collect();
        blit_list {
            entries,
            _strings: strings,
        }
    }
}

/// Frees a list and the entries it owns. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn blit_list_free(list: *mut blit_list) {
    guard_free(|| free_handle(list));
}

/// Stores the number of entries in `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_list_len(list: *const blit_list, out: *mut usize) -> blit_result {
    guard("blit_list_len", || {
        let list = handle(list, "list")?;
        let out = Out::new(out, "out")?;
        out.write(list.entries.len());
        Ok(())
    })
}

/// Stores a pointer to entry number `index`, counted from 0, in `*out`.
/// The entry belongs to the list; do not free it.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` when `index` is not below the
/// count from `blit_list_len`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_list_get(
    list: *const blit_list,
    index: usize,
    out: *mut *const blit_entry,
) -> blit_result {
    guard("blit_list_get", || {
        let list = handle(list, "list")?;
        let out = Out::new(out, "out")?;
        out.write(item(&list.entries, index, "entries")?);
        Ok(())
    })
}

/// A module that a daemon exports. Owned by its module list and valid
/// until `blit_module_list_free`.
#[repr(C)]
pub struct blit_module {
    /// Name used in addresses, as NUL-terminated UTF-8.
    pub name: *const c_char,
    /// Free-form description, as NUL-terminated UTF-8; may be empty.
    pub comment: *const c_char,
    /// Whether the module rejects writes and deletions from this caller:
    /// it is read-only, or the token lacks the write permission there.
    pub read_only: bool,
}

/// The modules that the caller may read, returned by
/// `blit_client_list_modules` and freed with `blit_module_list_free`.
///
/// A module list does not change, so several threads may read it at once.
pub struct blit_module_list {
    modules: Vec<blit_module>,
    /// The bytes that `modules` point into, one heap buffer each.
    _strings: Vec<Box<[u8]>>,
}

impl blit_module_list {
    pub(crate) fn new(modules: Vec<ModuleInfo>) -> blit_module_list {
        let mut strings = Vec::with_capacity(modules.len() * 2);
        let modules = modules
            .into_iter()
            .map(|module| {
                let name = c_text(&module.name);
                let comment = c_text(&module.comment);
                let listed = blit_module {
                    name: name.as_ptr().cast(),
                    comment: comment.as_ptr().cast(),
                    read_only: module.read_only,
                };
                strings.push(name);
                strings.push(comment);
                listed
            })
            .collect();
        blit_module_list {
            modules,
            _strings: strings,
        }
    }
}

/// Frees a module list and the modules it owns. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn blit_module_list_free(list: *mut blit_module_list) {
    guard_free(|| free_handle(list));
}

/// Stores the number of modules in `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_module_list_len(
    list: *const blit_module_list,
    out: *mut usize,
) -> blit_result {
    guard("blit_module_list_len", || {
        let list = handle(list, "list")?;
        let out = Out::new(out, "out")?;
        out.write(list.modules.len());
        Ok(())
    })
}

/// Stores a pointer to module number `index`, counted from 0, in `*out`.
/// The module belongs to the list; do not free it.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` when `index` is not below the
/// count from `blit_module_list_len`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_module_list_get(
    list: *const blit_module_list,
    index: usize,
    out: *mut *const blit_module,
) -> blit_result {
    guard("blit_module_list_get", || {
        let list = handle(list, "list")?;
        let out = Out::new(out, "out")?;
        out.write(item(&list.modules, index, "modules")?);
        Ok(())
    })
}
