"""The ``blit`` command's remote side against a real blitd: push, pull, list, purge,
copy and mirror with a remote address, and the remote options.

The daemon is the wheel's ``blitd`` console script on 127.0.0.1 (see
``conftest.BlitDaemon``); ``blit`` runs as the installed console script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import blit
import pytest
from conftest import (
    READ_ONLY_CONTENT,
    READ_ONLY_FILE,
    blitd_command,
    build_sample_tree,
    free_port,
)

# The console script installed next to this interpreter, or ``python -m blit``
# when the package was installed without scripts.
_SCRIPT = Path(sys.executable).with_name("blit")
BLIT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "blit"]

TIMEOUT_SECONDS = 60

SUMMARY_KEYS = {
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

ENTRY_KEYS = {"path", "kind", "size", "mode", "mtime_ns", "link_target"}

MODULE_KEYS = {"name", "comment", "read_only"}

SUMMARY_LINE = re.compile(
    r"^(push|pull|copy|mirror): ([\d,]+) transferred, ([\d,]+) skipped, ([\d,]+) deleted, "
    r"([\d,]+) failed; [\d.,]+ (B|KiB|MiB|GiB) in [\d.]+ s( \([\d.,]+ (B|KiB|MiB|GiB)/s\))?$"
)

# A made-up token that must never appear in blit's output.
SECRET_TOKEN = "s3cr3t-t0ken-never-printed"

# Options that each remote command's --help must explain.
COMMAND_OPTIONS = {
    "push": [
        "--mirror",
        "--dry-run",
        "--exclude",
        "--checksum",
        "--fsync",
        "--json",
        "--quiet",
        "--progress",
        "--no-progress",
        "--token-file",
        "--force-grpc-data",
    ],
    "list": ["--recursive", "-r", "--json", "--token-file"],
    "purge": ["--json", "--token-file"],
    "copy": ["--token-file", "--force-grpc-data", "--threads"],
    "mirror": ["--token-file", "--force-grpc-data", "--threads"],
}
COMMAND_OPTIONS["pull"] = COMMAND_OPTIONS["push"]


def run_blit(
    *args: str | os.PathLike[str] | bytes, without_env_token: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the blit command with ``args`` and return its result with bytes output.

    With ``without_env_token``, ``BLIT_TOKEN`` is removed from its
    environment, so only a ``--token-file`` can authenticate it.
    """
    env = dict(os.environ)
    if without_env_token:
        env.pop("BLIT_TOKEN", None)
    return subprocess.run(
        [*BLIT, *args],
        check=False,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
        env=env,
    )


def text(output: bytes) -> str:
    return output.decode("utf-8", "surrogateescape")


def lines(output: bytes) -> list[str]:
    return text(output).splitlines()


def summary_counts(result: subprocess.CompletedProcess[bytes]) -> tuple[str, int, int, int, int]:
    """Parse the one summary line on stdout.

    Returns the command and the transferred, skipped, deleted and failed counts.
    """
    output = lines(result.stdout)
    assert len(output) == 1, output
    match = SUMMARY_LINE.match(output[0])
    assert match, output[0]
    counts = [int(group.replace(",", "")) for group in match.groups()[1:5]]
    return (match.group(1), *counts)


def assert_error(result: subprocess.CompletedProcess[bytes], *fragments: str) -> str:
    """Assert exit status 1 with one ``blit: error:`` line that contains each fragment."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == b""
    errors = lines(result.stderr)
    assert len(errors) == 1, errors
    assert errors[0].startswith("blit: error: ")
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


@pytest.fixture
def token_file(tmp_path):
    """A token file holding ``SECRET_TOKEN`` and a second line that is not read."""
    path = tmp_path / "token"
    path.write_text(SECRET_TOKEN + "\nsecond line is ignored\n")
    return path


# --- help


@pytest.mark.parametrize(
    ("command", "option"),
    [(command, option) for command, options in COMMAND_OPTIONS.items() for option in options],
)
def test_help_mentions_option(command, option):
    result = run_blit(command, "--help")

    assert result.returncode == 0
    assert re.search(rf"(^|[\s\[,]){re.escape(option)}\b", text(result.stdout))


@pytest.mark.parametrize("command", ["push", "pull", "list", "purge"])
def test_help_explains_addresses_and_status(command):
    output = text(run_blit(command, "--help").stdout)

    assert "blit://HOST[:PORT]/MODULE[/PATH]" in output
    assert "BLIT_TOKEN" in output
    assert "exit status" in output
    for status in ("0", "1", "130"):
        assert re.search(rf"^\s+{status}\s", output, re.MULTILINE), status


def test_top_help_lists_remote_commands():
    output = text(run_blit("--help").stdout)

    for command in ("push", "pull", "list", "purge"):
        assert re.search(rf"^\s+{command}\s", output, re.MULTILINE), command


# --- push and pull


def test_push_pull_round_trip(daemon, remote_dir, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)
    back = tmp_path / "back"
    connections_before = daemon.data_connections()

    pushed = run_blit("push", src.root, remote_dir.url)
    pulled = run_blit("pull", remote_dir.url, back)

    assert daemon.data_connections() > connections_before, daemon.log()
    assert pushed.returncode == 0, pushed.stderr
    assert pulled.returncode == 0, pulled.stderr
    assert summary_counts(pushed) == ("push", 17, 0, 0, 0)
    assert summary_counts(pulled) == ("pull", 17, 0, 0, 0)
    assert pushed.stderr == b""
    assert tree_diff(src.root, remote_dir.path, ignore_root=True) == []
    assert tree_diff(src.root, back, ignore_root=True) == []


def test_force_grpc_data_round_trip(daemon, remote_dir, make_tree, big_files, tmp_path, tree_diff):
    src = make_tree("src")
    big, _digest = big_files.get(3)
    build_sample_tree(src, big_file=big)
    back = tmp_path / "back"
    connections_before = daemon.data_connections()

    pushed = run_blit("push", "--force-grpc-data", src.root, remote_dir.url)
    pulled = run_blit("pull", "--force-grpc-data", remote_dir.url, back)

    assert daemon.data_connections() == connections_before, daemon.log()
    assert pushed.returncode == 0, pushed.stderr
    assert pulled.returncode == 0, pulled.stderr
    assert tree_diff(src.root, remote_dir.path, ignore_root=True) == []
    assert tree_diff(src.root, back, ignore_root=True) == []


def test_push_json(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("a.txt", "12345")
    src.dir("empty")

    result = run_blit("push", "--json", src.root, remote_dir.url)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == SUMMARY_KEYS
    assert document["command"] == "push"
    assert document["transferred"] == 2
    assert document["bytes"] == 5
    assert document["dry_run"] is False
    assert document["failures"] == []


def test_pull_quiet_prints_nothing(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    src.file("a.txt", "x")
    blit.push(src.root, remote_dir.url)

    result = run_blit("pull", "-q", remote_dir.url, tmp_path / "back")

    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert result.stderr == b""
    assert (tmp_path / "back" / "a.txt").read_text() == "x"


def test_push_progress_line_on_request(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("a.txt", "x")

    result = run_blit("push", "--progress", src.root, remote_dir.url)

    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith(b"\n")
    assert b"\r" in result.stderr


def test_push_mirror_deletes_on_daemon(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    blit.push(src.root, remote_dir.url)
    (remote_dir.path / "extra.txt").write_text("x")
    (remote_dir.path / "extra-dir").mkdir()
    (remote_dir.path / "extra-dir" / "f").write_text("x")
    (remote_dir.path / "kept.log").write_text("excluded")

    result = run_blit("push", "--mirror", "--exclude", "*.log", src.root, remote_dir.url)

    assert result.returncode == 0, result.stderr
    assert summary_counts(result) == ("push", 0, 1, 3, 0)
    assert sorted(os.listdir(remote_dir.path)) == ["keep.txt", "kept.log"]


def test_pull_mirror_deletes_locally(daemon, remote_dir, make_tree, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)
    local = make_tree("local")
    local.file("extra.txt", "x")
    local.file("extra-dir/f", "x")

    copied = run_blit("pull", remote_dir.url, local.root)
    assert os.path.exists(local.path("extra.txt"))
    mirrored = run_blit("pull", "--mirror", remote_dir.url, local.root)

    assert copied.returncode == 0, copied.stderr
    assert mirrored.returncode == 0, mirrored.stderr
    assert summary_counts(mirrored)[3] == 3
    assert tree_diff(src.root, local.root, ignore_root=True) == []


def test_push_dry_run_changes_nothing(daemon, remote_dir, make_tree, snapshot):
    src = make_tree("src")
    src.file("new.txt", "n")
    remote_dir.path.mkdir()
    (remote_dir.path / "old.txt").write_text("o")
    before = snapshot(remote_dir.path)

    result = run_blit("push", "--dry-run", "--mirror", src.root, remote_dir.url)

    assert result.returncode == 0, result.stderr
    assert snapshot(remote_dir.path) == before
    assert lines(result.stdout)[-1] == (
        "push (dry run): 1 to transfer, 0 up to date, 1 to delete, 0 failed; nothing changed"
    )


def test_pull_dry_run_lists_changes(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("new.txt", "n")
    blit.push(src.root, remote_dir.url)
    local = make_tree("local")
    local.file("old.txt", "o")

    result = run_blit("pull", "-n", "--mirror", remote_dir.url, local.root)

    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[:2] == ["copy new.txt", "delete old.txt"]
    assert sorted(os.listdir(local.root)) == ["old.txt"]


def test_single_file_push_and_pull(daemon, remote_dir, make_tree, tmp_path):
    src = make_tree("src")
    source = src.file("report.txt", "r", mtime_ns=1_500_000_000_000_000_009)
    (remote_dir.path / "inbox").mkdir(parents=True)
    into = tmp_path / "into"
    into.mkdir()

    renamed = run_blit("push", source, remote_dir.url_of("renamed.txt"))
    into_dir = run_blit("push", source, remote_dir.url_of("inbox"))
    pulled = run_blit("pull", remote_dir.url_of("renamed.txt"), into)

    assert renamed.returncode == 0, renamed.stderr
    assert into_dir.returncode == 0, into_dir.stderr
    assert pulled.returncode == 0, pulled.stderr
    assert (remote_dir.path / "renamed.txt").read_text() == "r"
    assert os.listdir(remote_dir.path / "inbox") == ["report.txt"]
    assert (into / "renamed.txt").read_text() == "r"
    assert os.lstat(into / "renamed.txt").st_mtime_ns == 1_500_000_000_000_000_009


# --- copy and mirror with a remote side


def test_copy_and_mirror_with_remote_side(daemon, remote_dir, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)
    local = make_tree("local")
    local.file("extra.txt", "x")

    pushed = run_blit("copy", src.root, remote_dir.url)
    mirrored = run_blit("mirror", remote_dir.url, local.root)

    assert pushed.returncode == 0, pushed.stderr
    assert mirrored.returncode == 0, mirrored.stderr
    assert summary_counts(pushed) == ("copy", 17, 0, 0, 0)
    assert summary_counts(mirrored) == ("mirror", 17, 0, 1, 0)
    assert tree_diff(src.root, local.root, ignore_root=True) == []


def test_remote_to_remote_exits_1(daemon, remote_dir):
    result = run_blit("copy", remote_dir.url_of("a"), remote_dir.url_of("b"))

    assert_error(result, "remote to remote is not supported yet")
    daemon.assert_serving()


def test_threads_with_remote_side_exits_1(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("f.txt", "x")

    result = run_blit("copy", "--threads", "4", src.root, remote_dir.url)

    assert_error(result, "threads")
    assert not os.path.lexists(remote_dir.path)


def test_force_grpc_data_local_exits_1(make_tree, dst):
    src = make_tree("src")
    src.file("f.txt", "x")

    result = run_blit("copy", "--force-grpc-data", src.root, dst)

    assert_error(result, "force_grpc_data")
    assert not dst.exists()


# --- list


def test_list_modules_table(daemon):
    result = run_blit("list", daemon.url)

    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        "MODULE  ACCESS      COMMENT",
        "m       read-write  writable test module",
        "ro      read-only   read-only test module",
    ]


def test_list_modules_shows_token_access(daemon, tmp_path):
    created = subprocess.run(
        [*blitd_command(), "token", "create", "--config", str(daemon.config_path),
         "--name", "list-reader", "--modules", "m", "--permissions", "read", "--replace"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token_file = tmp_path / "reader.token"
    token_file.write_text(created.stdout)
    token_file.chmod(0o600)

    # blitd reloads its token store on change; poll until the new token works.
    deadline = time.monotonic() + 30
    while True:
        result = run_blit("list", "--token-file", str(token_file), daemon.url)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        "MODULE  ACCESS     COMMENT",
        "m       read-only  writable test module",
    ]


def test_non_utf8_address_is_an_error(daemon, tmp_path):
    url = os.fsencode(daemon.address("m")) + b"/na\xefve"

    result = run_blit("pull", url, tmp_path / "dst")

    assert result.returncode == 1
    assert result.stderr.startswith(b"blit: error: invalid argument "), result.stderr
    assert b"not valid UTF-8" in result.stderr
    assert b"Traceback" not in result.stderr


def test_list_modules_json(daemon):
    result = run_blit("list", "--json", daemon.url)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"command", "url", "modules"}
    assert document["command"] == "list"
    assert document["url"] == daemon.url
    assert all(set(module) == MODULE_KEYS for module in document["modules"])
    assert [(m["name"], m["read_only"]) for m in document["modules"]] == [
        ("m", False),
        ("ro", True),
    ]


def test_list_entries_table(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("a.txt", "12345", mtime_ns=1_600_000_000_000_000_000)
    src.dir("sub")
    src.file("sub/inner.txt", "i")
    src.symlink("link", "a.txt")
    blit.push(src.root, remote_dir.url)

    flat = run_blit("list", remote_dir.url)
    recursive = run_blit("list", "-r", remote_dir.url)

    assert flat.returncode == 0, flat.stderr
    rows = [line.split() for line in lines(flat.stdout)]
    assert rows[0] == ["KIND", "SIZE", "MODIFIED", "PATH"]
    assert [(row[0], row[1], row[-1]) for row in rows[1:]] == [
        ("file", "5", "a.txt"),
        ("symlink", "0", "a.txt"),
        ("dir", "0", "sub"),
    ]
    assert lines(flat.stdout)[2].endswith("link -> a.txt")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", rows[1][2])
    assert recursive.returncode == 0, recursive.stderr
    assert [line.split()[-1] for line in lines(recursive.stdout)[1:]] == [
        "a.txt",
        "a.txt",
        "sub",
        "sub/inner.txt",
    ]


def test_list_entries_json(daemon, remote_dir, make_tree):
    src = make_tree("src")
    build_sample_tree(src)
    blit.push(src.root, remote_dir.url)

    result = run_blit("list", "--json", "--recursive", remote_dir.url)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"command", "url", "entries"}
    assert document["url"] == remote_dir.url
    entries = {entry["path"]: entry for entry in document["entries"]}
    assert all(set(entry) == ENTRY_KEYS for entry in entries.values())
    assert len(entries) == 17
    assert entries["run.sh"] == {
        "path": "run.sh",
        "kind": "file",
        "size": 10,
        "mode": 0o751,
        "mtime_ns": 1_500_000_000_000_000_001,
        "link_target": None,
    }
    assert entries["deep/link-up"]["link_target"] == "../a.txt"
    # A name that is not UTF-8 keeps its bytes as surrogate escapes.
    assert os.fsencode("latin1-caf\udce9.txt") in {os.fsencode(path) for path in entries}


def test_list_empty_dir_prints_nothing(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.dir("empty")
    blit.push(src.root, remote_dir.url)

    result = run_blit("list", remote_dir.url_of("empty"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == b""


# --- purge


def test_purge_file_and_tree(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    src.file("gone.txt", "g")
    src.file("tree/a/b.txt", "b")
    blit.push(src.root, remote_dir.url)

    result = run_blit("purge", remote_dir.url_of("gone.txt"), remote_dir.url_of("tree"))

    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == ["purge: 4 deleted"]
    assert os.listdir(remote_dir.path) == ["keep.txt"]


def test_purge_json(daemon, remote_dir, make_tree):
    src = make_tree("src")
    src.file("gone.txt", "g")
    blit.push(src.root, remote_dir.url)

    result = run_blit("purge", "--json", remote_dir.url_of("gone.txt"))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"command": "purge", "deleted": 1}


@pytest.mark.parametrize("suffix", ["", "/"], ids=["bare", "slash"])
def test_purge_module_root_exits_1(daemon, remote_dir, make_tree, snapshot, suffix):
    src = make_tree("src")
    src.file("f.txt", "x")
    blit.push(src.root, remote_dir.url)
    before = snapshot(daemon.module_dir("m"))

    result = run_blit("purge", daemon.address("m") + suffix)

    assert_error(result, "root of module m")
    assert snapshot(daemon.module_dir("m")) == before
    daemon.assert_serving()


def test_purge_without_url_exits_1():
    result = run_blit("purge")

    assert_error(result, "--help")


# --- errors


@pytest.mark.parametrize("command", ["list", "push", "pull", "purge"])
def test_unknown_module_exits_1(daemon, make_tree, tmp_path, command):
    src = make_tree("src")
    src.file("f.txt", "x")
    address = daemon.address("no-such-module", "dir")
    args = {
        "list": [address],
        "push": [src.root, address],
        "pull": [address, tmp_path / "out"],
        "purge": [address],
    }[command]

    result = run_blit(command, *args)

    assert_error(result, '"no-such-module"', "not found")
    assert not (tmp_path / "out").exists()
    daemon.assert_serving()


def test_read_only_push_exits_1(daemon, make_tree, snapshot):
    src = make_tree("src")
    src.file("f.txt", "x")
    before = snapshot(daemon.module_dir("ro"))

    result = run_blit("push", src.root, daemon.address("ro", "dir"))

    assert_error(result, "module ro is read-only")
    assert snapshot(daemon.module_dir("ro")) == before
    daemon.assert_serving()


def test_pull_from_read_only_module(daemon, tmp_path):
    result = run_blit("pull", daemon.address("ro", READ_ONLY_FILE), tmp_path / "copy.txt")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy.txt").read_text() == READ_ONLY_CONTENT


@pytest.mark.parametrize(
    "args",
    [
        ["push", ".", "backup-host:photos/2024"],
        ["pull", "backup-host:photos/2024", "."],
        ["list", "backup-host:photos/2024"],
        ["purge", "backup-host:photos/2024"],
        ["copy", "backup-host:photos/2024", "."],
    ],
    ids=["push", "pull", "list", "purge", "copy"],
)
def test_v1_address_exits_1(args):
    result = run_blit(*args)

    assert_error(result, "blit://backup-host/photos/2024")


@pytest.mark.parametrize("command", ["list", "push", "pull", "purge"])
def test_unreachable_daemon_exits_1(make_tree, tmp_path, command):
    port = free_port()
    address = f"blit://127.0.0.1:{port}/m/dir"
    src = make_tree("src")
    src.file("f.txt", "x")
    args = {
        "list": [address],
        "push": [src.root, address],
        "pull": [address, tmp_path / "out"],
        "purge": [address],
    }[command]

    result = run_blit(command, *args)

    assert_error(result, f"127.0.0.1:{port}")


def test_local_path_as_url_exits_1(make_tree):
    src = make_tree("src")

    result = run_blit("push", src.root, "not-a-url/dir")

    assert_error(result, "not a daemon address")


# --- token file


@pytest.mark.parametrize("command", ["push", "pull", "list", "purge"])
def test_missing_token_file_exits_1(daemon, remote_dir, make_tree, tmp_path, command):
    src = make_tree("src")
    src.file("f.txt", "x")
    missing = tmp_path / "no-such-token"
    args = {
        "push": [src.root, remote_dir.url],
        "pull": [remote_dir.url, tmp_path / "out"],
        "list": [daemon.url],
        "purge": [remote_dir.url_of("f.txt")],
    }[command]

    result = run_blit(command, "--token-file", missing, *args)

    assert_error(result, "token file", str(missing), "No such file or directory")
    assert not os.path.lexists(remote_dir.path)
    assert not (tmp_path / "out").exists()


def test_empty_token_file_exits_1(daemon, tmp_path):
    empty = tmp_path / "empty-token"
    empty.write_text("\n" + SECRET_TOKEN + "\n")

    result = run_blit("list", "--token-file", empty, daemon.url)

    assert_error(result, str(empty), "empty first line")
    assert SECRET_TOKEN.encode() not in result.stderr


def test_token_file_used(daemon, remote_dir, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    src.file("f.txt", "x")
    token_file = tmp_path / "real-token"
    token_file.write_text(daemon.token + "\n")
    token = daemon.token.encode()

    def run(*args):
        return run_blit(*args, without_env_token=True)

    pushed = run("push", "--token-file", token_file, src.root, remote_dir.url)
    listed = run("list", "--token-file", token_file, remote_dir.url)
    pulled = run("pull", "--token-file", token_file, remote_dir.url, tmp_path / "back")
    purged = run("purge", "--token-file", token_file, remote_dir.url_of("f.txt"))

    for result in (pushed, listed, pulled, purged):
        assert result.returncode == 0, result.stderr
        assert token not in result.stdout + result.stderr
    assert (tmp_path / "back" / "f.txt").read_text() == "x"
    assert os.listdir(remote_dir.path) == []


def test_wrong_token_file_rejected(daemon, token_file):
    result = run_blit("list", "--token-file", token_file, daemon.url, without_env_token=True)

    assert_error(result, "--token-file", "BLIT_TOKEN")
    assert SECRET_TOKEN.encode() not in result.stdout + result.stderr


def test_missing_token_says_how_to_supply(daemon):
    result = run_blit("list", daemon.url, without_env_token=True)

    assert_error(result, "--token-file", "BLIT_TOKEN")


def test_token_never_printed_on_error(daemon, token_file, tmp_path):
    results = [
        run_blit("list", "--token-file", token_file, daemon.address("no-such-module")),
        run_blit("list", "--token-file", token_file, f"blit://127.0.0.1:{free_port()}/"),
        run_blit("purge", "--token-file", token_file, daemon.address("m")),
    ]

    for result in results:
        assert result.returncode == 1
        assert SECRET_TOKEN.encode() not in result.stdout + result.stderr
