#!/usr/bin/env python3
"""Collect the machine's description and write the tables of scripts/bench.sh.

Subcommands:
  meta --out FILE --blit PATH --repo DIR [KEY=VALUE...]
      write a JSON description of the machine, the tool versions and the git
      commit, plus the given KEY=VALUE pairs
  report --runs-file FILE --meta FILE --out PREFIX [--fixture-files WORKLOAD=COUNT...]
         [--legend TEXT...] [--note TEXT...]
      read the runs that bench.sh recorded, write PREFIX.md, PREFIX.csv and
      PREFIX-runs.csv, and print the Markdown on stdout

The runs file is tab-separated, one timed run per line:
  FILESYSTEM WORKLOAD CASE TOOL ROLE RUN SECONDS BYTES CLIENT_KIB DAEMON_KIB
In each filesystem, workload and case, the median of the tool with ROLE
"subject" is compared with that of each tool with ROLE "other". ROLE "info"
marks a row without a comparison. BYTES is 0
where a rate means nothing (no-op runs, start-up). CLIENT_KIB is the peak RSS
of the timed command from GNU time's %M, DAEMON_KIB the VmHWM of a blitd
started for that run; either is empty when not measured.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

MIB = 1 << 20

@dataclass
class Group:
    """All runs of one tool in one filesystem, workload and case."""

    filesystem: str
    workload: str
    case: str
    tool: str
    role: str
    seconds: list[float] = field(default_factory=list)
    bytes: int = 0
    client_kib: list[int] = field(default_factory=list)
    daemon_kib: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.filesystem, self.workload, self.case


def first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> str:
    with open("/proc/meminfo", encoding="utf-8") as file:
        for line in file:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / MIB:.1f} GiB"
    return "unknown"


def git_commit(repo: str) -> str:
    commit = first_line(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"])
    status = subprocess.run(
        ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    )
    changed = len(status.stdout.splitlines())
    if changed:
        return f"{commit} with {changed} changed tracked files"
    return commit


def load_average() -> list[str]:
    with open("/proc/loadavg", encoding="ascii") as file:
        return file.read().split()[:3]


def command_meta(args: argparse.Namespace) -> int:
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": memory_total(),
        "blit": first_line([args.blit, "--version"]),
        "rsync": first_line(["rsync", "--version"]),
        "cp": first_line(["cp", "--version"]),
        "iperf3": first_line(["iperf3", "--version"]),
        "git commit": git_commit(args.repo),
        "load average at the end": " ".join(load_average()),
    }
    for pair in args.pairs:
        key, _, value = pair.partition("=")
        meta[key] = value
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(meta, file, indent=1)
    return 0


def read_groups(path: str) -> list[Group]:
    groups: dict[tuple[str, str, str, str], Group] = {}
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.reader(file, delimiter="\t"):
            filesystem, workload, case, tool, role, _run, seconds, size, client, daemon = row
            key = (filesystem, workload, case, tool)
            group = groups.setdefault(key, Group(filesystem, workload, case, tool, role))
            group.seconds.append(float(seconds))
            group.bytes = int(size)
            if client:
                group.client_kib.append(int(client))
            if daemon:
                group.daemon_kib.append(int(daemon))
    return list(groups.values())


def subject_of(groups: list[Group]) -> dict[tuple[str, str, str], Group]:
    return {group.key: group for group in groups if group.role == "subject"}


def ratio_of(group: Group, subjects: dict[tuple[str, str, str], Group]) -> tuple[str, float | None]:
    """Return the label and value of the ratio subject median / GROUP's median."""
    subject = subjects.get(group.key)
    if group.role != "other" or subject is None or group.median == 0:
        return "", None
    return f"{subject.tool}/{group.tool}", subject.median / group.median


def rate_mib(group: Group) -> float | None:
    if group.bytes == 0 or group.median == 0:
        return None
    return group.bytes / MIB / group.median


def median_mib(samples_kib: list[int]) -> float | None:
    return statistics.median(samples_kib) / 1024 if samples_kib else None


def format_number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def format_seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def result_rows(groups: list[Group]) -> list[list[str]]:
    subjects = subject_of(groups)
    rows = []
    for group in groups:
        label, ratio = ratio_of(group, subjects)
        rows.append(
            [
                group.filesystem,
                group.workload,
                group.case,
                group.tool,
                str(len(group.seconds)),
                format_seconds(group.median),
                f"{format_seconds(min(group.seconds))}-{format_seconds(max(group.seconds))}",
                format_number(rate_mib(group), 1),
                f"{label} {ratio:.2f}" if ratio is not None else "",
                format_number(median_mib(group.client_kib), 1),
                format_number(median_mib(group.daemon_kib), 1),
            ]
        )
    return rows


def per_entry_rows(groups: list[Group], extra_files: int) -> list[list[str]]:
    """Rows of peak RSS growth per entry between the small and wide pushes."""
    by_key = {(g.filesystem, g.workload, g.case, g.tool): g for g in groups}
    rows = []
    for group in groups:
        if group.case != "push" or group.workload != "wide":
            continue
        small = by_key.get((group.filesystem, "small", "push", group.tool))
        if small is None:
            continue
        for process, wide_kib, small_kib in (
            ("client", group.client_kib, small.client_kib),
            ("blitd", group.daemon_kib, small.daemon_kib),
        ):
            if not wide_kib or not small_kib:
                continue
            growth = (statistics.median(wide_kib) - statistics.median(small_kib)) * 1024
            rows.append(
                [
                    group.filesystem,
                    group.tool,
                    process,
                    f"{statistics.median(small_kib) / 1024:.1f}",
                    f"{statistics.median(wide_kib) / 1024:.1f}",
                    f"{growth / extra_files:.0f}",
                ]
            )
    return rows


RESULTS_INTRO = (
    "Wall-clock seconds: the median of the runs, and the fastest and slowest run. "
    "MiB/s is the workload's file bytes over the median. The ratio is the median "
    "of the case's subject (blit, or blit-grpc) over the row's median, so below 1 "
    "means blit was faster. Peak RSS is the median over the runs. Client is the "
    "timed command (GNU time %M, the largest process of its tree), and blitd is "
    "the daemon's VmHWM, from a blitd started for each run."
)


def results_section(groups: list[Group], legend: list[str]) -> list[str]:
    lines = ["## Results", "", RESULTS_INTRO, ""]
    header = [
        "filesystem",
        "workload",
        "case",
        "tool",
        "runs",
        "median s",
        "range s",
        "MiB/s",
        "ratio",
        "client peak RSS MiB",
        "blitd peak RSS MiB",
    ]
    lines += markdown_table(header, result_rows(groups))
    if legend:
        lines += ["", "Cases and the commands of each tool:", ""]
        lines += [f"- {line}" for line in legend]
    return lines


def per_entry_section(groups: list[Group], fixture_files: dict[str, int]) -> list[str]:
    extra_files = fixture_files.get("wide", 0) - fixture_files.get("small", 0)
    entry_rows = per_entry_rows(groups, extra_files) if extra_files > 0 else []
    if not entry_rows:
        return []
    lines = ["## Memory per entry", ""]
    lines.append(
        "Peak RSS growth from the small push to the wide push, divided by the "
        f"{extra_files} more files of wide."
    )
    lines.append("")
    lines += markdown_table(
        ["filesystem", "tool", "process", "small MiB", "wide MiB", "bytes per entry"],
        entry_rows,
    )
    return lines


def write_markdown(
    path: str,
    meta: dict,
    groups: list[Group],
    fixture_files: dict[str, int],
    legend: list[str],
    notes: list[str],
) -> str:
    lines = [f"# blit benchmark, {meta.get('date', '')}", ""]
    lines += markdown_table(["", ""], [[key, str(value)] for key, value in meta.items()])
    lines += [""] + results_section(groups, legend)
    entry_lines = per_entry_section(groups, fixture_files)
    if entry_lines:
        lines += [""] + entry_lines
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in notes]
    text = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return text


def write_csv(path: str, groups: list[Group]) -> None:
    subjects = subject_of(groups)
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "filesystem",
                "workload",
                "case",
                "tool",
                "runs",
                "median_s",
                "min_s",
                "max_s",
                "bytes",
                "mib_per_s",
                "ratio_label",
                "ratio",
                "client_peak_rss_mib",
                "blitd_peak_rss_mib",
            ]
        )
        for group in groups:
            label, ratio = ratio_of(group, subjects)
            writer.writerow(
                [
                    group.filesystem,
                    group.workload,
                    group.case,
                    group.tool,
                    len(group.seconds),
                    f"{group.median:.6f}",
                    f"{min(group.seconds):.6f}",
                    f"{max(group.seconds):.6f}",
                    group.bytes,
                    format_number(rate_mib(group), 3),
                    label,
                    format_number(ratio, 4),
                    format_number(median_mib(group.client_kib), 2),
                    format_number(median_mib(group.daemon_kib), 2),
                ]
            )


def write_runs_csv(source: str, path: str) -> None:
    with open(source, encoding="utf-8", newline="") as tsv, open(
        path, "w", encoding="utf-8", newline=""
    ) as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "filesystem",
                "workload",
                "case",
                "tool",
                "role",
                "run",
                "seconds",
                "bytes",
                "client_peak_rss_kib",
                "blitd_peak_rss_kib",
            ]
        )
        writer.writerows(csv.reader(tsv, delimiter="\t"))


def command_report(args: argparse.Namespace) -> int:
    with open(args.meta, encoding="utf-8") as file:
        meta = json.load(file)
    groups = read_groups(args.runs_file)
    if not groups:
        print(f"{args.runs_file} contains no runs; nothing to report", file=sys.stderr)
        return 1
    fixture_files = {}
    for pair in args.fixture_files:
        workload, _, count = pair.partition("=")
        fixture_files[workload] = int(count)
    text = write_markdown(args.out + ".md", meta, groups, fixture_files, args.legend, args.note)
    write_csv(args.out + ".csv", groups)
    write_runs_csv(args.runs_file, args.out + "-runs.csv")
    print(text, end="")
    return 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    meta = commands.add_parser("meta", help="describe the machine and the tools")
    meta.add_argument("--out", required=True)
    meta.add_argument("--blit", required=True, help="path of the blit command")
    meta.add_argument("--repo", required=True, help="git repository of blit")
    meta.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    meta.set_defaults(handler=command_meta)

    report = commands.add_parser("report", help="write the tables")
    report.add_argument("--runs-file", required=True)
    report.add_argument("--meta", required=True)
    report.add_argument("--out", required=True, help="path prefix of the output files")
    report.add_argument(
        "--fixture-files",
        action="append",
        default=[],
        metavar="WORKLOAD=COUNT",
        help="file count of a fixture, for the memory per entry",
    )
    report.add_argument("--legend", action="append", default=[], help="line for the legend")
    report.add_argument("--note", action="append", default=[], help="line for the notes")
    report.set_defaults(handler=command_report)
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
