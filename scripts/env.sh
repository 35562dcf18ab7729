# Shared settings of the clipline scripts (sourced, not run).
# Build outputs and tool environments live outside the clone, so that a fresh checkout on the
# same machine (a CI run, a second worktree) reuses them.
CLIPLINE_CACHE="${CLIPLINE_CACHE:-$HOME/.cache/clipline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CLIPLINE_CACHE/target}"
CLIPLINE_VENV="$CLIPLINE_CACHE/venv"
# pip's downloads (the PyTorch wheels of the test set-up are a few GB) are kept here too.
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CLIPLINE_CACHE/pip}"
# The ONNX Runtime release the `ort` crate is built for (onnx/src/library.rs WANTED_VERSION).
ORT_VERSION=1.31.1
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# cargo names a workspace crate's build the same in every checkout and judges it fresh by the
# files' modification times, so in a target directory last built from another checkout (a CI
# clone, a second worktree) this checkout's older files would pass for built, and the other
# checkout's crates, with the paths compiled into them, would be linked. The scripts that build
# call this first: when the target was last built elsewhere, this checkout's files are touched so
# that its own crates are rebuilt (the dependencies' builds are shared as before).
claim_target() {
    local mark="$CARGO_TARGET_DIR/.clipline-checkout"
    if [ -d "$CARGO_TARGET_DIR" ] && [ "$(cat "$mark" 2>/dev/null)" != "$REPO_ROOT" ]; then
        echo "clipline: $CARGO_TARGET_DIR was last built from another checkout; this one's crates are rebuilt" >&2
        if ! (cd "$REPO_ROOT" && git ls-files -z 2>/dev/null | xargs -0 -r touch -c); then
            find "$REPO_ROOT" -path "$REPO_ROOT/.git" -prune -o -type f -exec touch -c {} +
        fi
    fi
    mkdir -p "$CARGO_TARGET_DIR"
    echo "$REPO_ROOT" > "$mark"
}

# LibTorch for the trainer's `libtorch` feature: the library of the PyTorch wheel that
# `setup.sh --test` installs into the venv (no separate download). torch-sys builds against it
# (LIBTORCH, and the wheel's C++ ABI); the binary finds it on LD_LIBRARY_PATH at run time. tch
# 0.22 names PyTorch 2.9.0 and the venv pins 2.9.1 (the same C++ API), hence the bypass.
use_libtorch() {
    local found
    found="$("$CLIPLINE_VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI))')" || return 1
    export LIBTORCH="${found% *}" LIBTORCH_CXX11_ABI="${found##* }" LIBTORCH_BYPASS_VERSION_CHECK=1
    export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
