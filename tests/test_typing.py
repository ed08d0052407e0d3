"""Type checks: the extension's stubs match it, and typed code using blit passes mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "mypy", reason="mypy is not installed; install it with 'pip install mypy' to run type checks"
)

ROOT = Path(__file__).resolve().parent.parent

# mypy can take tens of seconds on a cold cache.
MYPY_TIMEOUT_SECONDS = 300


def run_python_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m MODULE ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT_SECONDS,
    )


def test_stubtest_extension(tmp_path: Path) -> None:
    # stubtest takes no --cache-dir, so a config file keeps its cache out of
    # the work tree.
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {tmp_path / 'cache'}\n")

    result = run_python_module("mypy.stubtest", "--mypy-config-file", str(config), "blit._blit")

    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_example(tmp_path: Path) -> None:
    result = run_python_module(
        "mypy", "--strict", "--cache-dir", str(tmp_path), "examples/python/mirror_tree.py"
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_cli(tmp_path: Path) -> None:
    result = run_python_module("mypy", "--strict", "--cache-dir", str(tmp_path), "-p", "blit.cli")

    assert result.returncode == 0, result.stdout + result.stderr
