#!/usr/bin/env bash
# Run blit's main job on real input. Sets up .venv and installs the release
# wheel, snapshots this Python's standard library (with an empty directory,
# symlinks and a non-UTF-8 name added), then:
#   step 1  mirrors the snapshot to a new directory,
#   step 2  mirrors it again, which must change nothing,
#   step 3  changes, adds and deletes entries in the snapshot and mirrors it.
# Then it starts blitd on 127.0.0.1 with auth = "token" and a module in the
# demo directory, creates a token for that module with 'blitd token create'
# into a file of mode 0600, and with --token-file on every remote command:
#   step 4  pushes the snapshot into the module,
#   step 5  lists it recursively,
#   step 6  pulls it back into a new directory,
#   step 7  changes the snapshot again and pushes it with --mirror,
#   step 8  pushes without a token, which must fail with exit status 1 and
#           one error line, and then lists the module with the token,
# and stops blitd with SIGTERM, which must exit with status 0.
# Each transfer checks the counts in blit's --json output, and steps 1, 3, 6
# and 7 check the whole tree with scripts/verify_tree.py. The token is never
# printed or passed on a command line. Works under
# ${BLIT_DEMO_DIR:-/tmp/blit-demo}; an existing one is moved aside, not deleted.
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
started=$SECONDS

ensure_build_tools
ensure_venv "maturin>=1.7,<2"
build_and_install_wheel

# Keep Python from writing __pycache__ files into the standard library while
# it is copied, and into the snapshot.
export PYTHONDONTWRITEBYTECODE=1
blit="$VENV/bin/blit"
demo_dir="${BLIT_DEMO_DIR:-/tmp/blit-demo}"
snapshot="$demo_dir/stdlib"
mirror="$demo_dir/mirror"

fail() {
    printf 'demo failed: %s\n' "$*" >&2
    exit 1
}

# Print "ENTRIES BYTES" for the tree under $1: entries below the root, and
# the total size of its regular files.
count_tree() {
    "$VENV_PYTHON" - "$1" <<'EOF'
import os
import stat
import sys

entries = size = 0
for dirpath, dirnames, filenames in os.walk(os.fsencode(sys.argv[1])):
    for name in dirnames + filenames:
        entries += 1
        info = os.lstat(os.path.join(dirpath, name))
        if stat.S_ISREG(info.st_mode):
            size += info.st_size
print(entries, size)
EOF
}

# Run 'blit ARGS... --json' for step $1, writing the JSON to $2.
run_json() {
    local name=$1 json=$2 status=0
    shift 2
    "$blit" "$@" --json >"$json" 2>"$json.stderr" || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$json.stderr" >&2
        fail "$name: blit $1 exited with status $status (stderr above, JSON output in $json)"
    fi
}

# Run 'blit mirror SNAPSHOT MIRROR --json' for step $1, writing the JSON to $2.
run_mirror() {
    run_json "$1" "$2" mirror "$snapshot" "$mirror"
}

# Print the result line of step $1 from the JSON file $2 and check each
# KEY=VALUE that follows against the JSON's integer counters.
check_summary() {
    local name=$1 json=$2
    if "$VENV_PYTHON" - "$@" <<'EOF'
import json
import sys

name, path, *expectations = sys.argv[1:]
with open(path, encoding="utf-8") as file:
    summary = json.load(file)

mismatches = []
for expectation in expectations:
    key, expected = expectation.split("=", 1)
    if key not in summary:
        mismatches.append(f"{key} is missing, expected {expected}")
    elif summary[key] != int(expected):
        mismatches.append(f"{key} is {summary[key]}, expected {expected}")

mib = summary["bytes"] / 2**20
seconds = summary["seconds"]
rate = mib / seconds if seconds > 0 else 0.0
entries = summary["transferred"] + summary["skipped"]
print(
    f"{name}: {entries} entries ({summary['transferred']} transferred, "
    f"{summary['skipped']} skipped, {summary['deleted']} deleted), "
    f"{summary['bytes']} bytes ({mib:.1f} MiB), {seconds:.2f} s, {rate:.1f} MiB/s"
)
if mismatches:
    print(f"{name}: {'; '.join(mismatches)}", file=sys.stderr)
    for failure in summary.get("failures", [])[:20]:
        print(f"    {failure}", file=sys.stderr)
    sys.exit(1)
EOF
    then
        return
    fi
    fail "$name: the --json counts differ from the expected ones (above; JSON output in $json)"
}

# Check the mirror against the snapshot for step $1.
verify_mirror() {
    local output status=0
    output=$("$VENV_PYTHON" "$REPO_ROOT/scripts/verify_tree.py" "$snapshot" "$mirror") || status=$?
    printf '    verify_tree.py: %s\n' "${output##*$'\n'}"
    if [ "$status" -ne 0 ]; then
        printf '%s\n' "$output" >&2
        fail "$1: the mirror differs from the snapshot (differences above)"
    fi
}

# Change, add and delete entries in the snapshot. $1 is a suffix for the
# names of the added entries, so that each call adds new ones. Prints the
# expected "TRANSFERRED DELETED BYTES" of the next mirror on the first line
# and a description of the changes on the second.
change_snapshot() {
    "$VENV_PYTHON" - "$snapshot" "$1" <<'EOF'
import os
import shutil
import stat
import sys

root = os.fsencode(sys.argv[1])
suffix = os.fsencode(sys.argv[2])
# These stay unchanged, so that the choice below does not depend on which
# packages are installed or on the extras added above.
skipped_top = {b"site-packages", b"blit-demo-extras"}


def is_dir(path):
    return stat.S_ISDIR(os.lstat(path).st_mode)


top_dirs = sorted(
    name
    for name in os.listdir(root)
    if name not in skipped_top and is_dir(os.path.join(root, name))
)


def tree_entries(rel):
    entries = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, rel)):
        entries.extend(os.path.join(dirpath, name) for name in dirnames + filenames)
    return entries


# Delete the smallest top-level directory, whole.
deleted_dir = min(top_dirs, key=lambda name: (len(tree_entries(name)), name))
deleted_dir_entries = len(tree_entries(deleted_dir)) + 1

files = sorted(
    os.path.relpath(path, root)
    for name in top_dirs
    if name != deleted_dir
    for path in tree_entries(name)
    if stat.S_ISREG(os.lstat(path).st_mode)
)
step = len(files) // 9
chosen = [files[index * step] for index in range(8)]
content_files, mode_files, deleted_files = chosen[:3], chosen[3:5], chosen[5:8]

written_bytes = 0
for rel in content_files:
    with open(os.path.join(root, rel), "ab") as file:
        file.write(b"\n# changed by blit's demo\n")
    written_bytes += os.lstat(os.path.join(root, rel)).st_size
for rel in mode_files:
    path = os.path.join(root, rel)
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    os.chmod(path, 0o600 if mode != 0o600 else 0o644)
for rel in deleted_files:
    os.unlink(os.path.join(root, rel))
shutil.rmtree(os.path.join(root, deleted_dir))

new_dir = b"blit-demo-added" + suffix
added_files = [
    os.path.join(os.path.dirname(content_files[0]), b"blit_demo_added%s_1.txt" % suffix),
    os.path.join(os.path.dirname(mode_files[0]), b"blit_demo_added%s_2.txt" % suffix),
    os.path.join(new_dir, b"added.txt"),
]
os.mkdir(os.path.join(root, new_dir))
for number, rel in enumerate(added_files):
    data = b"added by blit's demo\n" * (number * 1000 + 1)
    with open(os.path.join(root, rel), "wb") as file:
        file.write(data)
    written_bytes += len(data)

# Adding or deleting an entry changes its directory's mtime, which the next
# mirror copies as a metadata update of that directory. blit does not count
# such an update of the transfer root, and counts a new directory once.
touched_dirs = {os.path.dirname(rel) for rel in added_files + deleted_files}
touched_dirs -= {b"", new_dir}
transferred = (
    len(content_files) + len(mode_files) + len(added_files) + 1 + len(touched_dirs)
)
deleted = len(deleted_files) + deleted_dir_entries
print(transferred, deleted, written_bytes)
print(
    f"appended to {len(content_files)} files, changed the mode of {len(mode_files)}, "
    f"added {len(added_files)} files and 1 directory, deleted {len(deleted_files)} files "
    f"and the directory {deleted_dir.decode(errors='backslashreplace')} ({deleted_dir_entries} entries)"
)
EOF
}

# Print two free TCP ports on 127.0.0.1, for blitd's control and data planes.
free_ports() {
    "$VENV_PYTHON" - <<'EOF'
import socket

# Both sockets stay bound until both ports are known, so the two differ.
sockets = [socket.socket() for _ in range(2)]
for sock in sockets:
    sock.bind(("127.0.0.1", 0))
print(*(sock.getsockname()[1] for sock in sockets))
EOF
}

# Write blitd's config to $1: a loopback daemon on ports $2 (control) and $3
# (data) that requires tokens from the store $5, exporting the directory $4
# as module "demo".
write_blitd_config() {
    "$VENV_PYTHON" - "$@" <<'EOF'
import json
import sys

path, control_port, data_port, module_dir, token_store = sys.argv[1:]
# A JSON string without ASCII escaping is also a valid TOML basic string.
module_path = json.dumps(module_dir, ensure_ascii=False)
token_file = json.dumps(token_store, ensure_ascii=False)
with open(path, "w", encoding="utf-8") as file:
    file.write(
        "[daemon]\n"
        f'listen_addr = "127.0.0.1:{control_port}"\n'
        f"data_port = {data_port}\n"
        'auth = "token"\n'
        f"token_file = {token_file}\n"
        "\n"
        "[[modules]]\n"
        'name = "demo"\n'
        f"path = {module_path}\n"
        'comment = "scratch module of blit\'s demo"\n'
    )
EOF
}

# Poll 'blit list' on the daemon until it succeeds, for at most 30 s.
wait_for_blitd() {
    local deadline=$((SECONDS + 30))
    until "$blit" list --token-file "$token_path" "$daemon_url/" --json \
        >"$demo_dir/ready.json" 2>"$demo_dir/ready.stderr"; do
        if ! kill -0 "$blitd_pid" 2>/dev/null; then
            fail "blitd exited during startup; its log is $blitd_log"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            cat "$demo_dir/ready.stderr" >&2
            fail "'blit list $daemon_url/' did not succeed within 30 s (last error above); blitd's log is $blitd_log"
        fi
        sleep 0.1
    done
}

# Create a token for module "demo" with 'blitd token create' and store it
# in $token_path with mode 0600. The token goes from blitd's stdout into
# that file only. The line that blitd prints on stderr names the token and
# its scope, not the token itself, and is shown.
create_token() {
    local status=0
    install -m 0600 /dev/null "$token_path"
    "$blitd" token create --config "$blitd_config" --name demo --modules demo \
        --permissions read,write,delete --expires 1d \
        >"$token_path" 2>"$demo_dir/token-create.stderr" || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$demo_dir/token-create.stderr" >&2
        fail "'blitd token create' exited with status $status (stderr above)"
    fi
    [ -s "$token_path" ] || fail "'blitd token create' printed no token into $token_path"
    sed 's/^/    /' "$demo_dir/token-create.stderr"
}

# Stop blitd if it still runs, and after a failure show the end of its log.
# Runs when the script exits for any reason.
on_exit() {
    local status=$?
    if [ -n "${blitd_pid:-}" ]; then
        kill -TERM "$blitd_pid" 2>/dev/null || true
        wait "$blitd_pid" 2>/dev/null || true
        blitd_pid=
    fi
    if [ "$status" -ne 0 ] && [ -s "${blitd_log:-}" ]; then
        printf 'last lines of the blitd log %s:\n' "$blitd_log" >&2
        tail -n 20 "$blitd_log" >&2
    fi
}

# Check the JSON of 'blit list -r' in $2 for step $1: it must contain $3
# entries whose files have $4 bytes in all. $5 is the time the command took,
# in microseconds. Prints the step's result line.
check_listing() {
    if "$VENV_PYTHON" - "$@" <<'EOF'
import json
import sys

name, path, expected_entries, expected_bytes, micros = sys.argv[1:]
with open(path, encoding="utf-8") as file:
    entries = json.load(file)["entries"]

size = sum(entry["size"] for entry in entries if entry["kind"] == "file")
seconds = int(micros) / 1e6
print(
    f"{name}: {len(entries)} entries, {size} bytes in files ({size / 2**20:.1f} MiB), "
    f"{seconds:.2f} s, {len(entries) / seconds:.0f} entries/s"
)
mismatches = []
if len(entries) != int(expected_entries):
    mismatches.append(f"{len(entries)} entries listed, expected {expected_entries}")
if size != int(expected_bytes):
    mismatches.append(f"{size} bytes in files, expected {expected_bytes}")
if mismatches:
    print(f"{name}: {'; '.join(mismatches)}", file=sys.stderr)
    sys.exit(1)
EOF
    then
        return
    fi
    fail "$1: the listing differs from the snapshot (above; JSON output in $2)"
}

# Check the tree $3 against the tree $2 for step $1 with verify_tree.py.
# NOTE: push and pull do not carry the mode and mtime of the transfer's root
# directory, because the manifest has no entry for it. Differences there are
# printed and allowed, and any other difference fails the step.
verify_remote_tree() {
    local output status=0
    output=$("$VENV_PYTHON" - "$REPO_ROOT/scripts" "$2" "$3" <<'EOF'
import os
import sys

scripts, src, dst = sys.argv[1:]
sys.path.insert(0, scripts)
import verify_tree  # noqa: E402

differences, src_entries, _ = verify_tree.compare_trees(os.fsencode(src), os.fsencode(dst))
at_root = [d for d in differences if d.path == b"." and d.kind in ("mode", "mtime")]
below_root = [d for d in differences if d not in at_root]
for difference in below_root[:50]:
    print(f"{difference.kind}: {verify_tree.display(difference.path)}: {difference.detail}")
if below_root:
    print(f"DIFFERENT: {len(below_root)} differences below the root")
    sys.exit(1)
result = f"IDENTICAL: {verify_tree.count_kinds(src_entries)}"
if at_root:
    kinds = " and ".join(difference.kind for difference in at_root)
    verb = "differs" if len(at_root) == 1 else "differ"
    result += f"; only the root directory's {kinds} {verb}, as push and pull do not carry it yet"
print(result)
EOF
) || status=$?
    printf '    verify_tree.py: %s\n' "${output##*$'\n'}"
    if [ "$status" -ne 0 ]; then
        printf '%s\n' "$output" >&2
        fail "$1: $3 differs from $2 (differences above)"
    fi
}

step "Preparing $demo_dir"
if [ -e "$demo_dir" ] || [ -L "$demo_dir" ]; then
    # Moved aside, not deleted, because deleting tens of thousands of files
    # can slow later file creation on the same file system, and so the
    # timings below.
    old_demo_dir="$demo_dir.old.$(date +%Y%m%d-%H%M%S).$$"
    mv -T "$demo_dir" "$old_demo_dir"
    echo "moved the previous demo directory to $old_demo_dir; delete it when convenient"
fi
mkdir -p "$demo_dir"

stdlib=$("$VENV_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
copy_started_us=${EPOCHREALTIME//[.,]/}
cp -a "$stdlib" "$snapshot" || fail "cannot snapshot $stdlib into $snapshot with cp -a"
copy_us=$((${EPOCHREALTIME//[.,]/} - copy_started_us))

extras="$snapshot/blit-demo-extras"
mkdir -p "$extras/empty-dir"
ln -s ../os.py "$extras/relative-link.py"
ln -s no-such-file "$extras/dangling-link"
"$VENV_PYTHON" - "$extras" <<'EOF'
import os
import sys

name = os.path.join(os.fsencode(sys.argv[1]), b"latin-1 caf\xe9.txt")
with open(name, "wb") as file:
    file.write(b"a name that is not UTF-8\n")
EOF
snapshot_counts=$(count_tree "$snapshot")
read -r snapshot_entries snapshot_bytes <<<"$snapshot_counts"
echo "snapshot of $stdlib, with extras added:"
awk -v entries="$snapshot_entries" -v bytes="$snapshot_bytes" -v us="$copy_us" 'BEGIN {
    mib = bytes / 1048576
    printf "cp -a snapshot: %d entries, %d bytes (%.1f MiB), %.2f s, %.1f MiB/s\n",
        entries, bytes, mib, us / 1e6, mib / (us / 1e6)
}'

step "Mirroring $snapshot to $mirror"
name="step 1 first mirror"
run_mirror "$name" "$demo_dir/step1.json"
check_summary "$name" "$demo_dir/step1.json" transferred="$snapshot_entries" skipped=0 \
    deleted=0 failed=0 bytes="$snapshot_bytes"
verify_mirror "$name"

name="step 2 unchanged mirror"
run_mirror "$name" "$demo_dir/step2.json"
check_summary "$name" "$demo_dir/step2.json" transferred=0 skipped="$snapshot_entries" \
    deleted=0 failed=0 bytes=0

name="step 3 changed mirror"
change_snapshot "" >"$demo_dir/changes.txt" || fail "$name: cannot change the snapshot"
{
    read -r expected_transferred expected_deleted expected_bytes
    read -r change_description
} <"$demo_dir/changes.txt"
echo "    changes: $change_description"
run_mirror "$name" "$demo_dir/step3.json"
check_summary "$name" "$demo_dir/step3.json" transferred="$expected_transferred" \
    deleted="$expected_deleted" failed=0 bytes="$expected_bytes"
verify_mirror "$name"

step "Starting blitd on 127.0.0.1"
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -x "$VENV/bin/blitd" ]; then
    blitd="$VENV/bin/blitd"
else
    step "Building blitd with cargo, since $VENV has no blitd"
    cargo build --release -p blitd
    blitd="$REPO_ROOT/target/release/blitd"
fi
read -r control_port data_port <<<"$(free_ports)"
module_dir="$demo_dir/module"
blitd_config="$demo_dir/blitd.toml"
blitd_log="$demo_dir/blitd.log"
token_store="$demo_dir/tokens.toml"
token_path="$demo_dir/token"
mkdir "$module_dir"
write_blitd_config "$blitd_config" "$control_port" "$data_port" "$module_dir" "$token_store"
echo "creating a token for module demo in $token_path (mode 0600) with blitd token create:"
create_token
"$blitd" --config "$blitd_config" >"$blitd_log" 2>&1 &
blitd_pid=$!
daemon_url="blit://127.0.0.1:$control_port"
wait_for_blitd
echo "$blitd (PID $blitd_pid) serves $module_dir as module demo at $daemon_url/, data port $data_port"
echo "it requires a token from $token_store; its log is $blitd_log"

remote="$daemon_url/demo/stdlib"
pulled="$demo_dir/pulled"
snapshot_counts=$(count_tree "$snapshot")
read -r snapshot_entries snapshot_bytes <<<"$snapshot_counts"

step "Pushing $snapshot to $remote and pulling it back"
name="step 4 push"
run_json "$name" "$demo_dir/step4.json" push --token-file "$token_path" "$snapshot" "$remote"
check_summary "$name" "$demo_dir/step4.json" transferred="$snapshot_entries" skipped=0 \
    deleted=0 failed=0 bytes="$snapshot_bytes"

name="step 5 list"
list_started_us=${EPOCHREALTIME//[.,]/}
run_json "$name" "$demo_dir/step5.json" list -r --token-file "$token_path" "$remote"
list_us=$((${EPOCHREALTIME//[.,]/} - list_started_us))
check_listing "$name" "$demo_dir/step5.json" "$snapshot_entries" "$snapshot_bytes" "$list_us"

name="step 6 pull"
run_json "$name" "$demo_dir/step6.json" pull --token-file "$token_path" "$remote" "$pulled"
check_summary "$name" "$demo_dir/step6.json" transferred="$snapshot_entries" skipped=0 \
    deleted=0 failed=0 bytes="$snapshot_bytes"
verify_remote_tree "$name" "$snapshot" "$pulled"

name="step 7 changed push --mirror"
change_snapshot "-remote" >"$demo_dir/changes-remote.txt" ||
    fail "$name: cannot change the snapshot"
{
    read -r expected_transferred expected_deleted expected_bytes
    read -r change_description
} <"$demo_dir/changes-remote.txt"
echo "    changes: $change_description"
run_json "$name" "$demo_dir/step7.json" push --token-file "$token_path" "$snapshot" "$remote" \
    --mirror
check_summary "$name" "$demo_dir/step7.json" transferred="$expected_transferred" \
    deleted="$expected_deleted" failed=0 bytes="$expected_bytes"
verify_remote_tree "$name" "$snapshot" "$module_dir/stdlib"

step "Pushing without a token to $daemon_url/demo/rejected"
name="step 8 push without a token"
# BLIT_TOKEN is removed from the environment, so blit sends no token.
rejected_status=0
env -u BLIT_TOKEN "$blit" push "$snapshot" "$daemon_url/demo/rejected" \
    >"$demo_dir/step8.stdout" 2>"$demo_dir/step8.stderr" || rejected_status=$?
expected_error="blit: error: blitd at 127.0.0.1:$control_port: missing, unknown, revoked or \
expired token; supply a valid token with --token-file PATH (token= in Python) or the BLIT_TOKEN \
environment variable"
if [ "$rejected_status" -ne 1 ]; then
    cat "$demo_dir/step8.stderr" >&2
    fail "$name: blit exited with status $rejected_status, expected 1 (stderr above)"
fi
if [ -s "$demo_dir/step8.stdout" ]; then
    fail "$name: blit printed on stdout, expected nothing (see $demo_dir/step8.stdout)"
fi
if [ "$(cat "$demo_dir/step8.stderr")" != "$expected_error" ]; then
    cat "$demo_dir/step8.stderr" >&2
    fail "$name: stderr (above) differs from the expected line: $expected_error"
fi
if [ -e "$module_dir/rejected" ] || [ -L "$module_dir/rejected" ]; then
    fail "$name: the rejected push created $module_dir/rejected"
fi
denial=$(grep -F 'request denied' "$blitd_log" | grep -F 'rpc="Push" reason="no token"' | tail -n 1) ||
    fail "$name: blitd logged no 'request denied' line for the push (log: $blitd_log)"
echo "$name: exit status 1, nothing written, and this one line on stderr:"
echo "    $(cat "$demo_dir/step8.stderr")"
echo "    blitd logged: ${denial#*  }"

name="step 8 list after the rejected push"
kill -0 "$blitd_pid" 2>/dev/null || fail "$name: blitd exited after the rejected push; its log is $blitd_log"
run_json "$name" "$demo_dir/step8-list.json" list --token-file "$token_path" "$daemon_url/demo"
"$VENV_PYTHON" - "$demo_dir/step8-list.json" <<'EOF' || fail "$name: the module's listing is not [stdlib] (JSON output in $demo_dir/step8-list.json)"
import json
import sys

with open(sys.argv[1], encoding="utf-8") as file:
    entries = json.load(file)["entries"]
names = [entry["path"] for entry in entries]
print(f"step 8 list after the rejected push: blitd still serves; the module contains {names}")
sys.exit(0 if names == ["stdlib"] else 1)
EOF

step "Stopping blitd (PID $blitd_pid) with SIGTERM"
kill -TERM "$blitd_pid"
blitd_status=0
wait "$blitd_pid" || blitd_status=$?
blitd_pid=
if [ "$blitd_status" -ne 0 ]; then
    fail "blitd exited with status $blitd_status after SIGTERM, expected 0; its log is $blitd_log"
fi
echo "blitd exited with status 0"

step "Demo passed in $((SECONDS - started)) s; files are in $demo_dir"
