#!/usr/bin/env bash
# The one test command for burnwatch: installs what the tests need, then runs formatting,
# lints, every test target (benchmarks run once each in test mode) and the doc tests.
#
# Usage: bash scripts/test.sh        (from anywhere; CI calls it through .ci/run)
#
# Safe to run repeatedly on a fresh Debian machine as root: every install step checks first.
# Sized for a 2-core machine: cargo picks its own job count, benchmarks run once in test mode,
# and the whole run stays well under CI's 90-minute limit (a few minutes from a cold cache).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
START=$(date +%s)

step() { printf '\n==> %s (t+%ss)\n' "$*" "$(( $(date +%s) - START ))"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# System packages (Debian). Later issues add what their integration tests need here, e.g.
#   SYSTEM_PACKAGES=(prometheus prometheus-alertmanager)
# for tests that run a real Prometheus and Alertmanager on loopback. prometheus (Debian: 2.42):
# tests/peers/prometheus_parity.rs checks the exposition parser against what it stores.
# ---------------------------------------------------------------------------------------------
# prometheus-alertmanager (Debian: 0.25): tests/peers/alertmanager.rs pushes alerts to a real one.
SYSTEM_PACKAGES=(prometheus prometheus-alertmanager)

install_system_packages() {
    (( ${#SYSTEM_PACKAGES[@]} )) || return 0
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    (( ${#missing[@]} )) || return 0
    step "installing Debian packages: ${missing[*]}"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Python test helpers (PyPI), in a venv under target/ so they never touch the system Python.
# Later issues add real protocol peers here, e.g.
#   PYTHON_PACKAGES=(aiosmtpd opentelemetry-proto grpcio)
# for a local SMTP sink and an OTLP receiver. aiosmtpd: tests/peers/email.rs delivers to a real SMTP
# server (STARTTLS, implicit TLS, AUTH) started by tests/fixtures/smtp_sink.py.
# Tests find the venv through BURNWATCH_TEST_PYTHON (exported below when the venv exists).
# ---------------------------------------------------------------------------------------------
PYTHON_PACKAGES=(aiosmtpd)
VENV="$ROOT/target/test-venv"

setup_python_venv() {
    (( ${#PYTHON_PACKAGES[@]} )) || return 0
    command -v python3 >/dev/null || die "python3 is needed for: ${PYTHON_PACKAGES[*]}"
    if [[ ! -x "$VENV/bin/python" ]]; then
        step "creating the test venv at $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -m pip show -q "${PYTHON_PACKAGES[@]}" >/dev/null 2>&1; then
        step "installing Python packages: ${PYTHON_PACKAGES[*]}"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
    fi
    export BURNWATCH_TEST_PYTHON="$VENV/bin/python"
}

# ---------------------------------------------------------------------------------------------
# Rust toolchain: it comes with the machine (rustup); only crates are fetched, from crates.io.
# ---------------------------------------------------------------------------------------------
check_toolchain() {
    command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup) first"
    local comp
    for comp in rustfmt clippy; do
        if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null || die "cargo $comp is missing and rustup is not available"
            step "adding the $comp component"
            rustup component add "$comp"
        fi
    done
    cargo --version
    rustc --version
}

step "toolchain"
check_toolchain
install_system_packages
setup_python_venv

# Incremental artifacts only cost time and disk on a one-shot CI build.
if [[ "${CI:-}" == "true" ]]; then
    export CARGO_INCREMENTAL=0
fi
# Warnings fail the run through clippy's -D warnings below. RUSTFLAGS is left alone on purpose:
# changing it would rebuild every dependency apart from a developer's usual `cargo test` build.

LOCKED=()
[[ -f Cargo.lock ]] && LOCKED=(--locked)

step "fetching crates"
cargo fetch "${LOCKED[@]}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets "${LOCKED[@]}" -- -D warnings

# Benchmarks are not compiled in release here: clippy --all-targets type-checks them and
# `cargo test --all-targets` builds and runs each once in test mode, which is what CI needs to
# keep them working; a release build of them costs ~4 minutes on 2 cores for no extra check.

LOG="$ROOT/target/test-output.log"
mkdir -p "$ROOT/target"
: >"$LOG"

step "cargo test --all-targets"
cargo test --all-targets "${LOCKED[@]}" 2>&1 | tee -a "$LOG"

step "cargo test --doc"
cargo test --doc "${LOCKED[@]}" 2>&1 | tee -a "$LOG"

# Add up every "test result:" line so one closing line gives the whole count.
read -r PASSED FAILED < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i
            if ($(i+1) ~ /^failed/) f += $i
        }
    } END { print p + 0, f + 0 }' "$LOG")
(( PASSED > 0 )) || die "no test ran"
(( FAILED == 0 )) || die "$FAILED tests failed"

printf '\nall checks green in %ss\n' "$(( $(date +%s) - START ))"
printf 'tests: %s passed, %s failed\n' "$PASSED" "$FAILED"
