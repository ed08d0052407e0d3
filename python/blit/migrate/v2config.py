"""The v2 side of a config conversion: validate, write and read a blitd config.

:func:`validate` checks converted text with blitd's own parser through the
``blit._blit.check_config`` binding, :func:`write_atomically` puts the text
in place, and :func:`read_daemon_address` reads the port that
``blit migrate-url --config`` writes into addresses.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

from blit.migrate.config import DEFAULT_PORT, Conversion
from blit.migrate.report import Report


def validate(conversion: Conversion, origin: str) -> Report | None:
    """Check the converted text with blitd's own config parser.

    Returns None when blitd accepts it, else an error report whose message
    is the parser's, followed by the v1 line that the failing key came
    from where that is known.
    """
    from blit import _blit
    from blit.errors import BlitError

    check_config = getattr(_blit, "check_config", None)
    if check_config is None:
        return Report(
            "error",
            "this build of blit has no blit._blit.check_config, so the "
            "output cannot be validated; rebuild and reinstall the wheel "
            "(bash scripts/test.sh, or pip install .)",
        )
    try:
        check_config(conversion.text, origin)
    except BlitError as error:
        return Report(
            "error",
            f"blitd rejects the converted config: {error.message}"
            + _source_hint(conversion, origin, error.message),
        )
    return None


def _source_hint(conversion: Conversion, origin: str, message: str) -> str:
    match = re.match(re.escape(origin) + r":(\d+):", message)
    if match is not None:
        source = conversion.source_lines.get(int(match.group(1)))
        if source is not None:
            return f" (converted from {source})"
        return ""
    for name, source in conversion.module_sources.items():
        # blitd quotes a module name in double quotes: module "data".
        if f'module "{name}"' in message:
            return f" (converted from module at {source})"
    return ""


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory.

    The file appears complete under its name or not at all. It gets the
    mode that a newly created file gets under the current umask.

    Raises:
        OSError: The directory is not writable, or the disk is full.
    """
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".blit-migrate-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as output:
            output.write(text)
            output.flush()
            os.fsync(output.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_daemon_address(path: str) -> tuple[int, bool]:
    """Return the control-plane port of the v2 config at ``path`` and whether it serves TLS.

    The port is that of ``[daemon] listen_addr`` (blitd's default 50051 when
    it is missing), and TLS is on when the config has a ``[daemon.tls]``
    table.

    Raises:
        OSError: The file cannot be read.
        ValueError: The file is not TOML, or listen_addr has no port.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    listen_addr, tls = _daemon_settings(text)
    if listen_addr is None:
        return DEFAULT_PORT, tls
    host, colon, port_text = listen_addr.rpartition(":")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"listen_addr {listen_addr!r} is not an IP address and port")
    return int(port_text), tls


def _daemon_settings(text: str) -> tuple[str | None, bool]:
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"not a valid TOML file: {error}") from None
        daemon = document.get("daemon", {})
        if not isinstance(daemon, dict):
            raise ValueError("[daemon] is not a table")
        listen_addr = daemon.get("listen_addr")
        if listen_addr is not None and not isinstance(listen_addr, str):
            raise ValueError("listen_addr is not a string")
        return listen_addr, isinstance(daemon.get("tls"), dict)
    # NOTE: Python 3.9 and 3.10 have no TOML reader, so this reads only the
    # simple layout that blitd's docs and migrate-config write:
    # listen_addr = "..." on its own line inside [daemon].
    table = ""
    listen_addr = None
    tls = False
    for line in text.splitlines():
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([A-Za-z0-9_.\s]+?)\s*\]\s*(#.*)?", stripped)
        if header is not None:
            table = re.sub(r"\s+", "", header.group(1))
            tls = tls or table == "daemon.tls"
            continue
        match = re.fullmatch(r'listen_addr\s*=\s*"([^"\\]*)"\s*(#.*)?', stripped)
        if table == "daemon" and match is not None:
            listen_addr = match.group(1)
    return listen_addr, tls
