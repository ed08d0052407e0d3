"""Tests of scripts/verify_tree.py, the tree comparison that checks blit.

The trees here are built with os and shutil only, so a bug in blit cannot
hide a bug in the verifier.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "verify_tree.py"
NON_UTF8_NAME = b"caf\xe9.txt"
# Nanosecond mtimes with a non-zero fraction, so that a copy that drops the
# nanoseconds is caught.
BASE_MTIME_NS = 1_700_000_000_123_456_789


def load_verify_tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_tree", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses looks the module up in sys.modules while it runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


verify_tree = load_verify_tree()


def set_mtime(path: Path | bytes, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def make_source(root: Path) -> Path:
    """Build a small tree with every entry type the verifier compares."""
    src = root / "src"
    (src / "pkg" / "sub").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "top.txt").write_bytes(b"top level\n")
    (src / "pkg" / "module.py").write_bytes(b"print('hello')\n")
    (src / "pkg" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    (src / "pkg" / "script.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (src / "pkg" / "script.sh").chmod(0o755)
    (src / "pkg" / "secret").write_bytes(b"private\n")
    (src / "pkg" / "secret").chmod(0o600)
    with open(os.path.join(bytes(src), NON_UTF8_NAME), "wb") as file:
        file.write(b"not UTF-8 name\n")
    os.symlink("module.py", src / "pkg" / "relative-link")
    os.symlink("does-not-exist", src / "dangling-link")

    paths = [
        os.path.join(dirpath, name)
        for dirpath, dirs, files in os.walk(bytes(src))
        for name in dirs + files
    ]
    for index, path in enumerate(sorted(paths)):
        set_mtime(path, BASE_MTIME_NS + index * 1_000_001)
    set_mtime(bytes(src), BASE_MTIME_NS - 7)
    return src


def copy_tree(src: Path, dst: Path) -> Path:
    # copytree sets each directory's mtime after filling it, and with
    # symlinks=True copies links as links with their own mtimes.
    shutil.copytree(src, dst, symlinks=True)
    return dst


@contextlib.contextmanager
def directory_mtime_kept(directory: Path) -> Iterator[None]:
    """Restore the mtime of ``directory`` after changing its entries."""
    mtime = os.lstat(directory).st_mtime_ns
    yield
    set_mtime(directory, mtime)


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    src = make_source(tmp_path)
    return src, copy_tree(src, tmp_path / "dst")


def differences(src: Path, dst: Path) -> list[tuple[str, bytes]]:
    found, _, _ = verify_tree.compare_trees(bytes(src), bytes(dst))
    return [(difference.kind, difference.path) for difference in found]


def test_identical_trees_pass(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    assert differences(src, dst) == []


def test_identical_trees_exit_zero(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("IDENTICAL: 12 entries (6 files, 4 directories, 2 symlinks")


def test_scan_covers_all_entries(trees: tuple[Path, Path]) -> None:
    src, _ = trees
    entries = verify_tree.scan_tree(bytes(src))
    assert entries[b"."].kind == "directory"
    assert entries[b"empty"].kind == "directory"
    assert entries[b"dangling-link"].kind == "symlink"
    assert entries[NON_UTF8_NAME].kind == "file"
    assert entries[b"pkg/sub/data.bin"].size == 256 * 64


def test_content_same_size_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "sub" / "data.bin"
    mtime = os.lstat(target).st_mtime_ns
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    set_mtime(target, mtime)
    assert differences(src, dst) == [("content", b"pkg/sub/data.bin")]


def test_content_size_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "top.txt"
    mtime = os.lstat(target).st_mtime_ns
    target.write_bytes(b"top level, longer\n")
    set_mtime(target, mtime)
    assert differences(src, dst) == [("content", b"top.txt")]


def test_mode_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    (dst / "pkg" / "secret").chmod(0o644)
    assert differences(src, dst) == [("mode", b"pkg/secret")]


def test_directory_mode_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    (dst / "pkg" / "sub").chmod(0o700)
    assert differences(src, dst) == [("mode", b"pkg/sub")]


def test_file_mtime_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "module.py"
    set_mtime(target, os.lstat(target).st_mtime_ns + 1)
    assert differences(src, dst) == [("mtime", b"pkg/module.py")]


def test_directory_mtime_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    set_mtime(dst / "empty", os.lstat(dst / "empty").st_mtime_ns - 1_000)
    assert differences(src, dst) == [("mtime", b"empty")]


def test_root_mtime_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    set_mtime(dst, os.lstat(dst).st_mtime_ns + 5)
    assert differences(src, dst) == [("mtime", b".")]


def test_symlink_mtime_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    link = dst / "pkg" / "relative-link"
    set_mtime(link, os.lstat(link).st_mtime_ns + 1_000_000_000)
    assert differences(src, dst) == [("mtime", b"pkg/relative-link")]


def test_whole_second_mtime_accepted(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "module.py"
    whole_seconds = os.lstat(target).st_mtime_ns // 1_000_000_000 * 1_000_000_000
    set_mtime(target, whole_seconds)
    assert differences(src, dst) == []


def test_whole_second_other_second_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "module.py"
    whole_seconds = os.lstat(target).st_mtime_ns // 1_000_000_000 * 1_000_000_000
    set_mtime(target, whole_seconds + 1_000_000_000)
    assert differences(src, dst) == [("mtime", b"pkg/module.py")]


def test_missing_file_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "module.py"
    with directory_mtime_kept(target.parent):
        target.unlink()
    assert differences(src, dst) == [("missing", b"pkg/module.py")]


def test_missing_non_utf8_name_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = os.path.join(bytes(dst), NON_UTF8_NAME)
    with directory_mtime_kept(dst):
        os.unlink(target)
    assert differences(src, dst) == [("missing", NON_UTF8_NAME)]


def test_extra_file_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "pkg" / "sub" / "extra.txt"
    with directory_mtime_kept(target.parent):
        target.write_bytes(b"not in the source\n")
    assert differences(src, dst) == [("extra", b"pkg/sub/extra.txt")]


def test_symlink_target_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    link = dst / "pkg" / "relative-link"
    mtime = os.lstat(link).st_mtime_ns
    with directory_mtime_kept(link.parent):
        link.unlink()
        os.symlink("script.sh", link)
    set_mtime(link, mtime)
    assert differences(src, dst) == [("symlink", b"pkg/relative-link")]


def test_empty_directory_missing_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "empty"
    with directory_mtime_kept(target.parent):
        target.rmdir()
    assert differences(src, dst) == [("missing", b"empty")]


def test_type_change_detected(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    target = dst / "top.txt"
    mtime = os.lstat(target).st_mtime_ns
    with directory_mtime_kept(target.parent):
        target.unlink()
        target.mkdir()
    set_mtime(target, mtime)
    assert differences(src, dst) == [("type", b"top.txt")]


def test_symlink_not_followed(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    link = dst / "pkg" / "relative-link"
    mtime = os.lstat(link).st_mtime_ns
    with directory_mtime_kept(link.parent):
        link.unlink()
        shutil.copy2(dst / "pkg" / "module.py", link)
    set_mtime(link, mtime)
    assert differences(src, dst) == [("type", b"pkg/relative-link")]


def test_differences_exit_one_and_listed(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    (dst / "pkg" / "secret").chmod(0o644)
    with directory_mtime_kept(dst):
        (dst / "empty").rmdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert "missing: empty: directory missing in destination" in lines
    assert "mode: pkg/secret: mode 0600 in source, 0644 in destination" in lines
    assert lines[-1].startswith("DIFFERENT: 2 differences (1 missing, 1 mode)")


def test_difference_output_limited(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    for name in ("a", "b", "c"):
        with directory_mtime_kept(dst):
            (dst / name).write_bytes(b"extra\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-differences", "2", str(src), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[:2] == ["extra: a: file not in source", "extra: b: file not in source"]
    assert lines[2] == "... and 1 more differences"
    assert lines[3].startswith("DIFFERENT: 3 differences (3 extra)")


def test_non_utf8_name_printed_escaped(trees: tuple[Path, Path]) -> None:
    src, dst = trees
    with directory_mtime_kept(dst):
        os.unlink(os.path.join(bytes(dst), NON_UTF8_NAME))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "missing: caf\\xe9.txt: file missing in destination" in result.stdout.splitlines()


def test_missing_destination_exits_two(tmp_path: Path) -> None:
    src = make_source(tmp_path)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "No such file or directory" in result.stderr
