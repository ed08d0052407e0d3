//! Exclude patterns with rsync's matching rules.
//!
//! - A pattern without `/` matches an entry's name at any depth.
//! - A leading `/` anchors the pattern at the transfer root.
//! - A trailing `/` matches directories only.
//! - `*` and `?` stay within one path component; `**` crosses components.
//! - A pattern with a `/` inside it, but not at the start, matches the
//!   trailing components of a path at any depth (`a/b` matches `x/a/b`).
//!
//! An excluded directory is not descended into, and an excluded destination
//! entry is never deleted by a mirror.

use std::path::Path;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, ErrorKind, Result};

/// A compiled list of exclude patterns.
#[derive(Debug, Clone)]
pub struct Filter {
    any_type: GlobSet,
    dirs_only: GlobSet,
    is_empty: bool,
}

impl Filter {
    /// Compiles the patterns.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] naming the first pattern that is
    /// empty or not a valid glob.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Filter> {
        let mut any_type = GlobSetBuilder::new();
        let mut dirs_only = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let (glob, dir_only) = translate(pattern)?;
            let compiled = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .empty_alternates(true)
                .build()
                .map_err(|err| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("invalid exclude pattern {pattern:?}: {}", err.kind()),
                    )
                })?;
            if dir_only {
                dirs_only.add(compiled);
            } else {
                any_type.add(compiled);
            }
        }
        let build = |builder: GlobSetBuilder| {
            builder.build().map_err(|err| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("invalid exclude patterns: {err}"),
                )
            })
        };
        Ok(Filter {
            any_type: build(any_type)?,
            dirs_only: build(dirs_only)?,
            is_empty: patterns.is_empty(),
        })
    }

    /// Returns a filter that excludes nothing.
    pub fn empty() -> Filter {
        Filter::new::<&str>(&[]).expect("an empty pattern list always compiles")
    }

    /// Returns whether the entry at `relative_path` (relative to the transfer
    /// root, without a leading `/`) is excluded.
    pub fn is_excluded(&self, relative_path: &Path, is_dir: bool) -> bool {
        if self.is_empty {
            return false;
        }
        let candidate = Candidate::new(relative_path);
        self.any_type.is_match_candidate(&candidate)
            || (is_dir && self.dirs_only.is_match_candidate(&candidate))
    }
}

/// Turns an rsync-style pattern into a glob over root-relative paths and
/// reports whether it applies to directories only.
fn translate(pattern: &str) -> Result<(String, bool)> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid exclude pattern {pattern:?}: {why}"),
        )
    };
    let (body, dir_only) = match pattern.strip_suffix('/') {
        Some(stripped) => (stripped, true),
        None => (pattern, false),
    };
    let (body, anchored) = match body.strip_prefix('/') {
        Some(stripped) => (stripped, true),
        None => (body, false),
    };
    if body.is_empty() {
        return Err(invalid("it matches no name; give a name or glob"));
    }
    let glob = if anchored || body.starts_with("**") {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    Ok((glob, dir_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], path: &str, is_dir: bool) -> bool {
        Filter::new(patterns)
            .unwrap()
            .is_excluded(Path::new(path), is_dir)
    }

    #[test]
    fn name_pattern_matches_any_depth() {
        assert!(excluded(&["*.log"], "a.log", false));
        assert!(excluded(&["*.log"], "x/y/a.log", false));
        assert!(!excluded(&["*.log"], "a.log.txt", false));
    }

    #[test]
    fn leading_slash_anchors_at_root() {
        assert!(excluded(&["/build"], "build", true));
        assert!(!excluded(&["/build"], "src/build", true));
    }

    #[test]
    fn trailing_slash_matches_directories_only() {
        assert!(excluded(&["cache/"], "a/cache", true));
        assert!(!excluded(&["cache/"], "a/cache", false));
    }

    #[test]
    fn star_stays_within_component() {
        assert!(excluded(&["/a/*"], "a/b", false));
        assert!(!excluded(&["/a/*"], "a/b/c", false));
    }

    #[test]
    fn double_star_crosses_components() {
        assert!(excluded(&["/a/**/z"], "a/b/c/z", false));
        assert!(excluded(&["/a/**/z"], "a/z", false));
    }

    #[test]
    fn inner_slash_matches_trailing_components() {
        assert!(excluded(&["sub/file"], "sub/file", false));
        assert!(excluded(&["sub/file"], "x/sub/file", false));
        assert!(!excluded(&["sub/file"], "xsub/file", false));
    }

    #[test]
    fn non_utf8_names_match() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let filter = Filter::new(&["*.bin"]).unwrap();
        let name = OsStr::from_bytes(b"caf\xe9.bin");
        assert!(filter.is_excluded(Path::new(name), false));
    }

    #[test]
    fn invalid_pattern_names_pattern() {
        let err = Filter::new(&["a[b"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("\"a[b\""), "{}", err.message());
        assert!(Filter::new(&["/"]).is_err());
    }
}
