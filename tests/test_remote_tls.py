"""``blits://`` against a real blitd that serves TLS: the Python API and the CLI.

The daemon is the wheel's ``blitd`` console script on 127.0.0.1, with the
certificates of ``blitd tls self-signed`` and token authentication on. Tests
pass the token explicitly (``token=`` or ``--token-file``) and the CLI runs
without ``BLIT_TOKEN``, so no test depends on the environment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import blit
import pytest
from conftest import (
    DAEMON_DEADLINE_S,
    DATA_CONNECTION_LOG,
    blitd_command,
    build_sample_tree,
    free_port,
    toml_string,
)

# Entries that build_sample_tree creates, counted as a transfer counts them.
SAMPLE_ENTRIES = 17

# The console script installed next to this interpreter, or ``python -m blit``.
_SCRIPT = Path(sys.executable).with_name("blit")
BLIT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "blit"]

TIMEOUT_SECONDS = 60

# Commands that reach a daemon, each of which must offer --tls-ca.
REMOTE_COMMANDS = ["push", "pull", "list", "purge", "copy", "mirror"]


def make_certificates(directory: Path, *hosts: str) -> str:
    """Run ``blitd tls self-signed`` for ``hosts`` into ``directory``.

    Returns the ``[daemon.tls]`` lines that it prints on stdout.
    """
    host_args = [arg for host in hosts for arg in ("--host", host)]
    created = subprocess.run(
        [*blitd_command(), "tls", "self-signed", "--out", str(directory), *host_args],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_SECONDS,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout


class TlsDaemon:
    """A blitd on 127.0.0.1 that serves module ``m`` over TLS and requires a token.

    ``url`` is its ``blits://`` address and ``plain_url`` the ``blit://``
    form of the same daemon. The certificates are valid for ``hosts`` and
    live in ``root / "tls"``, with the CA's certificate in ``ca_file``.
    """

    def __init__(self, root: Path, *, hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"blits://127.0.0.1:{self.port}/"
        self.plain_url = f"blit://127.0.0.1:{self.port}/"
        self.ca_file = root / "tls" / "ca.pem"
        self.module_path = root / "modules" / "m"
        self.module_path.mkdir(parents=True)
        self.log_path = root / "blitd.log"
        self.config_path = root / "blitd.toml"

        # The [daemon.tls] lines come from `blitd tls self-signed` itself, so
        # the tests also check that its output works as a config.
        self._write_config(make_certificates(root / "tls", *hosts))
        self.token = self._create_token()
        self.token_file = root / "token"
        self.token_file.write_text(self.token + "\n")

        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*blitd_command(), "--config", str(self.config_path), "--log-level", "blitd=debug"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_until_listening()
        except BaseException:
            self.kill()
            raise

    def _write_config(self, tls_lines: str) -> None:
        lines = [
            "[daemon]",
            f'listen_addr = "127.0.0.1:{self.port}"',
            "data_port = 0",
            'auth = "token"',
            f"token_file = {toml_string(str(self.root / 'tokens.toml'))}",
            "",
            tls_lines.strip(),
            "",
            "[[modules]]",
            'name = "m"',
            f"path = {toml_string(str(self.module_path))}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _create_token(self) -> str:
        created = subprocess.run(
            [
                *blitd_command(),
                "token",
                "create",
                "--config",
                str(self.config_path),
                "--name",
                "tls-tests",
                "--modules",
                "*",
                "--permissions",
                "read,write,delete,admin",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )
        assert created.returncode == 0, created.stderr
        return created.stdout.strip()

    def _wait_until_listening(self) -> None:
        """Wait until the control port accepts TCP connections, or fail the test.

        A TCP connection, not a status request, tells that blitd is up, so
        that a daemon whose certificate the client rejects can be waited for.
        blitd binds both ports before it accepts on either.
        """
        deadline = time.monotonic() + DAEMON_DEADLINE_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"blitd exited with status {self.process.returncode} before serving:\n"
                    + self.log()
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"blitd did not listen within {DAEMON_DEADLINE_S} s:\n" + self.log()
                    )
                time.sleep(0.05)

    def address(self, path: str) -> str:
        """Return the ``blits://`` address of ``path`` inside module ``m``."""
        return f"{self.url}m/{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def data_connections(self) -> int:
        """Return the number of data-plane connections that blitd has admitted."""
        return self.log().count(DATA_CONNECTION_LOG)

    def stop(self) -> int:
        """Send SIGTERM and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DAEMON_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"blitd did not exit within {DAEMON_DEADLINE_S} s:\n" + self.log())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DAEMON_DEADLINE_S)


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory):
    """A TLS blitd shared by this module; it must exit with status 0 on SIGTERM."""
    running = TlsDaemon(tmp_path_factory.mktemp("blitd-tls"))
    yield running
    if running.process.poll() is not None:
        pytest.fail(
            f"blitd exited with status {running.process.returncode} during the tests:\n"
            + running.log()
        )
    assert running.stop() == 0, running.log()


@pytest.fixture
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The certificate of a second CA, which did not sign the daemon's certificate."""
    directory = tmp_path_factory.mktemp("other-ca")
    make_certificates(directory, "127.0.0.1")
    return directory / "ca.pem"


@pytest.fixture
def remote_name(tls_daemon: TlsDaemon, request: pytest.FixtureRequest) -> str:
    """A directory name inside module ``m`` for this test, which does not exist yet."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    assert not os.path.lexists(tls_daemon.module_path / name)
    return name


def run_blit(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """Run the blit command without ``BLIT_TOKEN`` in its environment."""
    env = dict(os.environ)
    env.pop("BLIT_TOKEN", None)
    return subprocess.run(
        [*BLIT, *[os.fspath(arg) for arg in args]],
        check=False,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=TIMEOUT_SECONDS,
        env=env,
    )


def assert_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Assert exit status 1 and one ``blit: error:`` line that contains each fragment."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith("blit: error: ")
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# --- Python API over blits://


@pytest.mark.parametrize("force_grpc_data", [False, True], ids=["data-port", "grpc-data"])
def test_api_round_trip(tls_daemon, remote_name, make_tree, tmp_path, tree_diff, force_grpc_data):
    src = make_tree("src")
    build_sample_tree(src)
    url = tls_daemon.address(remote_name)
    back = tmp_path / "back"
    connections_before = tls_daemon.data_connections()

    pushed = blit.push(
        src.root,
        url,
        token=tls_daemon.token,
        tls_ca=tls_daemon.ca_file,
        force_grpc_data=force_grpc_data,
    )
    pulled = blit.pull(
        url,
        back,
        token=tls_daemon.token,
        tls_ca=str(tls_daemon.ca_file),
        force_grpc_data=force_grpc_data,
    )

    connections = tls_daemon.data_connections() - connections_before
    if force_grpc_data:
        assert connections == 0, tls_daemon.log()
    else:
        assert connections >= 2, tls_daemon.log()
    assert pushed.failed == 0
    assert pushed.transferred == SAMPLE_ENTRIES
    assert pulled.failed == 0
    assert pulled.transferred == SAMPLE_ENTRIES
    assert tree_diff(src.root, tls_daemon.module_path / remote_name, ignore_root=True) == []
    assert tree_diff(src.root, back, ignore_root=True) == []


def test_api_copy_and_mirror_remote_side(tls_daemon, remote_name, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    src.file("a.txt", "a")
    src.file("sub/b.txt", "b")
    url = tls_daemon.address(remote_name)
    back = tmp_path / "back"
    (back / "stale").mkdir(parents=True)
    options = {"token": tls_daemon.token, "tls_ca": tls_daemon.ca_file}

    copied = blit.copy(src.root, url, **options)
    mirrored = blit.mirror(url, back, **options)

    assert copied.transferred == 3
    assert mirrored.deleted == 1
    assert tree_diff(src.root, back, ignore_root=True) == []


def test_api_client_list_status_purge(tls_daemon, remote_name, make_tree):
    src = make_tree("src")
    src.file("keep.txt", "k")
    src.file("gone/f.txt", "f")
    url = tls_daemon.address(remote_name)
    options = {"token": tls_daemon.token, "tls_ca": tls_daemon.ca_file}
    blit.push(src.root, url, **options)

    client = blit.Client(url, **options)
    status = blit.status(tls_daemon.url, **options)
    modules = blit.list(tls_daemon.url, **options)
    before = blit.list(url, recursive=True, **options)
    deleted = blit.purge(f"{url}/gone", **options)

    assert client.url == tls_daemon.url
    assert client.status().version == blit.__version__
    assert status.version == blit.__version__
    assert [module.name for module in modules] == ["m"]
    assert sorted(entry.path for entry in before) == ["gone", "gone/f.txt", "keep.txt"]
    assert deleted == 2
    assert os.listdir(tls_daemon.module_path / remote_name) == ["keep.txt"]


@pytest.mark.parametrize("operation", ["push", "pull", "list", "purge", "status", "client"])
def test_api_without_ca_network_error(tls_daemon, remote_name, make_tree, tmp_path, operation):
    src = make_tree("src")
    src.file("f.txt", "x")
    url = tls_daemon.address(remote_name)
    token = tls_daemon.token
    calls = {
        "push": lambda: blit.push(src.root, url, token=token),
        "pull": lambda: blit.pull(url, tmp_path / "out", token=token),
        "list": lambda: blit.list(url, token=token),
        "purge": lambda: blit.purge(url, token=token),
        "status": lambda: blit.status(tls_daemon.url, token=token),
        "client": lambda: blit.Client(url, token=token),
    }

    with pytest.raises(blit.NetworkError) as info:
        calls[operation]()

    message = str(info.value)
    assert f"127.0.0.1:{tls_daemon.port}" in message
    assert "--tls-ca" in message
    assert "tls_ca=" in message
    assert not os.path.lexists(tls_daemon.module_path / remote_name)
    assert not (tmp_path / "out").exists()


def test_api_other_ca_network_error(tls_daemon, remote_name, make_tree, other_ca):
    src = make_tree("src")
    src.file("f.txt", "x")

    with pytest.raises(blit.NetworkError, match="--tls-ca"):
        blit.push(
            src.root, tls_daemon.address(remote_name), token=tls_daemon.token, tls_ca=other_ca
        )

    assert not os.path.lexists(tls_daemon.module_path / remote_name)


def test_api_certificate_for_other_host(tmp_path):
    # Valid for a name that the client does not connect to, so the chain is
    # trusted but the host check must fail.
    other_host = TlsDaemon(tmp_path / "daemon", hosts=("blit-other.test",))
    try:
        with pytest.raises(blit.NetworkError) as info:
            blit.status(other_host.url, token=other_host.token, tls_ca=other_host.ca_file)
    finally:
        assert other_host.stop() == 0, other_host.log()

    message = str(info.value)
    assert f"127.0.0.1:{other_host.port}" in message
    assert "--host 127.0.0.1" in message


@pytest.mark.parametrize("operation", ["push", "list", "status"])
def test_api_plain_scheme_names_blits(tls_daemon, remote_name, make_tree, operation):
    src = make_tree("src")
    src.file("f.txt", "x")
    plain = f"{tls_daemon.plain_url}m/{remote_name}"
    calls = {
        "push": lambda: blit.push(src.root, plain, token=tls_daemon.token),
        "list": lambda: blit.list(plain, token=tls_daemon.token),
        "status": lambda: blit.status(tls_daemon.plain_url, token=tls_daemon.token),
    }

    with pytest.raises(blit.InvalidArgumentError) as info:
        calls[operation]()

    message = str(info.value)
    assert f"127.0.0.1:{tls_daemon.port} requires TLS" in message
    assert tls_daemon.url in message
    assert not os.path.lexists(tls_daemon.module_path / remote_name)


def test_api_tls_ca_with_plain_scheme_rejected(tls_daemon):
    with pytest.raises(blit.InvalidArgumentError, match="blits://"):
        blit.status(tls_daemon.plain_url, token=tls_daemon.token, tls_ca=tls_daemon.ca_file)


def test_api_blits_to_plain_daemon_rejected(daemon, tls_daemon):
    blits_url = daemon.url.replace("blit://", "blits://", 1)

    with pytest.raises(blit.InvalidArgumentError) as info:
        blit.status(blits_url, tls_ca=tls_daemon.ca_file)

    assert "does not serve TLS" in str(info.value)
    assert daemon.url in str(info.value)


@pytest.mark.parametrize("function", [blit.copy, blit.mirror], ids=["copy", "mirror"])
def test_api_local_transfer_rejects_tls_ca(tls_daemon, make_tree, dst, function):
    src = make_tree("src")
    src.file("f.txt", "x")

    with pytest.raises(blit.InvalidArgumentError, match="tls_ca") as info:
        function(src.root, dst, tls_ca=tls_daemon.ca_file)

    assert str(tls_daemon.ca_file) in str(info.value)
    assert "blits://" in str(info.value)
    assert not dst.exists()


def test_api_missing_ca_file_not_found(tls_daemon, tmp_path):
    missing = tmp_path / "no-such-ca.pem"

    with pytest.raises(blit.NotFoundError) as info:
        blit.status(tls_daemon.url, token=tls_daemon.token, tls_ca=missing)

    assert str(missing) in str(info.value)


def test_api_ca_file_without_certificate(tls_daemon):
    # The private key is PEM too, but holds no CERTIFICATE block.
    key_file = tls_daemon.root / "tls" / "key.pem"

    with pytest.raises(blit.InvalidArgumentError) as info:
        blit.status(tls_daemon.url, token=tls_daemon.token, tls_ca=key_file)

    assert str(key_file) in str(info.value)
    assert "no PEM CERTIFICATE" in str(info.value)


def test_api_purge_mixed_schemes_rejected(tls_daemon, remote_name, make_tree):
    src = make_tree("src")
    src.file("a.txt", "a")
    src.file("b.txt", "b")
    url = tls_daemon.address(remote_name)
    blit.push(src.root, url, token=tls_daemon.token, tls_ca=tls_daemon.ca_file)
    plain_b = f"{tls_daemon.plain_url}m/{remote_name}/b.txt"

    with pytest.raises(blit.InvalidArgumentError, match="mix blit:// and blits://"):
        blit.purge(f"{url}/a.txt", plain_b, token=tls_daemon.token, tls_ca=tls_daemon.ca_file)

    assert sorted(os.listdir(tls_daemon.module_path / remote_name)) == ["a.txt", "b.txt"]


# --- CLI over blits://


@pytest.mark.parametrize("command", REMOTE_COMMANDS)
def test_cli_help_lists_tls_ca(command):
    result = run_blit(command, "--help")

    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s+--tls-ca FILE\s", result.stdout, re.MULTILINE), result.stdout
    assert "blits://" in result.stdout


def test_cli_round_trip(tls_daemon, remote_name, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    build_sample_tree(src)
    url = tls_daemon.address(remote_name)
    back = tmp_path / "back"
    auth = ["--token-file", tls_daemon.token_file, "--tls-ca", tls_daemon.ca_file]

    pushed = run_blit("push", "--json", *auth, src.root, url)
    pulled = run_blit("pull", "--json", *auth, url, back)

    assert pushed.returncode == 0, pushed.stderr
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pushed.stdout)["transferred"] == SAMPLE_ENTRIES
    assert json.loads(pulled.stdout)["transferred"] == SAMPLE_ENTRIES
    assert tree_diff(src.root, tls_daemon.module_path / remote_name, ignore_root=True) == []
    assert tree_diff(src.root, back, ignore_root=True) == []


def test_cli_copy_mirror_list_purge(tls_daemon, remote_name, make_tree, tmp_path, tree_diff):
    src = make_tree("src")
    src.file("a.txt", "a")
    src.file("sub/b.txt", "b")
    url = tls_daemon.address(remote_name)
    back = tmp_path / "back"
    auth = ["--token-file", tls_daemon.token_file, "--tls-ca", tls_daemon.ca_file]

    copied = run_blit("copy", "-q", *auth, src.root, url)
    mirrored = run_blit("mirror", "-q", *auth, url, back)
    listed = run_blit("list", "--json", "-r", *auth, url)
    purged = run_blit("purge", "--json", *auth, f"{url}/sub")

    assert copied.returncode == 0, copied.stderr
    assert mirrored.returncode == 0, mirrored.stderr
    assert tree_diff(src.root, back, ignore_root=True) == []
    assert listed.returncode == 0, listed.stderr
    paths = sorted(entry["path"] for entry in json.loads(listed.stdout)["entries"])
    assert paths == ["a.txt", "sub", "sub/b.txt"]
    assert purged.returncode == 0, purged.stderr
    assert json.loads(purged.stdout) == {"command": "purge", "deleted": 2}
    assert os.listdir(tls_daemon.module_path / remote_name) == ["a.txt"]


@pytest.mark.parametrize("command", ["push", "pull", "list", "purge", "copy"])
def test_cli_without_ca_exits_1(tls_daemon, remote_name, make_tree, tmp_path, command):
    src = make_tree("src")
    src.file("f.txt", "x")
    url = tls_daemon.address(remote_name)
    args = {
        "push": [src.root, url],
        "pull": [url, tmp_path / "out"],
        "list": [url],
        "purge": [url],
        "copy": [src.root, url],
    }[command]

    result = run_blit(command, "--token-file", tls_daemon.token_file, *args)

    assert_error(result, f"127.0.0.1:{tls_daemon.port}", "--tls-ca FILE")
    assert not os.path.lexists(tls_daemon.module_path / remote_name)
    assert not (tmp_path / "out").exists()


def test_cli_plain_scheme_exits_1(tls_daemon, remote_name, make_tree):
    src = make_tree("src")
    src.file("f.txt", "x")
    plain = f"{tls_daemon.plain_url}m/{remote_name}"

    result = run_blit("push", "--token-file", tls_daemon.token_file, src.root, plain)

    assert_error(result, "requires TLS", f"{tls_daemon.url}m/{remote_name}")
    assert not os.path.lexists(tls_daemon.module_path / remote_name)


def test_cli_tls_ca_with_plain_scheme_exits_1(tls_daemon):
    result = run_blit(
        "list",
        "--token-file",
        tls_daemon.token_file,
        "--tls-ca",
        tls_daemon.ca_file,
        tls_daemon.plain_url,
    )

    assert_error(result, tls_daemon.plain_url, "blits://")


@pytest.mark.parametrize("command", ["copy", "mirror"])
def test_cli_local_transfer_with_tls_ca_exits_1(tls_daemon, make_tree, dst, command):
    src = make_tree("src")
    src.file("f.txt", "x")

    result = run_blit(command, "--tls-ca", tls_daemon.ca_file, src.root, dst)

    assert_error(result, "--tls-ca", str(tls_daemon.ca_file), "both local")
    assert not dst.exists()


def test_cli_missing_ca_file_exits_1(tls_daemon, tmp_path):
    missing = tmp_path / "no-such-ca.pem"

    result = run_blit(
        "list", "--token-file", tls_daemon.token_file, "--tls-ca", missing, tls_daemon.url
    )

    assert_error(result, str(missing), "No such file or directory")
