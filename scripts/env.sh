# Shared settings of the clipline scripts (sourced, not run).
# Build outputs and tool environments live outside the clone, so that a fresh checkout on the
# same machine (a CI run, a second worktree) reuses them.
CLIPLINE_CACHE="${CLIPLINE_CACHE:-$HOME/.cache/clipline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CLIPLINE_CACHE/target}"
CLIPLINE_VENV="$CLIPLINE_CACHE/venv"
# The ONNX Runtime release the `ort` crate is built for (onnx/src/library.rs WANTED_VERSION).
ORT_VERSION=1.31.1
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
