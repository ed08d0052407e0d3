"""``blit migrate-url``: v1 addresses and v1 ``blit`` command lines in scripts, converted to v2.

tests/migrate/scripts/ contains a script with v1 command lines
(``nightly.sh``), the script as the rewrite must leave it
(``nightly.sh.expected``), the diff printed on stdout (``nightly.diff``) and
the findings printed on stderr (``nightly.stderr``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from blit.migrate import addresses

SCRIPTS = Path(__file__).resolve().parent / "migrate" / "scripts"

_SCRIPT = Path(sys.executable).with_name("blit")
BLIT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "blit"]

TIMEOUT_SECONDS = 60

# (v1 address, v2 address with the default port)
CONVERTED = [
    ("host:module", "blit://host:50051/module"),
    ("host:module/", "blit://host:50051/module/"),
    ("host:module/dir/file.txt", "blit://host:50051/module/dir/file.txt"),
    ("backup.example.com:data/a b/c", "blit://backup.example.com:50051/data/a b/c"),
    ("10.0.0.5:data/x", "blit://10.0.0.5:50051/data/x"),
    ("[::1]:data/x", "blit://[::1]:50051/data/x"),
    ("[fe80::1]:data", "blit://[fe80::1]:50051/data"),
    ("[2001:db8::7]::data/x/", "blit://[2001:db8::7]:50051/data/x/"),
    ("host::module/path", "blit://host:50051/module/path"),
    ("host::module", "blit://host:50051/module"),
    ("host::", "blit://host:50051/"),
    ("user@host::module/path", "blit://host:50051/module/path"),
    ("rsync://host/module/path", "blit://host:50051/module/path"),
    ("rsync://host:873/module/path", "blit://host:50051/module/path"),
    ("rsync://user@host:8730/module/", "blit://host:50051/module/"),
    ("rsync://[::1]:873/module/p", "blit://[::1]:50051/module/p"),
    ("rsync://host/", "blit://host:50051/"),
    ("rsync://host", "blit://host:50051/"),
    ("RSYNC://Host/Module", "blit://Host:50051/Module"),
    ("h::m", "blit://h:50051/m"),
    ("host:mod/ünïcødé/日本", "blit://host:50051/mod/ünïcødé/日本"),
]

# (text, words of the reason it is left alone)
LEFT_ALONE = [
    ("C:/Users/me", "Windows drive letter"),
    ("C:\\Users\\me", "Windows drive letter"),
    ("12:30", "neither a host name nor an IPv4 address"),
    ("12:30:45", "neither a host name nor an IPv4 address"),
    ("user@host:path", "scp or ssh"),
    ("user@host:/abs/path", "scp or ssh"),
    ("host:/abs/path", "scp or ssh target"),
    ("http://host:8080/path", "URL of another scheme"),
    ("https://example.com/x", "URL of another scheme"),
    ("ssh://host/x", "URL of another scheme"),
    ("blit://host/module", "already a v2 address"),
    ("blits://host:7000/module", "already a v2 address"),
    ("/local/path", "local path"),
    ("./host:module/dir", "local path"),
    ("relative/dir", "no ':' after the host"),
    ("host:", "no module"),
    ("my host:module", "not a host name"),
    ("[not-ipv6]:module", "not an IPv6 address"),
    ("rsync://host:port/module", "not a number"),
    ("-host:module", "not a host name"),
]


def run(
    *args: str, stdin: Optional[str] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BLIT, "migrate-url", *args],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


# --- addresses


@pytest.mark.parametrize(("v1", "v2"), CONVERTED)
def test_convert_address(v1: str, v2: str) -> None:
    converted, _ = addresses.convert(v1)

    assert converted == v2


@pytest.mark.parametrize(("text", "reason"), LEFT_ALONE)
def test_address_left_alone(text: str, reason: str) -> None:
    converted, message = addresses.convert(text)

    assert converted is None
    assert reason in message


def test_command_converts_addresses() -> None:
    inputs = [v1 for v1, _ in CONVERTED]

    result = run(*inputs)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [v2 for _, v2 in CONVERTED]
    assert "login name 'user' is dropped" in result.stderr


def test_command_prints_other_text_unchanged() -> None:
    inputs = ["host:module/a", *[text for text, _ in LEFT_ALONE], "host:module/b"]

    # "--" ends the options, as one input starts with "-".
    result = run("--", *inputs)

    assert result.returncode == 1
    expected = [
        "blit://host:50051/module/a",
        *[text for text, _ in LEFT_ALONE],
        "blit://host:50051/module/b",
    ]
    assert result.stdout.splitlines() == expected
    reports = result.stderr.splitlines()
    assert len(reports) == len(LEFT_ALONE)
    for (text, reason), report in zip(LEFT_ALONE, reports):
        assert report.startswith(f"blit: {'note' if 'v2' in reason else 'warning'}: {text!r}")
        assert reason in report
        assert report.endswith("; printed unchanged")


def test_v2_address_alone_exits_zero() -> None:
    result = run("blit://host/module")

    assert result.returncode == 0
    assert result.stdout == "blit://host/module\n"


def test_stdin_one_address_per_line() -> None:
    result = run(stdin="host:data/x\n\n12:30\nrsync://h:873/m/y\r\n")

    assert result.returncode == 1
    assert result.stdout == "blit://host:50051/data/x\n\n12:30\nblit://h:50051/m/y\n"
    assert result.stderr.startswith("blit: warning: <stdin>:3: '12:30' is not a v1 address")


def test_port_option() -> None:
    result = run("--port", "7000", "host:data/x", "rsync://host:873/data/y")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "blit://host:7000/data/x\nblit://host:7000/data/y\n"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[daemon]\nlisten_addr = "0.0.0.0:50061"\n', "blit://host:50061/data/x"),
        ('[daemon]\nlisten_addr = "[::]:7001"  # both families\n', "blit://host:7001/data/x"),
        ('[daemon]\ntoken_file = "/t"\n', "blit://host:50051/data/x"),
        (
            '[daemon]\nlisten_addr = "127.0.0.1:7443"\n\n[daemon.tls]\ncert = "c"\nkey = "k"\n',
            "blits://host:7443/data/x",
        ),
    ],
)
def test_config_option_gives_port_and_scheme(tmp_path: Path, config: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config)

    result = run("--config", str(path), "host:data/x")

    assert result.returncode == 0, result.stderr
    assert result.stdout == expected + "\n"


def test_config_option_with_migrated_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "v1.conf").write_text(f"port = 8730\n[data]\npath = {tmp_path}/data\n")
    migrated = subprocess.run(
        [*BLIT, "migrate-config", "v1.conf", "-o", "new.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr

    result = run("--config", "new.toml", "backup:data/x", cwd=tmp_path)

    assert result.stdout == "blit://backup:8730/data/x\n"


def test_config_option_rejects_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nlisten_addr = "no port"\n')

    result = run("--config", str(path), "host:data/x")

    assert result.returncode == 1
    assert "cannot read the port from" in result.stderr
    assert result.stdout == ""


def test_port_and_config_are_exclusive(tmp_path: Path) -> None:
    result = run("--port", "7000", "--config", str(tmp_path / "x.toml"), "host:data")

    assert result.returncode == 1
    assert "not allowed with argument" in result.stderr


def test_rename_rejects_invalid_name() -> None:
    result = run("--rename", "a=.bad", "hh:a/x")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "--rename a=.bad: '.bad' is not a valid v2 module name" in result.stderr


def test_rename_twice_is_an_error() -> None:
    result = run("--rename", "a=b", "--rename", "a=c", "hh:a/x")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "--rename a=b and --rename a=c both rename the same module" in result.stderr


def test_invalid_module_name_suggests_rename() -> None:
    result = run("hh:données/x", "hh:data/y")

    assert result.returncode == 1
    assert result.stdout == "hh:données/x\nblit://hh:50051/data/y\n"
    assert result.stderr.startswith("blit: warning: 'hh:données/x': the module 'données' is not")
    assert "--rename 'données=donnees'" in result.stderr


def test_invalid_module_name_with_rename_converts() -> None:
    result = run("--rename", "données=donnees", "hh:données/x")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "blit://hh:50051/donnees/x\n"


def test_rename_option() -> None:
    result = run("--rename", "my files=my_files", "host:my files/x", "host::other/y")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "blit://host:50051/my_files/x\nblit://host:50051/other/y\n"


@pytest.mark.parametrize(
    "option",
    ["--port", "--config", "--rename", "--rewrite-scripts", "--backup-suffix", "--dry-run"],
)
def test_help_explains_option(option: str) -> None:
    result = run("--help")

    assert result.returncode == 0
    assert f"{option} " in result.stdout or f"{option}," in result.stdout


# --- scripts


def copy_script(directory: Path, mode: int = 0o754) -> Path:
    script = directory / "nightly.sh"
    shutil.copyfile(SCRIPTS / "nightly.sh", script)
    script.chmod(mode)
    return script


def rewrite(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("--rewrite-scripts", *args, cwd=directory)


def test_rewrite_script(tmp_path: Path) -> None:
    script = copy_script(tmp_path)
    original = script.read_bytes()

    result = rewrite(tmp_path, "nightly.sh")

    assert script.read_bytes() == (SCRIPTS / "nightly.sh.expected").read_bytes()
    assert result.stdout == (SCRIPTS / "nightly.diff").read_text(encoding="utf-8")
    assert result.stderr == (SCRIPTS / "nightly.stderr").read_text(encoding="utf-8")
    # Some commands were left for a rewrite by hand.
    assert result.returncode == 1
    backup = tmp_path / "nightly.sh.bak"
    assert backup.read_bytes() == original
    assert script.stat().st_mode & 0o7777 == 0o754
    assert backup.stat().st_mode & 0o7777 == 0o754


def test_rewritten_script_is_valid_shell(tmp_path: Path) -> None:
    shell = shutil.which("sh")
    if shell is None:
        pytest.skip("no sh on PATH")
    script = copy_script(tmp_path)
    rewrite(tmp_path, "nightly.sh")

    check = subprocess.run(
        [shell, "-n", str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_SECONDS,
    )

    assert check.returncode == 0, check.stderr


def test_rewrite_keeps_existing_backup(tmp_path: Path) -> None:
    script = copy_script(tmp_path)
    original = script.read_bytes()
    backup = tmp_path / "nightly.sh.bak"
    backup.write_text("an older backup\n")

    result = rewrite(tmp_path, "nightly.sh")

    assert result.returncode == 1
    assert result.stderr == (
        "blit: error: nightly.sh: not rewritten: nightly.sh.bak exists already; move it "
        "away or pick another name with --backup-suffix, then rerun\n"
    )
    assert result.stdout == ""
    assert script.read_bytes() == original
    assert backup.read_text() == "an older backup\n"


def test_rewrite_backup_suffix(tmp_path: Path) -> None:
    script = copy_script(tmp_path)
    original = script.read_bytes()
    (tmp_path / "nightly.sh.bak").write_text("an older backup\n")

    result = rewrite(tmp_path, "--backup-suffix", ".v1", "nightly.sh")

    assert (tmp_path / "nightly.sh.v1").read_bytes() == original
    assert script.read_bytes() == (SCRIPTS / "nightly.sh.expected").read_bytes()
    assert result.stdout.startswith("--- nightly.sh.v1\n+++ nightly.sh\n")


def test_rewrite_dry_run_changes_nothing(tmp_path: Path) -> None:
    script = copy_script(tmp_path)
    original = script.read_bytes()

    result = rewrite(tmp_path, "--dry-run", "nightly.sh")

    assert script.read_bytes() == original
    assert not (tmp_path / "nightly.sh.bak").exists()
    expected_diff = (SCRIPTS / "nightly.diff").read_text(encoding="utf-8")
    assert result.stdout == expected_diff.replace("--- nightly.sh.bak", "--- nightly.sh", 1)
    assert "would rewrite 15 blit commands" in result.stderr


def test_rewrite_twice_changes_nothing_more(tmp_path: Path) -> None:
    script = copy_script(tmp_path)
    rewrite(tmp_path, "nightly.sh")
    rewritten = script.read_bytes()
    backup = (tmp_path / "nightly.sh.bak").read_bytes()

    again = rewrite(tmp_path, "nightly.sh")

    assert script.read_bytes() == rewritten
    assert (tmp_path / "nightly.sh.bak").read_bytes() == backup
    assert again.stdout == ""
    assert "blit: nightly.sh: no v1 blit command to rewrite" in again.stderr


def test_rewrite_several_scripts_goes_on_after_failure(tmp_path: Path) -> None:
    (tmp_path / "a.sh").write_text("blit /a host:data/a\n")
    (tmp_path / "b.sh").write_text("blit /b host:data/b --mir\n")

    result = rewrite(tmp_path, "a.sh", "missing.sh", "b.sh")

    assert result.returncode == 1
    assert "blit: error: missing.sh: not rewritten: No such file or directory" in result.stderr
    assert (tmp_path / "a.sh").read_text() == "blit copy /a blit://host:50051/data/a\n"
    assert (tmp_path / "b.sh").read_text() == "blit mirror /b blit://host:50051/data/b\n"


def test_rewrite_keeps_other_bytes(tmp_path: Path) -> None:
    script = tmp_path / "bytes.sh"
    text = (
        b"#!/bin/sh\r\n"
        b"echo caf\xe9 \t  # latin-1 byte, tab and CRLF stay\r\n"
        b"blit   /a    host:data/x   --mir   # spacing stays\r\n"
        b"echo end"
    )
    script.write_bytes(text)

    result = rewrite(tmp_path, "bytes.sh")

    assert result.returncode == 0, result.stderr
    assert script.read_bytes() == text.replace(
        b"blit   /a    host:data/x   --mir", b"blit mirror   /a    blit://host:50051/data/x"
    )


def test_rewrite_keeps_crlf_line_ends(tmp_path: Path) -> None:
    script = tmp_path / "crlf.sh"
    script.write_bytes(
        b"blit /a localhost:limited/crlf --mir\r\nblit /b host:data/y\r\nblit /c host:data/z\r"
    )

    result = rewrite(tmp_path, "crlf.sh")

    assert result.returncode == 0, result.stderr
    assert script.read_bytes() == (
        b"blit mirror /a blit://localhost:50051/limited/crlf\r\n"
        b"blit copy /b blit://host:50051/data/y\r\n"
        b"blit copy /c blit://host:50051/data/z\r"
    )


def test_rewrite_leaves_invalid_module_name(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("blit /a host:données/x\n")

    result = rewrite(tmp_path, "s.sh")

    assert result.returncode == 1
    assert script.read_text() == "blit /a host:données/x\n"
    assert "--rename 'données=donnees'" in result.stderr


def test_rewrite_uses_port_and_rename(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("blit '/my dir' 'host:my files/x'\n")

    result = rewrite(tmp_path, "--port", "7000", "--rename", "my files=my_files", "s.sh")

    assert result.returncode == 0, result.stderr
    assert script.read_text() == "blit copy '/my dir' 'blit://host:7000/my_files/x'\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('blit "nas:m/$DIR" /dst', 'blit copy "blit://nas:50051/m/$DIR" /dst'),
        ("blit nas:m/${DIR}/x /dst", "blit copy blit://nas:50051/m/${DIR}/x /dst"),
        ("blit nas:m/x\\ y /dst", "blit copy 'blit://nas:50051/m/x y' /dst"),
        ('blit "nas:m/a \\"b\\"" /d', 'blit copy "blit://nas:50051/m/a \\"b\\"" /d'),
        ("x=$(blit nas:m/x /d)", "x=$(blit nas:m/x /d)"),
        ("echo 'blit nas:m/x /d'", "echo 'blit nas:m/x /d'"),
        (
            "blit nas:m/x /d # blit nas:m/y /e",
            "blit copy blit://nas:50051/m/x /d # blit nas:m/y /e",
        ),
        ("sudo -E -u root -- blit /a nas:m", "sudo -E -u root -- blit copy /a blit://nas:50051/m"),
        ("blit /a nas:m 2>>log >&2", "blit copy /a blit://nas:50051/m 2>>log >&2"),
        ("exec blit /a nas:m", "exec blit copy /a blit://nas:50051/m"),
        ("a && blit /a nas:m || b", "a && blit copy /a blit://nas:50051/m || b"),
        ("blit --version", "blit --version"),
        ("blit push /a blit://h/m", "blit push /a blit://h/m"),
    ],
)
def test_rewrite_line(line: str, expected: str) -> None:
    from blit.migrate.scripts import rewrite_text

    result = rewrite_text(line + "\n", "s.sh")

    assert result.rewritten == expected + "\n"


def test_unclosed_quote_stops_the_rewrite() -> None:
    from blit.migrate.scripts import rewrite_text

    result = rewrite_text("blit /a nas:m/x\necho 'open\nblit /b nas:m/y\n", "s.sh")

    assert result.rewritten == ("blit copy /a blit://nas:50051/m/x\necho 'open\nblit /b nas:m/y\n")
    assert [report.text() for report in result.reports] == [
        "s.sh:2: single quote is not closed; the script from here on is left unchanged"
    ]


@pytest.mark.skipif(not _SCRIPT.exists(), reason="the blit console script is not installed")
def test_rewritten_script_runs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.txt").write_text("beta\n")
    target = tmp_path / "dst"
    target.mkdir()
    (target / "stale.txt").write_text("deleted by the mirror\n")
    blit_dir = Path(BLIT[0]).parent
    script = tmp_path / "job.sh"
    script.write_text(
        f'#!/bin/sh\nset -e\nPATH="{blit_dir}:$PATH"\nblit "{source}" "{target}" --mir\n'
    )

    rewritten = rewrite(tmp_path, "job.sh")
    assert rewritten.returncode == 0, rewritten.stderr
    ran = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS
    )

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("mirror: ")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "a.txt",
        "sub",
        "sub/b.txt",
    ]


def test_rsync_equivalents() -> None:
    from blit.migrate.scripts import rewrite_text

    cases: List[Tuple[str, str]] = [
        ("rsync -a --delete src/ host::mod/dst", "blit mirror src/ blit://host:50051/mod/dst"),
        (
            "rsync -avn --checksum src/ rsync://host/mod/",
            "blit copy --dry-run --checksum src/ blit://host:50051/mod/",
        ),
        (
            "rsync -a --exclude '*.o' --exclude=tmp/ host::mod/src/ out/",
            "blit copy --exclude '*.o' --exclude tmp/ blit://host:50051/mod/src/ out/",
        ),
        ("rsync -aP dir host::mod/", "blit copy --progress dir blit://host:50051/mod/dir"),
    ]
    for line, equivalent in cases:
        result = rewrite_text(line + "\n", "s.sh")
        assert result.rewritten == line + "\n"
        assert len(result.reports) == 1, line
        assert f"the blit equivalent is: {equivalent}" in result.reports[0].message, line
