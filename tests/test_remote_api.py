"""The Python API against a real blitd: push, pull, list, purge, status and Client.

The daemon is the wheel's ``blitd`` console script, run as a child process
on 127.0.0.1 (see ``conftest.BlitDaemon``). Trees are compared with the
independent snapshot helpers of ``conftest``.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import blit
import pytest
from conftest import (
    DAEMON_DEADLINE_S,
    READ_ONLY_CONTENT,
    READ_ONLY_FILE,
    BlitDaemon,
    blitd_command,
    build_sample_tree,
    free_port,
)

# Entries that build_sample_tree creates without big_file, counted as a
# transfer counts them (every file, directory and symlink below the root).
SAMPLE_ENTRIES = 17

# Size of the large file in the round-trip trees, in MiB.
ROUND_TRIP_MIB = 3


def sample_source(make_tree, big_files, *, name: str = "src"):
    """Build the sample tree, with a large file, and return its builder."""
    big, _digest = big_files.get(ROUND_TRIP_MIB)
    tree = make_tree(name)
    build_sample_tree(tree, big_file=big)
    return tree


def file_bytes(root) -> int:
    """Return the total size of the regular files under ``root``."""
    total = 0
    for directory, _subdirs, files in os.walk(os.fsencode(root)):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


# --- push and pull round trips


@pytest.mark.parametrize("force_grpc_data", [False, True], ids=["data-port", "grpc-data"])
def test_round_trip_keeps_tree(
    daemon, remote_dir, make_tree, big_files, tmp_path, tree_diff, force_grpc_data
):
    src = sample_source(make_tree, big_files)
    back = tmp_path / "back"
    connections_before = daemon.data_connections()

    pushed = blit.push(src.root, remote_dir.url, force_grpc_data=force_grpc_data)
    pulled = blit.pull(remote_dir.url, back, force_grpc_data=force_grpc_data)

    connections = daemon.data_connections() - connections_before
    if force_grpc_data:
        assert connections == 0, daemon.log()
    else:
        assert connections >= 2, daemon.log()

    assert tree_diff(src.root, remote_dir.path, ignore_root=True) == []
    assert tree_diff(src.root, back, ignore_root=True) == []
    assert pushed.failed == 0
    assert pushed.transferred == SAMPLE_ENTRIES + 1
    assert pushed.bytes == file_bytes(src.root)
    assert pulled.failed == 0
    assert pulled.transferred == SAMPLE_ENTRIES + 1
    assert pulled.bytes == pushed.bytes


def test_second_push_skips_everything(daemon, remote_dir, make_tree):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)

    again = blit.push(src.root, remote_dir.url)

    assert again.transferred == 0
    assert again.skipped == SAMPLE_ENTRIES
    assert again.bytes == 0


def test_push_checksum_recopies_same_size_mtime(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("f.txt", "aaaa", mtime_ns=1_600_000_000_000_000_000)
    blit.push(src.root, remote_dir.url)
    src.file("f.txt", "bbbb", mtime_ns=1_600_000_000_000_000_000)

    plain = blit.push(src.root, remote_dir.url)
    assert (remote_dir.path / "f.txt").read_text() == "aaaa"
    checked = blit.push(src.root, remote_dir.url, checksum=True)

    assert plain.transferred == 0
    assert checked.transferred == 1
    assert (remote_dir.path / "f.txt").read_text() == "bbbb"


def test_push_exclude_leaves_out_matches(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    src.file("skip.tmp", "s")
    src.file("cache/data", "c")

    blit.push(src.root, remote_dir.url, exclude=["*.tmp", "cache/"])

    assert sorted(os.listdir(remote_dir.path)) == ["keep.txt"]


def test_push_creates_missing_parents(daemon, remote_dir, make_tree, tree_diff):
    src = make_tree("src")
    src.file("f.txt", "x")

    blit.push(src.root, remote_dir.url_of("a/b/c"))

    assert tree_diff(src.root, remote_dir.path / "a" / "b" / "c", ignore_root=True) == []


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_progress_final_bytes(daemon, remote_dir, make_tree, big_files, tmp_path, direction):
    src = sample_source(make_tree, big_files)
    snapshots = []

    if direction == "push":
        summary = blit.push(src.root, remote_dir.url, progress=snapshots.append)
    else:
        blit.push(src.root, remote_dir.url)
        summary = blit.pull(remote_dir.url, tmp_path / "back", progress=snapshots.append)

    assert snapshots
    assert snapshots[-1].bytes_done == summary.bytes
    assert snapshots[-1].bytes_total == summary.bytes
    assert snapshots[-1].phase == "done"
    assert snapshots[-1].entries_done == snapshots[-1].entries_total
    assert summary.bytes == file_bytes(src.root)


def test_push_progress_exception_propagates(daemon, remote_dir, make_tree, big_files):
    src = sample_source(make_tree, big_files)

    class StopPush(Exception):
        pass

    def stop(progress):
        raise StopPush("stop here")

    with pytest.raises(StopPush, match="stop here"):
        blit.push(src.root, remote_dir.url, progress=stop)
    daemon.assert_serving()


# --- mirror


def test_push_mirror_deletes_on_daemon(daemon, remote_dir, make_tree, tree_diff):
    src = make_tree("src")
    src.file("keep.txt", "k")
    src.file("sub/keep.txt", "k")
    blit.push(src.root, remote_dir.url)
    (remote_dir.path / "extra.txt").write_text("x")
    (remote_dir.path / "sub" / "extra-dir").mkdir()
    (remote_dir.path / "sub" / "extra-dir" / "f").write_text("x")
    (remote_dir.path / "kept.log").write_text("excluded")

    plain = blit.push(src.root, remote_dir.url)
    assert (remote_dir.path / "extra.txt").exists()
    mirrored = blit.push(src.root, remote_dir.url, mirror=True, exclude=["*.log"])

    assert plain.deleted == 0
    assert mirrored.deleted == 3
    assert sorted(os.listdir(remote_dir.path)) == ["keep.txt", "kept.log", "sub"]
    assert sorted(os.listdir(remote_dir.path / "sub")) == ["keep.txt"]


def test_pull_mirror_deletes_locally(daemon, remote_dir, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)
    local = make_tree("local")
    local.file("extra.txt", "x")
    local.file("deep/extra/f", "x")
    local.file("a.txt", "different content")

    plain = blit.pull(remote_dir.url, local.root)
    assert os.path.exists(local.path("extra.txt"))
    mirrored = blit.mirror(remote_dir.url, local.root)

    assert plain.deleted == 0
    assert mirrored.deleted == 3
    assert tree_diff(src.root, local.root, ignore_root=True) == []


# --- dry runs


def test_push_dry_run_changes_nothing(daemon, remote_dir, make_tree, snapshot):
    src = make_tree("src")
    src.file("new.txt", "n")
    remote_dir.path.mkdir()
    (remote_dir.path / "old.txt").write_text("o")
    before = snapshot(remote_dir.path)

    summary = blit.push(src.root, remote_dir.url, mirror=True, dry_run=True)

    assert snapshot(remote_dir.path) == before
    assert summary.dry_run
    assert summary.transferred == 1
    assert summary.deleted == 1
    assert summary.bytes == 0


def test_pull_dry_run_lists_changes(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    src.file("new.txt", "n")
    src.file("sub/f.txt", "f")
    blit.push(src.root, remote_dir.url)
    local = make_tree("local")
    local.file("old.txt", "o")

    summary = blit.pull(remote_dir.url, local.root, mirror=True, dry_run=True)

    assert sorted(os.listdir(local.root)) == ["old.txt"]
    assert summary.dry_run
    assert [(change.action, change.path) for change in summary.changes] == [
        ("copy", "new.txt"),
        ("delete", "old.txt"),
        ("mkdir", "sub"),
        ("copy", "sub/f.txt"),
    ]


# --- single files


def test_push_single_file_renamed(daemon, remote_dir, make_tree):
    src = make_tree("src")
    source = src.file("report.txt", "r", mode=0o640, mtime_ns=1_500_000_000_000_000_003)
    remote_dir.path.mkdir()

    summary = blit.push(source, remote_dir.url_of("renamed.txt"))

    target = remote_dir.path / "renamed.txt"
    assert target.read_text() == "r"
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o640
    assert os.lstat(target).st_mtime_ns == 1_500_000_000_000_000_003
    assert summary.transferred == 1


def test_push_single_file_into_existing_dir(daemon, remote_dir, make_tree):
    src = make_tree("src")
    source = src.file("report.txt", "r")
    (remote_dir.path / "inbox").mkdir(parents=True)

    blit.push(source, remote_dir.url_of("inbox"))

    assert os.listdir(remote_dir.path / "inbox") == ["report.txt"]


def test_push_single_file_trailing_slash(daemon, remote_dir, make_tree):
    src = make_tree("src")
    source = src.file("report.txt", "r")
    remote_dir.path.mkdir()
    client = blit.Client(daemon.url)

    client.push(source, remote_dir.target + "/new-dir/")

    assert os.listdir(remote_dir.path / "new-dir") == ["report.txt"]


def test_pull_single_file(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    src.file("report.txt", "r", mtime_ns=1_500_000_000_000_000_005)
    blit.push(src.root, remote_dir.url)
    into = tmp_path / "into"
    into.mkdir()

    blit.pull(remote_dir.url_of("report.txt"), into)
    blit.pull(remote_dir.url_of("report.txt"), tmp_path / "renamed.txt")

    assert os.listdir(into) == ["report.txt"]
    assert (tmp_path / "renamed.txt").read_text() == "r"
    assert os.lstat(tmp_path / "renamed.txt").st_mtime_ns == 1_500_000_000_000_000_005


def test_pull_from_read_only_module(daemon, tmp_path):
    blit.pull(daemon.address("ro", READ_ONLY_FILE), tmp_path / "copy.txt")

    assert (tmp_path / "copy.txt").read_text() == READ_ONLY_CONTENT


# --- copy and mirror with a remote side


def test_copy_routes_to_push_and_pull(daemon, remote_dir, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)

    pushed = blit.copy(src.root, remote_dir.url)
    pulled = blit.copy(remote_dir.url, tmp_path / "back")

    assert pushed.transferred == SAMPLE_ENTRIES
    assert pulled.transferred == SAMPLE_ENTRIES
    assert tree_diff(src.root, remote_dir.path, ignore_root=True) == []
    assert tree_diff(src.root, tmp_path / "back", ignore_root=True) == []


def test_copy_accepts_path_and_bytes(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    src.file("f.txt", "x")

    blit.copy(src.root, os.fsencode(remote_dir.url))
    blit.copy(os.fsencode(remote_dir.url), tmp_path / "back")

    assert (remote_dir.path / "f.txt").read_text() == "x"
    assert (tmp_path / "back" / "f.txt").read_text() == "x"


def test_mirror_pushes_with_deletes(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    blit.push(src.root, remote_dir.url)
    (remote_dir.path / "extra.txt").write_text("x")

    summary = blit.mirror(src.root, remote_dir.url)

    assert summary.deleted == 1
    assert os.listdir(remote_dir.path) == ["keep.txt"]


def test_remote_to_remote_rejected(daemon, remote_dir):
    with pytest.raises(blit.InvalidArgumentError, match="remote to remote is not supported yet"):
        blit.copy(remote_dir.url_of("a"), remote_dir.url_of("b"))
    with pytest.raises(blit.InvalidArgumentError, match="remote to remote is not supported yet"):
        blit.push(remote_dir.url_of("a"), remote_dir.url_of("b"))
    with pytest.raises(blit.InvalidArgumentError, match="remote to remote is not supported yet"):
        blit.pull(remote_dir.url_of("a"), remote_dir.url_of("b"))
    assert not os.path.lexists(remote_dir.path)


def test_threads_with_remote_side_rejected(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("f.txt", "x")

    with pytest.raises(blit.InvalidArgumentError, match="threads = 4 applies only to a local"):
        blit.copy(src.root, remote_dir.url, threads=4)
    assert not os.path.lexists(remote_dir.path)


def test_force_grpc_data_local_rejected(make_tree, dst):
    src = make_tree("src")
    src.file("f.txt", "x")

    with pytest.raises(blit.InvalidArgumentError, match="force_grpc_data applies only"):
        blit.copy(src.root, dst, force_grpc_data=True)
    assert not dst.exists()


# --- list


def test_list_modules(daemon):
    modules = blit.list(daemon.url)

    assert [(m.name, m.read_only, m.comment) for m in modules] == [
        ("m", False, "writable test module"),
        ("ro", True, "read-only test module"),
    ]
    assert all(isinstance(module, blit.Module) for module in modules)


def test_list_modules_without_trailing_slash(daemon):
    modules = blit.list(daemon.url.rstrip("/"))

    assert [m.name for m in modules] == ["m", "ro"]


def test_list_flat_and_recursive(daemon, remote_dir, make_tree):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)

    flat = blit.list(remote_dir.url)
    recursive = blit.list(remote_dir.url, recursive=True)

    flat_paths = sorted(entry.path for entry in flat)
    assert flat_paths == sorted(os.fsdecode(name) for name in os.listdir(os.fsencode(src.root)))
    recursive_paths = sorted(entry.path for entry in recursive)
    expected = sorted(os.fsdecode(rel) for rel in _relative_paths(os.fsencode(src.root)))
    assert recursive_paths == expected
    assert len(recursive) == SAMPLE_ENTRIES


def _relative_paths(root: bytes) -> list[bytes]:
    found = []
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return found


def test_list_entry_fields(daemon, remote_dir, make_tree):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)

    entries = {entry.path: entry for entry in blit.list(remote_dir.url, recursive=True)}

    run = entries["run.sh"]
    assert run.kind == "file"
    assert run.size == len("#!/bin/sh\n")
    assert run.mode == 0o751
    assert run.mtime_ns == 1_500_000_000_000_000_001
    assert run.link_target is None
    empty = entries["empty"]
    assert empty.kind == "dir"
    assert empty.size == 0
    assert empty.mtime_ns == 1_300_000_000_000_000_007
    link = entries["deep/link-up"]
    assert link.kind == "symlink"
    assert link.link_target == "../a.txt"
    assert entries["zero.bin"].size == 0
    assert os.fsencode("latin1-caf\udce9.txt") == b"latin1-caf\xe9.txt"
    assert "latin1-caf\udce9.txt" in entries
    assert "ünïcødé/日本語.txt" in entries
    assert "name with spaces.txt" in entries


def test_list_single_file(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("f.txt", "12345")
    blit.push(src.root, remote_dir.url)

    entries = blit.list(remote_dir.url_of("f.txt"))

    assert [(e.path, e.kind, e.size) for e in entries] == [("f.txt", "file", 5)]


def test_list_missing_path_not_found(daemon, remote_dir):
    with pytest.raises(blit.NotFoundError, match="no-such-dir"):
        blit.list(remote_dir.url_of("no-such-dir"))
    daemon.assert_serving()


# --- purge


def test_purge_file_and_tree(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    src.file("gone.txt", "g")
    src.file("tree/a/b.txt", "b")
    src.dir("tree/empty")
    blit.push(src.root, remote_dir.url)

    deleted = blit.purge(remote_dir.url_of("gone.txt"), remote_dir.url_of("tree"))

    assert deleted == 5
    assert os.listdir(remote_dir.path) == ["keep.txt"]


def test_purge_module_root_rejected(daemon, remote_dir, make_tree, snapshot):
    src = make_tree("src")
    src.file("f.txt", "x")
    blit.push(src.root, remote_dir.url)
    before = snapshot(daemon.module_dir("m"))

    for root in (daemon.address("m"), daemon.address("m") + "/", daemon.url + "m//"):
        with pytest.raises(blit.InvalidArgumentError, match="root of module m"):
            blit.purge(root)

    assert snapshot(daemon.module_dir("m")) == before
    daemon.assert_serving()


def test_purge_with_module_root_rejected(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("f.txt", "x")
    blit.push(src.root, remote_dir.url)

    with pytest.raises(blit.InvalidArgumentError, match="root of module m"):
        blit.purge(remote_dir.url_of("f.txt"), daemon.address("m"))

    # blitd purges the paths in order and stops at the first invalid one,
    # so f.txt is gone and the root remains.
    assert daemon.module_dir("m").is_dir()
    assert remote_dir.path.is_dir()
    assert not (remote_dir.path / "f.txt").exists()


def test_purge_missing_path_not_found(daemon, remote_dir):
    with pytest.raises(blit.NotFoundError, match="no-such-file"):
        blit.purge(remote_dir.url_of("no-such-file"))
    daemon.assert_serving()


def test_purge_needs_addresses(daemon, remote_dir):
    with pytest.raises(blit.InvalidArgumentError, match="at least one address"):
        blit.purge()
    with pytest.raises(blit.InvalidArgumentError, match="not a daemon address"):
        blit.purge(remote_dir.url_of("f"), "m/f")


def test_purge_read_only_denied(daemon):
    with pytest.raises(blit.PermissionDeniedError, match="read-only"):
        blit.purge(daemon.address("ro", READ_ONLY_FILE))

    assert (daemon.module_dir("ro") / READ_ONLY_FILE).read_text() == READ_ONLY_CONTENT
    daemon.assert_serving()


# --- errors


def test_unknown_module_not_found(daemon, make_tree, tmp_path):
    src = make_tree("src")
    src.file("f.txt", "x")
    address = daemon.address("no-such-module", "dir")

    for call in (
        lambda: blit.list(address),
        lambda: blit.push(src.root, address),
        lambda: blit.pull(address, tmp_path / "out"),
        lambda: blit.purge(address),
    ):
        with pytest.raises(blit.NotFoundError, match='module "no-such-module" not found') as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
        daemon.assert_serving()
    assert not (tmp_path / "out").exists()


def test_read_only_push_denied(daemon, make_tree, snapshot):
    src = make_tree("src")
    src.file("f.txt", "x")
    before = snapshot(daemon.module_dir("ro"))

    with pytest.raises(blit.PermissionDeniedError, match="module ro is read-only") as info:
        blit.push(src.root, daemon.address("ro", "dir"))

    assert isinstance(info.value, PermissionError)
    assert snapshot(daemon.module_dir("ro")) == before
    daemon.assert_serving()


@pytest.mark.parametrize("target", ["../outside", "sub/../../outside"])
def test_escaping_path_rejected(daemon, remote_dir, make_tree, target):
    src = make_tree("src")
    src.file("f.txt", "x")
    client = blit.Client(daemon.url)

    with pytest.raises(blit.InvalidArgumentError, match=r"'\.\.'"):
        client.push(src.root, f"m/{target}")
    with pytest.raises(blit.InvalidArgumentError, match=r"'\.\.'"):
        client.list(f"m/{target}")

    assert not (daemon.module_dir("m").parent / "outside").exists()
    daemon.assert_serving()


def test_symlink_out_of_module_not_followed(daemon, remote_dir, make_tree, tmp_path, snapshot):
    outside = make_tree("outside")
    outside.file("secret.txt", "must not change")
    remote_dir.path.mkdir()
    os.symlink(outside.root, remote_dir.path / "escape")
    src = make_tree("src")
    src.file("secret.txt", "overwritten")
    before = snapshot(outside.root)

    with pytest.raises(blit.BlitError):
        blit.push(src.root, remote_dir.url_of("escape"))
    with pytest.raises(blit.BlitError):
        blit.list(remote_dir.url_of("escape/secret.txt"))
    with pytest.raises(blit.BlitError):
        blit.pull(remote_dir.url_of("escape/secret.txt"), tmp_path / "stolen.txt")
    with pytest.raises(blit.BlitError):
        blit.purge(remote_dir.url_of("escape/secret.txt"))

    assert snapshot(outside.root) == before
    assert not os.path.lexists(tmp_path / "stolen.txt")
    daemon.assert_serving()


@pytest.mark.parametrize(
    "call",
    [
        lambda: blit.list("backup-host:photos/2024"),
        lambda: blit.status("backup-host:photos/2024"),
        lambda: blit.push(".", "backup-host:photos/2024"),
        lambda: blit.pull("backup-host:photos/2024", "."),
        lambda: blit.copy("backup-host:photos/2024", "."),
    ],
    ids=["list", "status", "push", "pull", "copy"],
)
def test_v1_address_rejected(call):
    with pytest.raises(blit.InvalidArgumentError, match="blit://backup-host/photos/2024"):
        call()


def test_local_path_is_not_daemon_address(make_tree):
    src = make_tree("src")

    with pytest.raises(blit.InvalidArgumentError, match="not a daemon address"):
        blit.push(src.root, "relative/dir")
    with pytest.raises(blit.InvalidArgumentError, match="not a daemon address"):
        blit.list("/tmp")


def test_unreachable_daemon_network_error(make_tree, tmp_path):
    port = free_port()
    address = f"blit://127.0.0.1:{port}/m/dir"
    src = make_tree("src")
    src.file("f.txt", "x")

    for call in (
        lambda: blit.status(address),
        lambda: blit.list(address),
        lambda: blit.push(src.root, address),
        lambda: blit.pull(address, tmp_path / "out"),
        lambda: blit.purge(address),
        lambda: blit.Client(address),
    ):
        with pytest.raises(blit.NetworkError, match=f"127.0.0.1:{port}") as info:
            call()
        assert isinstance(info.value, ConnectionError)


# --- Client and status


def test_status_fields(daemon):
    status = blit.status(daemon.url)

    assert status.version == blit.__version__
    assert status.uptime_seconds >= 0
    assert status.active_sessions == 0
    assert [module.name for module in status.modules] == ["m", "ro"]


def test_client_url_and_methods(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    src.file("sub/f.txt", "x")
    client = blit.Client(daemon.address("m", "ignored/path"), token=daemon.token)

    pushed = client.push(src.root, remote_dir.target)
    listed = client.list(remote_dir.target, recursive=True)
    same_daemon = client.list(remote_dir.url)
    pulled = client.pull(remote_dir.target, tmp_path / "back")
    deleted = client.purge([remote_dir.target + "/sub"])

    assert client.url == daemon.url
    assert repr(client) == f'Client("{daemon.url}")'
    assert pushed.transferred == 2
    assert sorted(entry.path for entry in listed) == ["sub", "sub/f.txt"]
    assert [entry.path for entry in same_daemon] == ["sub"]
    assert pulled.transferred == 2
    assert deleted == 2
    assert [module.name for module in client.list_modules()] == ["m", "ro"]
    assert client.status().version == blit.__version__


def test_client_rejects_other_daemon(daemon):
    client = blit.Client(daemon.url)
    other = f"blit://127.0.0.1:{free_port()}/m"

    with pytest.raises(blit.InvalidArgumentError, match="names another daemon"):
        client.list(other)


def test_client_target_needs_module(daemon):
    client = blit.Client(daemon.url)

    with pytest.raises(blit.InvalidArgumentError, match="names no module"):
        client.list("")


# --- the blitd console script


def test_blitd_version():
    result = subprocess.run(
        [*blitd_command(), "--version"],
        capture_output=True,
        text=True,
        timeout=DAEMON_DEADLINE_S,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout == f"blitd {blit.__version__}\n"


def test_blitd_check_config(daemon):
    result = subprocess.run(
        [*blitd_command(), "--check-config", "--config", str(daemon.config_path)],
        capture_output=True,
        text=True,
        timeout=DAEMON_DEADLINE_S,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "config OK: 2 modules\n"


def test_blitd_runs_in_python(daemon):
    executable = os.readlink(f"/proc/{daemon.process.pid}/exe")

    assert os.path.realpath(executable) == os.path.realpath(sys.executable)


def test_blitd_sigint_exits_0(tmp_path):
    running = BlitDaemon(tmp_path, {"m": (False, "")})

    status = running.stop(signal.SIGINT)

    assert status == 0, running.log()
    assert "Traceback" not in running.log()


# --- SIGTERM during a push

# Sizes in MiB of the file pushed while blitd is stopped. The next size is
# tried only when the push finished before a temporary file was seen.
SIGTERM_SIZES_MIB = (512, 1024)

PUSH_SCRIPT = """\
import sys, blit
try:
    summary = blit.push(sys.argv[1], sys.argv[2])
except blit.BlitError as error:
    print(f"error: {type(error).__name__}: {error}")
else:
    print(f"finished: failed={summary.failed}")
"""


def wait_for_temp_file(process, directory, temp_files) -> bool:
    """Poll until a blit temporary file exists under ``directory``.

    Returns False when ``process`` exits first; fails the test when neither
    happens within ``DAEMON_DEADLINE_S``.
    """
    deadline = time.monotonic() + DAEMON_DEADLINE_S
    while time.monotonic() < deadline:
        if os.path.isdir(directory) and temp_files(directory):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    pytest.fail(f"no temporary file appeared in {directory} within {DAEMON_DEADLINE_S} s")


def push_and_signal(running, src, target_dir, signal_number, temp_files):
    """Push ``src`` in a child process and signal the daemon once a temporary file exists.

    Returns whether the signal was sent, the daemon's exit status (or
    ``None``), and the pushing process's exit status, stdout and stderr.
    """
    pusher = subprocess.Popen(
        [sys.executable, "-c", PUSH_SCRIPT, str(src), running.address("m", "dir")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        sent = wait_for_temp_file(pusher, target_dir, temp_files)
        daemon_status = running.stop(signal_number) if sent else None
        stdout, stderr = pusher.communicate(timeout=DAEMON_DEADLINE_S)
    except BaseException:
        pusher.kill()
        pusher.communicate()
        raise
    return sent, daemon_status, pusher.returncode, stdout, stderr


# (signal, blitd's --shutdown-timeout in seconds, expected exit status of blitd)
STOP_CASES = {
    "sigterm-grace": (signal.SIGTERM, "30", 0),
    "sigterm-cancel": (signal.SIGTERM, "0", 0),
    "sigkill": (signal.SIGKILL, "30", -signal.SIGKILL),
}


@pytest.mark.parametrize("case", list(STOP_CASES))
def test_daemon_stopped_during_push(tmp_path, make_tree, big_files, temp_files, file_hash, case):
    signal_number, shutdown_timeout, expected_status = STOP_CASES[case]
    root = tmp_path / "daemon"
    root.mkdir()
    target_dir = root / "modules" / "m" / "dir"
    final = target_dir / "big.bin"
    for size_mib in SIGTERM_SIZES_MIB:
        big, digest = big_files.get(size_mib)
        src = make_tree(f"src-{size_mib}")
        os.link(big, src.path("big.bin"))
        shutil.rmtree(target_dir, ignore_errors=True)
        running = BlitDaemon(
            root, {"m": (False, "")}, extra_args=["--shutdown-timeout", shutdown_timeout]
        )
        try:
            sent, status, push_status, stdout, stderr = push_and_signal(
                running, src.root, target_dir, signal_number, temp_files
            )
        finally:
            running.kill()
        if sent:
            break
        assert push_status == 0, stderr.decode(errors="replace")
    else:
        pytest.fail(f"every push finished before the signal, up to {SIGTERM_SIZES_MIB[-1]} MiB")

    assert status == expected_status, running.log()
    assert push_status == 0, stderr.decode(errors="replace")
    # The pushed file is complete under its final name, or absent.
    if os.path.lexists(final):
        assert file_hash(final) == digest
    if case == "sigterm-grace":
        assert stdout == b"finished: failed=0\n", stdout + stderr
        assert temp_files(target_dir) == []
        assert file_hash(final) == digest

    # The next push, to a new daemon on the same directory, removes any
    # temporary file that the stopped one left.
    restarted = BlitDaemon(root, {"m": (False, "")})
    try:
        summary = blit.push(src.root, restarted.address("m", "dir"))
        assert temp_files(target_dir) == []
        assert file_hash(final) == digest
        assert summary.failed == 0
    finally:
        assert restarted.stop() == 0, restarted.log()


def test_next_push_removes_stale_temps(daemon, remote_dir, make_tree, temp_files):
    src = make_tree("src")
    src.file("f.txt", "x")
    src.file("sub/g.txt", "y")
    for rel in ("", "sub"):
        directory = remote_dir.path / rel
        directory.mkdir(parents=True, exist_ok=True)
        (directory / ".blit-0123456789abcdef.tmp").write_text("partial data")
    (remote_dir.path / ".blit-0123.tmp").write_text("not a blit temporary")

    summary = blit.push(src.root, remote_dir.url)

    assert temp_files(remote_dir.path) == []
    assert (remote_dir.path / ".blit-0123.tmp").exists()
    assert summary.failed == 0
