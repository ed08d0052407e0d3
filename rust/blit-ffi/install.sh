#!/usr/bin/env bash
# Install libblit into PREFIX: the header into PREFIX/include, the shared
# library (libblit.so.1, with the libblit.so link for the linker) and the
# static library into LIBDIR (default PREFIX/lib), and blit.pc into
# LIBDIR/pkgconfig. Build the library first:
#
#   cargo build --release -p blit-ffi
#   rust/blit-ffi/install.sh /usr/local
#
# CARGO_TARGET_DIR, if set, names the target directory as it does for cargo.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 PREFIX [LIBDIR]" >&2
    exit 1
fi
prefix=$1
libdir=${2:-$prefix/lib}
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
release_dir="${CARGO_TARGET_DIR:-$repo_root/target}/release"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo_root/Cargo.toml" | head -n 1)

for built in libblit.so libblit.a; do
    if [ ! -f "$release_dir/$built" ]; then
        echo "error: $release_dir/$built not found; run 'cargo build --release -p blit-ffi' first" >&2
        exit 1
    fi
done

install -d "$prefix/include" "$libdir/pkgconfig"
install -m 0644 "$repo_root/include/blit.h" "$prefix/include/blit.h"
# The file carries the SONAME; programs load it by that name at run time,
# and the linker finds it through libblit.so at build time.
install -m 0755 "$release_dir/libblit.so" "$libdir/libblit.so.1"
ln -sf libblit.so.1 "$libdir/libblit.so"
install -m 0644 "$release_dir/libblit.a" "$libdir/libblit.a"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@VERSION@|$version|g" \
    "$repo_root/rust/blit-ffi/blit.pc.in" >"$libdir/pkgconfig/blit.pc"
echo "installed libblit $version into $prefix"
