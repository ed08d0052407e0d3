#!/usr/bin/env bash
# Run blit's main job on real input. Sets up .venv and installs the release
# wheel, snapshots this Python's standard library (with an empty directory,
# symlinks and a non-UTF-8 name added), then:
#   step 1  mirrors the snapshot to a new directory,
#   step 2  mirrors it again, which must change nothing,
#   step 3  changes, adds and deletes entries in the snapshot and mirrors it.
# Each step checks the counts in blit's --json output, and steps 1 and 3
# check the whole tree with scripts/verify_tree.py. Works under
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

# Run 'blit mirror SNAPSHOT MIRROR --json' for step $1, writing the JSON to $2.
run_mirror() {
    local name=$1 json=$2 status=0
    "$blit" mirror "$snapshot" "$mirror" --json >"$json" 2>"$json.stderr" || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$json.stderr" >&2
        fail "$name: blit mirror exited with status $status (stderr above, JSON output in $json)"
    fi
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

# Change, add and delete entries in the snapshot. Prints the expected
# "TRANSFERRED DELETED BYTES" of the next mirror on the first line and a
# description of the changes on the second.
change_snapshot() {
    "$VENV_PYTHON" - "$snapshot" <<'EOF'
import os
import shutil
import stat
import sys

root = os.fsencode(sys.argv[1])
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

new_dir = b"blit-demo-added"
added_files = [
    os.path.join(os.path.dirname(content_files[0]), b"blit_demo_added_1.txt"),
    os.path.join(os.path.dirname(mode_files[0]), b"blit_demo_added_2.txt"),
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
change_snapshot >"$demo_dir/changes.txt" || fail "$name: cannot change the snapshot"
{
    read -r expected_transferred expected_deleted expected_bytes
    read -r change_description
} <"$demo_dir/changes.txt"
echo "    changes: $change_description"
run_mirror "$name" "$demo_dir/step3.json"
check_summary "$name" "$demo_dir/step3.json" transferred="$expected_transferred" \
    deleted="$expected_deleted" failed=0 bytes="$expected_bytes"
verify_mirror "$name"

step "Demo passed in $((SECONDS - started)) s; files are in $demo_dir"
