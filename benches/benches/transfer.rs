//! Benchmarks of the remote transfer's parts, without gRPC: the manifest
//! walk and diff of an unchanged 20,000-entry tree, and the data-plane
//! framing of small and large files over loopback TCP.
//!
//! Run with `cargo bench -p blit-benches --bench transfer`. Fixtures go
//! under /dev/shm when it exists, so the numbers measure blit rather than
//! the disk.

use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use blit_benches::{build_large_file, build_small_tree};
use blit_core::{CancelToken, Filter, LocalOptions, Progress, fsops, run_local};
use blit_transfer::frame::{Content, Frame, FrameReader, FrameWriter};
use blit_transfer::manifest::{self, BATCH_ENTRIES, WalkOptions};
use blit_transfer::receiver::{Receiver, ReceiverOptions, Target};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scratch_dir() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("create a scratch directory in /dev/shm")
    } else {
        tempfile::tempdir().expect("create a scratch directory")
    }
}

/// Walks `src` into manifest batches and applies them to a receiver on
/// `dst`, as a push does before any data moves. Returns the number of
/// files the receiver asked for.
fn walk_and_diff(src: &Path, dst: &Path) -> usize {
    let src_fd = fsops::open_dir_path(src).expect("open the source");
    let dst_fd = fsops::open_dir_path(dst).expect("open the destination");
    let cancel = CancelToken::new();
    let receiver = Receiver::new(
        Some(dst_fd),
        Target::Dir,
        ReceiverOptions {
            mirror: true,
            checksum: false,
            fsync: false,
            dry_run: false,
            filter: Filter::empty(),
        },
        Progress::new(),
        cancel.clone(),
    );
    let filter = Filter::empty();
    let options = WalkOptions {
        filter: &filter,
        checksum: false,
    };
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    let mut first = 0u64;
    let mut needed = 0;
    let mut apply = |batch: &mut Vec<_>, first: &mut u64| {
        let entries = std::mem::take(batch);
        let count = entries.len() as u64;
        needed += receiver.accept_batch(*first, entries).expect("batch").len();
        *first += count;
    };
    manifest::walk(
        &src_fd,
        &options,
        &Progress::new(),
        &cancel,
        &mut |entry| {
            batch.push(entry);
            if batch.len() == BATCH_ENTRIES {
                apply(&mut batch, &mut first);
            }
            Ok(())
        },
        &mut |failure| panic!("walk failed: {failure:?}"),
    )
    .expect("walk");
    if !batch.is_empty() {
        apply(&mut batch, &mut first);
    }
    receiver.end_manifest();
    needed
}

fn manifest_diff(c: &mut Criterion) {
    let scratch = scratch_dir();
    let src = scratch.path().join("src");
    let dst = scratch.path().join("dst");
    build_small_tree(&src, 20_000, 200).expect("build the small tree");
    let options = LocalOptions {
        mirror: true,
        ..LocalOptions::default()
    };
    run_local(&src, &dst, &options, &Progress::new(), &CancelToken::new()).expect("first mirror");

    let mut group = c.benchmark_group("manifest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(20_200));
    group.bench_function("walk_and_diff_20k", |b| {
        b.iter(|| assert_eq!(walk_and_diff(&src, &dst), 0))
    });
    group.finish();
}

/// Sends every file in `files` as frames over one loopback connection and
/// reads them on the other end, into `into` or discarded.
fn send_frames(files: &[PathBuf], into: Option<&OwnedFd>) -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    let paths = files.to_vec();
    let sender = std::thread::spawn(move || {
        let stream = TcpStream::connect(address).expect("connect");
        let mut writer = FrameWriter::socket(&stream);
        for (index, path) in paths.iter().enumerate() {
            let file = OwnedFd::from(std::fs::File::open(path).expect("open a source file"));
            let size = rustix::fs::fstat(&file).expect("fstat").st_size as u64;
            writer
                .write_file(index as u64, size, &file, &mut |_| {})
                .expect("write a frame");
        }
        writer.write_end().expect("write the end frame");
    });
    let (stream, _) = listener.accept().expect("accept");
    let mut reader = FrameReader::socket(stream);
    let mut received = 0;
    loop {
        match reader.next_frame().expect("read a frame") {
            Frame::File { size, .. } => {
                if let Some(file) = into {
                    rustix::fs::ftruncate(file, 0).expect("truncate the output");
                    rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0)).expect("rewind");
                }
                let content = reader
                    .read_content(size, into, &mut |_| {})
                    .expect("read content");
                assert!(matches!(content, Content::Complete), "{content:?}");
                received += size;
            }
            Frame::Failed { message, .. } => panic!("sender failed: {message}"),
            Frame::End => break,
        }
    }
    sender.join().expect("sender thread");
    received
}

fn framing(c: &mut Criterion) {
    let scratch = scratch_dir();
    let small = scratch.path().join("small");
    build_small_tree(&small, 2_000, 20).expect("build the small tree");
    let mut small_files: Vec<PathBuf> = walkdir(&small);
    small_files.sort();
    let small_bytes: u64 = small_files
        .iter()
        .map(|path| std::fs::metadata(path).expect("stat").len())
        .sum();

    const LARGE: usize = 64 << 20;
    let large = scratch.path().join("large");
    build_large_file(&large, LARGE).expect("build the large file");
    let out = OwnedFd::from(
        std::fs::File::create(scratch.path().join("out")).expect("create the output file"),
    );

    let mut group = c.benchmark_group("frames");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(small_bytes));
    group.bench_function("small_files_2000_discarded", |b| {
        b.iter(|| assert_eq!(send_frames(&small_files, None), small_bytes))
    });
    group.throughput(Throughput::Bytes(LARGE as u64));
    group.bench_function("large_file_64m_discarded", |b| {
        b.iter(|| {
            assert_eq!(
                send_frames(std::slice::from_ref(&large), None),
                LARGE as u64
            )
        })
    });
    group.bench_function("large_file_64m_spliced", |b| {
        b.iter(|| {
            assert_eq!(
                send_frames(std::slice::from_ref(&large), Some(&out)),
                LARGE as u64
            )
        })
    });
    group.finish();
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).expect("read a fixture directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

criterion_group!(benches, manifest_diff, framing);
criterion_main!(benches);
