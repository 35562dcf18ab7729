#!/usr/bin/env bash
# Fuzz the shard reader with cargo fuzz (libFuzzer; needs a nightly toolchain, installed here when
# missing) for a bounded time per target; seeds are the shards of an output, when given.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [OUTPUT_WITH_SHARDS]     e.g. scripts/fuzz.sh 300 clipline-demo
# A crash leaves its input under shard/fuzz/artifacts/ and the script exits non-zero.
set -euo pipefail
source "$(dirname "$0")/env.sh"
seconds="${1:-120}"
seeds="${2:-}"
command -v rustup >/dev/null || { echo "fuzz: rustup is needed for a nightly toolchain" >&2; exit 1; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
cd "$REPO_ROOT/shard"
# Its own target directory: sanitizer builds share nothing with the normal ones.
export CARGO_TARGET_DIR="$CLIPLINE_CACHE/fuzz-target"
mkdir -p fuzz/corpus/shard_reader fuzz/corpus/sample_frame
if [ -n "$seeds" ] && [ -d "$seeds/shards" ]; then
    cp "$seeds"/shards/*.shard fuzz/corpus/shard_reader/ 2>/dev/null || true
fi
for target in shard_reader sample_frame; do
    echo "fuzz: $target for $seconds s"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $target failed; a crashing input is under shard/fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log"
    rm -f "$log"
done
