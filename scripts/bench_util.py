#!/usr/bin/env python3
"""Small helpers of scripts/bench.sh: ports, server configs and start-up probes.

Subcommands:
  free-ports N                     print N distinct free TCP ports on 127.0.0.1
  wait-listen PORT SECONDS         wait until a socket listens on 127.0.0.1:PORT,
                                   without connecting to it
  blitd-config PATH CONTROL DATA MODULE_DIR TOKEN_STORE
                                   write a blitd config with module "bench"
  rsyncd-config PATH MODULE_DIR USER GROUP LOG
                                   write an rsync daemon config with module "bench"
  importtime PYTHON MODULE RUNS    print the median cumulative import time of
                                   MODULE in microseconds, from -X importtime
  iperf-result JSON_FILE           print "SECONDS BYTES" that the receiver of an
                                   'iperf3 -J' client run counted
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

TCP_LISTEN_STATE = "0A"


def free_ports(count: int) -> list[int]:
    # All sockets stay bound until every port is known, so the ports differ.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def is_listening(port: int) -> bool:
    """Return whether /proc/net/tcp has a listening socket on 127.0.0.1:PORT."""
    # /proc/net/tcp writes the local address as little-endian hex: 0100007F
    # is 127.0.0.1. A probe connection would use up 'iperf3 -s -1'.
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1] == wanted and fields[3] == TCP_LISTEN_STATE:
                return True
    return False


def wait_listen(port: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while not is_listening(port):
        if time.monotonic() > deadline:
            print(f"nothing listens on 127.0.0.1:{port} after {seconds:g} s", file=sys.stderr)
            return 1
        time.sleep(0.02)
    return 0


def toml_string(value: str) -> str:
    # A JSON string without ASCII escaping is also a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def write_blitd_config(path: str, control: str, data: str, module_dir: str, store: str) -> int:
    with open(path, "w", encoding="utf-8") as file:
        file.write(
            "[daemon]\n"
            f'listen_addr = "127.0.0.1:{int(control)}"\n'
            f"data_port = {int(data)}\n"
            'auth = "token"\n'
            f"token_file = {toml_string(store)}\n"
            "\n"
            "[[modules]]\n"
            'name = "bench"\n'
            f"path = {toml_string(module_dir)}\n"
        )
    return 0


def write_rsyncd_config(path: str, module_dir: str, user: str, group: str, log: str) -> int:
    # As root, the daemon would switch to nobody without uid and gid, and
    # could not write into the module.
    with open(path, "w", encoding="utf-8") as file:
        file.write(
            "address = 127.0.0.1\n"
            "use chroot = no\n"
            f"uid = {user}\n"
            f"gid = {group}\n"
            f"log file = {log}\n"
            "\n"
            "[bench]\n"
            f"path = {module_dir}\n"
            "read only = no\n"
        )
    return 0


def import_time_us(python: str, module: str, runs: int) -> int:
    """Return the median cumulative import time of MODULE in microseconds."""
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        # Lines read "import time: SELF | CUMULATIVE | NAME", with NAME
        # indented by nesting depth; the top-level import is unindented.
        for line in result.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].rstrip() == f" {module}":
                samples.append(int(parts[1]))
    if len(samples) != runs:
        raise SystemExit(f"-X importtime printed no line for {module} in {runs - len(samples)} runs")
    return round(statistics.median(samples))


def iperf_result(path: str) -> tuple[float, int]:
    with open(path, encoding="utf-8") as file:
        result = json.load(file)
    if "error" in result:
        raise SystemExit(f"iperf3 reported an error: {result['error']}")
    received = result["end"]["sum_received"]
    return float(received["seconds"]), int(received["bytes"])


def main(argv: list[str]) -> int:
    usage = __doc__ or ""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command == "free-ports" and len(args) == 1:
        print(*free_ports(int(args[0])))
    elif command == "wait-listen" and len(args) == 2:
        return wait_listen(int(args[0]), float(args[1]))
    elif command == "blitd-config" and len(args) == 5:
        return write_blitd_config(*args)
    elif command == "rsyncd-config" and len(args) == 5:
        return write_rsyncd_config(*args)
    elif command == "importtime" and len(args) == 3:
        print(import_time_us(args[0], args[1], int(args[2])))
    elif command == "iperf-result" and len(args) == 1:
        print(*iperf_result(args[0]))
    else:
        print(f"invalid arguments: {' '.join(argv)}\n\n{usage}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
