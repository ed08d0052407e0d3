# Shared setup for scripts/test.sh and scripts/demo.sh: Debian packages, the
# virtualenv at .venv and the release wheel. Source it from bash, do not run
# it. It sets REPO_ROOT, VENV and VENV_PYTHON and defines the functions below.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_PYTHON="$VENV/bin/python"

# rustup installs cargo here; a non-login shell (as in CI) may lack it on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

_apt_updated=0

# Print a step header.
step() {
    printf '\n==> %s\n' "$*"
}

# Print an error and exit with status 1.
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Install Debian packages with apt-get, running 'apt-get update' once per
# script. Needs root or sudo.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing $* needs root; install them and rerun"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* with this system's package manager and rerun"
    if [ "$_apt_updated" -eq 0 ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null
}

# Install the Debian packages that provide missing commands. Each argument
# is COMMAND:PACKAGE, for example rsync:rsync or cc:gcc.
ensure_commands() {
    local pair missing=()
    for pair in "$@"; do
        if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
            missing+=("${pair#*:}")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "Installing Debian packages: ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

# Check for the tools that a build needs and install what Debian provides.
ensure_build_tools() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found; install the Rust toolchain (rustup, Rust 1.85 or later) and rerun"
    ensure_commands python3:python3 cc:gcc
    # Debian's own python3 needs python3-venv for 'python3 -m venv'.
    if [ ! -x "$VENV_PYTHON" ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        step "Installing Debian package python3-venv"
        apt_install python3-venv
    fi
}

# Create .venv if it is missing and pip-install the given requirements into
# it. pip skips requirements that are already satisfied without asking PyPI.
ensure_venv() {
    if [ ! -x "$VENV_PYTHON" ]; then
        step "Creating the virtualenv $VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV_PYTHON" -c '' ||
        die "$VENV_PYTHON does not run; move $VENV aside and rerun to create a new one"
    if [ $# -gt 0 ]; then
        step "Installing into $VENV: $*"
        "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check "$@"
    fi
}

# Build the release wheel into dist/ and install it into .venv, replacing any
# editable install, so that tests and the demo run the real wheel.
build_and_install_wheel() {
    local dist="$REPO_ROOT/dist"
    local wheels
    step "Building the release wheel into $dist"
    mkdir -p "$dist"
    rm -f "$dist"/blit-*.whl
    # maturin reads pyproject.toml from the current directory.
    (cd "$REPO_ROOT" && "$VENV/bin/maturin" build --release --interpreter "$VENV_PYTHON" --out "$dist")
    wheels=("$dist"/blit-*.whl)
    [ -f "${wheels[0]}" ] || die "maturin wrote no wheel into $dist"
    [ ${#wheels[@]} -eq 1 ] || die "expected one wheel in $dist, found: ${wheels[*]}"

    step "Installing ${wheels[0]##*/} into $VENV"
    "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check \
        --force-reinstall --no-deps "${wheels[0]}"
}
