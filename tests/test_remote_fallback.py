"""Fallback from the data plane to gRPC streaming, with the data port blocked.

Each test runs blitd and the client inside a private network namespace
(``unshare --net``) whose loopback rejects connections to the data port, so
the client really cannot reach it. The rest of the machine is unaffected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONTROL_PORT = 41051
DATA_PORT = 41052

DAEMON_AND_CLIENT = textwrap.dedent(
    """
    set -eu
    ip link set lo up
    nft add table inet blit_test
    nft add chain inet blit_test input '{{ type filter hook input priority 0; }}'
    nft add rule inet blit_test input tcp dport {data_port} reject with tcp reset
    BLIT_TOKEN=$({python} -c 'import sys; from blit import _blit; sys.exit(_blit.blitd_main(["blitd", "token", "create", "--config", sys.argv[1], "--name", "tests", "--modules", "*", "--permissions", "read,write,delete,admin"]))' {config} 2>/dev/null)
    export BLIT_TOKEN
    {python} -c 'import sys; from blit import _blit; sys.exit(_blit.blitd_main(["blitd", "--config", sys.argv[1]]))' {config} 2>{daemon_log} &
    daemon=$!
    ready=0
    for _ in $(seq 300); do
        if {python} -c 'from blit import _blit; _blit.Client("blit://127.0.0.1:{control_port}/").status()' 2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.1
    done
    status=0
    if [ "$ready" = 1 ]; then
        {python} -c "$CLIENT_CODE" || status=$?
    else
        echo "blitd did not become ready" >&2
        status=1
    fi
    kill -TERM "$daemon"
    wait "$daemon" || status=$?
    exit "$status"
    """
)


def namespace_available() -> str | None:
    """Return why the namespace test cannot run here, or None if it can."""
    for tool in ("unshare", "nft", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        return "unshare --net is not permitted: " + probe.stderr.decode(errors="replace").strip()
    return None


pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or namespace_available() is not None,
    reason=f"needs a private network namespace: {namespace_available()}",
)


def run_isolated(tmp_path: Path, client_code: str) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        "[daemon]\n"
        f'listen_addr = "127.0.0.1:{CONTROL_PORT}"\n'
        f"data_port = {DATA_PORT}\n"
        'auth = "token"\n'
        f'token_file = "{tmp_path / "tokens.toml"}"\n\n'
        "[[modules]]\n"
        'name = "m"\n'
        f'path = "{module}"\n'
    )
    script = DAEMON_AND_CLIENT.format(
        data_port=DATA_PORT,
        control_port=CONTROL_PORT,
        python=sys.executable,
        config=config,
        daemon_log=tmp_path / "blitd.log",
    )
    env = dict(os.environ, CLIENT_CODE=client_code)
    return subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def make_tree(root: Path) -> None:
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "small.txt").write_text("small")
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "empty.txt").write_bytes(b"")


def assert_same_files(expected: Path, actual: Path) -> None:
    for rel in ("dir/small.txt", "big.bin", "empty.txt"):
        assert (actual / rel).read_bytes() == (expected / rel).read_bytes(), rel


def test_push_falls_back_with_warning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    code = (
        "from blit import _blit\n"
        f"summary = _blit.Client('blit://127.0.0.1:{CONTROL_PORT}/').push({str(src)!r}, 'm/dst')\n"
        "assert summary.failed == 0, summary.failures\n"
    )

    result = run_isolated(tmp_path, code)

    assert result.returncode == 0, result.stderr
    assert f"cannot reach the data port {DATA_PORT}" in result.stderr
    assert "over the control connection" in result.stderr
    assert_same_files(src, tmp_path / "module" / "dst")


def test_pull_falls_back_with_warning(tmp_path: Path) -> None:
    make_tree(tmp_path / "module" / "tree")
    dst = tmp_path / "pulled"
    code = (
        "from blit import _blit\n"
        f"summary = _blit.Client('blit://127.0.0.1:{CONTROL_PORT}/').pull('m/tree', {str(dst)!r})\n"
        "assert summary.failed == 0, summary.failures\n"
    )

    result = run_isolated(tmp_path, code)

    assert result.returncode == 0, result.stderr
    assert f"cannot reach the data port {DATA_PORT}" in result.stderr
    assert_same_files(tmp_path / "module" / "tree", dst)
    log = (tmp_path / "blitd.log").read_text()
    assert "sending data over gRPC" in log


def test_forced_grpc_data_has_no_warning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    code = (
        "from blit import _blit\n"
        f"client = _blit.Client('blit://127.0.0.1:{CONTROL_PORT}/')\n"
        f"summary = client.push({str(src)!r}, 'm/dst', force_grpc_data=True)\n"
        "assert summary.failed == 0, summary.failures\n"
    )

    result = run_isolated(tmp_path, code)

    assert result.returncode == 0, result.stderr
    assert "cannot reach the data port" not in result.stderr
    assert_same_files(src, tmp_path / "module" / "dst")
