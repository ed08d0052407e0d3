"""Faults during remote transfers: a full disk on the daemon, and a client
killed part-way. The daemon must end only the affected transfer, keep
serving, and leave no partial file under a final name.

The full-disk test mounts a 1 MiB tmpfs as the module inside a private
mount and network namespace (``unshare --mount --net``), so the rest of
the machine is unaffected.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

DEADLINE = 60.0

FULL_DISK_SCRIPT = textwrap.dedent(
    """
    set -eu
    ip link set lo up
    mount -t tmpfs -o size=1m tmpfs {module}
    BLIT_TOKEN=$({python} -c 'import sys; from blit import _blit; sys.exit(_blit.blitd_main(["blitd", "token", "create", "--config", sys.argv[1], "--name", "tests", "--modules", "*", "--permissions", "read,write,delete,admin"]))' {config} 2>/dev/null)
    export BLIT_TOKEN
    {python} -c 'import sys; from blit import _blit; sys.exit(_blit.blitd_main(["blitd", "--config", sys.argv[1]]))' {config} 2>{daemon_log} &
    daemon=$!
    for _ in $(seq 300); do
        {python} -c 'from blit import _blit; _blit.Client("blit://127.0.0.1:41061/").status()' 2>/dev/null && break
        sleep 0.1
    done
    status=0
    {python} -c "$CLIENT_CODE" || status=$?
    kill -TERM "$daemon"
    wait "$daemon" || status=$?
    exit "$status"
    """
)

FULL_DISK_CLIENT = textwrap.dedent(
    """
    import os
    from blit import _blit
    client = _blit.Client("blit://127.0.0.1:41061/")
    summary = client.push({src!r}, "m/tree")
    assert summary.failed >= 1, summary
    for failure in summary.failures:
        assert "No space left" in failure.message, failure
    module = {module!r}
    assert not os.path.exists(os.path.join(module, "tree", "big.bin"))
    leftovers = [n for _, _, names in os.walk(module) for n in names if n.startswith(".blit-")]
    assert not leftovers, leftovers
    for name in os.listdir(os.path.join(module, "tree")):
        with open(os.path.join(module, "tree", name), "rb") as copied:
            with open(os.path.join({src!r}, name), "rb") as original:
                assert copied.read() == original.read(), name
    # The daemon keeps serving: status and a small push succeed.
    client.status()
    again = client.push({small!r}, "m/after")
    assert again.failed == 0, again.failures
    print("full-disk checks passed")
    """
)


def namespaces_available() -> str | None:
    """Return why the namespace test cannot run here, or None if it can."""
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        return "unshare is not permitted: " + probe.stderr.decode(errors="replace").strip()
    return None


def write_config(tmp_path: Path, module: Path, control: int, data: int) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        "[daemon]\n"
        f'listen_addr = "127.0.0.1:{control}"\n'
        f"data_port = {data}\n"
        'auth = "token"\n'
        f'token_file = "{tmp_path / "tokens.toml"}"\n\n'
        "[[modules]]\n"
        'name = "m"\n'
        f'path = "{module}"\n'
    )
    return config


@pytest.mark.skipif(
    sys.platform != "linux" or namespaces_available() is not None,
    reason=f"needs private mount and network namespaces: {namespaces_available()}",
)
def test_full_disk_fails_file_not_daemon(tmp_path: Path) -> None:
    module = tmp_path / "module"
    module.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    for index in range(5):
        (src / f"small{index}.txt").write_bytes(os.urandom(2048))
    (src / "big.bin").write_bytes(os.urandom(3 << 20))
    small = tmp_path / "small"
    small.mkdir()
    (small / "one.txt").write_text("fits")
    config = write_config(tmp_path, module, 41061, 41062)
    script = FULL_DISK_SCRIPT.format(
        module=module, python=sys.executable, config=config, daemon_log=tmp_path / "blitd.log"
    )
    client = FULL_DISK_CLIENT.format(src=str(src), module=str(module), small=str(small))

    result = subprocess.run(
        ["unshare", "--mount", "--net", "bash", "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, CLIENT_CODE=client),
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "full-disk checks passed" in result.stdout
    log = (tmp_path / "blitd.log").read_text()
    assert "push finished" in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_killed_client_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "module"
    module.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    # Large enough that the kill lands while its bytes are in flight.
    with open(src / "big.bin", "wb") as big:
        block = os.urandom(1 << 20)
        for _ in range(768):
            big.write(block)
    control, data = free_port(), free_port()
    config = write_config(tmp_path, module, control, data)
    url = f"blit://127.0.0.1:{control}/"
    created = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from blit import _blit; sys.exit(_blit.blitd_main("
            "['blitd', 'token', 'create', '--config', sys.argv[1], '--name', 'tests', "
            "'--modules', '*', '--permissions', 'read,write,delete,admin']))",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    monkeypatch.setenv("BLIT_TOKEN", created.stdout.strip())
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from blit import _blit; "
            "sys.exit(_blit.blitd_main(['blitd', '--config', sys.argv[1]]))",
            str(config),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from blit import _blit

        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                _blit.Client(url).status()
                break
            except Exception:
                assert time.monotonic() < deadline, "blitd did not become ready"
                time.sleep(0.1)

        client = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from blit import _blit; "
                "_blit.Client(sys.argv[1]).push(sys.argv[2], 'm/tree')",
                url,
                str(src),
            ],
        )
        tree = module / "tree"
        while not (tree.exists() and any(n.startswith(".blit-") for n in os.listdir(tree))):
            assert client.poll() is None, "the push finished before it could be interrupted"
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.005)
        client.send_signal(signal.SIGKILL)
        client.wait()

        # The daemon notices the broken session and keeps serving.
        while _blit.Client(url).status().active_sessions:
            assert time.monotonic() < deadline, "the broken session never ended"
            time.sleep(0.1)
        assert not (tree / "big.bin").exists()
        summary = _blit.Client(url).push(str(src), "m/tree")
        assert summary.failed == 0, summary.failures
        assert (tree / "big.bin").stat().st_size == 768 << 20
        assert not [n for n in os.listdir(tree) if n.startswith(".blit-")]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=DEADLINE)
    assert daemon.returncode == 0, log
    assert "push failed" in log
