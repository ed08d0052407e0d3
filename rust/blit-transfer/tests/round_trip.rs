//! Walks a source tree, applies it through a receiver, and moves the file
//! bytes over real loopback TCP connections or the buffered path, the way a
//! push or pull does.

use std::ffi::OsString;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;

use blit_core::fsops;
use blit_core::{CancelToken, Filter, Progress, Summary};
use blit_transfer::frame::{FrameReader, FrameWriter};
use blit_transfer::manifest::{self, WalkOptions};
use blit_transfer::receiver::{Receiver, ReceiverOptions, Target};
use blit_transfer::sender::Sender;

#[derive(Clone, Copy, PartialEq)]
enum Route {
    Tcp(usize),
    Buffered,
}

fn options(mirror: bool) -> ReceiverOptions {
    ReceiverOptions {
        mirror,
        checksum: false,
        fsync: false,
        dry_run: false,
        filter: Filter::empty(),
    }
}

fn transfer(src: &Path, dst: &Path, receiver_options: ReceiverOptions, path: Route) -> Summary {
    fs::create_dir_all(dst).unwrap();
    let src_fd = fsops::open_dir_path(src).unwrap();
    let dst_fd = fsops::open_dir_path(dst).unwrap();
    let cancel = CancelToken::new();
    let sender = Arc::new(Sender::new(
        rustix::io::dup(&src_fd).unwrap(),
        None,
        Progress::new(),
        cancel.clone(),
    ));
    let receiver = Arc::new(Receiver::new(
        Some(dst_fd),
        Target::Dir,
        receiver_options,
        Progress::new(),
        cancel.clone(),
    ));

    // Manifest in batches of 3, so groups span batches.
    let filter = Filter::empty();
    let walk_options = WalkOptions {
        filter: &filter,
        checksum: false,
    };
    let mut batch = Vec::new();
    let mut next_index = 0u64;
    let mut failures = Vec::new();
    let flush = |batch: &mut Vec<_>, next_index: &mut u64| {
        let entries: Vec<_> = std::mem::take(batch);
        sender.batch_sent(*next_index, &entries);
        let count = entries.len() as u64;
        let needed = receiver.accept_batch(*next_index, entries).unwrap();
        sender.need(&needed).unwrap();
        *next_index += count;
    };
    manifest::walk(
        &src_fd,
        &walk_options,
        &Progress::new(),
        &cancel,
        &mut |entry| {
            batch.push(entry);
            if batch.len() == 3 {
                flush(&mut batch, &mut next_index);
            }
            Ok(())
        },
        &mut |failure| failures.push(failure),
    )
    .unwrap();
    if !batch.is_empty() {
        flush(&mut batch, &mut next_index);
    }
    for failure in failures {
        receiver.add_failure(failure);
    }
    receiver.end_manifest();
    sender.manifest_complete();

    match path {
        Route::Tcp(connections) => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let senders: Vec<_> = (0..connections)
                .map(|_| {
                    let sender = Arc::clone(&sender);
                    std::thread::spawn(move || {
                        let stream = TcpStream::connect(address).unwrap();
                        sender
                            .run_connection(&mut FrameWriter::socket(&stream))
                            .unwrap();
                    })
                })
                .collect();
            let receivers: Vec<_> = (0..connections)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    let receiver = Arc::clone(&receiver);
                    std::thread::spawn(move || {
                        receiver.receive(&mut FrameReader::socket(stream)).unwrap()
                    })
                })
                .collect();
            for handle in senders.into_iter().chain(receivers) {
                handle.join().unwrap();
            }
        }
        Route::Buffered => {
            let mut bytes = Vec::new();
            sender
                .run_connection(&mut FrameWriter::Writer(&mut bytes))
                .unwrap();
            receiver
                .receive(&mut FrameReader::Reader(Box::new(std::io::Cursor::new(
                    bytes,
                ))))
                .unwrap();
        }
    }
    receiver.finish()
}

/// Returns a manifest entry of a one-byte regular file at `path`.
fn file_entry(path: &[u8]) -> blit_transfer::Entry {
    blit_transfer::Entry {
        path: path.to_vec(),
        kind: blit_transfer::EntryKind::File,
        size: 1,
        mode: 0o644,
        mtime_sec: 0,
        mtime_nsec: 0,
        link_target: Vec::new(),
        hash: None,
    }
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn build_source(src: &Path) {
    write(&src.join("a/one.txt"), b"one");
    write(&src.join("a/b/two.bin"), &vec![7u8; 3 << 20]);
    write(&src.join("zero"), b"");
    fs::create_dir_all(src.join("empty")).unwrap();
    symlink("a/one.txt", src.join("link")).unwrap();
    fs::set_permissions(src.join("a/one.txt"), fs::Permissions::from_mode(0o600)).unwrap();
}

fn assert_same(src: &Path, dst: &Path) {
    for rel in ["a/one.txt", "a/b/two.bin", "zero"] {
        assert_eq!(
            fs::read(src.join(rel)).unwrap(),
            fs::read(dst.join(rel)).unwrap(),
            "{rel}"
        );
        let s = fs::symlink_metadata(src.join(rel)).unwrap();
        let d = fs::symlink_metadata(dst.join(rel)).unwrap();
        assert_eq!(s.permissions().mode(), d.permissions().mode(), "{rel}");
        assert_eq!(s.modified().unwrap(), d.modified().unwrap(), "{rel}");
    }
    assert_eq!(
        fs::read_link(dst.join("link")).unwrap(),
        Path::new("a/one.txt")
    );
    assert!(dst.join("empty").is_dir());
    for rel in ["a", "a/b", "empty"] {
        let s = fs::metadata(src.join(rel)).unwrap().modified().unwrap();
        let d = fs::metadata(dst.join(rel)).unwrap().modified().unwrap();
        assert_eq!(s, d, "{rel} mtime");
    }
}

#[test]
fn tcp_round_trip_then_noop() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    build_source(&src);

    let first = transfer(&src, &dst, options(false), Route::Tcp(2));
    assert_eq!(first.failed, 0, "{:?}", first.failures);
    assert_eq!(first.bytes, 3 + (3 << 20));
    assert_same(&src, &dst);

    let second = transfer(&src, &dst, options(true), Route::Tcp(2));
    assert_eq!(second.transferred, 0, "{second:?}");
    assert_eq!(second.deleted, 0);
    assert_eq!(second.skipped, 7);
}

#[test]
fn buffered_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    build_source(&src);

    let summary = transfer(&src, &dst, options(false), Route::Buffered);

    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_same(&src, &dst);
}

#[test]
fn mirror_deletes_extraneous_and_keeps_excluded() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    build_source(&src);
    write(&dst.join("a/stray"), b"x");
    write(&dst.join("empty/inside/deep"), b"x");
    write(&dst.join("gone/file"), b"x");
    write(&dst.join("keep.log"), b"mine");
    write(&dst.join("a/.blit-0123456789abcdef.tmp"), b"partial");

    let mut mirror = options(true);
    mirror.filter = Filter::new(&["*.log"]).unwrap();
    let summary = transfer(&src, &dst, mirror, Route::Tcp(1));

    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert!(!dst.join("a/stray").exists());
    assert!(!dst.join("empty/inside").exists());
    assert!(!dst.join("gone").exists());
    assert!(dst.join("keep.log").exists());
    assert!(!dst.join("a/.blit-0123456789abcdef.tmp").exists());
    assert_eq!(
        summary.deleted, 5,
        "a/stray, empty/inside and its file, gone and its file"
    );
    assert_same(&src, &dst);
}

#[test]
fn copy_keeps_extraneous() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    build_source(&src);
    write(&dst.join("a/stray"), b"x");

    let summary = transfer(&src, &dst, options(false), Route::Tcp(1));

    assert_eq!(summary.deleted, 0);
    assert!(dst.join("a/stray").exists());
}

#[test]
fn destination_symlink_replaced_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    let outside = root.path().join("outside");
    build_source(&src);
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&dst).unwrap();
    symlink(&outside, dst.join("a")).unwrap();

    let summary = transfer(&src, &dst, options(true), Route::Tcp(1));

    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert!(!dst.join("a").is_symlink());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_same(&src, &dst);
}

#[test]
fn dry_run_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    build_source(&src);
    write(&dst.join("stray"), b"x");

    let mut dry = options(true);
    dry.dry_run = true;
    let summary = transfer(&src, &dst, dry, Route::Tcp(1));

    assert_eq!(summary.deleted, 1);
    assert_eq!(summary.transferred, 7);
    assert!(dst.join("stray").exists());
    assert_eq!(fs::read_dir(&dst).unwrap().count(), 1);
}

#[test]
fn malicious_paths_rejected() {
    let root = tempfile::tempdir().unwrap();
    let dst_fd = fsops::open_dir_path(root.path()).unwrap();
    let receiver = Receiver::new(
        Some(dst_fd),
        Target::Dir,
        options(false),
        Progress::new(),
        CancelToken::new(),
    );
    for path in [&b"../escape"[..], b"/etc/passwd", b"a/../../b", b""] {
        let err = receiver
            .accept_batch(0, vec![file_entry(path)])
            .unwrap_err();
        assert_eq!(
            err.kind(),
            blit_core::ErrorKind::InvalidArgument,
            "{path:?}"
        );
    }
    let err = receiver
        .accept_batch(5, vec![file_entry(b"ok")])
        .unwrap_err();
    assert!(err.message().contains("expected 0"), "{}", err.message());
}

#[test]
fn unrequested_frame_rejected() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    write(&src.join("f"), b"data");
    let dst_fd = fsops::open_dir_path(root.path()).unwrap();
    let receiver = Receiver::new(
        Some(dst_fd),
        Target::Dir,
        options(false),
        Progress::new(),
        CancelToken::new(),
    );
    let file = fs::File::open(src.join("f")).unwrap();
    let mut bytes = Vec::new();
    FrameWriter::Writer(&mut bytes)
        .write_file(42, 4, &std::os::fd::OwnedFd::from(file), &mut |_| {})
        .unwrap();

    let err = receiver
        .receive(&mut FrameReader::Reader(Box::new(std::io::Cursor::new(
            bytes,
        ))))
        .unwrap_err();

    assert!(err.message().contains("not requested"), "{}", err.message());
}

#[test]
fn single_file_target() {
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("src/report.txt"), b"report");
    let dst = root.path().join("dst");
    fs::create_dir_all(&dst).unwrap();
    let src_dir = fsops::open_dir_path(&root.path().join("src")).unwrap();
    let name = OsString::from("report.txt");
    let entry = manifest::single_entry(&src_dir, &name, false).unwrap();
    let sender = Sender::new(src_dir, Some(name), Progress::new(), CancelToken::new());
    let receiver = Receiver::new(
        Some(fsops::open_dir_path(&dst).unwrap()),
        Target::File(OsString::from("renamed.txt")),
        options(false),
        Progress::new(),
        CancelToken::new(),
    );

    sender.batch_sent(0, std::slice::from_ref(&entry));
    let needed = receiver.accept_batch(0, vec![entry]).unwrap();
    sender.need(&needed).unwrap();
    sender.manifest_complete();
    let mut bytes = Vec::new();
    sender
        .run_connection(&mut FrameWriter::Writer(&mut bytes))
        .unwrap();
    receiver
        .receive(&mut FrameReader::Reader(Box::new(std::io::Cursor::new(
            bytes,
        ))))
        .unwrap();
    let summary = receiver.finish();

    assert_eq!(summary.transferred, 1, "{summary:?}");
    assert_eq!(fs::read(dst.join("renamed.txt")).unwrap(), b"report");
}

#[test]
fn setid_bits_dropped_on_receive() {
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("src"), root.path().join("dst"));
    write(&src.join("tool"), b"#!/bin/sh\n");
    fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o6755)).unwrap();

    let first = transfer(&src, &dst, options(false), Route::Tcp(1));
    let again = transfer(&src, &dst, options(false), Route::Tcp(1));

    assert_eq!(first.failed, 0, "{:?}", first.failures);
    let mode = fs::metadata(dst.join("tool")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        again.transferred, 0,
        "the stripped mode counts as up to date"
    );
}

/// A receiver with `count` one-byte files requested, in batches as a
/// session applies them, and a data reader fed through a channel.
struct PendingFixture {
    root: tempfile::TempDir,
    receiver: Arc<Receiver>,
    cancel: CancelToken,
    source: std::os::fd::OwnedFd,
    chunks: Option<crossbeam_channel::Sender<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<blit_core::Result<()>>>,
}

impl PendingFixture {
    fn new(count: u64) -> PendingFixture {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("source"), b"x");
        fs::create_dir(root.path().join("dst")).unwrap();
        let source =
            std::os::fd::OwnedFd::from(fs::File::open(root.path().join("source")).unwrap());
        let cancel = CancelToken::new();
        let receiver = Arc::new(Receiver::new(
            Some(fsops::open_dir_path(&root.path().join("dst")).unwrap()),
            Target::Dir,
            options(false),
            Progress::new(),
            cancel.clone(),
        ));
        let entries: Vec<_> = (0..count)
            .map(|n| file_entry(format!("f{n:06}").as_bytes()))
            .collect();
        for (number, batch) in entries.chunks(1000).enumerate() {
            let needed = receiver
                .accept_batch(number as u64 * 1000, batch.to_vec())
                .unwrap();
            assert_eq!(needed.len(), batch.len());
        }

        let (chunks, reader_input) = blit_transfer::chunks::ChunkReader::channel();
        let reader = {
            let receiver = Arc::clone(&receiver);
            std::thread::spawn(move || {
                receiver.receive(&mut FrameReader::Reader(Box::new(reader_input)))
            })
        };
        let fixture = PendingFixture {
            root,
            receiver,
            cancel,
            source,
            chunks: Some(chunks),
            reader: Some(reader),
        };
        // Once the first file is in place, the reader is running.
        fixture.send_files(0..1);
        let first = fixture.root.path().join("dst/f000000");
        wait_until("the first file to arrive", || first.exists());
        fixture
    }

    fn send_files(&self, indices: std::ops::Range<u64>) {
        let mut bytes = Vec::new();
        let mut writer = FrameWriter::Writer(&mut bytes);
        for index in indices {
            // The writer reads from the descriptor's offset.
            rustix::fs::seek(&self.source, rustix::fs::SeekFrom::Start(0)).unwrap();
            writer
                .write_file(index, 1, &self.source, &mut |_| {})
                .unwrap();
        }
        drop(writer);
        self.send_bytes(bytes);
    }

    fn send_bytes(&self, bytes: Vec<u8>) {
        self.chunks.as_ref().unwrap().send(bytes).unwrap();
    }

    /// Runs `wait_for_room` on a thread and returns a flag set when it
    /// returns.
    fn wait_in_background(&self) -> Arc<std::sync::atomic::AtomicBool> {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let receiver = Arc::clone(&self.receiver);
        let flag = Arc::clone(&done);
        std::thread::spawn(move || {
            receiver.wait_for_room();
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        done
    }

    fn finish(mut self) -> blit_core::Result<()> {
        self.chunks.take();
        self.reader.take().unwrap().join().unwrap()
    }
}

/// Polls `condition` for up to a minute, a deadline far beyond any
/// machine's need, so the test waits for an event rather than timing it.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn is_set(flag: &std::sync::atomic::AtomicBool) -> bool {
    flag.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn manifest_waits_for_pending_files() {
    use blit_transfer::receiver::MAX_PENDING_FILES;
    let total = MAX_PENDING_FILES as u64 + 1000;
    let fixture = PendingFixture::new(total);

    let done = fixture.wait_in_background();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !is_set(&done),
        "the manifest went ahead with {total} files pending"
    );

    // Below three quarters of the bound, the batch goes ahead.
    fixture.send_files(1..total / 2);
    wait_until("the held-back batch to go ahead", || is_set(&done));

    fixture.send_files(total / 2..total);
    let mut end = Vec::new();
    FrameWriter::Writer(&mut end).write_end().unwrap();
    fixture.send_bytes(end);
    let receiver = Arc::clone(&fixture.receiver);
    fixture.finish().unwrap();
    let summary = receiver.finish();
    assert_eq!(summary.transferred, total);
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
}

#[test]
fn wait_ends_when_reader_fails() {
    let fixture = PendingFixture::new(blit_transfer::receiver::MAX_PENDING_FILES as u64 + 10);
    let done = fixture.wait_in_background();

    // An unknown frame tag breaks the data stream: the files it would have
    // carried never come, so waiting for them must stop.
    fixture.send_bytes(vec![0xee]);
    wait_until("the wait to end after the reader failed", || is_set(&done));
    let err = fixture.finish().unwrap_err();
    assert!(
        err.message().contains("unknown data frame tag"),
        "{}",
        err.message()
    );
}

#[test]
fn wait_ends_on_cancel() {
    let fixture = PendingFixture::new(blit_transfer::receiver::MAX_PENDING_FILES as u64 + 10);
    let done = fixture.wait_in_background();

    fixture.cancel.cancel();
    wait_until("the wait to end after cancelling", || is_set(&done));
    fixture.send_files(1..2);
    assert!(fixture.finish().is_err());
}

/// A directory that appears after its parent's listing was read is found,
/// not created again: its `mkdir` would fail.
#[test]
fn late_directory_found_not_recreated() {
    let root = tempfile::tempdir().unwrap();
    let receiver = Receiver::new(
        Some(fsops::open_dir_path(root.path()).unwrap()),
        Target::Dir,
        options(false),
        Progress::new(),
        CancelToken::new(),
    );
    let link = blit_transfer::Entry {
        kind: blit_transfer::EntryKind::Symlink,
        size: 0,
        link_target: b"elsewhere".to_vec(),
        ..file_entry(b"a")
    };
    let late = blit_transfer::Entry {
        kind: blit_transfer::EntryKind::Dir,
        size: 0,
        mode: 0o755,
        ..file_entry(b"late")
    };

    // The first batch starts the root's group, which lists the root.
    receiver.accept_batch(0, vec![link]).unwrap();
    fs::create_dir(root.path().join("late")).unwrap();
    receiver.accept_batch(1, vec![late]).unwrap();

    let summary = receiver.finish();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert!(root.path().join("late").is_dir());
}
