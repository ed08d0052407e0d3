"""Conversion of v1 addresses into ``blit://HOST:PORT/MODULE/PATH``.

Three v1 forms are recognised:

- ``HOST:MODULE[/PATH]``, blit v1's own address;
- ``[USER@]HOST::MODULE[/PATH]``, an rsync daemon address;
- ``rsync://[USER@]HOST[:PORT]/MODULE[/PATH]``, an rsync URL.

An IPv6 HOST is written in brackets in all of them. ``HOST::`` and
``rsync://HOST/`` name the daemon itself and become ``blit://HOST:PORT/``.
The port of the result is never rsync's: it is v2's 50051 unless the
caller passes another (from ``--port`` or the v2 config's listen_addr).

Text that only resembles an address is not converted: an ``scp`` target
``USER@HOST:PATH``, a Windows drive letter (``C:/x``), a time
(``12:30``), a URL of another scheme and a path that starts with ``/``
or ``.``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from blit.migrate import values

DEFAULT_PORT = 50051

# The reason given for a ``blit://`` or ``blits://`` address.
ALREADY_V2 = "already a v2 address"

# A DNS label: letters, digits and '-', not starting or ending with '-'.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# rsync's user part: anything up to the '@' that is not a separator.
_USER = re.compile(r"([^@:/\[\]]+)@")

AddressForm = Literal["blit-v1", "rsync-daemon", "rsync-url"]


@dataclass(frozen=True)
class V1Address:
    """A parsed v1 address."""

    form: AddressForm
    # Host name or IP address, without brackets.
    host: str
    # Module name; empty when the address names the daemon itself.
    module: str
    # The part after the module, starting with its '/'; empty when nothing follows.
    path: str
    # rsync's login name (USER@), which v2 has no use for.
    user: str | None = None

    def to_v2(
        self,
        port: int = DEFAULT_PORT,
        *,
        tls: bool = False,
        renames: Mapping[str, str] | None = None,
    ) -> str:
        """Return the ``blit://`` (or with ``tls``, ``blits://``) address."""
        scheme = "blits" if tls else "blit"
        host = f"[{self.host}]" if ":" in self.host else self.host
        module = (renames or {}).get(self.module, self.module)
        if not self.module:
            return f"{scheme}://{host}:{port}/"
        return f"{scheme}://{host}:{port}/{module}{self.path}"


@dataclass(frozen=True)
class ParseResult:
    """A v1 address, or the reason why the text is not one."""

    address: V1Address | None
    reason: str = ""


def parse(text: str) -> ParseResult:
    """Parse ``text`` as a v1 address."""
    if text.startswith(("blit://", "blits://")):
        return ParseResult(None, ALREADY_V2)
    lowered = text.lower()
    if lowered.startswith("rsync://"):
        return _parse_rsync_url(text[len("rsync://") :])
    if _SCHEME.match(text):
        return ParseResult(None, "a URL of another scheme")
    if text.startswith(("/", ".", "~")):
        return ParseResult(None, "a local path")
    user = None
    rest = text
    user_match = _USER.match(text)
    if user_match is not None:
        user = user_match.group(1)
        rest = text[user_match.end() :]
    host, after = _split_host(rest)
    if host is None:
        return ParseResult(None, "no HOST: before the module")
    if after.startswith("::"):
        reason = _host_problem(host, bracketed=rest.startswith("["))
        if reason:
            return ParseResult(None, reason)
        module, path = _split_module(after[2:])
        return ParseResult(V1Address("rsync-daemon", host, module, path, user))
    if not after.startswith(":"):
        return ParseResult(None, "no ':' after the host")
    if user is not None:
        return ParseResult(None, "a USER@HOST:PATH target of scp or ssh, not a blit v1 address")
    if len(host) == 1 and host.isalpha():
        return ParseResult(None, f"{host}: is a Windows drive letter")
    reason = _host_problem(host, bracketed=rest.startswith("["))
    if reason:
        return ParseResult(None, reason)
    module, path = _split_module(after[1:])
    if not module:
        if after[1:].startswith("/"):
            return ParseResult(
                None,
                "HOST:/PATH is an scp or ssh target; a v1 address names a module after the ':'",
            )
        return ParseResult(None, "no module after HOST:")
    return ParseResult(V1Address("blit-v1", host, module, path))


def _parse_rsync_url(rest: str) -> ParseResult:
    user = None
    user_match = _USER.match(rest)
    if user_match is not None:
        user = user_match.group(1)
        rest = rest[user_match.end() :]
    host, after = _split_host(rest)
    if host is None:
        return ParseResult(None, "no host after rsync://")
    reason = _host_problem(host, bracketed=rest.startswith("["))
    if reason:
        return ParseResult(None, reason)
    if after.startswith(":"):
        # rsync's port is dropped: v2 listens on its own.
        port_text, slash, remainder = after[1:].partition("/")
        if not port_text.isdigit():
            return ParseResult(None, f"the port {port_text!r} is not a number")
        after = slash + remainder
    if after and not after.startswith("/"):
        return ParseResult(None, "no '/' after the host")
    module, path = _split_module(after[1:])
    return ParseResult(V1Address("rsync-url", host, module, path, user))


def _split_host(text: str) -> tuple[str | None, str]:
    """Split ``HOST`` or ``[IPV6]`` off the front of ``text``."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return None, text
        return text[1:close], text[close + 1 :]
    end = len(text)
    for separator in ":/":
        index = text.find(separator)
        if 0 <= index < end:
            end = index
    if end == 0:
        return None, text
    return text[:end], text[end:]


def _split_module(text: str) -> tuple[str, str]:
    module, slash, path = text.partition("/")
    return module, slash + path


def _host_problem(host: str, *, bracketed: bool) -> str:
    """Return why ``host`` cannot be the host of an address, or "" if it can."""
    if bracketed or ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return ""
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is neither a host name nor an IPv4 address (a time or a number?)"
        return ""
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a host name"
    return ""


def convert(
    text: str,
    port: int = DEFAULT_PORT,
    *,
    tls: bool = False,
    renames: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """Convert one address.

    Returns ``(v2 address, note)`` for a v1 address, where the note names
    what the v2 form leaves out (an rsync login name), or ``(None, reason)``
    when ``text`` is not a v1 address or names a module that no v2 daemon
    can serve under that name.
    """
    result = parse(text)
    if result.address is None:
        return None, result.reason
    problem = module_name_problem(result.address.module, renames or {})
    if problem:
        return None, problem
    note = ""
    if result.address.user is not None:
        note = (
            f"the login name {result.address.user!r} is dropped; v2 authenticates with "
            "a token (--token-file or BLIT_TOKEN)"
        )
    return result.address.to_v2(port, tls=tls, renames=renames), note


def module_name_problem(module: str, renames: Mapping[str, str]) -> str:
    """Return why ``module``, after ``renames``, cannot be a v2 module name, or "" if it can.

    The reason suggests the ``--rename`` that migrate-config suggests for
    the same v1 module.
    """
    if not module or module in renames or values.is_valid_module_name(module):
        return ""
    suggestion = values.suggest_module_name(module, set())
    return (
        f"the module {module!r} is not a valid v2 module name (letters, digits, '.', '_' "
        "and '-', not starting with '.'), so no v2 daemon serves it under that name; "
        f"rerun with --rename {shlex.quote(module + '=' + suggestion)}, the rename that "
        "migrate-config suggests"
    )


def looks_like_v1(text: str) -> bool:
    """Return whether v2's ``blit`` rejects ``text`` as a v1 address.

    v2 reads an argument as a v1 address when the part before its first
    ``/`` contains a ``:`` and it is not a ``blit://`` or ``blits://``
    address (rust/blit-core/src/address.rs).
    """
    if text.startswith(("blit://", "blits://")):
        return False
    return ":" in text.split("/", 1)[0]
