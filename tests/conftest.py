"""Shared fixtures for the local and remote transfer tests.

The tree snapshot and comparison here use only ``os.lstat``, ``os.readlink``
and ``hashlib``, so a test checks blit against an independent reading of the
file system rather than against blit's own view of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import pytest

import blit

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


# --- blitd daemons for the remote tests

# The debug log line of blitd for each admitted data-plane connection.
DATA_CONNECTION_LOG = "data plane: connection admitted"

# Generous upper bound, in seconds, for blitd to start serving or to stop.
# Polling returns as soon as it is ready, so tests normally wait far less.
DAEMON_DEADLINE_S = 60


def blitd_command() -> List[str]:
    """Return the command that runs the wheel's ``blitd`` console script.

    The script in the interpreter's own bin directory comes first, so a
    native ``blitd`` elsewhere on PATH is never picked. Without it, the same
    entry point runs through ``python -c``.
    """
    script = shutil.which("blitd", path=os.path.dirname(sys.executable))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from blit._daemon import main; main()"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string; JSON's escapes are valid TOML."""
    return json.dumps(text)


class BlitDaemon:
    """A ``blitd`` process on 127.0.0.1 serving modules under one directory.

    ``modules`` maps each module name to ``(read_only, comment)``. Module
    ``NAME`` serves ``root / "modules" / NAME``. The daemon logs to
    ``root / "blitd.log"``.

    With ``auth`` (the default, as in production), the daemon requires
    tokens: an admin token for every module is created with ``blitd token
    create`` (or reused from ``root / "token"`` after a restart), written to
    ``token_file`` and put in ``BLIT_TOKEN`` until the daemon stops, so
    clients in and under the test process use it.
    """

    def __init__(
        self,
        root: Path,
        modules: Dict[str, Tuple[bool, str]],
        *,
        extra_args: Sequence[str] = (),
        auth: bool = True,
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"blit://127.0.0.1:{self.port}/"
        self.config_path = root / "blitd.toml"
        self.log_path = root / "blitd.log"
        lines = [
            "[daemon]",
            f'listen_addr = "127.0.0.1:{self.port}"',
            "data_port = 0",
        ]
        self.token_file = root / "token"
        self.token: Optional[str] = None
        if auth:
            lines += ['auth = "token"', f"token_file = {toml_string(str(root / 'tokens.toml'))}"]
        else:
            lines.append('auth = "none"')
        for name, (read_only, comment) in modules.items():
            self.module_dir(name).mkdir(parents=True, exist_ok=True)
            lines += [
                "",
                "[[modules]]",
                f"name = {toml_string(name)}",
                f"path = {toml_string(str(self.module_dir(name)))}",
                f"read_only = {'true' if read_only else 'false'}",
                f"comment = {toml_string(comment)}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._previous_token = os.environ.get("BLIT_TOKEN")
        if auth:
            self.token = self._admin_token()
            os.environ["BLIT_TOKEN"] = self.token
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*blitd_command(), "--config", str(self.config_path), *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.wait_until_serving()
        except BaseException:
            self.kill()
            raise

    def _admin_token(self) -> str:
        """Create the test token, or reuse the one a previous run created."""
        if self.token_file.exists():
            return self.token_file.read_text().strip()
        created = subprocess.run(
            [*blitd_command(), "token", "create", "--config", str(self.config_path),
             "--name", "tests", "--modules", "*", "--permissions", "read,write,delete,admin"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        self.token_file.write_text(token + "\n")
        return token

    def _restore_token(self) -> None:
        if self.token is None:
            return
        if self._previous_token is None:
            os.environ.pop("BLIT_TOKEN", None)
        else:
            os.environ["BLIT_TOKEN"] = self._previous_token
        self.token = None

    def module_dir(self, name: str) -> Path:
        """Return the directory that module ``name`` serves."""
        return self.root / "modules" / name

    def address(self, module: str, path: str = "") -> str:
        """Return the ``blit://`` address of ``path`` inside ``module``."""
        return f"{self.url}{module}/{path}" if path else f"{self.url}{module}"

    def log(self) -> str:
        """Return what the daemon has logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        """Wait until blitd responds to a status request, or fail the test."""
        deadline = time.monotonic() + DAEMON_DEADLINE_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"blitd exited with status {self.process.returncode} before serving:\n"
                    + self.log()
                )
            try:
                blit.status(self.url)
                return
            except blit.NetworkError:
                if time.monotonic() > deadline:
                    pytest.fail(f"blitd did not serve within {DAEMON_DEADLINE_S} s:\n" + self.log())
                time.sleep(0.05)

    def data_connections(self) -> int:
        """Return the number of data-plane connections logged so far.

        Needs ``--log-level blitd=debug``, under which blitd logs each one.
        """
        return self.log().count(DATA_CONNECTION_LOG)

    def assert_serving(self) -> None:
        """Assert that the process runs and responds to a status request."""
        assert self.process.poll() is None, "blitd exited:\n" + self.log()
        status = blit.status(self.url)
        assert status.version == blit.__version__

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Send ``signal_number`` and return the exit status once the daemon has exited."""
        self._restore_token()
        self.process.send_signal(signal_number)
        try:
            return self.process.wait(timeout=DAEMON_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"blitd did not exit within {DAEMON_DEADLINE_S} s:\n" + self.log())

    def kill(self) -> None:
        """Kill the daemon if it still runs, and reap it."""
        self._restore_token()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DAEMON_DEADLINE_S)


# The modules of the shared daemon: a writable one, where each test works in
# its own directory, and a read-only one holding one file.
SHARED_MODULES = {
    "m": (False, "writable test module"),
    "ro": (True, "read-only test module"),
}
READ_ONLY_FILE = "readme.txt"
READ_ONLY_CONTENT = "served read-only\n"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    """A blitd serving ``SHARED_MODULES``, shared by one test module.

    On teardown it gets SIGTERM and must exit with status 0.
    """
    root = tmp_path_factory.mktemp("blitd")
    ro_dir = root / "modules" / "ro"
    ro_dir.mkdir(parents=True)
    (ro_dir / READ_ONLY_FILE).write_text(READ_ONLY_CONTENT)
    # At debug level blitd logs each data-plane connection, so a test can
    # distinguish a transfer over the data port from one inside the gRPC stream.
    running = BlitDaemon(root, SHARED_MODULES, extra_args=["--log-level", "blitd=debug"])
    yield running
    if running.process.poll() is not None:
        pytest.fail(
            f"blitd exited with status {running.process.returncode} during the tests:\n"
            + running.log()
        )
    status = running.stop()
    assert status == 0, running.log()


class RemoteDir:
    """A directory of one test inside module ``m`` of the shared daemon.

    ``url`` is its ``blit://`` address, ``target`` its ``m/NAME`` form for
    :class:`blit.Client` methods and ``path`` the directory on disk, which
    does not exist until something creates it.
    """

    def __init__(self, daemon: BlitDaemon, name: str) -> None:
        self.daemon = daemon
        self.name = name
        self.url = daemon.address("m", name)
        self.target = f"m/{name}"
        self.path = daemon.module_dir("m") / name

    def url_of(self, rel: str) -> str:
        """Return the address of ``rel`` inside this directory."""
        return f"{self.url}/{rel}"


@pytest.fixture
def remote_dir(daemon: BlitDaemon, request: pytest.FixtureRequest) -> RemoteDir:
    """A fresh directory for this test inside module ``m``, named after the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    remote = RemoteDir(daemon, name)
    if os.path.lexists(remote.path):
        shutil.rmtree(remote.path)
    return remote


def build_sample_tree(tree: TreeBuilder, *, big_file: Optional[Path] = None) -> None:
    """Fill ``tree`` with the entry types and names that a transfer must keep.

    Nested and empty directories, a 0-byte file, unicode and space names, a
    name that is not valid UTF-8, relative and dangling symlinks, unusual
    modes and fixed nanosecond mtimes. ``big_file``, when given, is hard
    linked in as ``big.bin``.
    """
    tree.file("a.txt", "alpha\n", mtime_ns=1_600_000_000_123_456_789)
    tree.file("zero.bin", b"")
    tree.file("run.sh", "#!/bin/sh\n", mode=0o751, mtime_ns=1_500_000_000_000_000_001)
    tree.file("private.txt", "p", mode=0o600)
    tree.file("deep/er/est/leaf.txt", "leaf", mtime_ns=1_400_000_000_999_999_999)
    tree.file("name with spaces.txt", "s")
    tree.file("ünïcødé/日本語.txt", "u")
    tree.file(b"latin1-caf\xe9.txt", b"not utf-8 name")
    tree.dir("empty")
    tree.dir("closed", mode=0o700)
    tree.symlink("link-to-a", "a.txt")
    tree.symlink("deep/link-up", "../a.txt")
    tree.symlink("dangling", "no-such-target")
    if big_file is not None:
        os.link(big_file, tree.path("big.bin"))
    # Set directory mtimes last, because creating entries changes them.
    tree.dir("empty", mtime_ns=1_300_000_000_000_000_007)
    tree.dir("deep/er", mtime_ns=1_300_000_000_000_000_011)
