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
//!
//! [`Filter::nested_in`] adds the patterns of an enclosing tree, such as a
//! daemon module's `exclude` list around a transfer into a subdirectory of
//! the module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, ErrorKind, Result};

/// A compiled list of exclude patterns.
#[derive(Debug, Clone)]
pub struct Filter {
    any_type: GlobSet,
    dirs_only: GlobSet,
    is_empty: bool,
    outer: Option<Arc<Outer>>,
}

/// The patterns of an enclosing tree, from [`Filter::nested_in`].
#[derive(Debug)]
struct Outer {
    filter: Filter,
    /// The filter's root directory, relative to the enclosing tree's root.
    base: PathBuf,
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
            outer: None,
        })
    }

    /// Returns a filter that excludes nothing.
    pub fn empty() -> Filter {
        Filter::new::<&str>(&[]).expect("an empty pattern list always compiles")
    }

    /// Returns this filter extended by `outer`, the patterns of an enclosing
    /// tree in which this filter's root is the directory `base` (relative to
    /// the enclosing root; empty for the root itself).
    ///
    /// The result also excludes an entry when `outer` excludes its path in
    /// the enclosing tree, or any directory between `base` and it. So
    /// entries inside an excluded directory are excluded even where no walk
    /// prunes them, as in a manifest that a peer sends. The directories of
    /// `base` itself are not checked here. Check `base` once with
    /// [`Filter::is_excluded_with_ancestors`] instead.
    pub fn nested_in(mut self, outer: Filter, base: &Path) -> Filter {
        if outer.is_empty && outer.outer.is_none() {
            return self;
        }
        self.outer = Some(Arc::new(Outer {
            filter: outer,
            base: base.to_path_buf(),
        }));
        self
    }

    /// Returns whether this filter excludes nothing at all, so that callers
    /// can skip building the paths it would check.
    pub fn excludes_nothing(&self) -> bool {
        self.is_empty && self.outer.is_none()
    }

    /// Returns whether the entry at `relative_path` (relative to the transfer
    /// root, without a leading `/`) is excluded.
    pub fn is_excluded(&self, relative_path: &Path, is_dir: bool) -> bool {
        self.matches(relative_path, is_dir)
            || self
                .outer
                .as_ref()
                .is_some_and(|outer| outer.excludes(relative_path, is_dir))
    }

    /// Returns whether `relative_path` or any directory that contains it is
    /// excluded. A walk does not need this, because it never descends into
    /// an excluded directory, but a path named in a request does.
    pub fn is_excluded_with_ancestors(&self, relative_path: &Path, is_dir: bool) -> bool {
        let mut prefix = PathBuf::new();
        let mut components = relative_path.components().peekable();
        while let Some(component) = components.next() {
            prefix.push(component);
            let is_last = components.peek().is_none();
            if self.is_excluded(&prefix, if is_last { is_dir } else { true }) {
                return true;
            }
        }
        false
    }

    /// Matches this filter's own patterns, without `outer`.
    fn matches(&self, relative_path: &Path, is_dir: bool) -> bool {
        if self.is_empty {
            return false;
        }
        let candidate = Candidate::new(relative_path);
        self.any_type.is_match_candidate(&candidate)
            || (is_dir && self.dirs_only.is_match_candidate(&candidate))
    }
}

impl Outer {
    /// Checks each directory on the way from `base` to the entry, and the
    /// entry itself, against the enclosing tree's patterns.
    fn excludes(&self, relative_path: &Path, is_dir: bool) -> bool {
        let mut path = self.base.clone();
        let mut components = relative_path.components().peekable();
        while let Some(component) = components.next() {
            path.push(component);
            let is_last = components.peek().is_none();
            if self
                .filter
                .is_excluded(&path, if is_last { is_dir } else { true })
            {
                return true;
            }
        }
        false
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

    #[test]
    fn ancestors_checked_on_request() {
        let filter = Filter::new(&["/secret", "cache/"]).unwrap();
        let path = Path::new("secret/a/b.txt");
        assert!(!filter.is_excluded(path, false));
        assert!(filter.is_excluded_with_ancestors(path, false));
        assert!(filter.is_excluded_with_ancestors(Path::new("x/cache/y"), false));
        // A dir-only pattern applies to the last component only as a dir.
        assert!(!filter.is_excluded_with_ancestors(Path::new("x/cache"), false));
        assert!(!filter.is_excluded_with_ancestors(Path::new("public/a"), false));
    }

    #[test]
    fn nested_filter_applies_outer_at_base() {
        let outer = Filter::new(&["/data/private", "*.key"]).unwrap();
        let inner = Filter::new(&["*.tmp"]).unwrap();
        let nested = inner.nested_in(outer, Path::new("data"));
        // The inner patterns still apply relative to the transfer root.
        assert!(nested.is_excluded(Path::new("a.tmp"), false));
        // An anchored outer pattern matches at its place in the outer tree.
        assert!(nested.is_excluded(Path::new("private"), true));
        assert!(!nested.is_excluded(Path::new("other/private"), true));
        // Entries inside an excluded directory are excluded, too.
        assert!(nested.is_excluded(Path::new("private/x/y"), false));
        assert!(nested.is_excluded(Path::new("sub/id.key"), false));
        assert!(!nested.is_excluded(Path::new("sub/id.pub"), false));
    }

    #[test]
    fn nested_in_module_root() {
        let outer = Filter::new(&["/build"]).unwrap();
        let nested = Filter::empty().nested_in(outer, Path::new(""));
        assert!(nested.is_excluded(Path::new("build"), true));
        assert!(nested.is_excluded(Path::new("build/out.o"), false));
        assert!(!nested.is_excluded(Path::new("src/build"), true));
    }
}
