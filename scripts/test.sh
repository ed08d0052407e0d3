#!/usr/bin/env bash
# Set up what the test suite needs and run all of it: rustfmt, clippy, the
# Rust tests, the release wheel and pytest over tests/. Exits non-zero on the
# first failure. Works from any directory, as root in CI without stdin.
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$REPO_ROOT"
started=$SECONDS

ensure_build_tools
# The tests compare blit's results with rsync's. The fallback tests block
# the data port inside a private network namespace with nft.
ensure_commands rsync:rsync nft:nftables ip:iproute2 unshare:util-linux
ensure_venv "maturin>=1.7,<2" "pytest>=8" mypy

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    cargo nextest run --workspace
    # nextest does not run doctests.
    step "cargo test --workspace --doc"
    cargo test --workspace --doc
else
    step "cargo test --workspace"
    cargo test --workspace
fi

build_and_install_wheel

step "pytest tests/"
# Tests that run the 'blit' command find the wheel's console script first.
export PATH="$VENV/bin:$PATH"
pytest_status=0
"$VENV/bin/pytest" tests/ || pytest_status=$?
case "$pytest_status" in
    0) ;;
    5) die "pytest collected no tests from tests/" ;;
    *) die "pytest failed with exit status $pytest_status" ;;
esac

# The C ABI: libblit built and tested from C, plainly and under valgrind.
bash "$REPO_ROOT/scripts/test_c.sh"

step "All steps passed in $((SECONDS - started)) s"
