"""Conversion of single v1 values: booleans, integers, host lists, excludes, users, names."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

# A v2 module name: ASCII letters, digits, '.', '_' and '-', 1 to 255 of
# them, not starting with '.' (ModuleConfig in rust/blitd/src/config.rs).
_MODULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")
MAX_MODULE_NAME = 255

# A token name: 1 to 64 ASCII letters, digits, '.', '_', '-' or '@'
# (validate_name in rust/blitd/src/tokens.rs).
_TOKEN_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MAX_TOKEN_NAME = 64


def parse_bool(value: str) -> bool | None:
    """Read an rsyncd boolean: yes/no, true/false or 1/0, ignoring case and blanks.

    Returns None for anything else.
    """
    word = re.sub(r"\s+", "", value).lower()
    if word in ("yes", "true", "1"):
        return True
    if word in ("no", "false", "0"):
        return False
    return None


def parse_int(value: str) -> int | None:
    """Read a decimal integer with an optional sign; None for anything else.

    rsyncd reads integers with C's atoi(), which turns text such as ``10x``
    or ``many`` into 10 or 0 without complaint. The migration rejects such
    values instead of guessing what was meant.
    """
    text = value.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    return int(text)


def is_valid_module_name(name: str) -> bool:
    """Return whether blitd accepts ``name`` as a module name."""
    return _MODULE_NAME.fullmatch(name) is not None and not name.startswith(".")


def suggest_module_name(name: str, used_names: set[str]) -> str:
    """Return a valid v2 module name close to ``name`` that is not in ``used_names``.

    Accented letters lose their accents, every other character outside the
    allowed set becomes ``_``, and a number is appended when the result is
    already in ``used_names``.
    """
    return _suggest(name, used_names, _MODULE_NAME, MAX_MODULE_NAME, "module")


def is_valid_token_name(name: str) -> bool:
    """Return whether ``blitd token create`` accepts ``name``."""
    return _TOKEN_NAME.fullmatch(name) is not None


def suggest_token_name(name: str, used_names: set[str]) -> str:
    """Return a valid token name close to ``name`` that is not in ``used_names``."""
    return _suggest(name, used_names, _TOKEN_NAME, MAX_TOKEN_NAME, "user")


def unique_name(name: str, used_names: set[str], limit: int) -> str:
    """Return ``name``, or ``name-2``, ``name-3``... whichever is not in ``used_names``."""
    if name not in used_names:
        return name
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = name[: limit - len(suffix)] + suffix
        if candidate not in used_names:
            return candidate
        number += 1


def _suggest(
    name: str, used_names: set[str], pattern: re.Pattern[str], limit: int, fallback: str
) -> str:
    characters = []
    for char in name:
        if pattern.fullmatch(char):
            characters.append(char)
            continue
        folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        ascii_part = "".join(c for c in folded if pattern.fullmatch(c))
        characters.append(ascii_part or "_")
    candidate = re.sub(r"_+", "_", "".join(characters)).strip("_").lstrip(".")
    candidate = candidate[:limit] or fallback
    return unique_name(candidate, used_names, limit)


# --- hosts allow and hosts deny


@dataclass(frozen=True)
class HostEntry:
    """One entry of an rsyncd ``hosts allow`` or ``hosts deny`` list."""

    text: str
    # The v2 form, an IP address or a CIDR network, or None when the entry
    # has no v2 meaning.
    converted: str | None
    # Why the entry has no v2 meaning; empty when it was converted.
    reason: str = ""


def split_host_list(value: str) -> list[str]:
    """Split an rsyncd host list, which separates entries by commas and blanks."""
    return [entry for entry in re.split(r"[,\s]+", value) if entry]


def convert_host(entry: str) -> HostEntry:
    """Convert one host pattern to an IP address or CIDR string for v2.

    rsyncd accepts addresses, ``ADDR/BITS``, ``ADDR/NETMASK``, host names
    and host-name wildcards. v2 matches client addresses only, so names
    and wildcards have no v2 meaning.
    """
    if "%" in entry:
        return HostEntry(
            entry, None, "an IPv6 scope (%) has no v2 meaning; use the address without it"
        )
    address, slash, mask = entry.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return HostEntry(entry, None, _name_reason(entry))
    if not slash:
        return HostEntry(entry, str(ip))
    bits = _mask_bits(ip, mask)
    if bits is None:
        return HostEntry(
            entry, None, f"the netmask {mask!r} is neither a prefix length nor a contiguous netmask"
        )
    network = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    return HostEntry(entry, str(network))


def _mask_bits(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, mask: str) -> int | None:
    if mask.isdigit():
        bits = int(mask)
        return bits if bits <= ip.max_prefixlen else None
    try:
        mask_ip = ipaddress.ip_address(mask)
    except ValueError:
        return None
    if mask_ip.version != ip.version:
        return None
    value = int(mask_ip)
    bits = bin(value).count("1")
    # A netmask is contiguous when its one bits all come first.
    expected = ((1 << bits) - 1) << (ip.max_prefixlen - bits)
    return bits if value == expected else None


def _name_reason(entry: str) -> str:
    octets = entry.split(".")
    if "*" in entry and all(part == "*" or part.isdigit() for part in octets):
        fixed = []
        for part in octets:
            if part == "*":
                break
            fixed.append(part)
        if 0 < len(fixed) < 4 and len(octets) <= 4:
            network = ".".join([*fixed, *["0"] * (4 - len(fixed))]) + f"/{8 * len(fixed)}"
            return (
                f"a wildcard has no v2 meaning (rsyncd matches it against host names); "
                f"for the addresses it suggests, write {network}"
            )
    if any(char in entry for char in "*?["):
        return "a host-name wildcard has no v2 meaning; v2 matches IP addresses and CIDR ranges"
    return (
        "a host name has no v2 meaning; v2 matches IP addresses and CIDR ranges, so write "
        "the host's addresses instead"
    )


# --- exclude


@dataclass(frozen=True)
class ExcludeResult:
    """The v2 exclude patterns of an rsyncd ``exclude`` value."""

    patterns: list[str]
    # Rules that have no v2 meaning, each with the reason.
    dropped: list[tuple[str, str]]
    # Patterns that were rewritten, as (v1 pattern, v2 pattern).
    rewritten: list[tuple[str, str]]


def convert_excludes(value: str) -> ExcludeResult:
    """Convert rsyncd's space-separated daemon exclude list.

    A ``- `` or ``+ `` prefix marks an exclude or an include rule. v2 has no
    include rules. rsync's ``DIR/***`` matches the directory DIR, as
    ``DIR/`` would, and everything in it (rsync(1), INCLUDE/EXCLUDE PATTERN
    RULES). It becomes ``DIR/``, which v2 also matches against directories
    only and whose contents v2 never visits, so a plain file named DIR stays
    included, as in rsync.
    """
    words = value.split()
    patterns: list[str] = []
    dropped: list[tuple[str, str]] = []
    rewritten: list[tuple[str, str]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word in ("-", "+") and index < len(words):
            rule, pattern = word, words[index]
            index += 1
        else:
            rule, pattern = "-", word
        if rule == "+":
            dropped.append(
                (
                    f"+ {pattern}",
                    "v2 has exclude patterns only, no include rules that override them",
                )
            )
            continue
        if pattern.endswith("/***") and len(pattern) > len("/***"):
            converted = pattern[: -len("***")]
            rewritten.append((pattern, converted))
            pattern = converted
        patterns.append(pattern)
    return ExcludeResult(patterns, dropped, rewritten)


# --- auth users


# The options of an auth users rule that rsyncd knows, and "" for none.
AUTH_OPTIONS = frozenset(["", "ro", "rw", "deny"])


@dataclass(frozen=True)
class AuthRule:
    """One rule of rsyncd's ``auth users``: a user or ``@group``, with an access option."""

    text: str
    name: str
    # "" when the rule has no ":option".
    option: str
    kind: Literal["user", "group", "pattern"]

    @property
    def redacted_text(self) -> str:
        """The rule as messages quote it, without an unknown option.

        An unknown option is often a password written as USER:PASSWORD,
        so it is never shown.
        """
        if self.option in AUTH_OPTIONS:
            return self.text
        return f"{self.name}:<unknown option>"


def parse_auth_users(value: str) -> list[AuthRule]:
    """Split ``auth users`` into rules.

    Rules are separated by commas and blanks, or by commas only when the
    list starts with a comma (so that names may contain spaces). A rule is
    ``NAME``, ``@GROUP`` or a shell wildcard, optionally followed by
    ``:ro``, ``:rw`` or ``:deny``.
    """
    stripped = value.strip()
    if stripped.startswith(","):
        items = [item.strip() for item in stripped.split(",")]
    else:
        items = re.split(r"[,\s]+", stripped)
    rules = []
    for item in items:
        if not item:
            continue
        name, _, option = item.partition(":")
        kind: Literal["user", "group", "pattern"]
        if name.startswith("@"):
            kind = "group"
        elif any(char in name for char in "*?["):
            kind = "pattern"
        else:
            kind = "user"
        rules.append(AuthRule(item, name, option.strip().lower(), kind))
    return rules
