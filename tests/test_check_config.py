"""``blit._blit.check_config``: the daemon's config parser, called from Python."""

from __future__ import annotations

from pathlib import Path

import blit
import pytest
from blit import _blit


def config_text(module_dir: Path, module_keys: str = "", daemon_keys: str = "") -> str:
    """Return a config with ``auth = "none"`` and one module ``m`` at ``module_dir``."""
    return (
        "[daemon]\n"
        'auth = "none"\n'
        f"{daemon_keys}\n"
        "[[modules]]\n"
        'name = "m"\n'
        f'path = "{module_dir}"\n'
        f"{module_keys}\n"
    )


def test_valid_config_passes(tmp_path):
    text = config_text(
        tmp_path,
        module_keys=(
            'hosts_allow = ["10.0.0.0/8", "::1"]\n'
            'hosts_deny = ["0.0.0.0/0"]\n'
            "list = false\n"
            "max_connections = 4\n"
            'exclude = ["*.key", "/private/"]'
        ),
        daemon_keys="max_connections = 16",
    )

    assert _blit.check_config(text, "blitd.toml") is None


@pytest.mark.parametrize(
    ("module_keys", "line", "expected"),
    [
        ('hosts_allow = ["10.0.0.0/33"]', 7, 'hosts_allow entry "10.0.0.0/33"'),
        ('hosts_deny = ["::1",\n  "example.com"]', 8, 'hosts_deny entry "example.com"'),
        ('exclude = ["a[b"]', 7, '"a[b"'),
    ],
)
def test_invalid_entry_names_origin_line_and_module(tmp_path, module_keys, line, expected):
    with pytest.raises(blit.InvalidArgumentError) as raised:
        _blit.check_config(config_text(tmp_path, module_keys), "/etc/blit/config.toml")

    message = str(raised.value)
    assert message.startswith(f"/etc/blit/config.toml:{line}: "), message
    assert 'module "m"' in message
    assert expected in message


def test_unknown_key_names_key_and_line(tmp_path):
    with pytest.raises(blit.InvalidArgumentError) as raised:
        _blit.check_config(config_text(tmp_path, "max_conections = 2"), "cfg.toml")

    message = str(raised.value)
    assert message.startswith("cfg.toml:7: "), message
    assert "max_conections" in message


def test_missing_module_directory_rejected(tmp_path):
    with pytest.raises(blit.InvalidArgumentError, match="cannot be used"):
        _blit.check_config(config_text(tmp_path / "missing"), "cfg.toml")
