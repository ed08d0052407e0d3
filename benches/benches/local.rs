//! Benchmarks of the local engine's parts: the scan and compare of an
//! unchanged 20,000-entry tree, and the file copy loop.
//!
//! Run with `cargo bench -p blit-benches`. Fixtures go under /dev/shm when
//! it exists, so the numbers measure blit rather than the disk.

use std::path::PathBuf;

use blit_benches::{build_large_file, build_small_tree};
use blit_core::{CancelToken, LocalOptions, Progress, run_local};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scratch_dir() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("create a scratch directory in /dev/shm")
    } else {
        tempfile::tempdir().expect("create a scratch directory")
    }
}

fn noop_mirror(c: &mut Criterion) {
    let scratch = scratch_dir();
    let src = scratch.path().join("src");
    let dst = scratch.path().join("dst");
    build_small_tree(&src, 20_000, 200).expect("build the small tree");
    let options = LocalOptions {
        mirror: true,
        ..LocalOptions::default()
    };
    run_local(&src, &dst, &options, &Progress::new(), &CancelToken::new()).expect("first mirror");

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(20_200));
    group.bench_function("noop_mirror_20k", |b| {
        b.iter(|| {
            let summary = run_local(&src, &dst, &options, &Progress::new(), &CancelToken::new())
                .expect("no-op mirror");
            assert_eq!(summary.transferred, 0);
        })
    });
    group.finish();
}

fn copy_loop(c: &mut Criterion) {
    const SIZE: usize = 256 << 20;
    let scratch = scratch_dir();
    let src = scratch.path().join("src");
    std::fs::create_dir(&src).expect("create the source directory");
    build_large_file(&src.join("large"), SIZE).expect("build the large file");

    let mut group = c.benchmark_group("copy");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    let mut round = 0;
    group.bench_function("large_file_256m", |b| {
        b.iter(|| {
            // A fresh destination each round, so every round copies.
            round += 1;
            let dst = scratch.path().join(format!("dst{round}"));
            let summary = run_local(
                &src,
                &dst,
                &LocalOptions::default(),
                &Progress::new(),
                &CancelToken::new(),
            )
            .expect("copy");
            assert_eq!(summary.bytes, SIZE as u64);
            std::fs::remove_dir_all(&dst).expect("remove the round's destination");
        })
    });
    group.finish();
}

criterion_group!(benches, noop_mirror, copy_loop);
criterion_main!(benches);
