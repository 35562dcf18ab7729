#!/usr/bin/env bash
# Install what clipline needs on a Debian or Ubuntu machine; safe to run again.
#   scripts/setup.sh          ffmpeg (the pipeline's decoder), and a check for the Rust toolchain
#   scripts/setup.sh --test   also the test tools: a Python venv with moto (a real S3 server)
set -euo pipefail
source "$(dirname "$0")/env.sh"

with_test_tools=0
[ "${1:-}" = "--test" ] && with_test_tools=1
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_ready=0
apt_install() {
    if [ "$apt_ready" = 0 ]; then
        $SUDO apt-get update -qq
        apt_ready=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found. Install Rust 1.92 or newer (https://rustup.rs), then run this again." >&2
    exit 1
fi
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    echo "setup: installing ffmpeg (Debian package)"
    apt_install ffmpeg
fi

if [ "$with_test_tools" = 1 ]; then
    if [ ! -x "$CLIPLINE_VENV/bin/moto_server" ]; then
        echo "setup: creating $CLIPLINE_VENV with moto (S3 server for the tests)"
        python3 -m venv "$CLIPLINE_VENV" 2>/dev/null || { apt_install python3-venv python3-pip; python3 -m venv "$CLIPLINE_VENV"; }
        "$CLIPLINE_VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.1'
    fi
fi
echo "setup: ready (ffmpeg: $(command -v ffmpeg); build outputs: $CARGO_TARGET_DIR)"
