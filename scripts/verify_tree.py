#!/usr/bin/env python3
"""Compare two directory trees entry by entry, independently of blit.

Usage: verify_tree.py SRC DST

Walks both trees without following symlinks and compares the set of relative
paths, entry types, SHA-256 of file contents, mode bits, modification times
in nanoseconds (of files, directories and symlinks, the roots included) and
symlink targets. Empty directories are entries like any other, so a missing
one is reported. A destination mtime in whole seconds matches a source mtime
with the same seconds, because some filesystems keep no nanoseconds.

Paths are handled as bytes, so names that are not UTF-8 work. Prints each
difference (up to --max-differences) and a one-line result. Exit status: 0
when the trees are identical, 1 when they differ, 2 when a tree cannot be
read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from typing import Optional

NANOSECONDS_PER_SECOND = 1_000_000_000
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One entry of a tree, from its lstat result."""

    kind: str
    mode: int
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Difference:
    """One way in which the destination differs from the source.

    ``kind`` is one of missing, extra, type, content, mode, mtime, symlink.
    """

    kind: str
    path: bytes
    detail: str


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special file"


def entry_from_stat(result: os.stat_result) -> Entry:
    return Entry(
        kind=kind_of(result.st_mode),
        mode=stat.S_IMODE(result.st_mode),
        mtime_ns=result.st_mtime_ns,
        size=result.st_size,
    )


def scan_tree(root: bytes) -> dict[bytes, Entry]:
    """Map each relative path under ``root`` to its entry; ``b"."`` is the root.

    Raises:
        OSError: ``root`` or a directory under it cannot be read.
    """
    entries = {b".": entry_from_stat(os.lstat(root))}
    if entries[b"."].kind != "directory":
        raise NotADirectoryError(f"{display(root)} is not a directory")
    pending = [b""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as listing:
            for item in listing:
                rel = os.path.join(rel_dir, item.name) if rel_dir else item.name
                entry = entry_from_stat(item.stat(follow_symlinks=False))
                entries[rel] = entry
                if entry.kind == "directory":
                    pending.append(rel)
    return entries


def sha256_of(path: bytes) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def same_mtime(src_ns: int, dst_ns: int) -> bool:
    """Return whether the mtimes match, allowing a whole-second destination."""
    if src_ns == dst_ns:
        return True
    dst_whole_seconds = dst_ns % NANOSECONDS_PER_SECOND == 0
    return dst_whole_seconds and src_ns // NANOSECONDS_PER_SECOND == dst_ns // NANOSECONDS_PER_SECOND


def compare_entries(
    src_root: bytes, dst_root: bytes, rel: bytes, src: Entry, dst: Entry
) -> list[Difference]:
    """Compare one path present in both trees."""
    if src.kind != dst.kind:
        return [Difference("type", rel, f"source has a {src.kind}, destination a {dst.kind}")]

    differences = []
    src_path = os.path.join(src_root, rel)
    dst_path = os.path.join(dst_root, rel)
    if src.kind == "file":
        if src.size != dst.size:
            detail = f"size {src.size} in source, {dst.size} in destination"
            differences.append(Difference("content", rel, detail))
        elif sha256_of(src_path) != sha256_of(dst_path):
            differences.append(Difference("content", rel, "same size, different SHA-256"))
    elif src.kind == "symlink":
        src_target = os.readlink(src_path)
        dst_target = os.readlink(dst_path)
        if src_target != dst_target:
            detail = f"target {display(src_target)} in source, {display(dst_target)} in destination"
            differences.append(Difference("symlink", rel, detail))

    if src.mode != dst.mode:
        detail = f"mode {src.mode:04o} in source, {dst.mode:04o} in destination"
        differences.append(Difference("mode", rel, detail))
    if not same_mtime(src.mtime_ns, dst.mtime_ns):
        detail = f"mtime {src.mtime_ns} ns in source, {dst.mtime_ns} ns in destination"
        differences.append(Difference("mtime", rel, detail))
    return differences


def compare_trees(
    src_root: bytes, dst_root: bytes
) -> tuple[list[Difference], dict[bytes, Entry], dict[bytes, Entry]]:
    """Compare two trees; return the differences sorted by path and both scans.

    Raises:
        OSError: A tree or a file in it cannot be read.
    """
    src_entries = scan_tree(src_root)
    dst_entries = scan_tree(dst_root)
    differences = []
    for rel in sorted(src_entries.keys() | dst_entries.keys()):
        src = src_entries.get(rel)
        dst = dst_entries.get(rel)
        if src is not None and dst is not None:
            differences.extend(compare_entries(src_root, dst_root, rel, src, dst))
        elif src is not None:
            differences.append(Difference("missing", rel, f"{src.kind} missing in destination"))
        elif dst is not None:
            differences.append(Difference("extra", rel, f"{dst.kind} not in source"))
    return differences, src_entries, dst_entries


def display(path: bytes) -> str:
    """Return ``path`` as printable text, escaping bytes that are not UTF-8."""
    return path.decode("utf-8", "backslashreplace")


def count_kinds(entries: dict[bytes, Entry]) -> str:
    files = sum(1 for entry in entries.values() if entry.kind == "file")
    directories = sum(1 for entry in entries.values() if entry.kind == "directory")
    symlinks = sum(1 for entry in entries.values() if entry.kind == "symlink")
    size = sum(entry.size for entry in entries.values() if entry.kind == "file")
    return (
        f"{len(entries)} entries ({files} files, {directories} directories, "
        f"{symlinks} symlinks, {size} file bytes)"
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare two directory trees: paths, types, contents, modes, "
        "mtimes and symlink targets."
    )
    parser.add_argument("src", help="source tree")
    parser.add_argument("dst", help="destination tree")
    parser.add_argument(
        "--max-differences",
        type=int,
        default=50,
        metavar="N",
        help="print at most N differences (default: 50); all are counted",
    )
    args = parser.parse_args(argv)
    src_root = os.fsencode(args.src)
    dst_root = os.fsencode(args.dst)

    try:
        differences, src_entries, dst_entries = compare_trees(src_root, dst_root)
    except OSError as err:
        print(f"verify_tree: {err}", file=sys.stderr)
        return 2

    for difference in differences[: args.max_differences]:
        print(f"{difference.kind}: {display(difference.path)}: {difference.detail}")
    if len(differences) > args.max_differences:
        print(f"... and {len(differences) - args.max_differences} more differences")

    if differences:
        by_kind: dict[str, int] = {}
        for difference in differences:
            by_kind[difference.kind] = by_kind.get(difference.kind, 0) + 1
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items()))
        print(
            f"DIFFERENT: {len(differences)} differences ({kinds}); "
            f"source {len(src_entries)} entries, destination {len(dst_entries)} entries"
        )
        return 1
    print(f"IDENTICAL: {count_kinds(src_entries)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
