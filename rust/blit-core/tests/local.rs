//! End-to-end tests of the local engine on real temporary directories.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use blit_core::{CancelToken, ChangeKind, ErrorKind, LocalOptions, Progress, Summary, run_local};

fn run(src: &Path, dst: &Path, options: &LocalOptions) -> blit_core::Result<Summary> {
    run_local(src, dst, options, &Progress::new(), &CancelToken::new())
}

fn mirror_options() -> LocalOptions {
    LocalOptions {
        mirror: true,
        ..LocalOptions::default()
    }
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".blit-") && name.ends_with(".tmp") {
            found.push(name);
        }
        if entry.file_type().unwrap().is_dir() {
            found.extend(temp_files_in(&entry.path()));
        }
    }
    found
}

#[test]
fn copy_preserves_content_mode_mtime_and_links() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("a/b/file.txt"), "hello");
    fs::set_permissions(src.join("a/b/file.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    symlink("b/file.txt", src.join("a/link")).unwrap();
    symlink("/nonexistent/target", src.join("dangling")).unwrap();

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(
        fs::read_to_string(dst.join("a/b/file.txt")).unwrap(),
        "hello"
    );
    let src_meta = fs::metadata(src.join("a/b/file.txt")).unwrap();
    let dst_meta = fs::metadata(dst.join("a/b/file.txt")).unwrap();
    assert_eq!(dst_meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(dst_meta.modified().unwrap(), src_meta.modified().unwrap());
    assert_eq!(
        fs::read_link(dst.join("a/link")).unwrap(),
        Path::new("b/file.txt")
    );
    assert_eq!(
        fs::read_link(dst.join("dangling")).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert!(dst.join("empty").is_dir());
    assert_eq!(summary.bytes, 5);
}

#[test]
fn second_run_is_noop() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("x/1"), "one");
    write(&src.join("x/y/2"), "two");
    symlink("1", src.join("x/l")).unwrap();

    run(&src, &dst, &mirror_options()).unwrap();
    let again = run(&src, &dst, &mirror_options()).unwrap();

    assert_eq!(again.transferred, 0);
    assert_eq!(again.deleted, 0);
    assert_eq!(again.skipped, 5);
    assert_eq!(again.bytes, 0);
}

#[test]
fn mirror_deletes_extraneous_but_copy_keeps() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("keep"), "k");
    write(&dst.join("extra/deep/file"), "x");
    write(&dst.join("stray"), "s");

    let copied = run(&src, &dst, &LocalOptions::default()).unwrap();
    assert_eq!(copied.deleted, 0);
    assert!(dst.join("stray").exists());

    let mirrored = run(&src, &dst, &mirror_options()).unwrap();
    assert_eq!(
        mirrored.deleted, 4,
        "extra, extra/deep, extra/deep/file, stray"
    );
    assert!(!dst.join("extra").exists());
    assert!(!dst.join("stray").exists());
    assert!(dst.join("keep").exists());
}

#[test]
fn excluded_destination_entries_survive_mirror() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("a.txt"), "a");
    write(&src.join("skip.log"), "not copied");
    write(&dst.join("local.log"), "mine");
    write(&dst.join("old/nested.log"), "mine too");
    write(&dst.join("old/gone.txt"), "delete me");

    let options = LocalOptions {
        exclude: vec!["*.log".into()],
        ..mirror_options()
    };
    let summary = run(&src, &dst, &options).unwrap();

    assert!(!dst.join("skip.log").exists());
    assert!(dst.join("local.log").exists());
    assert!(dst.join("old/nested.log").exists());
    assert!(!dst.join("old/gone.txt").exists());
    assert_eq!(summary.deleted, 1);
}

#[test]
fn destination_symlink_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    let outside = root.path().join("outside");
    write(&outside.join("precious"), "do not touch");
    write(&src.join("sub/new"), "payload");
    fs::create_dir_all(&dst).unwrap();
    symlink(&outside, dst.join("sub")).unwrap();
    symlink(&outside, dst.join("extraneous")).unwrap();

    let summary = run(&src, &dst, &mirror_options()).unwrap();

    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert!(!dst.join("sub").is_symlink());
    assert_eq!(fs::read_to_string(dst.join("sub/new")).unwrap(), "payload");
    assert!(!dst.join("extraneous").exists());
    assert!(!outside.join("new").exists());
    assert_eq!(
        fs::read_to_string(outside.join("precious")).unwrap(),
        "do not touch"
    );
}

#[test]
fn stale_temporary_files_removed() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("d/f"), "f");
    write(&dst.join("d/.blit-0123456789abcdef.tmp"), "partial");
    write(&dst.join(".blit-fedcba9876543210.tmp"), "partial");

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(
        summary.deleted, 0,
        "temporaries are not counted as deletions"
    );
    assert!(temp_files_in(&dst).is_empty(), "{:?}", temp_files_in(&dst));
}

#[test]
fn dry_run_lists_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("new/file"), "n");
    write(&dst.join("extra"), "e");

    let options = LocalOptions {
        dry_run: true,
        ..mirror_options()
    };
    let summary = run(&src, &dst, &options).unwrap();

    let listed: Vec<(ChangeKind, String)> = summary
        .changes
        .iter()
        .map(|c| (c.kind, c.path.to_string_lossy().into_owned()))
        .collect();
    assert!(
        listed.contains(&(ChangeKind::Delete, "extra".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(ChangeKind::Mkdir, "new".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(ChangeKind::Copy, "new/file".into())),
        "{listed:?}"
    );
    assert_eq!(summary.transferred, 2);
    assert_eq!(summary.deleted, 1);
    assert!(dst.join("extra").exists());
    assert!(!dst.join("new").exists());
}

#[test]
fn dry_run_with_missing_destination_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("f"), "f");

    let options = LocalOptions {
        dry_run: true,
        ..LocalOptions::default()
    };
    let summary = run(&src, &dst, &options).unwrap();

    assert_eq!(summary.transferred, 1);
    assert!(!dst.exists());
}

#[test]
fn checksum_detects_same_size_same_mtime_change() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("f"), "aaaa");
    run(&src, &dst, &LocalOptions::default()).unwrap();
    let mtime = fs::metadata(dst.join("f")).unwrap().modified().unwrap();
    fs::write(dst.join("f"), "bbbb").unwrap();
    fs::File::options()
        .write(true)
        .open(dst.join("f"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let by_mtime = run(&src, &dst, &LocalOptions::default()).unwrap();
    assert_eq!(by_mtime.transferred, 0);
    assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "bbbb");

    let options = LocalOptions {
        checksum: true,
        ..LocalOptions::default()
    };
    let by_hash = run(&src, &dst, &options).unwrap();
    assert_eq!(by_hash.transferred, 1);
    assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "aaaa");
}

#[test]
fn mode_only_change_updates_metadata() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("f"), "content");
    run(&src, &dst, &LocalOptions::default()).unwrap();
    fs::set_permissions(src.join("f"), fs::Permissions::from_mode(0o600)).unwrap();

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(summary.transferred, 1);
    assert_eq!(summary.bytes, 0);
    let mode = fs::metadata(dst.join("f")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

#[test]
fn type_conflicts_follow_mode() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("was_dir"), "now a file");
    write(&src.join("was_file/inner"), "now a dir");
    write(&dst.join("was_dir/old"), "old");
    write(&dst.join("was_file"), "old");

    let copied = run(&src, &dst, &LocalOptions::default()).unwrap();
    assert_eq!(copied.failed, 1, "{:?}", copied.failures);
    assert_eq!(copied.failures[0].path, Path::new("was_dir"));
    assert!(
        dst.join("was_file/inner").is_file(),
        "a file is replaced by a directory"
    );

    let mirrored = run(&src, &dst, &mirror_options()).unwrap();
    assert_eq!(mirrored.failed, 0, "{:?}", mirrored.failures);
    assert_eq!(
        fs::read_to_string(dst.join("was_dir")).unwrap(),
        "now a file"
    );
}

#[test]
fn fifo_is_named_failure_and_rest_completes() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("ok"), "fine");
    let fifo =
        std::ffi::CString::new(src.join("pipe").into_os_string().into_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(summary.failed, 1);
    assert_eq!(summary.failures[0].path, Path::new("pipe"));
    assert!(
        summary.failures[0].message.contains("FIFO"),
        "{}",
        summary.failures[0].message
    );
    assert_eq!(fs::read_to_string(dst.join("ok")).unwrap(), "fine");
    assert!(!dst.join("pipe").exists());
}

#[test]
fn single_file_targets() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("report.txt");
    write(&file, "r");
    let into_dir = root.path().join("dir");
    fs::create_dir(&into_dir).unwrap();

    run(&file, &into_dir, &LocalOptions::default()).unwrap();
    assert_eq!(
        fs::read_to_string(into_dir.join("report.txt")).unwrap(),
        "r"
    );

    let renamed = root.path().join("renamed.txt");
    run(&file, &renamed, &LocalOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(&renamed).unwrap(), "r");

    let missing_dir = root.path().join("nope/");
    let err = run(&file, &missing_dir, &LocalOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn missing_source_and_overlap_rejected() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    write(&src.join("f"), "f");

    let err = run(
        &root.path().join("absent"),
        &root.path().join("d"),
        &LocalOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("absent"), "{}", err.message());

    let err = run(&src, &src.join("inside"), &LocalOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!src.join("inside").exists());

    let err = run(&src, root.path(), &mirror_options()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(src.join("f").exists());
}

#[test]
fn cancelled_transfer_leaves_no_temporaries() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    for index in 0..50 {
        write(&src.join(format!("d{}/f{index}", index % 5)), "data");
    }
    let cancel = CancelToken::new();
    cancel.cancel();

    let err = run_local(
        &src,
        &dst,
        &LocalOptions::default(),
        &Progress::new(),
        &cancel,
    )
    .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Cancelled);
    if dst.exists() {
        assert!(temp_files_in(&dst).is_empty());
    }
}

#[test]
fn progress_totals_match_work() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("a"), "12345");
    write(&src.join("d/b"), "678");
    let progress = Progress::new();

    run_local(
        &src,
        &dst,
        &LocalOptions::default(),
        &progress,
        &CancelToken::new(),
    )
    .unwrap();

    let snapshot = progress.snapshot();
    assert_eq!(snapshot.phase, blit_core::Phase::Done);
    assert_eq!(snapshot.bytes_total, 8);
    assert_eq!(snapshot.bytes_done, 8);
    assert_eq!(snapshot.entries_total, 3);
    assert_eq!(snapshot.entries_done, 3);
}

#[test]
fn non_utf8_names_copied() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    let name = OsStr::from_bytes(b"caf\xe9 \n.txt");
    write(&src.join(name), "bytes");

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(summary.failed, 0);
    assert_eq!(fs::read_to_string(dst.join(name)).unwrap(), "bytes");
}

#[test]
fn directory_mtime_restored_after_update() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    write(&src.join("d/f"), "one");
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::open(src.join("d"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    run(&src, &dst, &LocalOptions::default()).unwrap();

    // Rewriting a file in place leaves its directory's mtime alone.
    fs::write(src.join("d/f"), "two!").unwrap();
    let updated = run(&src, &dst, &LocalOptions::default()).unwrap();
    let again = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(updated.transferred, 1);
    let mtime = fs::metadata(dst.join("d")).unwrap().modified().unwrap();
    assert_eq!(mtime, old);
    assert_eq!(again.transferred, 0);
}

#[test]
fn overly_deep_tree_is_failed_entry() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let dst = root.path().join("dst");
    fs::create_dir(&src).unwrap();
    // Paths this deep exceed PATH_MAX, so the tree is built relative to
    // directory descriptors.
    let mut dir: OwnedFd = fs::File::open(&src).unwrap().into();
    let name = c"d";
    for _ in 0..2100 {
        unsafe {
            assert_eq!(libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755), 0);
            let next = libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY);
            assert!(next >= 0);
            dir = OwnedFd::from_raw_fd(next);
        }
    }

    let summary = run(&src, &dst, &LocalOptions::default()).unwrap();

    assert_eq!(summary.failed, 1);
    assert!(
        summary.failures[0].message.contains("deeper than"),
        "{}",
        summary.failures[0].message
    );
    assert_eq!(summary.transferred, 2048);
}
