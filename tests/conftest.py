"""Shared fixtures for the local transfer tests.

The tree snapshot and comparison here use only ``os.lstat``, ``os.readlink``
and ``hashlib``, so a test checks blit against an independent reading of the
file system rather than against blit's own view of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import pytest

PathName = Union[str, bytes]

# The shape of the temporary names that blit writes files under before the
# rename into place: ".blit-" then 16 hex digits then ".tmp".
TEMP_NAME = re.compile(rb"\.blit-[0-9a-fA-F]{16}\.tmp")

MIB = 1 << 20


class TreeBuilder:
    """Builder of files, directories, symlinks and FIFOs under one root.

    Paths are relative to the root, as ``str`` or ``bytes`` (for names that
    are not valid UTF-8), and missing parent directories are created.
    Methods return the full path, as ``bytes`` when given ``bytes``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, rel: PathName) -> PathName:
        if isinstance(rel, bytes):
            return os.path.join(os.fsencode(self.root), rel)
        return str(self.root / rel)

    def _make_parent(self, full: PathName) -> None:
        os.makedirs(os.path.dirname(full), exist_ok=True)

    def file(
        self,
        rel: PathName,
        content: Union[bytes, str] = b"",
        *,
        mode: Optional[int] = None,
        mtime_ns: Optional[int] = None,
    ) -> PathName:
        full = self.path(rel)
        self._make_parent(full)
        if isinstance(content, str):
            content = content.encode()
        with open(full, "wb") as handle:
            handle.write(content)
        if mode is not None:
            os.chmod(full, mode)
        if mtime_ns is not None:
            os.utime(full, ns=(mtime_ns, mtime_ns))
        return full

    def dir(
        self,
        rel: PathName,
        *,
        mode: Optional[int] = None,
        mtime_ns: Optional[int] = None,
    ) -> PathName:
        full = self.path(rel)
        os.makedirs(full, exist_ok=True)
        if mode is not None:
            os.chmod(full, mode)
        if mtime_ns is not None:
            os.utime(full, ns=(mtime_ns, mtime_ns))
        return full

    def symlink(
        self, rel: PathName, target: PathName, *, mtime_ns: Optional[int] = None
    ) -> PathName:
        full = self.path(rel)
        self._make_parent(full)
        os.symlink(target, full)
        if mtime_ns is not None:
            os.utime(full, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        return full

    def fifo(self, rel: PathName) -> PathName:
        full = self.path(rel)
        self._make_parent(full)
        os.mkfifo(full)
        return full


# One entry of a snapshot: (kind, permission bits, mtime in ns, size, and the
# SHA-256 of a file's content or the target of a symlink).
Entry = Tuple[str, Optional[int], int, int, Optional[str]]
Snapshot = Dict[bytes, Entry]


def sha256_file(path: PathName) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe(full: bytes) -> Entry:
    info = os.lstat(full)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(full)
        return ("symlink", None, info.st_mtime_ns, 0, target.decode("utf-8", "surrogateescape"))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns, 0, None)
    if stat.S_ISREG(info.st_mode):
        mode = stat.S_IMODE(info.st_mode)
        return ("file", mode, info.st_mtime_ns, info.st_size, sha256_file(full))
    return ("special", stat.S_IMODE(info.st_mode), info.st_mtime_ns, 0, None)


def take_snapshot(root: PathName) -> Snapshot:
    """Describe every entry under ``root``, keyed by its relative path in bytes.

    The root itself is the key ``b"."``. Symlinks are described, never
    followed, and atimes are left out because reading a file changes them.
    """
    root_bytes = os.fsencode(root)
    entries: Snapshot = {b".": _describe(root_bytes)}
    pending = [b""]
    while pending:
        rel_dir = pending.pop()
        full_dir = os.path.join(root_bytes, rel_dir) if rel_dir else root_bytes
        with os.scandir(full_dir) as listing:
            for item in listing:
                rel = os.path.join(rel_dir, item.name) if rel_dir else item.name
                entries[rel] = _describe(item.path)
                if item.is_dir(follow_symlinks=False):
                    pending.append(rel)
    return entries


def diff_snapshots(
    expected: Snapshot, actual: Snapshot, *, ignore_root: bool = False
) -> List[str]:
    """List each path whose entry differs between two snapshots, sorted.

    With ``ignore_root`` the metadata of the two roots is not compared.
    """
    differences = []
    for rel in sorted(set(expected) | set(actual)):
        if ignore_root and rel == b".":
            continue
        display_path = rel.decode("utf-8", "backslashreplace")
        if rel not in actual:
            differences.append(f"{display_path}: missing, expected {expected[rel]}")
        elif rel not in expected:
            differences.append(f"{display_path}: unexpected {actual[rel]}")
        elif expected[rel] != actual[rel]:
            differences.append(f"{display_path}: expected {expected[rel]}, found {actual[rel]}")
    return differences


def list_temp_files(root: PathName) -> List[bytes]:
    """Return the relative paths of blit temporary files anywhere under ``root``.

    Only names are read, so polling this while a large file is written is cheap.
    """
    root_bytes = os.fsencode(root)
    found = []
    for directory, subdirs, files in os.walk(root_bytes):
        for name in subdirs + files:
            if TEMP_NAME.fullmatch(name):
                found.append(os.path.relpath(os.path.join(directory, name), root_bytes))
    return sorted(found)


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[str], TreeBuilder]:
    """Return a factory of tree builders rooted at ``tmp_path / name``."""

    def make(name: str) -> TreeBuilder:
        return TreeBuilder(tmp_path / name)

    return make


@pytest.fixture
def src(make_tree: Callable[[str], TreeBuilder]) -> TreeBuilder:
    """An empty source directory, ``tmp_path / "src"``."""
    return make_tree("src")


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    """A destination path, ``tmp_path / "dst"``, that does not exist yet."""
    return tmp_path / "dst"


@pytest.fixture
def snapshot() -> Callable[[PathName], Snapshot]:
    return take_snapshot


@pytest.fixture
def tree_diff() -> Callable[..., List[str]]:
    """Return a function listing how the trees at two paths differ.

    ``tree_diff(a, b)`` compares snapshots of both trees, including the roots'
    mode and mtime unless ``ignore_root=True``. An empty list means equal.
    """

    def compare(expected: PathName, actual: PathName, *, ignore_root: bool = False) -> List[str]:
        expected_snapshot = take_snapshot(expected)
        actual_snapshot = take_snapshot(actual)
        return diff_snapshots(expected_snapshot, actual_snapshot, ignore_root=ignore_root)

    return compare


@pytest.fixture
def temp_files() -> Callable[[PathName], List[bytes]]:
    return list_temp_files


@pytest.fixture
def file_hash() -> Callable[[PathName], str]:
    return sha256_file


class BigFiles:
    """Large files of non-zero data, each written once per session and size."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._hashes: Dict[int, str] = {}

    def get(self, size_mib: int) -> Tuple[Path, str]:
        """Return the path and SHA-256 of a file of ``size_mib`` MiB.

        Every MiB starts with its index, so a copy with a block missing,
        repeated or out of order has a different hash.
        """
        path = self.directory / f"big-{size_mib}.bin"
        if size_mib not in self._hashes:
            block = bytearray(os.urandom(MIB))
            digest = hashlib.sha256()
            with open(path, "wb") as handle:
                for index in range(size_mib):
                    block[:8] = index.to_bytes(8, "little")
                    handle.write(block)
                    digest.update(block)
            self._hashes[size_mib] = digest.hexdigest()
        return path, self._hashes[size_mib]


@pytest.fixture(scope="session")
def big_files(tmp_path_factory: pytest.TempPathFactory):
    """Large source files shared by the session; deleted when it ends."""
    directory = tmp_path_factory.mktemp("big")
    yield BigFiles(directory)
    for item in directory.iterdir():
        item.unlink()
    directory.rmdir()
