"""The ``blit`` command, run as the installed console script on real trees."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import blit

# The console script installed next to this interpreter, or ``python -m blit``
# when the package was installed without scripts.
_SCRIPT = Path(sys.executable).with_name("blit")
BLIT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "blit"]

TIMEOUT_SECONDS = 60

TRANSFER_OPTIONS = [
    "-n",
    "--dry-run",
    "--exclude",
    "-c",
    "--checksum",
    "--fsync",
    "--json",
    "-q",
    "--quiet",
    "--progress",
    "--no-progress",
    "--threads",
]

JSON_KEYS = {
    "command",
    "transferred",
    "skipped",
    "deleted",
    "failed",
    "bytes",
    "seconds",
    "dry_run",
    "failures",
    "changes",
}

SUMMARY_LINE = re.compile(
    r"^(copy|mirror): ([\d,]+) transferred, ([\d,]+) skipped, ([\d,]+) deleted, "
    r"([\d,]+) failed; [\d.,]+ (B|KiB|MiB|GiB) in [\d.]+ s( \([\d.,]+ (B|KiB|MiB|GiB)/s\))?$"
)


def run_blit(*args: str | os.PathLike[str] | bytes, **kwargs) -> subprocess.CompletedProcess[bytes]:
    """Run the blit command with ``args`` and return its result with bytes output."""
    return subprocess.run(
        [*BLIT, *args],
        check=False,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
        **kwargs,
    )


def text(output: bytes) -> str:
    return output.decode("utf-8", "surrogateescape")


def lines(output: bytes) -> list[str]:
    return text(output).splitlines()


@pytest.fixture
def small_tree(src):
    """A source tree with a file, a nested file, an empty directory and a symlink."""
    src.file("a.txt", "alpha")
    src.file("sub/b.txt", "beta\n" * 100)
    src.dir("empty")
    src.symlink("link", "a.txt")
    return src


# Bytes of file content in small_tree.
SMALL_TREE_BYTES = 5 + 500

# Entries in small_tree: a.txt, sub, sub/b.txt, empty and link.
SMALL_TREE_ENTRIES = 5


# --- version and help


def test_version_output():
    result = run_blit("--version")

    assert result.returncode == 0
    assert text(result.stdout) == f"blit {blit.__version__}\n"
    assert result.stderr == b""


def test_version_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "blit", "--version"],
        check=False,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
    )

    assert result.returncode == 0
    assert text(result.stdout) == f"blit {blit.__version__}\n"


def test_version_skips_json_import():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "blit", "--version"],
        check=False,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
    )
    # Each line reads "import time: SELF | CUMULATIVE | <indent>NAME".
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in text(result.stderr).splitlines()
        if line.startswith("import time:")
    }

    assert result.returncode == 0
    assert "blit.cli" in imported
    assert "json" not in imported


def test_help_lists_commands():
    result = run_blit("--help")
    output = text(result.stdout)

    assert result.returncode == 0
    assert "copy" in output
    assert "mirror" in output
    assert "--version" in output
    assert "exit status" in output


@pytest.mark.parametrize("command", ["copy", "mirror"])
@pytest.mark.parametrize("option", TRANSFER_OPTIONS)
def test_help_mentions_option(command, option):
    result = run_blit(command, "--help")

    assert result.returncode == 0
    assert re.search(rf"(^|[\s\[,]){re.escape(option)}\b", text(result.stdout))


@pytest.mark.parametrize("command", ["copy", "mirror"])
def test_help_explains_rules_and_status(command):
    output = text(run_blit(command, "--help").stdout)

    assert "exclude patterns (rsync's rules)" in output
    assert "exit status" in output
    for status in ("0", "1", "2", "130"):
        assert re.search(rf"^\s+{status}\s", output, re.MULTILINE), status


# --- copy and mirror


def test_copy_small_tree(small_tree, dst, tree_diff):
    result = run_blit("copy", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert tree_diff(small_tree.root, dst) == []
    assert result.stderr == b""
    output = lines(result.stdout)
    assert len(output) == 1
    match = SUMMARY_LINE.match(output[0])
    assert match, output[0]
    assert match.group(1) == "copy"
    assert match.group(2) == str(SMALL_TREE_ENTRIES)
    assert match.group(5) == "0"
    assert f"{SMALL_TREE_BYTES} B in" in output[0]


def test_copy_again_skips(small_tree, dst):
    run_blit("copy", small_tree.root, dst)

    result = run_blit("copy", small_tree.root, dst)

    assert result.returncode == 0
    match = SUMMARY_LINE.match(lines(result.stdout)[0])
    assert match
    assert match.group(2) == "0"
    assert match.group(3) == str(SMALL_TREE_ENTRIES)


def test_copy_keeps_extra_files(small_tree, dst):
    dst.mkdir()
    (dst / "extra.txt").write_text("keep me")

    result = run_blit("copy", small_tree.root, dst)

    assert result.returncode == 0
    assert (dst / "extra.txt").read_text() == "keep me"


def test_mirror_deletes_extra(small_tree, dst, tree_diff):
    dst.mkdir()
    (dst / "extra.txt").write_text("delete me")
    (dst / "old").mkdir()
    (dst / "old" / "f").write_text("delete me too")

    result = run_blit("mirror", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert tree_diff(small_tree.root, dst, ignore_root=True) == []
    match = SUMMARY_LINE.match(lines(result.stdout)[0])
    assert match
    assert match.group(1) == "mirror"
    # extra.txt, old and old/f count as three deleted entries.
    assert match.group(4) == "3"


def test_mirror_keeps_excluded(small_tree, dst):
    dst.mkdir()
    (dst / "keep.log").write_text("excluded")
    (dst / "drop.txt").write_text("not excluded")

    result = run_blit("mirror", "--exclude", "*.log", "--exclude", "sub/", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert (dst / "keep.log").exists()
    assert not (dst / "drop.txt").exists()
    assert not (dst / "sub").exists()
    assert (dst / "a.txt").exists()


def test_threads_and_fsync_accepted(small_tree, dst, tree_diff):
    result = run_blit("copy", "--threads", "1", "--fsync", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert tree_diff(small_tree.root, dst) == []


def test_checksum_finds_same_mtime_change(src, dst):
    src.file("data.bin", b"new content", mtime_ns=1_600_000_000_000_000_000)
    dst.mkdir()
    stale = dst / "data.bin"
    stale.write_bytes(b"old content")
    os.utime(stale, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

    by_mtime = run_blit("copy", src.root, dst)
    content_after_mtime = stale.read_bytes()
    by_checksum = run_blit("copy", "--checksum", src.root, dst)

    assert by_mtime.returncode == 0
    assert content_after_mtime == b"old content"
    assert by_checksum.returncode == 0
    assert stale.read_bytes() == b"new content"
    assert lines(by_checksum.stdout)[0].startswith("copy: 1 transferred, 0 skipped")


# --- JSON output


def test_json_keys_and_values(small_tree, dst):
    result = run_blit("mirror", "--json", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert text(result.stdout).count("\n") == 1
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["command"] == "mirror"
    assert report["transferred"] == SMALL_TREE_ENTRIES
    assert report["skipped"] == 0
    assert report["deleted"] == 0
    assert report["failed"] == 0
    assert report["bytes"] == SMALL_TREE_BYTES
    assert isinstance(report["seconds"], float)
    assert report["dry_run"] is False
    assert report["failures"] == []
    assert report["changes"] == []


def test_json_dry_run_changes(small_tree, dst):
    result = run_blit("copy", "--json", "--dry-run", small_tree.root, dst)

    report = json.loads(result.stdout)
    assert result.returncode == 0
    assert report["command"] == "copy"
    assert report["dry_run"] is True
    assert report["bytes"] == 0
    assert {"action": "copy", "path": "a.txt"} in report["changes"]
    assert {"action": "mkdir", "path": "sub"} in report["changes"]
    assert {"action": "symlink", "path": "link"} in report["changes"]
    assert not dst.exists()


def test_json_lists_failures(small_tree, dst):
    small_tree.fifo("pipe")

    result = run_blit("copy", "--json", small_tree.root, dst)

    report = json.loads(result.stdout)
    assert result.returncode == 2
    assert report["failed"] == 1
    assert [failure["path"] for failure in report["failures"]] == ["pipe"]
    assert "blit: failed: pipe: " in text(result.stderr)


# --- dry run


def test_dry_run_lists_and_changes_nothing(small_tree, dst):
    result = run_blit("copy", "-n", small_tree.root, dst)

    assert result.returncode == 0, text(result.stderr)
    assert not dst.exists()
    output = lines(result.stdout)
    assert sorted(output[:-1]) == [
        "copy a.txt",
        "copy sub/b.txt",
        "mkdir empty",
        "mkdir sub",
        "symlink link",
    ]
    assert output[-1].startswith("copy (dry run): 5 to transfer, ")
    assert output[-1].endswith("nothing changed")


def test_mirror_dry_run_keeps_extra(small_tree, dst, snapshot):
    dst.mkdir()
    (dst / "extra.txt").write_text("still here")
    before = snapshot(dst)

    result = run_blit("mirror", "--dry-run", small_tree.root, dst)

    assert result.returncode == 0
    assert "delete extra.txt" in lines(result.stdout)
    assert snapshot(dst) == before


# --- errors and exit statuses


def test_missing_source_exits_1(tmp_path, dst):
    missing = tmp_path / "no-such-dir"

    result = run_blit("copy", missing, dst)

    assert result.returncode == 1
    assert result.stdout == b""
    errors = lines(result.stderr)
    assert len(errors) == 1
    assert errors[0].startswith("blit: error: ")
    assert str(missing) in errors[0]
    assert not dst.exists()


def test_v1_address_exits_1(tmp_path):
    result = run_blit("copy", "backup-host:photos/2024", tmp_path / "dst")

    assert result.returncode == 1
    errors = lines(result.stderr)
    assert len(errors) == 1
    assert errors[0].startswith("blit: error: ")
    assert "blit://backup-host/photos/2024" in errors[0]


def test_remote_address_exits_1(tmp_path):
    result = run_blit("copy", "blit://127.0.0.1/module", tmp_path / "dst")

    assert result.returncode == 1
    assert text(result.stderr).startswith("blit: error: ")


@pytest.mark.parametrize(
    "args",
    [
        ["copy", "--bogus", "a", "b"],
        ["copy", "a"],
        ["copy", "--threads", "many", "a", "b"],
        ["copy", "--threads", "-1", "a", "b"],
        ["copy", "--json", "-q", "a", "b"],
        ["frobnicate"],
        [],
    ],
    ids=[
        "unknown-option",
        "missing-dst",
        "threads-text",
        "threads-negative",
        "json-quiet",
        "unknown-command",
        "no-command",
    ],
)
def test_usage_error_exits_1(args):
    result = run_blit(*args)

    assert result.returncode == 1
    assert result.stdout == b""
    errors = lines(result.stderr)
    assert len(errors) == 1
    assert errors[0].startswith("blit: error: ")
    assert "--help" in errors[0]


def test_invalid_exclude_exits_1(small_tree, dst):
    result = run_blit("copy", "--exclude", "[", small_tree.root, dst)

    assert result.returncode == 1
    assert text(result.stderr).startswith("blit: error: ")
    assert not dst.exists()


def test_fifo_fails_others_copied(src, dst):
    src.file("first.txt", "1")
    src.file("nested/second.txt", "2")
    src.fifo("nested/pipe")

    result = run_blit("copy", src.root, dst)

    assert result.returncode == 2
    errors = lines(result.stderr)
    assert len(errors) == 1
    assert errors[0].startswith("blit: failed: nested/pipe: ")
    assert (dst / "first.txt").read_text() == "1"
    assert (dst / "nested" / "second.txt").read_text() == "2"
    assert not (dst / "nested" / "pipe").exists()
    match = SUMMARY_LINE.match(lines(result.stdout)[0])
    assert match
    assert match.group(5) == "1"


# --- quiet, encoding and progress


def test_quiet_prints_nothing(small_tree, dst):
    result = run_blit("copy", "-q", small_tree.root, dst)

    assert result.returncode == 0
    assert result.stdout == b""
    assert result.stderr == b""
    assert (dst / "a.txt").exists()


def test_quiet_dry_run_prints_nothing(small_tree, dst):
    result = run_blit("copy", "--quiet", "--dry-run", small_tree.root, dst)

    assert result.returncode == 0
    assert result.stdout == b""


@pytest.mark.parametrize("locale", [None, "C"], ids=["default-locale", "c-locale"])
def test_non_utf8_name(src, dst, locale):
    name = b"caf\xe9.txt"
    src.file(name, "latin-1 name")
    env = dict(os.environ)
    if locale is not None:
        env["LC_ALL"] = locale

    listing = run_blit("copy", "--dry-run", src.root, dst, env=env)
    copied = run_blit("copy", src.root, dst, env=env)

    assert listing.returncode == 0, text(listing.stderr)
    assert b"copy " + name + b"\n" in listing.stdout
    assert listing.stderr == b""
    assert copied.returncode == 0, text(copied.stderr)
    assert copied.stderr == b""
    assert os.listdir(os.fsencode(dst)) == [name]


def test_non_utf8_name_json(src, dst):
    name = b"\xff\xfe-bytes"
    src.file(name, "x")

    result = run_blit("copy", "--json", "--dry-run", src.root, dst)

    assert result.returncode == 0, text(result.stderr)
    report = json.loads(result.stdout)
    assert [os.fsencode(change["path"]) for change in report["changes"]] == [name]


def test_control_characters_escaped(src, dst):
    src.file("two\nlines\x1b[31m", "x")

    result = run_blit("copy", "--dry-run", src.root, dst)

    assert result.returncode == 0
    assert lines(result.stdout)[0] == "copy two\\x0alines\\x1b[31m"


def test_progress_forced_on_pipe(small_tree, dst):
    result = run_blit("copy", "--progress", small_tree.root, dst)

    assert result.returncode == 0
    progress = text(result.stderr)
    assert progress.startswith("\r")
    assert f"{SMALL_TREE_ENTRIES}/{SMALL_TREE_ENTRIES} entries" in progress
    assert progress.endswith("\n")
    assert SUMMARY_LINE.match(lines(result.stdout)[0])


@pytest.mark.parametrize(
    "options",
    [[], ["--no-progress"], ["--progress", "-q"], ["--progress", "--json"]],
    ids=["pipe", "no-progress", "quiet", "json"],
)
def test_progress_off(small_tree, dst, options):
    result = run_blit("copy", *options, small_tree.root, dst)

    assert result.returncode == 0
    assert result.stderr == b""


def run_with_terminal_stderr(
    *args: str | os.PathLike[str], columns: int
) -> tuple[int, bytes, bytes]:
    """Run blit with stderr on a pseudo-terminal ``columns`` wide.

    Returns the exit status, stdout and everything written to the terminal.
    """
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        process = subprocess.Popen([*BLIT, *args], stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        terminal = -1
        written = b""
        while select.select([controller], [], [], TIMEOUT_SECONDS)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                # Linux reports EIO once the last writer has closed the terminal.
                break
            if not chunk:
                break
            written += chunk
        stdout, _ = process.communicate(timeout=TIMEOUT_SECONDS)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    return process.returncode, stdout, written


# A new pseudo-terminal reports 0 columns, for which blit assumes 80.
@pytest.mark.parametrize("columns", [0, 24, 120])
def test_progress_on_terminal(src, dst, columns):
    src.file("a-file-with-a-long-name-to-show-as-the-current-path.bin", os.urandom(100_000))
    src.file("b.txt", "b")

    status, stdout, written = run_with_terminal_stderr("copy", src.root, dst, columns=columns)

    assert status == 0
    assert SUMMARY_LINE.match(text(stdout).splitlines()[0])
    # The last redraw blanks the line and returns the cursor to its start.
    assert re.search(rb"\r +\r$", written), written
    drawn = [line for line in written.split(b"\r") if line.strip()]
    assert drawn, written
    width = columns if columns > 0 else 80
    assert max(len(line.rstrip()) for line in drawn) < width
    if width > 40:
        assert b"2/2 entries" in drawn[-1]


def test_interrupt_exits_130(big_files, tmp_path, temp_files):
    big, _ = big_files.get(1024)
    dst = tmp_path / "dst"
    process = subprocess.Popen(
        [*BLIT, "copy", "--progress", "--fsync", "--threads", "1", big, dst],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Wait for the first progress line, so the signal lands mid-transfer.
    assert process.stderr is not None
    first = process.stderr.read(1)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, rest = process.communicate(timeout=TIMEOUT_SECONDS)
    stderr = text(first + rest)

    assert first == b"\r"
    assert process.returncode == 130, stderr
    assert stderr.endswith("blit: interrupted\n")
    assert stdout == b""
    assert not dst.exists()
    assert temp_files(tmp_path) == []
