#!/usr/bin/env bash
# The main job: make synthetic videos with known shots and run the pipeline on them.
#   scripts/demo.sh [OUTPUT_DIR]     (default: ./clipline-demo)
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
claim_target
cargo build --manifest-path "$REPO_ROOT/Cargo.toml" --locked --bin clipline
exec "$CARGO_TARGET_DIR/debug/clipline" demo --output "${1:-clipline-demo}"
