#!/usr/bin/env bash
# Compare blit with cp, rsync and an rsync daemon on this machine: local
# copies, a local no-op mirror, push and pull over loopback, the gRPC data
# fallback, fsync, start-up time and peak memory. Run with --help for the
# options and what each case runs.
#
# It sets up .venv and the release wheel as scripts/setup.sh does and
# installs rsync, iperf3 and GNU time if missing. It builds deterministic
# fixtures once per filesystem and reuses them while their stamp matches.
# Each case runs the tools interleaved in each repeat (A B A B), checks every
# command's exit status and compares the first result of each transfer with
# its source. The results go into a Markdown table and CSV files. It is a
# benchmark, not a test: it sets no time limits, and scripts/test.sh does not
# run it.
#
# Conditions of every timed run:
#   - warm cache: the source tree is read once, untimed, just before the run;
#   - 'sync -f' on the filesystem under test first, so that the writeback of
#     the previous run does not land in this one;
#   - a new destination directory for each transfer, except in the no-op
#     cases, whose destination is brought in sync once, untimed;
#   - a newly started blitd for each blit run against the daemon, so that its
#     VmHWM (lifetime peak RSS) is the peak of that run alone.
# Destinations are not deleted between the repeats of a group on a disk
# filesystem, so that a mass delete does not fall between the runs that are
# compared. On a mount with the discard option each unlink waits for the
# discard of the freed blocks (24 GiB took about 8 minutes on the test VM), and
# file creation on ext4 without a journal is reported to slow down after a
# mass delete (not measured here). Destinations are moved into
# BENCH_DIR/trash instead, which is emptied at the end (kept with --keep).
# When the trash would outgrow BLIT_BENCH_TRASH_MAX_GIB (default 24) or the
# free space, it is emptied between two groups, and the report notes each
# emptying and its duration. On tmpfs each destination is deleted right
# after its run, so /dev/shm holds only the fixtures and one destination.
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"

ALL_CASES="copy,mirror,push,pull,grpc,fsync,startup,iperf"
ALL_WORKLOADS="large,small,mixed,noop,wide"
GIB=$((1 << 30))

usage() {
    cat <<EOF
Usage: scripts/bench.sh [--dir DIR] [--shm-dir DIR] [--fs tmp|shm|both] [--runs N]
                        [--cases LIST] [--workloads LIST] [--out PREFIX]
                        [--quick] [--keep] [--no-build]

Benchmark blit against cp, rsync and an rsync daemon over loopback, and write
PREFIX.md (the tables, also printed at the end), PREFIX.csv (one row per tool
and case) and PREFIX-runs.csv (every timed run).

Options:
  --dir DIR         bench directory on disk, the "tmp" filesystem
                    (default: /tmp/blit-bench)
  --shm-dir DIR     bench directory on tmpfs, the "shm" filesystem
                    (default: /dev/shm/blit-bench)
  --fs tmp|shm|both filesystems to run on (default: both)
  --runs N          timed runs per tool and case, at least 3; the table shows
                    the median (default: 3)
  --cases LIST      comma-separated cases (default: all):
                      copy     blit copy vs cp -a vs rsync -a (large, small, mixed)
                      mirror   blit mirror vs rsync -a --delete, destination
                               already in sync (noop)
                      push     blit push to blitd vs rsync -a to an rsync daemon,
                               with and without --whole-file (large, small, mixed,
                               noop, wide), with peak RSS of client and blitd
                      pull     the same in the other direction (large, small,
                               mixed, noop)
                      grpc     blit push --force-grpc-data vs blit push (large, small)
                      fsync    blit copy --fsync vs rsync -a --fsync (small)
                      startup  blit --version vs rsync --version, and the import
                               time of the blit module
                      iperf    iperf3 over loopback, the TCP throughput ceiling
  --workloads LIST  comma-separated workloads (default: all):
                      large  one 1 GiB file
                      small  20,000 files of 1-16 KiB in 200 directories
                      mixed  three 100 MiB files, 2,000 files of 64 KiB-1 MiB
                             and 5,000 files of 1-16 KiB
                      noop   a re-sync of the small tree with nothing changed
                      wide   100,000 files of 0-64 bytes in 1,000 directories,
                             for the memory per entry (push only)
  --out PREFIX      output path prefix
                    (default: bench-results/bench-YYYYmmdd-HHMMSS in the repository)
  --quick           scale the fixtures to 2% (unless BLIT_BENCH_SCALE is set),
                    run iperf3 for 1 s and start-up 5 times, to check the script
  --keep            keep the trash of moved-aside destinations at the end
  --no-build        use the blit already installed in .venv instead of building
                    and installing the release wheel
  -h, --help        show this help and exit

Environment:
  BLIT_BENCH_SCALE          size factor of the fixtures' file sizes and counts
                            (default: 1, the sizes above)
  BLIT_BENCH_TRASH_MAX_GIB  GiB of moved-aside destinations on disk before the
                            trash is emptied between two groups of runs (default: 24)

Servers listen on 127.0.0.1 only, on free ports, and are stopped at exit.
EOF
}

tmp_dir=/tmp/blit-bench
shm_dir=/dev/shm/blit-bench
fs_choice=both
runs=3
cases=$ALL_CASES
workloads=$ALL_WORKLOADS
out_prefix=
quick=0
keep=0
build=1

while [ $# -gt 0 ]; do
    option=$1
    case "$option" in
    -h | --help)
        usage
        exit 0
        ;;
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --dir | --shm-dir | --fs | --runs | --cases | --workloads | --out)
        [ $# -ge 2 ] || die "$option needs a value; see --help"
        case "$option" in
        --dir) tmp_dir=$2 ;;
        --shm-dir) shm_dir=$2 ;;
        --fs) fs_choice=$2 ;;
        --runs) runs=$2 ;;
        --cases) cases=$2 ;;
        --workloads) workloads=$2 ;;
        --out) out_prefix=$2 ;;
        esac
        shift
        ;;
    *) die "unknown argument '$option'; see --help" ;;
    esac
    shift
done

# Print the items of the comma-separated list $1, one per line, after
# checking each against the comma-separated list $2 of valid items.
split_list() {
    local item
    local -a items
    IFS=, read -r -a items <<<"$1"
    [ ${#items[@]} -gt 0 ] || die "empty list; expected items of $2"
    for item in "${items[@]}"; do
        [[ ",$2," == *",$item,"* ]] || die "unknown item '$item'; expected items of $2"
        echo "$item"
    done
}

case "$fs_choice" in
tmp) filesystems=(tmp) ;;
shm) filesystems=(shm) ;;
both) filesystems=(tmp shm) ;;
*) die "--fs must be tmp, shm or both, not '$fs_choice'" ;;
esac
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 3 ] || die "--runs must be an integer of at least 3, not '$runs'"
# split_list runs in a subshell, where die ends only the subshell.
case_text=$(split_list "$cases" "$ALL_CASES") || exit 1
workload_text=$(split_list "$workloads" "$ALL_WORKLOADS") || exit 1
mapfile -t case_list <<<"$case_text"
mapfile -t workload_list <<<"$workload_text"

if [ "$quick" -eq 1 ]; then
    scale=${BLIT_BENCH_SCALE:-0.02}
    iperf_seconds=1
    startup_runs=5
else
    scale=${BLIT_BENCH_SCALE:-1}
    iperf_seconds=5
    startup_runs=20
fi
[[ "$scale" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v s="$scale" 'BEGIN { exit !(s > 0) }' ||
    die "BLIT_BENCH_SCALE must be a positive number, not '$scale'"
scale=$(awk -v s="$scale" 'BEGIN { print s + 0 }')
trash_max_gib=${BLIT_BENCH_TRASH_MAX_GIB:-24}
[[ "$trash_max_gib" =~ ^[0-9]+$ ]] ||
    die "BLIT_BENCH_TRASH_MAX_GIB must be a whole number of GiB, not '$trash_max_gib'"
trash_max_bytes=$((trash_max_gib * GIB))
# Free space that the runs leave on each filesystem, on top of their estimate.
reserve_bytes=$((2 * GIB))

has_case() { [[ " ${case_list[*]} " == *" $1 "* ]]; }
has_workload() { [[ " ${workload_list[*]} " == *" $1 "* ]]; }

if [ -z "$out_prefix" ]; then
    out_prefix="$REPO_ROOT/bench-results/bench-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$(dirname "$out_prefix")"

fs_dir() {
    case "$1" in
    tmp) echo "$tmp_dir" ;;
    shm) echo "$shm_dir" ;;
    esac
}

# Lock each bench directory until the script exits, so that a second run
# cannot move this run's destinations aside or delete its trash.
lock_bench_dirs() {
    local fs dir fd
    for fs in "${filesystems[@]}"; do
        dir=$(fs_dir "$fs")
        mkdir -p "$dir"
        exec {fd}>"$dir/.lock"
        flock -n "$fd" ||
            die "another scripts/bench.sh uses $dir; wait for it to finish, or pass another --dir or --shm-dir"
    done
}

ensure_commands flock:util-linux
lock_bench_dirs

# ---------------------------------------------------------------- set-up

if [ "$build" -eq 1 ]; then
    ensure_build_tools
    ensure_venv "maturin>=1.7,<2"
    build_and_install_wheel
else
    [ -x "$VENV/bin/blit" ] || die "--no-build needs blit installed in $VENV; run without --no-build"
fi
# 'command -v time' finds bash's keyword, so GNU time is checked by path.
ensure_commands rsync:rsync iperf3:iperf3 /usr/bin/time:time findmnt:util-linux
blit="$VENV/bin/blit"
blitd="$VENV/bin/blitd"
[ -x "$blitd" ] || die "$blitd not found; the wheel installs it, so rerun without --no-build"
fixtures_py="$REPO_ROOT/scripts/bench_fixtures.py"
util_py="$REPO_ROOT/scripts/bench_util.py"
report_py="$REPO_ROOT/scripts/bench_report.py"

extension_hash() {
    local module
    module=$("$VENV_PYTHON" -c 'import blit._blit as m; print(m.__file__)')
    sha256sum "$module" | cut -d' ' -f1
}
extension_hash_at_start=$(extension_hash)
build_hash=$extension_hash_at_start
build_checked_at="the start"

# Other builds in the same checkout may install a new wheel into .venv
# during the run. So the extension module's hash is checked before each
# group of runs and at the end, and the report names each change. $1 names
# the point of the check.
check_build() {
    local current
    current=$(extension_hash)
    if [ "$current" != "$build_hash" ]; then
        notes+=("WARNING: another build installed a new blit extension module into $VENV between $build_checked_at and $1, so the blit rows before and after differ in build")
        build_hash=$current
    fi
    build_checked_at=$1
}

state_dir=$(mktemp -d "${TMPDIR:-/tmp}/blit-bench-state.XXXXXX")
runs_file="$state_dir/runs.tsv"
: >"$runs_file"
notes=()
legend=()
purges=0

blitd_pid=
rsyncd_pid=
iperf_pid=
finished=0

# Stop a server started by this script: $1 is the name of its PID variable.
stop_server() {
    local name=$1 pid=${!1}
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        printf -v "$name" '%s' ""
    fi
}

on_exit() {
    local status=$?
    stop_server blitd_pid
    stop_server rsyncd_pid
    stop_server iperf_pid
    if [ "$finished" -eq 0 ]; then
        printf '\nbench.sh stopped with status %s; logs and server configs are in %s\n' \
            "$status" "$state_dir" >&2
        printf 'moved-aside destinations are in %s; delete them when convenient\n' \
            "$(trash_dirs_text)" >&2
    fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

trash_dirs_text() {
    local fs text=
    for fs in "${filesystems[@]}"; do
        text+="${text:+ and }$(fs_dir "$fs")/trash"
    done
    echo "$text"
}

# Print the elapsed microseconds since the EPOCHREALTIME value $1.
elapsed_us() {
    local now=${EPOCHREALTIME//[.,]/} start=${1//[.,]/}
    echo $((10#$now - 10#$start))
}

seconds_of_us() {
    printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000))
}

# ---------------------------------------------------------------- servers

# Start blitd with new free ports on the current filesystem's module, and
# wait until both its ports listen. Stops a running one first.
start_blitd() {
    local ports
    stop_server blitd_pid
    ports=$("$VENV_PYTHON" "$util_py" free-ports 2)
    read -r blitd_port blitd_data_port <<<"$ports"
    "$VENV_PYTHON" "$util_py" blitd-config "$fs_state/blitd.toml" "$blitd_port" \
        "$blitd_data_port" "$module_dir" "$fs_state/tokens.toml"
    "$blitd" --config "$fs_state/blitd.toml" --log-level warn >>"$fs_state/blitd.log" 2>&1 &
    blitd_pid=$!
    if ! "$VENV_PYTHON" "$util_py" wait-listen "$blitd_port" 30 ||
        ! "$VENV_PYTHON" "$util_py" wait-listen "$blitd_data_port" 30; then
        tail -n 20 "$fs_state/blitd.log" >&2
        die "blitd did not start listening on 127.0.0.1:$blitd_port and :$blitd_data_port (log above: $fs_state/blitd.log)"
    fi
    blitd_url="blit://127.0.0.1:$blitd_port/bench"
}

# Create the token of the current filesystem's blitd, start blitd once and
# check that the token lists the module.
setup_blitd() {
    install -m 0600 /dev/null "$fs_state/token"
    : >"$fs_state/blitd.log"
    "$VENV_PYTHON" "$util_py" blitd-config "$fs_state/blitd.toml" 1 2 "$module_dir" \
        "$fs_state/tokens.toml"
    "$blitd" token create --config "$fs_state/blitd.toml" --name bench --modules bench \
        --permissions read,write,delete --expires 1d >"$fs_state/token" 2>"$fs_state/token.stderr" ||
        die "'blitd token create' failed: $(cat "$fs_state/token.stderr")"
    start_blitd
    "$blit" list --token-file "$fs_state/token" "$blitd_url" >/dev/null 2>"$fs_state/list.stderr" ||
        die "'blit list $blitd_url' failed: $(cat "$fs_state/list.stderr")"
}

start_rsyncd() {
    local port
    port=$("$VENV_PYTHON" "$util_py" free-ports 1)
    "$VENV_PYTHON" "$util_py" rsyncd-config "$fs_state/rsyncd.conf" "$module_dir" \
        "$(id -un)" "$(id -gn)" "$fs_state/rsyncd.log"
    rsync --daemon --no-detach --config="$fs_state/rsyncd.conf" --port="$port" \
        >>"$fs_state/rsyncd.stderr" 2>&1 &
    rsyncd_pid=$!
    if ! "$VENV_PYTHON" "$util_py" wait-listen "$port" 30; then
        cat "$fs_state/rsyncd.stderr" "$fs_state/rsyncd.log" >&2 || true
        die "the rsync daemon did not start listening on 127.0.0.1:$port"
    fi
    rsyncd_url="rsync://127.0.0.1:$port/bench"
}

# ---------------------------------------------------------------- disk space

empty_trash() {
    local reason=$1 mib=$((trash_bytes / (1 << 20))) started=$SECONDS
    step "Emptying $fs_root/trash ($mib MiB): $reason"
    rm -rf "$fs_root/trash"
    mkdir "$fs_root/trash"
    sync -f "$fs_root"
    echo "    took $((SECONDS - started)) s"
    trash_bytes=0
    purges=$((purges + 1))
    notes+=("$fs_label: $mib MiB of moved-aside destinations were deleted mid-run in $((SECONDS - started)) s ($reason)")
}

# Make room for a group of runs that writes $1 bytes in all on the current
# filesystem. $2 names the group in messages.
ensure_space() {
    local need=$1 group=$2 available
    available=$(df -B1 --output=avail "$fs_root" | tail -n 1)
    if [ "$fs_is_tmpfs" -eq 0 ] && [ "$trash_bytes" -gt 0 ]; then
        if [ $((trash_bytes + need)) -gt "$trash_max_bytes" ]; then
            empty_trash "over BLIT_BENCH_TRASH_MAX_GIB=$trash_max_gib, before $group"
        elif [ "$available" -lt $((need + reserve_bytes)) ]; then
            empty_trash "free space, before $group"
        fi
        available=$(df -B1 --output=avail "$fs_root" | tail -n 1)
    fi
    [ "$available" -ge $((need + reserve_bytes)) ] ||
        die "$group needs about $((need / (1 << 20))) MiB on $fs_root plus $((reserve_bytes / (1 << 20))) MiB spare, but only $((available / (1 << 20))) MiB are free"
}

# Estimate the bytes on disk of one copy of workload $1: its file bytes
# plus one 4 KiB block per file for the last partial block and the inode.
footprint() {
    echo $((fixture_bytes[$1] + 4096 * fixture_files[$1]))
}

# ---------------------------------------------------------------- runs

# The planning functions set these for one run:
#   run_src     local source tree, warmed before and compared after the run
#   run_dst     local path of the destination
#   run_cmd     the timed command
#   run_daemon  1 when the command talks to the blitd started for it
#   run_bytes   bytes for the MiB/s column, 0 when a rate means nothing
#   run_fresh   1 when run_dst is new for this run, 0 for a no-op destination

# Run run_cmd once, timed, and append the result to the runs file.
# $1 to $6: filesystem, workload, case, tool, role, run number.
timed_run() {
    local fs=$1 workload=$2 case_name=$3 tool=$4 role=$5 run=$6
    local log="$state_dir/last-command.log" rss="$state_dir/last-command.rss"
    local started us status=0 client_kib daemon_kib=

    sync -f "$fs_root"
    "$VENV_PYTHON" "$fixtures_py" warm "$run_src" >/dev/null
    started=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$rss" "${run_cmd[@]}" >"$log" 2>&1 || status=$?
    us=$(elapsed_us "$started")
    if [ "$status" -ne 0 ]; then
        tail -n 20 "$log" >&2
        die "$case_name $workload $tool run $run on $fs failed with exit status $status (output above): $(printf '%q ' "${run_cmd[@]}")"
    fi
    client_kib=$(tail -n 1 "$rss")
    if [ "$run_daemon" -eq 1 ]; then
        daemon_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$blitd_pid/status")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$workload" "$case_name" \
        "$tool" "$role" "$run" "$(seconds_of_us "$us")" "$run_bytes" "$client_kib" \
        "$daemon_kib" >>"$runs_file"
    printf '    %-7s %-6s %-22s run %d: %s s\n' "$case_name" "$workload" "$tool" "$run" \
        "$(seconds_of_us "$us")"
}

# Compare run_dst with run_src; $1 names the run for the error message.
verify_run() {
    local result
    result=$("$VENV_PYTHON" "$fixtures_py" verify "$run_src" "$run_dst") ||
        die "$1: $run_dst differs from $run_src (differences above)"
    printf '    verified %s: %s\n' "$1" "$result"
}

# Move a fresh destination out of the way: deleted on tmpfs, moved into the
# trash on disk.
dispose_run() {
    [ "$run_fresh" -eq 1 ] || return 0
    if [ "$fs_is_tmpfs" -eq 1 ]; then
        rm -rf "$run_dst"
    else
        mv -T "$run_dst" "$fs_root/trash/$(basename "$run_dst").$$"
        trash_bytes=$((trash_bytes + $(footprint "$run_workload")))
    fi
}

# Run one group: every tool of $@ (the first is the subject that the others
# are compared with) $runs times, interleaved, with planner $1 for case $2 on
# workload $3.
run_group() {
    local planner=$1 case_name=$2 workload=$3
    shift 3
    local tools=("$@") tool role run fresh_tools=0
    local fixture=$workload
    [ "$workload" = noop ] && fixture=small
    run_workload=$fixture
    check_build "the start of $fs_label $case_name $workload"

    # No-op destinations are brought in sync first, untimed, by the tool itself.
    if [ "$workload" = noop ]; then
        for tool in "${tools[@]}"; do
            "$planner" "$workload" "$tool" 0
            "${run_cmd[@]}" >"$state_dir/seed.log" 2>&1 ||
                die "bringing $run_dst in sync failed: $(printf '%q ' "${run_cmd[@]}") ($(tail -n 5 "$state_dir/seed.log"))"
            verify_run "$case_name $workload $tool, untimed sync"
        done
    else
        fresh_tools=${#tools[@]}
    fi
    if [ "$fs_is_tmpfs" -eq 1 ]; then
        ensure_space "$(footprint "$fixture")" "$case_name $workload"
    else
        ensure_space $(($(footprint "$fixture") * fresh_tools * runs)) "$case_name $workload"
    fi

    for ((run = 1; run <= runs; run++)); do
        for tool in "${tools[@]}"; do
            role=other
            [ "$tool" = "${tools[0]}" ] && role=subject
            "$planner" "$workload" "$tool" "$run"
            timed_run "$fs_label" "$workload" "$case_name" "$tool" "$role" "$run"
            if [ "$run" -eq 1 ]; then
                verify_run "$case_name $workload $tool run 1"
            fi
            dispose_run
        done
    done
    stop_server blitd_pid
}

# Planners: $1 workload, $2 tool, $3 run number (0 for an untimed sync).
set_destination() {
    local name=$1 workload=$2 tool=$3 run=$4
    run_daemon=0
    if [ "$workload" = noop ]; then
        run_dst_rel="dst/$name-noop-$tool"
        run_fresh=0
        run_bytes=0
    else
        run_dst_rel="dst/$name-$workload-$tool-r$run"
        run_fresh=1
        run_bytes=${fixture_bytes[$workload]}
    fi
    run_dst="$module_dir/$run_dst_rel"
    run_src="$src_root/$run_workload"
    run_src_rel="${src_root#"$module_dir"/}/$run_workload"
}

plan_copy() {
    set_destination copy "$@"
    case "$2" in
    blit) run_cmd=("$blit" copy --no-progress "$run_src" "$run_dst") ;;
    cp) run_cmd=(cp -a "$run_src" "$run_dst") ;;
    rsync) run_cmd=(rsync -a "$run_src/" "$run_dst/") ;;
    esac
}

plan_mirror() {
    set_destination mirror "$@"
    case "$2" in
    blit) run_cmd=("$blit" mirror --no-progress "$run_src" "$run_dst") ;;
    rsync) run_cmd=(rsync -a --delete "$run_src/" "$run_dst/") ;;
    esac
}

plan_fsync() {
    set_destination fsync "$@"
    case "$2" in
    blit) run_cmd=("$blit" copy --fsync --no-progress "$run_src" "$run_dst") ;;
    rsync) run_cmd=(rsync -a --fsync "$run_src/" "$run_dst/") ;;
    esac
}

# Set run_cmd to a push of run_src to run_dst_rel in the module with tool $1.
push_command() {
    case "$1" in
    blit | blit-grpc)
        start_blitd
        run_daemon=1
        run_cmd=("$blit" push --no-progress --token-file "$fs_state/token")
        [ "$1" = blit-grpc ] && run_cmd+=(--force-grpc-data)
        run_cmd+=("$run_src" "$blitd_url/$run_dst_rel")
        ;;
    rsync-daemon) run_cmd=(rsync -a "$run_src/" "$rsyncd_url/$run_dst_rel/") ;;
    rsync-daemon-wf) run_cmd=(rsync -a --whole-file "$run_src/" "$rsyncd_url/$run_dst_rel/") ;;
    esac
}

plan_push() {
    set_destination push "$@"
    push_command "$2"
}

plan_grpc() {
    set_destination grpc "$@"
    push_command "$2"
}

plan_pull() {
    set_destination pull "$@"
    case "$2" in
    blit)
        start_blitd
        run_daemon=1
        run_cmd=("$blit" pull --no-progress --token-file "$fs_state/token"
            "$blitd_url/$run_src_rel" "$run_dst")
        ;;
    rsync-daemon) run_cmd=(rsync -a "$rsyncd_url/$run_src_rel/" "$run_dst/") ;;
    rsync-daemon-wf) run_cmd=(rsync -a --whole-file "$rsyncd_url/$run_src_rel/" "$run_dst/") ;;
    esac
}

# Run case $1 with planner $2 and tools $4... on each selected workload of
# the space-separated list $3.
run_case() {
    local case_name=$1 planner=$2 case_workloads=$3 workload
    shift 3
    has_case "$case_name" || return 0
    for workload in $case_workloads; do
        has_workload "$workload" || continue
        step "$fs_label: $case_name $workload ($*)"
        run_group "$planner" "$case_name" "$workload" "$@"
    done
}

# ---------------------------------------------------------------- cases without a filesystem

run_iperf() {
    local port json="$state_dir/iperf3.json" result seconds bytes
    step "Loopback TCP ceiling: iperf3 for $iperf_seconds s"
    port=$("$VENV_PYTHON" "$util_py" free-ports 1)
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$state_dir/iperf3-server.log" 2>&1 &
    iperf_pid=$!
    "$VENV_PYTHON" "$util_py" wait-listen "$port" 30 || die "iperf3 -s did not start listening on 127.0.0.1:$port"
    iperf3 -c 127.0.0.1 -B 127.0.0.1 -p "$port" -t "$iperf_seconds" -J >"$json" ||
        die "iperf3 -c 127.0.0.1 -p $port failed; its output is in $json"
    wait "$iperf_pid" || true
    iperf_pid=
    result=$("$VENV_PYTHON" "$util_py" iperf-result "$json")
    read -r seconds bytes <<<"$result"
    printf -- '-\t-\tiperf\tiperf3\tinfo\t1\t%s\t%s\t\t\n' "$seconds" "$bytes" >>"$runs_file"
    awk -v s="$seconds" -v b="$bytes" 'BEGIN { printf "    %.0f MiB/s\n", b / s / 1048576 }'
}

run_startup() {
    local run tool module started us import_us
    step "Start-up: blit --version and rsync --version, $startup_runs runs each"
    # One untimed run of each loads the files into the page cache.
    "$blit" --version >/dev/null
    rsync --version >/dev/null
    for ((run = 1; run <= startup_runs; run++)); do
        for tool in blit rsync; do
            started=$EPOCHREALTIME
            if [ "$tool" = blit ]; then
                "$blit" --version >/dev/null || die "blit --version failed"
            else
                rsync --version >/dev/null || die "rsync --version failed"
            fi
            us=$(elapsed_us "$started")
            printf -- '-\tversion\tstartup\t%s --version\t%s\t%s\t%s\t0\t\t\n' "$tool" \
                "$([ "$tool" = blit ] && echo subject || echo other)" "$run" \
                "$(seconds_of_us "$us")" >>"$runs_file"
        done
    done
    # blit.cli is what the blit command imports first.
    step "Start-up: import time of the modules blit and blit.cli, $runs runs each"
    for ((run = 1; run <= runs; run++)); do
        for module in blit blit.cli; do
            import_us=$("$VENV_PYTHON" "$util_py" importtime "$VENV_PYTHON" "$module" 1) ||
                die "python -X importtime -c 'import $module' failed"
            printf -- '-\timport\tstartup\timport %s\tinfo\t%s\t%s\t0\t\t\n' "$module" \
                "$run" "$(seconds_of_us "$import_us")" >>"$runs_file"
        done
    done
}

# ---------------------------------------------------------------- filesystems

# Fixtures that the selected cases and workloads need.
needed_fixtures() {
    local needed=()
    if has_case copy || has_case push || has_case pull || has_case grpc; then
        has_workload large && needed+=(large)
    fi
    if has_case copy || has_case push || has_case pull || has_case grpc || has_case fsync; then
        has_workload small && needed+=(small)
    fi
    if (has_case mirror || has_case push || has_case pull) && has_workload noop; then
        [[ " ${needed[*]} " == *" small "* ]] || needed+=(small)
    fi
    if has_case copy || has_case push || has_case pull; then
        has_workload mixed && needed+=(mixed)
    fi
    if has_case push && has_workload wide; then
        needed+=(wide)
    fi
    echo "${needed[@]}"
}

declare -A fixture_files fixture_bytes

# Build or reuse the fixtures of filesystem $fs_label.
prepare_fixtures() {
    local needed workload files dirs bytes state
    needed=$(needed_fixtures)
    [ -n "$needed" ] || return 0
    step "$fs_label: fixtures in $src_root (scale $scale)"
    # shellcheck disable=SC2086 # $needed is a list of workload names.
    "$VENV_PYTHON" "$fixtures_py" build "$src_root" "$fs_root/trash" --scale "$scale" $needed \
        >"$fs_state/fixtures.txt" || die "building the fixtures in $src_root failed"
    while read -r workload files dirs bytes state; do
        fixture_files[$workload]=$files
        fixture_bytes[$workload]=$bytes
        printf '    %-6s %7d files %5d directories %12d bytes  %s\n' "$workload" "$files" \
            "$dirs" "$bytes" "$state"
    done <"$fs_state/fixtures.txt"
}

run_filesystem() {
    fs_label=$1
    fs_root=$(fs_dir "$fs_label")
    fs_state="$state_dir/$fs_label"
    mkdir -p "$fs_root/trash" "$fs_root/files" "$fs_state"
    fs_root=$(cd "$fs_root" && pwd -P)
    module_dir="$fs_root/files"
    src_root="$module_dir/src-x$scale"
    trash_bytes=0
    fs_type=$(findmnt -n -f -o FSTYPE --target "$fs_root")
    fs_is_tmpfs=0
    [ "$fs_type" = tmpfs ] && fs_is_tmpfs=1
    filesystem_notes+=("$fs_label: $fs_root ($fs_type, $(findmnt -n -f -o OPTIONS --target "$fs_root"))")

    # Destinations of an interrupted earlier run go into the trash.
    if [ -e "$module_dir/dst" ]; then
        mv -T "$module_dir/dst" "$fs_root/trash/dst-earlier.$$"
    fi
    mkdir "$module_dir/dst"

    prepare_fixtures
    if has_case push || has_case pull || has_case grpc; then
        step "$fs_label: starting an rsync daemon and blitd on 127.0.0.1"
        start_rsyncd
        setup_blitd
        stop_server blitd_pid
        echo "    module bench is $module_dir on both; rsync daemon at $rsyncd_url"
    fi

    local rsync_daemon_tools=(rsync-daemon rsync-daemon-wf)
    run_case copy plan_copy "large small mixed" blit cp rsync
    run_case mirror plan_mirror "noop" blit rsync
    run_case push plan_push "large small mixed noop wide" blit "${rsync_daemon_tools[@]}"
    run_case pull plan_pull "large small mixed noop" blit "${rsync_daemon_tools[@]}"
    run_case grpc plan_grpc "large small" blit-grpc blit
    if has_case fsync; then
        # grep reads all of the help, because with pipefail an early exit
        # (grep -q) would fail the pipeline when rsync gets SIGPIPE.
        if rsync --help | grep -- '--fsync' >/dev/null; then
            run_case fsync plan_fsync "small" blit rsync
        else
            notes+=("$fs_label: fsync: $(rsync --version | sed -n 1p) has no --fsync option, so only blit copy --fsync ran")
            run_case fsync plan_fsync "small" blit
        fi
    fi
    stop_server blitd_pid
    stop_server rsyncd_pid

    mv -T "$module_dir/dst" "$fs_root/trash/dst-noop.$$"
    if [ "$keep" -eq 1 ]; then
        notes+=("$fs_label: moved-aside destinations are kept in $fs_root/trash")
    else
        step "$fs_label: deleting $fs_root/trash"
        rm -rf "$fs_root/trash"
    fi
}

# ---------------------------------------------------------------- main

started=$SECONDS
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
filesystem_notes=()
has_case iperf && run_iperf
has_case startup && run_startup
for fs in "${filesystems[@]}"; do
    run_filesystem "$fs"
done

all_legend=(
    "copy: blit = \`blit copy SRC DST\`, cp = \`cp -a SRC DST\`, rsync = \`rsync -a SRC/ DST/\`"
    "mirror (noop workload, destination already in sync): blit = \`blit mirror SRC DST\`, rsync = \`rsync -a --delete SRC/ DST/\`"
    "push: blit = \`blit push --token-file T SRC blit://127.0.0.1:PORT/bench/DST\`, rsync-daemon = \`rsync -a SRC/ rsync://127.0.0.1:PORT/bench/DST/\`, rsync-daemon-wf = the same with \`--whole-file\`; noop pushes the small tree again into an in-sync destination"
    "pull: the same in the other direction, into a local DST"
    "grpc: blit-grpc = \`blit push --force-grpc-data\`, blit = \`blit push\`"
    "fsync: blit = \`blit copy --fsync SRC DST\`, rsync = \`rsync -a --fsync SRC/ DST/\`"
    "startup: each command's wall-clock time; import MODULE = the cumulative time of MODULE in \`python -X importtime -c 'import MODULE'\`"
    "iperf: \`iperf3 -c 127.0.0.1 -t $iperf_seconds\`, one TCP stream; MiB/s is what the receiver counted"
)
for line in "${all_legend[@]}"; do
    has_case "${line%%[: ]*}" && legend+=("$line")
done
legend+=("blit runs with --no-progress; every blit push and pull talks to a blitd started for that run")
check_build "the end"
if [ "$scale" != 1 ]; then
    notes+=("fixtures scaled by $scale (BLIT_BENCH_SCALE or --quick): not comparable with full-size runs")
fi

meta_pairs=(
    "scale=$scale"
    "runs=$runs"
    "filesystems=$(IFS=';'; echo "${filesystem_notes[*]:-none}")"
    "trash emptied mid-run=$purges times"
    "load average at the start=$load_at_start"
    "blit extension sha256=$extension_hash_at_start"
)
report_args=()
for workload in large small mixed wide; do
    [ -n "${fixture_files[$workload]:-}" ] || continue
    meta_pairs+=("workload $workload=$(awk -v f="${fixture_files[$workload]}" \
        -v b="${fixture_bytes[$workload]}" 'BEGIN { printf "%d files, %.1f MiB", f, b / 1048576 }')")
    report_args+=(--fixture-files "$workload=${fixture_files[$workload]}")
done
"$VENV_PYTHON" "$report_py" meta --out "$state_dir/meta.json" --blit "$blit" --repo "$REPO_ROOT" \
    "${meta_pairs[@]}"
for line in "${legend[@]}"; do report_args+=(--legend "$line"); done
for line in "${notes[@]}"; do report_args+=(--note "$line"); done
step "Results (written to $out_prefix.md, .csv and -runs.csv in $((SECONDS - started)) s)"
"$VENV_PYTHON" "$report_py" report --runs-file "$runs_file" --meta "$state_dir/meta.json" \
    --out "$out_prefix" "${report_args[@]}"
finished=1
rm -rf "$state_dir"
