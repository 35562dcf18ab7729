#!/usr/bin/env bash
# Install what the tests need, then run every test of the workspace.
#   scripts/test.sh [extra cargo test arguments]
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$REPO_ROOT/scripts/setup.sh" --test
export CLIPLINE_MOTO_SERVER="$CLIPLINE_VENV/bin/moto_server"
export CLIPLINE_REQUIRE_S3=1
# The captioner is checked against onnxruntime-python from the set-up's venv.
export CLIPLINE_PYTHON="$CLIPLINE_VENV/bin/python"
# A real text encoder (all-MiniLM-L6-v2 int8), fetched by the set-up.
export CLIPLINE_MINILM="$CLIPLINE_CACHE/models/all-MiniLM-L6-v2-int8"
# PP-OCRv4's text detector, fetched by the set-up.
export CLIPLINE_TEXT_DETECTOR="$CLIPLINE_CACHE/models/ppocr-v4-det/det.onnx"
# Chromium renders the report, Jupyter runs the notebooks (from the same venv).
export CLIPLINE_REQUIRE_ANALYST_TOOLS=1
# The Slurm test starts a single-node cluster (the set-up installs it; it needs root).
export CLIPLINE_REQUIRE_SLURM=1
cd "$REPO_ROOT"
exec cargo test --workspace --locked --no-fail-fast "$@"
