"""Local transfers that must not harm anything: symlinks leading out of the
destination, overlapping paths, failing entries, stale temporary files, and
processes killed or interrupted mid-copy."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import blit

# A child process that copies argv[1] to argv[2] and reports success on stdout.
COPY_SCRIPT = "import sys, blit; blit.copy(sys.argv[1], sys.argv[2]); print('finished')"

# Sizes in MiB of the source file for the kill and interrupt tests. The next
# size is tried only when the copy finished before the signal reached it.
KILL_SIZES_MIB = (512, 1024)

# Generous upper bound in seconds for a child process to start copying or to
# exit. The tests poll, so they normally wait far less.
DEADLINE_S = 120


def outside_tree(make_tree):
    outside = make_tree("outside")
    outside.file("secret.txt", "must not change")
    outside.file("nested/data.bin", os.urandom(100))
    return outside


@pytest.mark.parametrize("mirror", [False, True], ids=["copy", "mirror"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_dst_symlink_to_outside_dir(src, dst, make_tree, snapshot, tree_diff, mirror, relative):
    outside = outside_tree(make_tree)
    src.file("name/secret.txt", "from the source")
    src.file("name/new.txt", "new")
    src.file("other.txt", "other")
    target = "../outside" if relative else str(outside.root)
    make_tree("dst").symlink("name", target)
    before = snapshot(outside.root)

    summary = blit.copy(src.root, dst, mirror=mirror)

    assert snapshot(outside.root) == before
    assert not (dst / "name").is_symlink()
    assert tree_diff(src.root / "name", dst / "name") == []
    assert summary.failed == 0


def test_dst_symlink_deeper_dir(src, dst, make_tree, snapshot):
    outside = outside_tree(make_tree)
    src.file("a/b/c/file.txt", "deep")
    existing = make_tree("dst")
    existing.dir("a")
    existing.symlink("a/b", str(outside.root))
    before = snapshot(outside.root)

    blit.mirror(src.root, dst)

    assert snapshot(outside.root) == before
    assert not (dst / "a" / "b").is_symlink()
    assert (dst / "a" / "b" / "c" / "file.txt").read_text() == "deep"


def test_extraneous_symlink_to_outside_dir(src, dst, make_tree, snapshot):
    outside = outside_tree(make_tree)
    src.file("kept.txt", "kept")
    existing = make_tree("dst")
    existing.symlink("escape", str(outside.root))
    existing.symlink("gone/escape", "../../outside")
    existing.file("gone/extra.txt", "extra")
    before = snapshot(outside.root)

    summary = blit.mirror(src.root, dst)

    assert snapshot(outside.root) == before
    assert sorted(os.listdir(dst)) == ["kept.txt"]
    assert summary.deleted == 4
    assert summary.failed == 0


@pytest.mark.parametrize("target", ["secret.txt", "nested"], ids=["file", "dir"])
def test_dst_symlink_where_src_has_file(src, dst, make_tree, snapshot, target):
    outside = outside_tree(make_tree)
    src.file("name", "from the source")
    make_tree("dst").symlink("name", str(outside.root / target))
    before = snapshot(outside.root)

    summary = blit.copy(src.root, dst)

    assert snapshot(outside.root) == before
    assert not (dst / "name").is_symlink()
    assert (dst / "name").read_text() == "from the source"
    assert summary.failed == 0


@pytest.mark.parametrize("mirror", [False, True], ids=["copy", "mirror"])
def test_dst_inside_src_raises(src, snapshot, mirror):
    src.file("f.txt", "x")
    before = snapshot(src.root)

    with pytest.raises(blit.InvalidArgumentError) as caught:
        blit.copy(src.root, src.root / "sub" / "copy", mirror=mirror)

    assert "inside the source" in caught.value.message
    assert snapshot(src.root) == before


def test_dst_inside_src_via_symlink(src, tmp_path, snapshot):
    src.file("f.txt", "x")
    os.symlink(src.root, tmp_path / "alias")
    before = snapshot(src.root)

    with pytest.raises(blit.InvalidArgumentError):
        blit.copy(src.root, tmp_path / "alias" / "copy")

    assert snapshot(src.root) == before


def test_same_src_and_dst_raises(src, snapshot):
    src.file("f.txt", "x")
    before = snapshot(src.root)

    with pytest.raises(blit.InvalidArgumentError):
        blit.mirror(src.root, src.root)

    assert snapshot(src.root) == before


@pytest.mark.parametrize("role", ["source", "destination"])
def test_v1_address_raises(src, tmp_path, monkeypatch, role):
    src.file("f.txt", "x")
    monkeypatch.chdir(tmp_path)
    arguments = ("host:mod/x", "dst") if role == "source" else ("src", "host:mod/x")

    with pytest.raises(blit.InvalidArgumentError) as caught:
        blit.copy(*arguments)

    assert "blit://" in caught.value.message
    assert "blit://host/mod/x" in caught.value.message
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_dot_slash_colon_is_local(src, tmp_path, monkeypatch):
    src.file("f.txt", "x")
    monkeypatch.chdir(tmp_path)

    blit.copy("src", "./host:mod")

    assert (tmp_path / "host:mod" / "f.txt").read_text() == "x"


def test_fifo_is_failed_entry(src, dst):
    src.file("before.txt", "before")
    src.fifo("sub/pipe")
    src.file("sub/after.txt", "after")

    summary = blit.copy(src.root, dst)

    assert summary.failed == 1
    assert not summary.ok
    assert [failure.path for failure in summary.failures] == ["sub/pipe"]
    assert "FIFO" in summary.failures[0].message
    assert not os.path.lexists(dst / "sub" / "pipe")
    assert (dst / "before.txt").read_text() == "before"
    assert (dst / "sub" / "after.txt").read_text() == "after"
    assert summary.transferred == 3


def test_failure_path_non_utf8(src, dst):
    src.fifo(b"pipe-\xff")

    summary = blit.copy(os.fsencode(src.root), os.fsencode(dst))

    assert len(summary.failures) == 1
    assert os.fsencode(summary.failures[0].path) == b"pipe-\xff"


def test_socket_is_failed_entry(src, dst):
    src.file("kept.txt", "kept")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(src.root / "sock"))

        summary = blit.copy(src.root, dst)
    finally:
        server.close()

    assert [failure.path for failure in summary.failures] == ["sock"]
    assert "socket" in summary.failures[0].message
    assert (dst / "kept.txt").read_text() == "kept"


def test_copy_dir_in_way_of_file(src, dst, make_tree):
    src.file("name", "a file in the source")
    src.file("other.txt", "other")
    make_tree("dst").file("name/inside.txt", "a directory in the destination")

    summary = blit.copy(src.root, dst)

    assert summary.failed == 1
    assert [failure.path for failure in summary.failures] == ["name"]
    assert "directory" in summary.failures[0].message
    assert (dst / "name" / "inside.txt").read_text() == "a directory in the destination"
    assert (dst / "other.txt").read_text() == "other"


STALE_NAMES = [".blit-0123456789abcdef.tmp", ".blit-ABCDEF0123456789.tmp"]
LOOKALIKE_NAMES = [".blit-0123.tmp", ".blit-0123456789abcdeg.tmp", "blit-0123456789abcdef.tmp"]


@pytest.mark.parametrize("mirror", [False, True], ids=["copy", "mirror"])
def test_stale_temps_removed(src, dst, make_tree, temp_files, mirror):
    src.file("f.txt", "x")
    src.file("sub/g.txt", "y")
    existing = make_tree("dst")
    for name in STALE_NAMES:
        existing.file(name, "partial data")
        existing.file(f"sub/{name}", "partial data")

    summary = blit.copy(src.root, dst, mirror=mirror)

    assert temp_files(dst) == []
    assert summary.failed == 0
    assert (dst / "sub" / "g.txt").read_text() == "y"


def test_lookalike_temps_kept(src, dst, make_tree):
    src.file("f.txt", "x")
    existing = make_tree("dst")
    for name in LOOKALIKE_NAMES:
        existing.file(name, "not a blit temporary")

    blit.copy(src.root, dst)

    assert sorted(os.listdir(dst)) == sorted(LOOKALIKE_NAMES + ["f.txt"])


def test_source_temps_not_copied(src, dst):
    src.file("f.txt", "x")
    src.file(STALE_NAMES[0], "a temporary of another run")

    summary = blit.copy(src.root, dst)

    assert os.listdir(dst) == ["f.txt"]
    assert summary.failed == 0


def test_single_file_removes_stale_temp(src, tmp_path, temp_files):
    source = src.file("f.txt", "x")
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    (target_dir / STALE_NAMES[0]).write_text("partial data")

    blit.copy(source, target_dir)

    assert temp_files(target_dir) == []
    assert (target_dir / "f.txt").read_text() == "x"


def wait_for_temp(process, dest, temp_files) -> bool:
    """Poll until a temporary file appears under ``dest``.

    Returns False when the process exits first; fails the test when neither
    happens before the deadline.
    """
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if temp_files(dest):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    pytest.fail(f"no temporary file appeared in {dest} within {DEADLINE_S} s")


def copy_and_signal(source, dest, signal_number, temp_files):
    """Copy in a child process and send it a signal once a temporary file exists.

    Returns whether the signal was sent, the exit status, stdout and stderr.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", COPY_SCRIPT, str(source), str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        sent = wait_for_temp(process, dest, temp_files)
        if sent:
            process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=DEADLINE_S)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return sent, process.returncode, stdout, stderr


@pytest.fixture
def big_source(tmp_path, big_files):
    """Return a function that makes a source directory containing one big file.

    The file is a hard link to the session's copy, so it costs no disk space.
    The source and destination trees are deleted after the test.
    """
    created_sources = []

    def make(size_mib):
        big, digest = big_files.get(size_mib)
        source = tmp_path / f"src-{size_mib}"
        source.mkdir()
        os.link(big, source / "big.bin")
        created_sources.append(source)
        return source, digest

    yield make
    for path in created_sources + [tmp_path / "dst"]:
        shutil.rmtree(path, ignore_errors=True)


def test_kill_leaves_no_partial_file(big_source, dst, temp_files, file_hash):
    final = dst / "big.bin"
    for size_mib in KILL_SIZES_MIB:
        shutil.rmtree(dst, ignore_errors=True)
        source, digest = big_source(size_mib)
        sent, status, _, stderr = copy_and_signal(source, dst, signal.SIGKILL, temp_files)
        if not sent:
            assert status == 0, stderr.decode(errors="replace")
            continue
        if temp_files(dst):
            break
        # The rename won the race with the kill, so the file must be whole.
        assert file_hash(final) == digest
    else:
        pytest.fail(f"every copy finished before SIGKILL, up to {KILL_SIZES_MIB[-1]} MiB")

    assert status == -signal.SIGKILL
    assert not os.path.lexists(final)
    assert len(temp_files(dst)) == 1

    summary = blit.copy(source, dst)

    assert temp_files(dst) == []
    assert file_hash(final) == digest
    assert summary.transferred == 1
    assert summary.failed == 0


def test_sigint_cleans_up(big_source, dst, temp_files, file_hash):
    final = dst / "big.bin"
    for size_mib in KILL_SIZES_MIB:
        shutil.rmtree(dst, ignore_errors=True)
        source, digest = big_source(size_mib)
        sent, status, stdout, stderr = copy_and_signal(source, dst, signal.SIGINT, temp_files)
        if not sent:
            assert status == 0, stderr.decode(errors="replace")
        if not sent or os.path.lexists(final):
            # The copy finished before the signal reached it.
            assert file_hash(final) == digest
            continue
        break
    else:
        pytest.fail(f"every copy finished before SIGINT, up to {KILL_SIZES_MIB[-1]} MiB")

    # An uncaught KeyboardInterrupt makes CPython exit by SIGINT (seen on 3.11).
    assert status == -signal.SIGINT, stderr.decode(errors="replace")
    assert b"KeyboardInterrupt" in stderr
    assert b"finished" not in stdout
    assert temp_files(dst) == []
    assert not os.path.lexists(final)
