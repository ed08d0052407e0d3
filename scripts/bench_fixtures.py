#!/usr/bin/env python3
"""Build, check and read the source trees of scripts/bench.sh.

Subcommands:
  build SRC_ROOT TRASH --scale S WORKLOAD...
                                    build missing or incomplete fixtures as
                                    SRC_ROOT/WORKLOAD, reuse complete ones,
                                    and print "WORKLOAD FILES DIRS BYTES STATE"
  verify SRC DST                    compare two trees by paths, types, sizes
                                    and file contents; exit 1 when they differ
  warm PATH...                      read every file under each PATH once, so
                                    that its pages are in the page cache

Every fixture's content comes from random.Random seeded with the workload
name and the generator version, so it is the same on every machine and run,
and it is incompressible, so compression or zero-block detection cannot make
a tool look faster. A fixture is complete when SRC_ROOT/.stamps/WORKLOAD.json
exists, its parameters match the requested ones, and the tree still has the
file count and byte total that the stamp records.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import stat
import sys
import time
from dataclasses import asdict, dataclass
from typing import Iterator

GENERATOR_VERSION = 1
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
WRITE_CHUNK_BYTES = 8 * MIB
READ_CHUNK_BYTES = 1 * MIB
WORKLOADS = ("large", "small", "mixed", "wide")


@dataclass(frozen=True)
class FileGroup:
    """Files of one size range, spread round-robin over numbered directories."""

    prefix: str
    count: int
    directories: int
    min_size: int
    max_size: int


def scaled(value: int, scale: float) -> int:
    """Scale a count or size, keeping it at least 1."""
    return max(1, round(value * scale))


def workload_groups(workload: str, scale: float) -> list[FileGroup]:
    """Return the file groups of WORKLOAD at SCALE (1.0 is the full size)."""
    if workload == "large":
        size = scaled(GIB, scale)
        return [FileGroup("large", 1, 0, size, size)]
    if workload == "small":
        return [FileGroup("small", scaled(20_000, scale), scaled(200, scale), 1 * KIB, 16 * KIB)]
    if workload == "mixed":
        big = scaled(100 * MIB, scale)
        return [
            FileGroup("big", 3, 1, big, big),
            FileGroup("medium", scaled(2_000, scale), scaled(20, scale), 64 * KIB, MIB),
            FileGroup("small", scaled(5_000, scale), scaled(50, scale), 1 * KIB, 16 * KIB),
        ]
    if workload == "wide":
        # Sizes 0 to 64 bytes, so about one file in 65 is empty.
        return [FileGroup("wide", scaled(100_000, scale), scaled(1_000, scale), 0, 64)]
    raise ValueError(f"unknown workload {workload!r}; expected one of {', '.join(WORKLOADS)}")


def file_paths(group: FileGroup) -> Iterator[str]:
    """Yield the relative path of each file of GROUP, in creation order."""
    if group.directories == 0:
        yield f"{group.prefix}.bin"
        return
    for index in range(group.count):
        directory = f"{group.prefix}/d{index % group.directories:04d}"
        yield f"{directory}/f{index:06d}.bin"


def write_random_file(path: str, size: int, generator: random.Random) -> None:
    with open(path, "wb") as file:
        remaining = size
        while remaining > 0:
            chunk = min(remaining, WRITE_CHUNK_BYTES)
            file.write(generator.randbytes(chunk))
            remaining -= chunk


def generate_tree(root: str, workload: str, groups: list[FileGroup]) -> None:
    generator = random.Random(f"blit-bench-v{GENERATOR_VERSION}:{workload}")
    os.makedirs(root)
    created_dirs = {root}
    for group in groups:
        for relative in file_paths(group):
            path = os.path.join(root, relative)
            directory = os.path.dirname(path)
            if directory not in created_dirs:
                os.makedirs(directory, exist_ok=True)
                created_dirs.add(directory)
            size = generator.randint(group.min_size, group.max_size)
            write_random_file(path, size, generator)


@dataclass(frozen=True)
class TreeStats:
    """Counts of a tree below its root; bytes is the total size of its files."""

    files: int
    dirs: int
    bytes: int


def tree_stats(root: str) -> TreeStats:
    files = dirs = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        for name in filenames:
            info = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(info.st_mode):
                files += 1
                size += info.st_size
    return TreeStats(files, dirs, size)


def stamp_matches(stamp_path: str, parameters: dict, tree: str) -> TreeStats | None:
    """Return the stamped stats when the stamp and the tree match PARAMETERS."""
    try:
        with open(stamp_path, encoding="utf-8") as file:
            stamp = json.load(file)
    except (OSError, ValueError):
        return None
    if stamp.get("parameters") != parameters or not os.path.isdir(tree):
        return None
    stamped = TreeStats(**stamp["stats"])
    return stamped if tree_stats(tree) == stamped else None


def build_workload(
    src_root: str, trash: str, workload: str, scale: float
) -> tuple[TreeStats, str]:
    """Build or reuse one fixture; return its stats and "reused" or "built"."""
    groups = workload_groups(workload, scale)
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "scale": scale,
        "groups": [asdict(group) for group in groups],
    }
    tree = os.path.join(src_root, workload)
    stamp_path = os.path.join(src_root, ".stamps", f"{workload}.json")
    stats = stamp_matches(stamp_path, parameters, tree)
    if stats is not None:
        return stats, "reused"

    # An old or partial tree is moved into the trash, not deleted: see the
    # note on deletes in bench.sh.
    if os.path.lexists(stamp_path):
        os.unlink(stamp_path)
    os.makedirs(trash, exist_ok=True)
    partial = tree + ".partial"
    for old in (tree, partial):
        if os.path.lexists(old):
            aside = os.path.join(trash, f"fixture-{os.path.basename(old)}-{time.time_ns()}")
            os.rename(old, aside)

    started = time.monotonic()
    generate_tree(partial, workload, groups)
    os.rename(partial, tree)
    stats = tree_stats(tree)
    os.makedirs(os.path.dirname(stamp_path), exist_ok=True)
    with open(stamp_path + ".tmp", "w", encoding="utf-8") as file:
        json.dump({"parameters": parameters, "stats": asdict(stats)}, file, indent=1)
    os.rename(stamp_path + ".tmp", stamp_path)
    return stats, f"built in {time.monotonic() - started:.1f} s"


def command_build(args: argparse.Namespace) -> int:
    for workload in args.workloads:
        stats, state = build_workload(args.src_root, args.trash, workload, args.scale)
        print(workload, stats.files, stats.dirs, stats.bytes, state, flush=True)
    return 0


def walk_entries(root: str) -> dict[str, tuple[str, int]]:
    """Map each relative path below ROOT to its type and, for files, size."""
    entries: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                kind, size = "file", info.st_size
            elif stat.S_ISDIR(info.st_mode):
                kind, size = "directory", 0
            elif stat.S_ISLNK(info.st_mode):
                kind, size = "symlink", 0
            else:
                kind, size = "other", 0
            entries[os.path.relpath(path, root)] = (kind, size)
    return entries


def same_content(first: str, second: str) -> bool:
    with open(first, "rb") as a, open(second, "rb") as b:
        while True:
            chunk = a.read(READ_CHUNK_BYTES)
            if chunk != b.read(READ_CHUNK_BYTES):
                return False
            if not chunk:
                return True


def command_verify(args: argparse.Namespace) -> int:
    source = walk_entries(args.src)
    destination = walk_entries(args.dst)
    problems = []
    problems += [f"missing: {path}" for path in sorted(source.keys() - destination.keys())]
    problems += [f"extra: {path}" for path in sorted(destination.keys() - source.keys())]
    for path in sorted(source.keys() & destination.keys()):
        if source[path] != destination[path]:
            problems.append(f"type or size: {path}: {source[path]} != {destination[path]}")
        elif source[path][0] == "file":
            if not same_content(os.path.join(args.src, path), os.path.join(args.dst, path)):
                problems.append(f"content: {path}")
    if problems:
        for problem in problems[:20]:
            print(f"    {problem}", file=sys.stderr)
        print(f"{args.dst} differs from {args.src} in {len(problems)} entries", file=sys.stderr)
        return 1
    files = sum(1 for kind, _ in source.values() if kind == "file")
    size = sum(size for _, size in source.values())
    print(f"identical: {len(source)} entries, {files} files, {size} bytes")
    return 0


def command_warm(args: argparse.Namespace) -> int:
    buffer = bytearray(READ_CHUNK_BYTES)
    total = 0
    for root in args.paths:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                with open(os.path.join(dirpath, name), "rb", buffering=0) as file:
                    while True:
                        count = file.readinto(buffer)
                        if not count:
                            break
                        total += count
    print(total)
    return 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build or reuse fixtures")
    build.add_argument("src_root", help="directory of the fixtures")
    build.add_argument("trash", help="directory to move old fixtures into")
    build.add_argument("--scale", type=float, default=1.0, help="size factor, 1.0 = full size")
    build.add_argument("workloads", nargs="+", choices=WORKLOADS)
    build.set_defaults(handler=command_build)

    verify = commands.add_parser("verify", help="compare two trees")
    verify.add_argument("src")
    verify.add_argument("dst")
    verify.set_defaults(handler=command_verify)

    warm = commands.add_parser("warm", help="read every file of the trees")
    warm.add_argument("paths", nargs="+")
    warm.set_defaults(handler=command_warm)
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
