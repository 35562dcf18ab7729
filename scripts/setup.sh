#!/usr/bin/env bash
# Install what clipline needs on a Debian or Ubuntu machine; safe to run again.
#   scripts/setup.sh          ffmpeg (the pipeline's decoder), ONNX Runtime (the model stages'
#                             runtime, from the PyPI wheel, linked where clipline finds it), and a
#                             check for the Rust toolchain
#   scripts/setup.sh --test   also the test tools: moto (a real S3 server) in the same venv
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

if [ ! -x "$CLIPLINE_VENV/bin/python" ]; then
    python3 -m venv "$CLIPLINE_VENV" 2>/dev/null || { apt_install python3-venv python3-pip; python3 -m venv "$CLIPLINE_VENV"; }
fi
pip_install() {
    "$CLIPLINE_VENV/bin/pip" install -q --disable-pip-version-check "$@"
}

# ONNX Runtime: the version the `ort` crate is built for. The wheel ships the shared library as
# libonnxruntime.so.<version>; clipline looks for it in $CLIPLINE_CACHE/lib.
if ! "$CLIPLINE_VENV/bin/python" -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" 2>/dev/null; then
    echo "setup: installing ONNX Runtime $ORT_VERSION (PyPI wheel) into $CLIPLINE_VENV"
    pip_install "onnxruntime==$ORT_VERSION"
fi
ort_lib="$(ls "$CLIPLINE_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)"
mkdir -p "$CLIPLINE_CACHE/lib"
ln -sf "$ort_lib" "$CLIPLINE_CACHE/lib/libonnxruntime.so"

if [ "$with_test_tools" = 1 ] && ! "$CLIPLINE_VENV/bin/python" -c "import moto, tokenizers" 2>/dev/null; then
    echo "setup: installing moto (S3 server) and tokenizers (the embedders' reference) into $CLIPLINE_VENV"
    pip_install 'moto[server]==5.2.1' 'tokenizers==0.22.1'
fi
echo "setup: ready (ffmpeg: $(command -v ffmpeg); ONNX Runtime: $ort_lib; build outputs: $CARGO_TARGET_DIR)"
