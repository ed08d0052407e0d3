"""Local copy through the built module: what arrives, with which metadata."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

import blit

# Sizes in MiB of the big file that progress tests copy. The next size is
# tried only when a copy finished before its first progress report.
BIG_SIZES_MIB = (512, 1024)

# A fixed mtime with non-zero nanoseconds, so that a copy which keeps only
# seconds or microseconds shows up.
MTIME_NS = 1_600_000_000_123_456_789


def test_copy_nested_tree(src, dst, tree_diff):
    src.file("top.txt", "top")
    src.file("a/b/c/deep.txt", "deep")
    src.file("a/side.bin", os.urandom(3000))
    src.dir("a/b/empty")

    summary = blit.copy(src.root, dst)

    assert tree_diff(src.root, dst) == []
    # Entries: top.txt, a, a/side.bin, a/b, a/b/c, a/b/c/deep.txt and a/b/empty.
    assert summary.transferred == 7
    assert summary.failed == 0
    assert summary.ok
    assert summary.bytes == 3 + 4 + 3000
    assert not summary.dry_run


@pytest.mark.parametrize(
    "options",
    [{"threads": 1}, {"threads": 3}, {"fsync": True}],
    ids=["one-thread", "three-threads", "fsync"],
)
def test_copy_options_same_result(src, dst, tree_diff, options):
    for index in range(20):
        src.file(f"d{index % 4}/f{index}.txt", f"file {index}")
    src.dir("empty")

    summary = blit.copy(src.root, dst, **options)

    assert tree_diff(src.root, dst) == []
    assert summary.transferred == 25
    assert summary.failed == 0


def test_copy_creates_missing_parents(src, tmp_path, tree_diff):
    src.file("f.txt", "x")
    dst = tmp_path / "one" / "two" / "dst"

    blit.copy(src.root, dst)

    assert tree_diff(src.root, dst) == []


def test_copy_empty_files_and_dirs(src, dst, tree_diff):
    src.file("empty.txt")
    src.file("sub/also-empty")
    src.dir("empty-dir")
    src.dir("sub/nested/empty")

    summary = blit.copy(src.root, dst)

    assert tree_diff(src.root, dst) == []
    assert (dst / "empty.txt").stat().st_size == 0
    assert (dst / "empty-dir").is_dir()
    assert list((dst / "sub" / "nested" / "empty").iterdir()) == []
    assert summary.bytes == 0


def test_copy_large_file_content(big_files, tmp_path, big_dst, file_hash):
    big, digest = big_files.get(50)
    big_dst.mkdir()

    summary = blit.copy(big, big_dst / "large.bin")

    assert file_hash(big_dst / "large.bin") == digest
    assert summary.bytes == 50 * (1 << 20)


def test_copy_unicode_names(src, dst, tree_diff):
    names = ["über", "naïve café.txt", "日本語.txt", "emoji-🦀.rs", "Ελληνικά", "עברית"]
    for name in names:
        src.file(f"über/{name}", name)

    blit.copy(src.root, dst)

    assert tree_diff(src.root, dst) == []
    assert sorted(os.listdir(dst / "über")) == sorted(names)


def test_copy_names_with_spaces_and_newlines(src, dst, tree_diff):
    names = ["with space", " leading", "trailing ", "line\nbreak", "tab\there", "\n"]
    for name in names:
        src.file(f"dir with space/{name}", name)
    src.dir("newline\ndir")

    blit.copy(src.root, dst)

    assert tree_diff(src.root, dst) == []
    assert sorted(os.listdir(dst / "dir with space")) == sorted(names)
    assert (dst / "newline\ndir").is_dir()


def test_copy_non_utf8_names(src, dst, tree_diff):
    src.file(b"caf\xe9/\xff\xfe.bin", b"latin-1 names")
    src.symlink(b"link-\x80", b"caf\xe9/\xff\xfe.bin")
    src_bytes = os.fsencode(src.root)
    dst_bytes = os.fsencode(dst)

    summary = blit.copy(src_bytes, dst_bytes)

    copied = os.path.join(dst_bytes, b"caf\xe9", b"\xff\xfe.bin")
    assert os.path.isfile(copied)
    with open(copied, "rb") as handle:
        assert handle.read() == b"latin-1 names"
    assert os.readlink(os.path.join(dst_bytes, b"link-\x80")) == b"caf\xe9/\xff\xfe.bin"
    assert tree_diff(src_bytes, dst_bytes) == []
    assert summary.failed == 0


def test_copy_symlinks_as_links(src, dst, tree_diff):
    src.file("target.txt", "target")
    src.dir("real-dir")
    src.file("real-dir/inside.txt", "inside")
    links = {
        "relative": "target.txt",
        "absolute": str(src.root / "target.txt"),
        "dangling": "no/such/file",
        "loop-a": "loop-b",
        "loop-b": "loop-a",
        "to-dir": "real-dir",
        "sub/up": "../target.txt",
    }
    for name, target in links.items():
        src.symlink(name, target, mtime_ns=MTIME_NS)

    summary = blit.copy(src.root, dst)

    for name, target in links.items():
        copied = dst / name
        assert copied.is_symlink(), name
        assert os.readlink(copied) == target, name
        assert os.lstat(copied).st_mtime_ns == MTIME_NS, name
    assert tree_diff(src.root, dst) == []
    assert summary.failed == 0


def test_copy_symlink_to_dir_not_followed(src, dst):
    src.file("real-dir/inside.txt", "inside")
    src.symlink("to-dir", "real-dir")

    blit.copy(src.root, dst)

    assert (dst / "to-dir").is_symlink()
    assert (dst / "real-dir" / "inside.txt").is_file()
    assert sorted(os.listdir(dst)) == ["real-dir", "to-dir"]


@pytest.mark.parametrize("mode", [0o755, 0o600, 0o700, 0o640, 0o4755])
def test_copy_file_mode(src, dst, mode):
    src.file("f", "content", mode=mode)

    blit.copy(src.root, dst)

    assert stat.S_IMODE(os.lstat(dst / "f").st_mode) == mode


@pytest.mark.parametrize("mode", [0o755, 0o600, 0o700, 0o1777])
def test_copy_dir_mode(src, dst, mode):
    src.file("d/inner.txt", "inner")
    src.dir("d", mode=mode)
    src.dir("empty", mode=mode)

    blit.copy(src.root, dst)

    assert stat.S_IMODE(os.lstat(dst / "d").st_mode) == mode
    assert stat.S_IMODE(os.lstat(dst / "empty").st_mode) == mode
    assert (dst / "d" / "inner.txt").read_text() == "inner"


def test_copy_root_mode_and_mtime(src, dst):
    src.file("f", "x")
    src.dir(".", mode=0o710, mtime_ns=MTIME_NS)

    blit.copy(src.root, dst)

    info = os.lstat(dst)
    assert stat.S_IMODE(info.st_mode) == 0o710
    assert info.st_mtime_ns == MTIME_NS


def test_copy_mtimes_ns(src, dst):
    src.file("a/file.txt", "x", mtime_ns=MTIME_NS)
    src.file("a/older.txt", "y", mtime_ns=1_000_000_001)
    src.symlink("a/link", "file.txt", mtime_ns=MTIME_NS + 7)
    src.dir("a/empty", mtime_ns=MTIME_NS + 11)
    # Set last, because creating entries in "a" changes its mtime.
    src.dir("a", mtime_ns=MTIME_NS + 13)

    blit.copy(src.root, dst)

    assert os.lstat(dst / "a" / "file.txt").st_mtime_ns == MTIME_NS
    assert os.lstat(dst / "a" / "older.txt").st_mtime_ns == 1_000_000_001
    assert os.lstat(dst / "a" / "link").st_mtime_ns == MTIME_NS + 7
    assert os.lstat(dst / "a" / "empty").st_mtime_ns == MTIME_NS + 11
    assert os.lstat(dst / "a").st_mtime_ns == MTIME_NS + 13


@pytest.mark.parametrize("convert", [str, os.fsencode, Path], ids=["str", "bytes", "path"])
def test_copy_path_types(src, dst, tree_diff, convert):
    src.file("f.txt", "x")

    blit.copy(convert(src.root), convert(dst))

    assert tree_diff(src.root, dst) == []


def test_second_copy_is_noop(src, dst):
    src.file("a.txt", "a")
    src.file("d/b.txt", "b", mode=0o600)
    src.file("d/e/c.txt", "c")
    src.dir("empty")
    src.symlink("link", "a.txt")
    src.symlink("d/dangling", "missing")
    entry_count = 8
    blit.copy(src.root, dst)

    summary = blit.copy(src.root, dst)

    assert summary.transferred == 0
    assert summary.deleted == 0
    assert summary.failed == 0
    assert summary.skipped == entry_count
    assert summary.bytes == 0


def test_copy_never_deletes(src, dst, make_tree):
    src.file("kept.txt", "source")
    existing = make_tree("dst")
    existing.file("extra.txt", "extra")
    existing.file("extra-dir/inner.txt", "inner")
    existing.dir("extra-empty")

    summary = blit.copy(src.root, dst)

    assert (dst / "extra.txt").read_text() == "extra"
    assert (dst / "extra-dir" / "inner.txt").read_text() == "inner"
    assert (dst / "extra-empty").is_dir()
    assert (dst / "kept.txt").read_text() == "source"
    assert summary.deleted == 0


def test_copy_replaces_changed_file(src, dst, make_tree):
    src.file("f.txt", "new content", mtime_ns=MTIME_NS)
    make_tree("dst").file("f.txt", "old", mtime_ns=MTIME_NS - 10**9)

    summary = blit.copy(src.root, dst)

    assert (dst / "f.txt").read_text() == "new content"
    assert os.lstat(dst / "f.txt").st_mtime_ns == MTIME_NS
    assert summary.transferred == 1
    assert summary.bytes == len("new content")


def test_update_keeps_dir_mtime(src, dst, tree_diff):
    src.file("d/f.txt", "first")
    src.dir("d", mtime_ns=MTIME_NS)
    blit.copy(src.root, dst)
    # Rewriting a file in place changes its mtime but not its directory's.
    src.file("d/f.txt", "second, longer")

    blit.copy(src.root, dst)

    assert os.lstat(dst / "d").st_mtime_ns == MTIME_NS
    assert tree_diff(src.root, dst) == []
    assert blit.copy(src.root, dst).transferred == 0


def test_copy_fixes_metadata_only(src, dst, make_tree):
    src.file("f.txt", "same", mode=0o640, mtime_ns=MTIME_NS)
    make_tree("dst").file("f.txt", "same", mode=0o600, mtime_ns=MTIME_NS)

    summary = blit.copy(src.root, dst)

    assert stat.S_IMODE(os.lstat(dst / "f.txt").st_mode) == 0o640
    assert summary.transferred == 1
    assert summary.bytes == 0


def test_same_size_mtime_skipped(src, dst, make_tree):
    src.file("f.txt", "source!", mtime_ns=MTIME_NS)
    make_tree("dst").file("f.txt", "stale!!", mtime_ns=MTIME_NS)

    summary = blit.copy(src.root, dst)

    assert (dst / "f.txt").read_text() == "stale!!"
    assert summary.skipped == 1
    assert summary.transferred == 0


def test_checksum_recopies_same_size_mtime(src, dst, make_tree):
    src.file("f.txt", "source!", mtime_ns=MTIME_NS)
    make_tree("dst").file("f.txt", "stale!!", mtime_ns=MTIME_NS)

    summary = blit.copy(src.root, dst, checksum=True)

    assert (dst / "f.txt").read_text() == "source!"
    assert os.lstat(dst / "f.txt").st_mtime_ns == MTIME_NS
    assert summary.transferred == 1
    assert summary.bytes == len("source!")


def test_checksum_skips_equal_content(src, dst, make_tree):
    src.file("f.txt", "same content", mtime_ns=MTIME_NS)
    make_tree("dst").file("f.txt", "same content", mtime_ns=MTIME_NS - 5 * 10**9)

    summary = blit.copy(src.root, dst, checksum=True)

    assert summary.bytes == 0
    assert summary.skipped == 0
    assert summary.transferred == 1
    assert os.lstat(dst / "f.txt").st_mtime_ns == MTIME_NS


def test_single_file_into_existing_dir(src, tmp_path):
    source = src.file("report.txt", "report", mode=0o640, mtime_ns=MTIME_NS)
    target_dir = tmp_path / "out"
    target_dir.mkdir()

    summary = blit.copy(source, target_dir)

    copied = target_dir / "report.txt"
    assert copied.read_text() == "report"
    assert stat.S_IMODE(os.lstat(copied).st_mode) == 0o640
    assert os.lstat(copied).st_mtime_ns == MTIME_NS
    assert os.listdir(target_dir) == ["report.txt"]
    assert summary.transferred == 1


def test_single_file_trailing_slash(src, tmp_path):
    source = src.file("report.txt", "report")
    target_dir = tmp_path / "out"
    target_dir.mkdir()

    blit.copy(str(source), f"{target_dir}/")

    assert (target_dir / "report.txt").read_text() == "report"
    assert os.listdir(target_dir) == ["report.txt"]


def test_single_file_trailing_slash_missing_dir(src, tmp_path):
    source = src.file("report.txt", "report")
    missing = tmp_path / "missing"

    with pytest.raises(blit.NotFoundError) as caught:
        blit.copy(str(source), f"{missing}/")

    assert str(missing) in caught.value.message
    assert not os.path.lexists(missing)


def test_single_file_renamed(src, tmp_path):
    source = src.file("report.txt", "report", mtime_ns=MTIME_NS)
    target = tmp_path / "renamed.txt"

    summary = blit.copy(source, target)

    assert target.read_text() == "report"
    assert os.lstat(target).st_mtime_ns == MTIME_NS
    assert sorted(os.listdir(tmp_path)) == ["renamed.txt", "src"]
    assert summary.transferred == 1


def test_single_file_overwrites_file(src, tmp_path):
    source = src.file("report.txt", "new report")
    target = tmp_path / "old.txt"
    target.write_text("old")

    blit.copy(source, target)

    assert target.read_text() == "new report"


def test_single_symlink_copied_as_link(src, tmp_path):
    src.file("target.txt", "target")
    link = src.symlink("link", "target.txt")
    target = tmp_path / "copied-link"

    blit.copy(link, target)

    assert target.is_symlink()
    assert os.readlink(target) == "target.txt"


def test_missing_source_raises(tmp_path, dst):
    missing = tmp_path / "no-such-dir"

    with pytest.raises(blit.NotFoundError) as caught:
        blit.copy(missing, dst)

    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, blit.BlitError)
    assert str(missing) in caught.value.message
    assert caught.value.path == str(missing)
    assert not os.path.lexists(dst)


def test_dir_source_onto_file_raises(src, tmp_path):
    src.file("f.txt", "x")
    target = tmp_path / "plain-file"
    target.write_text("in the way")

    with pytest.raises(blit.ConflictError) as caught:
        blit.copy(src.root, target)

    assert str(target) in caught.value.message
    assert target.read_text() == "in the way"


def test_progress_final_counts(src, dst):
    src.file("a.txt", "aaaa")
    src.file("d/b.txt", "bb")
    src.dir("empty")
    src.symlink("link", "a.txt")
    snapshots = []

    summary = blit.copy(src.root, dst, progress=snapshots.append)

    last = snapshots[-1]
    assert last.phase == "done"
    assert last.bytes_done == last.bytes_total == summary.bytes == 6
    # Entries: a.txt, d, d/b.txt, empty and link.
    assert last.entries_done == last.entries_total == 5


@pytest.fixture
def big_dst(tmp_path):
    """A destination path for copies of big files, deleted after the test."""
    path = tmp_path / "dst"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def copy_big_file(big_files, tmp_path, size_mib, progress):
    """Copy a session big file into an empty ``tmp_path / "dst"``.

    Returns the summary, or the exception that the copy raised.
    """
    big, _ = big_files.get(size_mib)
    source = tmp_path / "src"
    source.mkdir()
    os.link(big, source / "big.bin")
    shutil.rmtree(tmp_path / "dst", ignore_errors=True)
    try:
        return blit.copy(source, tmp_path / "dst", progress=progress)
    except Exception as error:
        return error
    finally:
        shutil.rmtree(source)


def test_progress_phases_on_large_copy(big_files, tmp_path, big_dst):
    for size_mib in BIG_SIZES_MIB:
        snapshots = []
        summary = copy_big_file(big_files, tmp_path, size_mib, snapshots.append)
        phases = [snapshot.phase for snapshot in snapshots]
        if "transferring" in phases:
            break
    else:
        pytest.fail(f"no progress reported during copies of up to {size_mib} MiB: {phases}")

    assert phases[-1] == "done"
    assert phases.index("transferring") < phases.index("done")
    done_bytes = [snapshot.bytes_done for snapshot in snapshots]
    assert done_bytes == sorted(done_bytes)
    assert snapshots[-1].bytes_done == snapshots[-1].bytes_total == summary.bytes
    assert snapshots[-1].entries_done == snapshots[-1].entries_total == 1
    assert summary.bytes == size_mib * (1 << 20)
    assert (big_dst / "big.bin").stat().st_size == summary.bytes


def test_progress_exception_cancels(big_files, tmp_path, big_dst, temp_files):
    class StopCopy(Exception):
        pass

    def stop(progress):
        calls.append(progress.phase)
        raise StopCopy("stop here")

    for size_mib in BIG_SIZES_MIB:
        calls = []
        outcome = copy_big_file(big_files, tmp_path, size_mib, stop)
        if calls[0] != "done":
            break
    else:
        pytest.fail(f"copies of up to {size_mib} MiB finished before the first progress call")

    assert isinstance(outcome, StopCopy)
    assert str(outcome) == "stop here"
    assert len(calls) == 1
    assert temp_files(big_dst) == []
    assert not os.path.lexists(big_dst / "big.bin")
