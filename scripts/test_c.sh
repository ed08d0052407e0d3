#!/usr/bin/env bash
# Build libblit and blitd and install libblit into a temporary prefix.
# Start two blitd on 127.0.0.1, one with TLS, with a temporary config and
# token. Run the C tests (tests/c/test_blit.c) against them, once plainly
# and once under valgrind; one test starts and kills a third blitd itself.
# Also check that libblit.so exports exactly the functions of the header,
# under the SONAME libblit.so.1, and that the header compiles as C and C++.
# Last, build examples/c/push_dir.c against the shared and the static
# library and push a directory with each. Exits non-zero on the first
# failure. Works from any directory.
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
started=$SECONDS

ensure_build_tools
ensure_commands valgrind:valgrind pkg-config:pkg-config nm:binutils readelf:binutils c++:g++

step "cargo build --release -p blit-ffi -p blitd"
cargo build --release -p blit-ffi -p blitd
target_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
blitd="$target_dir/release/blitd"

work=$(mktemp -d "${TMPDIR:-/tmp}/blit-c-test.XXXXXX")
blitd_pids=()
cleanup() {
    local pid
    for pid in "${blitd_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            wait "$pid" || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

step "Installing libblit into $work/prefix"
CARGO_TARGET_DIR="$target_dir" rust/blit-ffi/install.sh "$work/prefix"
libdir="$work/prefix/lib"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
read -r -a blit_flags <<<"$(pkg-config --cflags --libs blit)"

step "Checking the symbols and SONAME of libblit.so"
exported=$(nm -D --defined-only "$libdir/libblit.so.1" | awk '{print $3}' | sort)
others=$(grep -v '^blit_' <<<"$exported" || true)
[ -z "$others" ] || die "libblit.so exports symbols without the blit_ prefix: $others"
declared=$(grep -oE 'blit_[a-z_]+\(' include/blit.h | tr -d '(' | sort)
[ "$exported" = "$declared" ] ||
    die "the exports of libblit.so differ from the functions of include/blit.h:
$(diff <(echo "$declared") <(echo "$exported") || true)"
soname=$(readelf -d "$libdir/libblit.so.1" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libblit.so.1 ] || die "libblit.so has SONAME '$soname', expected libblit.so.1"
echo "$(wc -l <<<"$exported") symbols, all declared in include/blit.h; SONAME $soname"

step "Compiling include/blit.h as C99 and C++11"
cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c include/blit.h
c++ -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c++ include/blit.h

step "Building tests/c/test_blit.c"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -pedantic -Wall -Wextra -Werror -g \
    tests/c/test_blit.c -o "$work/test_blit" "${blit_flags[@]}" -Wl,-rpath,"$libdir" -pthread

# Prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes a blitd config for 127.0.0.1:PORT, serving the modules "m" and
# "ro" with token authentication, to FILE.
write_config() {
    local file=$1 port=$2
    cat >"$file" <<CONFIG
[daemon]
listen_addr = "127.0.0.1:$port"
data_port = 0
auth = "token"
token_file = "$work/tokens.toml"

[[modules]]
name = "m"
path = "$modules/m"
comment = "writable test module"

[[modules]]
name = "ro"
path = "$modules/ro"
read_only = true
comment = "read-only test module"
CONFIG
}

# Starts blitd with CONFIG, logging to LOG, appends its PID to blitd_pids
# and waits until it listens on 127.0.0.1:PORT.
start_blitd() {
    local config=$1 log=$2 port=$3 pid deadline
    "$blitd" --config "$config" >"$log" 2>&1 &
    pid=$!
    blitd_pids+=("$pid")
    deadline=$((SECONDS + 60))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            die "blitd exited before it listened on 127.0.0.1:$port"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "blitd did not listen on 127.0.0.1:$port within 60 s"
        sleep 0.1
    done
    echo "blitd (PID $pid) listens on 127.0.0.1:$port"
}

step "Starting blitd on 127.0.0.1, and a second one with TLS"
modules="$work/modules"
mkdir -p "$modules/m" "$modules/ro"
printf 'served read-only\n' >"$modules/ro/readme.txt"
port=$(free_port)
write_config "$work/blitd.toml" "$port"
token=$("$blitd" token create --config "$work/blitd.toml" --name c --modules '*' \
    --permissions read,write,delete,admin)
start_blitd "$work/blitd.toml" "$work/blitd.log" "$port"
# The TLS daemon serves the same modules and reads the same token store.
tls_port=$(free_port)
write_config "$work/blitd-tls.toml" "$tls_port"
"$blitd" tls self-signed --out "$work/tls" --host 127.0.0.1 >>"$work/blitd-tls.toml"
start_blitd "$work/blitd-tls.toml" "$work/blitd-tls.log" "$tls_port"
# The test daemon_lost starts a third blitd with this config itself and
# kills it during a push.
victim_port=$(free_port)
write_config "$work/blitd-victim.toml" "$victim_port"

test_env=(
    env
    BLIT_TOKEN="$token"
    BLIT_TEST_URL="blit://127.0.0.1:$port/"
    BLIT_TEST_MODULE_DIR="$modules/m"
    BLIT_TEST_RO_DIR="$modules/ro"
    BLIT_TEST_TLS_URL="blits://127.0.0.1:$tls_port/"
    BLIT_TEST_TLS_CA="$work/tls/ca.pem"
    BLIT_TEST_BLITD="$blitd"
    BLIT_TEST_VICTIM_CONFIG="$work/blitd-victim.toml"
    BLIT_TEST_VICTIM_URL="blit://127.0.0.1:$victim_port/"
)

step "tests/c/test_blit"
mkdir "$work/plain"
if ! "${test_env[@]}" BLIT_TEST_TMP="$work/plain" "$work/test_blit"; then
    tail -n 40 "$work"/blitd*.log >&2
    die "the C tests failed"
fi

step "tests/c/test_blit under valgrind"
# The tests expect an empty module, as on the first run.
find "$modules/m" -mindepth 1 -delete
mkdir "$work/valgrind"
if ! "${test_env[@]}" BLIT_TEST_TMP="$work/valgrind" \
    valgrind --leak-check=full --error-exitcode=1 --suppressions=tests/c/valgrind.supp \
    "$work/test_blit"; then
    tail -n 40 "$work"/blitd*.log >&2
    die "the C tests failed under valgrind"
fi

step "examples/c/push_dir.c"
cc -std=c99 -pedantic -Wall -Wextra -Werror examples/c/push_dir.c -o "$work/push_dir" \
    "${blit_flags[@]}" -Wl,-rpath,"$libdir"
# Static: the archive itself, then the system libraries of Libs.private.
read -r -a include_flags <<<"$(pkg-config --cflags blit)"
read -r -a static_libs <<<"$(pkg-config --static --libs-only-l blit)"
system_libs=()
for lib in "${static_libs[@]}"; do
    [ "$lib" = -lblit ] || system_libs+=("$lib")
done
cc -std=c99 -pedantic -Wall -Wextra -Werror examples/c/push_dir.c -o "$work/push_dir_static" \
    "${include_flags[@]}" "$libdir/libblit.a" "${system_libs[@]}"
if readelf -d "$work/push_dir_static" | grep -q 'libblit'; then
    die "push_dir_static links libblit dynamically"
fi
mkdir -p "$work/example/sub"
printf 'one\n' >"$work/example/one.txt"
printf 'two\n' >"$work/example/sub/two.txt"
for program in push_dir push_dir_static; do
    output=$(BLIT_TOKEN="$token" "$work/$program" "$work/example" \
        "blit://127.0.0.1:$port/m/$program")
    echo "$program: $output"
    [[ "$output" == "transferred 3, skipped 0, failed 0, 8 bytes in "* ]] ||
        die "$program printed an unexpected summary"
    cmp "$work/example/sub/two.txt" "$modules/m/$program/sub/two.txt"
done
status=0
BLIT_TOKEN="$token" "$work/push_dir" "$work/no-such-dir" "blit://127.0.0.1:$port/m/x" \
    2>"$work/push_dir.err" || status=$?
[ "$status" -eq 1 ] || die "push_dir of a missing directory exited $status, expected 1"
grep -q 'BLIT_RESULT_NOT_FOUND' "$work/push_dir.err" ||
    die "push_dir did not report BLIT_RESULT_NOT_FOUND: $(cat "$work/push_dir.err")"

step "Stopping blitd"
for pid in "${blitd_pids[@]}"; do
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$work"/blitd*.log >&2
        die "blitd (PID $pid) exited with status $status after SIGTERM, expected 0"
    fi
    echo "blitd (PID $pid) exited with status 0"
done
blitd_pids=()

step "All C steps passed in $((SECONDS - started)) s"
