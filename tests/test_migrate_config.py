"""``blit migrate-config``: v1 daemon configs converted into blitd v2 configs.

The corpus under tests/migrate/ contains v1 configs (``NAME.conf``), each
next to the exact expected output (``NAME.toml``) and stderr
(``NAME.stderr``), and optionally extra arguments (``NAME.args``, a JSON
list). ``@ROOT@`` in any corpus file stands for the test's temporary
directory, under which the directories of ``MODULE_DIRS`` exist. A case
without ``NAME.toml`` must fail with exit status 1 and print nothing on
stdout. tests/migrate/README.md describes how to add a case.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import DAEMON_DEADLINE_S, blitd_command, free_port

tomllib = pytest.importorskip("tomllib", reason="reading TOML back needs Python 3.11")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "migrate"
CASES = sorted(path.stem for path in CORPUS.glob("*.conf"))

_SCRIPT = Path(sys.executable).with_name("blit")
BLIT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "blit"]
WRAPPER = ROOT / "scripts" / "migrate_config.py"

TIMEOUT_SECONDS = 60

# The module directories that corpus configs name, relative to @ROOT@.
MODULE_DIRS = [
    "srv/data",
    "srv/public",
    "srv/backup",
    "srv/photos",
    "srv/www",
    "srv/logs",
    "srv/home",
    "srv/with space",
    'srv/quote"d',
    "srv/hash#dir",
    "srv/ünïcødé",
    "srv/trailing ",
    "srv/back\\slash",
]

# A password that the tests put in v1 secrets files; it must never appear
# in anything that the migration prints or writes.
PASSWORD = "pa55-W0rd-never-printed"


def substitute(data: bytes, root: Path) -> bytes:
    return data.replace(b"@ROOT@", os.fsencode(root))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the corpus in ``tmp_path / "corpus"``, with @ROOT@ set to ``tmp_path``.

    The module directories exist under ``tmp_path``. Returns the corpus copy.
    """
    target = tmp_path / "corpus"
    for source in CORPUS.rglob("*"):
        destination = target / source.relative_to(CORPUS)
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(substitute(source.read_bytes(), tmp_path))
    for directory in MODULE_DIRS:
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    return target


def migrate_env(root: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env["BLIT_MIGRATE_ROOT"] = str(root)
    env.pop("BLIT_MIGRATE_UNSET", None)
    return env


def run(
    command: List[str], *args: str, cwd: Path, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=env if env is not None else migrate_env(cwd.parent),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def migrate(
    *args: str, cwd: Path, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``blit migrate-config ARGS`` in ``cwd``."""
    return run([*BLIT, "migrate-config"], *args, cwd=cwd, env=env)


def case_args(workdir: Path, case: str) -> List[str]:
    args_file = workdir / f"{case}.args"
    if not args_file.exists():
        return []
    args: List[str] = json.loads(args_file.read_text(encoding="utf-8"))
    return args


def blitd_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*blitd_command(), "--check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


# --- the corpus


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(workdir: Path, case: str) -> None:
    result = migrate(f"{case}.conf", *case_args(workdir, case), cwd=workdir)

    expected_toml = workdir / f"{case}.toml"
    expected_stderr = (workdir / f"{case}.stderr").read_text(encoding="utf-8")
    assert result.stderr == expected_stderr
    if expected_toml.exists():
        assert result.returncode == 0
        assert result.stdout == expected_toml.read_text(encoding="utf-8")
    else:
        assert result.returncode == 1
        assert result.stdout == ""


@pytest.mark.parametrize("case", [case for case in CASES if (CORPUS / f"{case}.toml").exists()])
def test_corpus_output_passes_blitd_check(workdir: Path, case: str) -> None:
    output = workdir / f"{case}.v2.toml"
    result = migrate(f"{case}.conf", *case_args(workdir, case), "-o", str(output), cwd=workdir)
    assert result.returncode == 0, result.stderr

    check = blitd_check(output)

    assert check.returncode == 0, check.stderr
    document = tomllib.loads(output.read_text(encoding="utf-8"))
    modules = len(document.get("modules", []))
    assert check.stdout.strip() == f"config OK: {modules} module{'' if modules == 1 else 's'}"


def test_corpus_has_expected_stderr_for_every_case() -> None:
    missing = [case for case in CASES if not (CORPUS / f"{case}.stderr").exists()]

    assert missing == []


# --- values survive the round trip


def test_quoting_values_round_trip(workdir: Path) -> None:
    result = migrate("quoting.conf", cwd=workdir)
    assert result.returncode == 0, result.stderr
    modules = {m["name"]: m for m in tomllib.loads(result.stdout)["modules"]}
    root = str(workdir.parent)

    expected = {
        "quotes": (f'{root}/srv/quote"d', 'She said "hi" \\ and left # not a comment'),
        "hash": (f"{root}/srv/hash#dir", '#1 module; it\'s "fine"'),
        "unicode": (f"{root}/srv/ünïcødé", "Ünïcødé — 日本語 ✓"),
        "trailing": (f"{root}/srv/trailing ", "trailing blanks are dropped"),
        "spaces": (f"{root}/srv/with space", "a\ttab\tinside"),
        "backslash": (f"{root}/srv/back\\slash", "C:\\new\\table"),
    }
    for name, (path, comment) in expected.items():
        assert modules[name]["path"] == path, name
        assert modules[name]["comment"] == comment, name
        assert os.path.isdir(modules[name]["path"]), name


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'a "quoted" word',
        "back\\slash",
        "tab\tnewline\ncarriage\rreturn",
        "\x00\x01\x1f\x7f control characters",
        "ünïcødé 日本語 ✓ \U0001f600",
        "# not a comment",
        "trailing blank ",
        "'single' quotes",
        "\\u0041 is not an escape here",
    ],
)
def test_toml_string_round_trip(value: str) -> None:
    from blit.migrate import toml_text

    document = tomllib.loads(f"key = {toml_text.basic_string(value)}\n")

    assert document["key"] == value


def test_toml_string_rejects_non_utf8() -> None:
    from blit.migrate import toml_text

    with pytest.raises(toml_text.NotRepresentableError):
        toml_text.basic_string("caf\udce9")


def test_non_utf8_path_is_an_error(workdir: Path) -> None:
    config = workdir / "latin1.conf"
    config.write_bytes(b"[data]\npath = " + os.fsencode(workdir.parent) + b"/srv/caf\xe9\n")
    (workdir.parent / "srv").joinpath(os.fsdecode(b"caf\xe9")).mkdir()

    result = migrate("latin1.conf", cwd=workdir)

    assert result.returncode == 1
    assert "latin1.conf:2:" in result.stderr
    assert "not valid UTF-8" in result.stderr
    assert result.stdout == ""


# --- writing the output


def test_output_file_matches_stdout(workdir: Path) -> None:
    printed = migrate("auth.conf", cwd=workdir)
    output = workdir / "new.toml"

    written = migrate("auth.conf", "-o", "new.toml", cwd=workdir)

    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    text = output.read_text(encoding="utf-8")
    # The token commands name the output file, by its absolute path.
    assert text == printed.stdout.replace("/etc/blit/config.toml", shlex.quote(str(output)))
    assert f"--config {shlex.quote(str(output))} --name alice" in written.stderr
    assert written.stderr.endswith(
        "blit: wrote new.toml: 5 modules, 4 warnings, 6 tokens to create\n"
    )


def test_output_file_mode_follows_umask(workdir: Path) -> None:
    result = migrate("basic.conf", "-o", "new.toml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    umask = os.umask(0)
    os.umask(umask)

    mode = (workdir / "new.toml").stat().st_mode & 0o777

    assert mode == 0o666 & ~umask


@pytest.mark.parametrize("case", ["errors", "invalid_name", "include_cycle"])
def test_invalid_input_leaves_no_output_file(workdir: Path, case: str) -> None:
    before = sorted(os.listdir(workdir))

    result = migrate(f"{case}.conf", "-o", "new.toml", cwd=workdir)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "nothing was written" in result.stderr
    assert sorted(os.listdir(workdir)) == before


def test_strict_leaves_no_output_file(workdir: Path) -> None:
    result = migrate("unsupported.conf", "--strict", "-o", "new.toml", cwd=workdir)

    assert result.returncode == 1
    assert not (workdir / "new.toml").exists()
    assert "blit: error: unsupported.conf:2: uid = nobody: not carried over:" in result.stderr
    assert "(an error under --strict)" in result.stderr
    assert "blit: warning:" not in result.stderr


def test_strict_passes_without_warnings(workdir: Path) -> None:
    config = workdir / "clean.conf"
    config.write_text(f"read only = no\n[data]\npath = {workdir.parent}/srv/data\n")

    result = migrate("clean.conf", "--strict", cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert "[[modules]]" in result.stdout


def test_strict_accepts_settings_that_v2_shares(workdir: Path) -> None:
    config = workdir / "same.conf"
    config.write_text(
        "use chroot = no\nuse pam = false\nreverse lookup = 0\nforward lookup = no\n"
        f"[data]\npath = {workdir.parent}/srv/data\n"
    )

    result = migrate("same.conf", "--strict", cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert "blit: note: same.conf:1: use chroot = no: nothing to carry over:" in result.stderr
    assert "blit: warning:" not in result.stderr


def test_blitd_rejection_leaves_no_output_file(workdir: Path) -> None:
    # "[" is not a valid exclude pattern; only blitd's own parser finds that.
    config = workdir / "pattern.conf"
    config.write_text(f"[data]\npath = {workdir.parent}/srv/data\nexclude = *.tmp [\n")

    result = migrate("pattern.conf", "-o", "new.toml", cwd=workdir)

    assert result.returncode == 1
    assert not (workdir / "new.toml").exists()
    assert [name for name in os.listdir(workdir) if name.startswith(".blit-migrate-")] == []
    assert "blit: error: blitd rejects the converted config: new.toml:" in result.stderr
    assert "(converted from pattern.conf:3)" in result.stderr
    assert "[[modules]]" not in result.stdout + result.stderr


def test_existing_output_needs_force(workdir: Path) -> None:
    output = workdir / "new.toml"
    output.write_text("# hand-edited\n")

    rejected = migrate("basic.conf", "-o", "new.toml", cwd=workdir)
    assert rejected.returncode == 1
    assert "new.toml exists already; pass --force" in rejected.stderr
    assert output.read_text() == "# hand-edited\n"

    forced = migrate("basic.conf", "-o", "new.toml", "--force", cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    assert output.read_text().startswith("# blitd v2 config")


def test_output_dash_is_stdout(workdir: Path) -> None:
    printed = migrate("basic.conf", cwd=workdir)

    dashed = migrate("basic.conf", "-o", "-", cwd=workdir)

    assert dashed.returncode == 0, dashed.stderr
    assert dashed.stdout == printed.stdout
    assert dashed.stderr == printed.stderr
    assert not (workdir / "-").exists()


def test_output_cannot_replace_input(workdir: Path) -> None:
    result = migrate("basic.conf", "-o", "basic.conf", "--force", cwd=workdir)

    assert result.returncode == 1
    assert "names the v1 config itself" in result.stderr


def test_missing_input_is_an_error(workdir: Path) -> None:
    result = migrate("no-such.conf", cwd=workdir)

    assert result.returncode == 1
    assert result.stderr == (
        "blit: error: cannot read the v1 config no-such.conf: No such file or directory\n"
    )


def test_include_paths_follow_the_config_file(workdir: Path) -> None:
    in_place = migrate("include.conf", cwd=workdir)

    elsewhere = migrate("corpus/include.conf", cwd=workdir.parent)

    assert elsewhere.returncode == 0, elsewhere.stderr
    assert tomllib.loads(elsewhere.stdout) == tomllib.loads(in_place.stdout)
    assert "corpus/include.d/extra/solo.conf" in elsewhere.stdout


# --- secrets


def test_secret_never_printed_or_written(workdir: Path) -> None:
    secrets = workdir / "rsyncd.secrets"
    secrets.write_text(f"alice:{PASSWORD}\nbob:{PASSWORD}\n@staff:{PASSWORD}\n")
    secrets.chmod(0o600)
    config = workdir / "secret.conf"
    config.write_text(
        f"secrets file = {secrets}\n"
        f"[data]\npath = {workdir.parent}/srv/data\nread only = no\n"
        "auth users = alice, bob:ro, @staff\n"
    )

    printed = migrate("secret.conf", cwd=workdir)
    written = migrate("secret.conf", "-o", "new.toml", cwd=workdir)
    strict = migrate("secret.conf", "--strict", cwd=workdir)

    for result in (printed, written, strict):
        assert PASSWORD not in result.stdout
        assert PASSWORD not in result.stderr
    assert printed.returncode == 0
    assert written.returncode == 0
    assert strict.returncode == 1
    assert PASSWORD not in (workdir / "new.toml").read_text()
    assert "--name alice" in printed.stderr


def test_secrets_file_is_not_opened(workdir: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes, so a migration
    # that opened the secrets file would never finish.
    fifo = workdir / "fifo.secrets"
    os.mkfifo(fifo)
    config = workdir / "fifo.conf"
    config.write_text(
        f"[data]\npath = {workdir.parent}/srv/data\nsecrets file = {fifo}\nauth users = alice\n"
    )

    result = migrate("fifo.conf", cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert "--name alice" in result.stderr


def assert_password_hidden(result: subprocess.CompletedProcess[str], output: Path) -> None:
    for text in (result.stdout, result.stderr):
        assert PASSWORD not in text
        assert PASSWORD.lower() not in text
    if output.exists():
        assert PASSWORD.lower() not in output.read_text(encoding="utf-8").lower()


@pytest.mark.parametrize(
    "lines",
    [
        # A password written into auth users as USER:PASSWORD.
        ["[data]", "path = {data}", f"auth users = alice:{PASSWORD}, bob:ro"],
        # The same as a global value after the module, which rsyncd applies to it.
        ["[data]", "path = {data}", "[global]", f"auth users = alice:{PASSWORD}"],
        # An unset %VAR% makes a message quote the value.
        ["[data]", "path = {data}", f"auth users = alice:{PASSWORD} %BLIT_MIGRATE_UNSET%"],
        # A file of USER:PASSWORD lines read as config lines.
        ["&include {other}", "[data]", "path = {data}"],
        ["&merge {other}", "[data]", "path = {data}"],
        # The module's own secrets file, read as config lines.
        ["&include {secrets}", "[data]", "path = {data}", "auth users = alice"],
        ["[data]", "path = {data}", "auth users = alice", "&merge {secrets}"],
    ],
)
def test_password_never_shown(workdir: Path, lines: List[str]) -> None:
    secrets = workdir / "rsyncd.secrets"
    other = workdir / "copy.inc"
    for path in (secrets, other):
        path.write_text(f"alice:{PASSWORD}\nbob:{PASSWORD}=x\n[{PASSWORD}\n")
        path.chmod(0o600)
    text = "\n".join([f"secrets file = {secrets}", *lines, ""]).format(
        data=workdir.parent / "srv" / "data", secrets=secrets, other=other
    )
    (workdir / "leak.conf").write_text(text)
    output = workdir / "new.toml"

    printed = migrate("leak.conf", cwd=workdir)
    written = migrate("leak.conf", "-o", str(output), cwd=workdir)

    assert_password_hidden(printed, output)
    assert_password_hidden(written, output)


def test_include_of_secrets_file_is_an_error(workdir: Path) -> None:
    secrets = workdir / "rsyncd.secrets"
    secrets.write_text(f"alice:{PASSWORD}\n")
    (workdir / "inc.conf").write_text(
        f"&include rsyncd.secrets\n[data]\npath = {workdir.parent}/srv/data\n"
        "secrets file = rsyncd.secrets\nauth users = alice\n"
    )

    result = migrate("inc.conf", cwd=workdir)

    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        "blit: error: inc.conf:1: &include rsyncd.secrets: rsyncd.secrets is the secrets "
        "file named at inc.conf:4" in result.stderr
    )
    assert "rsyncd.secrets:1" not in result.stderr


# --- the wrapper script and the help


def test_wrapper_script_matches_command(workdir: Path) -> None:
    command = migrate("auth.conf", cwd=workdir)

    wrapper = run([sys.executable, str(WRAPPER)], "auth.conf", cwd=workdir)

    assert wrapper.returncode == command.returncode == 0
    assert wrapper.stdout == command.stdout
    assert wrapper.stderr == command.stderr


def test_wrapper_script_help() -> None:
    result = run([sys.executable, str(WRAPPER)], "--help", cwd=ROOT, env=dict(os.environ))

    assert result.returncode == 0
    assert result.stdout.startswith("usage: migrate_config.py")
    assert 'the same as "blit migrate-config"' in result.stdout


@pytest.mark.parametrize(
    "option", ["-o", "--output", "--force", "--port", "--token-file", "--rename", "--strict"]
)
def test_help_explains_option(option: str) -> None:
    result = run([*BLIT, "migrate-config"], "--help", cwd=ROOT, env=dict(os.environ))

    assert result.returncode == 0
    assert f"{option} " in result.stdout or f"{option}," in result.stdout


def test_blit_help_lists_migrate_commands() -> None:
    result = run(BLIT, "--help", cwd=ROOT, env=dict(os.environ))

    assert "migrate-config" in result.stdout
    assert "migrate-url" in result.stdout


@pytest.mark.parametrize("port", ["0", "65535", "65536", "http"])
def test_invalid_port_option(workdir: Path, port: str) -> None:
    result = migrate("basic.conf", "--port", port, cwd=workdir)

    assert result.returncode == 1
    assert f"invalid port {port!r}" in result.stderr


def test_highest_port_option(workdir: Path) -> None:
    result = migrate("basic.conf", "--port", "65534", cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert 'listen_addr = "0.0.0.0:65534"' in result.stdout
    assert "data_port = 65535" in result.stdout


def test_v1_port_without_room_for_data_port(workdir: Path) -> None:
    config = workdir / "high.conf"
    config.write_text(f"port = 65535\n[data]\npath = {workdir.parent}/srv/data\n")

    rejected = migrate("high.conf", cwd=workdir)
    moved = migrate("high.conf", "--port", "7000", cwd=workdir)

    assert rejected.returncode == 1
    assert "blit: error: high.conf:1: port = 65535: v2's data plane listens on" in rejected.stderr
    assert moved.returncode == 0, moved.stderr


@pytest.mark.parametrize("second", ["data=other", "DATA=other", "data=files"])
def test_rename_twice_is_an_error(workdir: Path, second: str) -> None:
    result = migrate("basic.conf", "--rename", "data=files", "--rename", second, cwd=workdir)

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"--rename data=files and --rename {second} both rename" in result.stderr


def test_exclude_directory_and_contents() -> None:
    from blit.migrate import values

    result = values.convert_excludes("cache/*** /build/*** *.o")

    assert result.patterns == ["cache/", "/build/", "*.o"]
    assert result.rewritten == [("cache/***", "cache/"), ("/build/***", "/build/")]


# --- a converted config served by a real blitd


def free_port_pair() -> int:
    """Return a port P on 127.0.0.1 such that P and P + 1 were free a moment ago."""
    for _ in range(100):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    pytest.fail("found no two adjacent free ports on 127.0.0.1")


def token_commands(stderr: str) -> Dict[str, List[str]]:
    """Return the printed ``blitd token create`` commands by token name."""
    commands = {}
    for line in stderr.splitlines():
        if line.startswith("  blitd token create "):
            argv = shlex.split(line)
            commands[argv[argv.index("--name") + 1]] = argv
    return commands


def create_token(argv: List[str], directory: Path) -> Path:
    """Run a printed token command with the wheel's blitd; return the token file."""
    assert argv[0] == "blitd"
    created = subprocess.run(
        [*blitd_command(), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    name = argv[argv.index("--name") + 1]
    token_file = directory / f"{name}.token"
    token_file.write_text(created.stdout)
    token_file.chmod(0o600)
    return token_file


class ServedConfig:
    """blitd running a converted config on 127.0.0.1."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        self.url = f"blit://127.0.0.1:{port}/"
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [*blitd_command(), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DAEMON_DEADLINE_S
        while True:
            if self.process.poll() is not None:
                pytest.fail("blitd exited before serving:\n" + log.read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("blitd did not serve in time:\n" + log.read_text())
                time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=DAEMON_DEADLINE_S)


def blit_cli(*args: str, token_file: Optional[Path]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("BLIT_TOKEN", None)
    options = ["--token-file", str(token_file)] if token_file is not None else []
    command, rest = args[0], args[1:]
    return subprocess.run(
        [*BLIT, command, *options, *rest],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def test_converted_config_serves(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    public = tmp_path / "srv" / "public"
    data.mkdir(parents=True)
    public.mkdir(parents=True)
    (public / "readme.txt").write_text("public file\n")
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.txt").write_text("beta\n")
    secrets = tmp_path / "rsyncd.secrets"
    secrets.write_text(f"alice:{PASSWORD}\nbob:{PASSWORD}\n")
    secrets.chmod(0o600)
    v1 = tmp_path / "blit.conf"
    v1.write_text(
        "address = 127.0.0.1\n"
        "port = 873\n"
        "uid = nobody\n"
        "[data]\n"
        f"path = {data}\n"
        "read only = no\n"
        f"secrets file = {secrets}\n"
        "auth users = alice, bob:ro\n"
        "[public]\n"
        f"path = {public}\n"
        "comment = open to all\n"
    )
    port = free_port_pair()
    config = tmp_path / "config.toml"

    migrated = migrate(
        str(v1),
        "-o",
        str(config),
        "--port",
        str(port),
        "--token-file",
        str(tmp_path / "tokens.toml"),
        cwd=tmp_path,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert PASSWORD not in migrated.stderr + config.read_text()
    commands = token_commands(migrated.stderr)
    assert sorted(commands) == ["alice", "anonymous", "bob"]
    tokens = {name: create_token(argv, tmp_path) for name, argv in commands.items()}

    daemon = ServedConfig(config, port, tmp_path / "blitd.log")
    try:
        data_url = f"{daemon.url}data/backup"
        pushed = blit_cli("push", str(source), data_url, token_file=tokens["alice"])
        assert pushed.returncode == 0, pushed.stderr
        assert (data / "backup" / "sub" / "b.txt").read_text() == "beta\n"

        listed = blit_cli("list", "-r", "--json", data_url, token_file=tokens["bob"])
        assert listed.returncode == 0, listed.stderr
        paths = sorted(entry["path"] for entry in json.loads(listed.stdout)["entries"])
        assert paths == ["a.txt", "sub", "sub/b.txt"]

        pulled = blit_cli("pull", data_url, str(tmp_path / "pulled"), token_file=tokens["bob"])
        assert pulled.returncode == 0, pulled.stderr
        assert (tmp_path / "pulled" / "a.txt").read_text() == "alpha\n"

        # bob had read-only access in v1 (bob:ro).
        bob_push = blit_cli("push", str(source), f"{daemon.url}data/bob", token_file=tokens["bob"])
        assert bob_push.returncode == 1
        assert "lacks the write permission" in bob_push.stderr

        # The module that v1 protected is unreachable without a token for it.
        no_token = blit_cli("list", data_url, token_file=None)
        assert no_token.returncode == 1
        assert "missing, unknown, revoked or expired token" in no_token.stderr
        other_token = blit_cli("list", data_url, token_file=tokens["anonymous"])
        assert other_token.returncode == 1
        assert "is not scoped to module data" in other_token.stderr

        # The module that v1 served without a password takes the anonymous token.
        modules = blit_cli("list", "--json", daemon.url, token_file=tokens["anonymous"])
        assert modules.returncode == 0, modules.stderr
        assert json.loads(modules.stdout)["modules"] == [
            {"name": "public", "comment": "open to all", "read_only": True}
        ]
        public_pull = blit_cli(
            "pull",
            f"{daemon.url}public/readme.txt",
            str(tmp_path / "readme.txt"),
            token_file=tokens["anonymous"],
        )
        assert public_pull.returncode == 0, public_pull.stderr
        assert (tmp_path / "readme.txt").read_text() == "public file\n"
        public_push = blit_cli(
            "push", str(source), f"{daemon.url}public/x", token_file=tokens["anonymous"]
        )
        assert public_push.returncode == 1
    finally:
        status = daemon.stop()
    assert status == 0, daemon.log.read_text()
    assert PASSWORD not in daemon.log.read_text()


def test_module_api_matches_command(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blit.migrate import config as migrate_config
    from blit.migrate import v2config

    monkeypatch.chdir(workdir)
    monkeypatch.setenv("BLIT_MIGRATE_ROOT", str(workdir.parent))
    conversion = migrate_config.convert_file("auth.conf", migrate_config.Options())
    result = migrate("auth.conf", cwd=workdir)

    assert conversion.text == result.stdout
    assert [token.name for token in conversion.tokens] == [
        name for name in token_commands(result.stderr)
    ]
    assert v2config.validate(conversion, "auth.toml") is None
