#!/usr/bin/env bash
# Do two revisions of clipline make the same outputs? The check every refactoring must pass.
#   scripts/same-outputs.sh BASE_REV [REV]     (REV defaults to the working tree)
# Builds the `clipline` binary of each side, runs on each the demo (`clipline demo`) and a run of
# configs/demo.toml over the real footage in CLIPLINE_VIDEOS (default ../shared/videos; clip
# files, middle frames, captions with the text score, latents and shards), then compares every
# manifest row (run ids, times and model latencies aside), every shard's bytes, and the decoded
# frames of every clip file and middle frame (scripts/same_outputs.py). Exits 1 on a difference.
# Revisions build in their own target directory ($CLIPLINE_SAME_OUTPUTS_TARGET, default
# ~/.cache/clipline/target-same-outputs, seeded from the main one): cargo names a workspace crate's
# artifacts the same in every checkout and judges them fresh by modification times, so a checkout
# sharing the working tree's target could link the other side's crates.
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 1 ] || { echo "usage: scripts/same-outputs.sh BASE_REV [REV]" >&2; exit 2; }
"$REPO_ROOT/scripts/setup.sh" --test >/dev/null
videos="${CLIPLINE_VIDEOS:-$REPO_ROOT/../shared/videos}"
[ -f "$videos/bikes_street_cuts.mp4" ] || { echo "same-outputs: no real footage at $videos (set CLIPLINE_VIDEOS)" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/clipline-same-outputs.XXXXXX")"
rev_target="${CLIPLINE_SAME_OUTPUTS_TARGET:-$CLIPLINE_CACHE/target-same-outputs}"
if [ ! -d "$rev_target" ] && [ -d "$CARGO_TARGET_DIR" ]; then
    echo "same-outputs: seeding $rev_target from $CARGO_TARGET_DIR (the dependencies' builds)"
    cp -a "$CARGO_TARGET_DIR" "$rev_target"
fi
trap 'git -C "$REPO_ROOT" worktree prune; rm -rf "$work"' EXIT

# side NAME REV: build REV's binary (the working tree when REV is empty) and make its outputs.
side() {
    local name="$1" rev="$2" src="$REPO_ROOT" target="$CARGO_TARGET_DIR"
    if [ -n "$rev" ]; then
        src="$work/src-$name"
        target="$rev_target"
        git -C "$REPO_ROOT" worktree add --quiet --detach "$src" "$rev"
    fi
    echo "same-outputs: building $name (${rev:-working tree})"
    [ -n "$rev" ] || claim_target
    CARGO_TARGET_DIR="$target" cargo build --quiet --manifest-path "$src/Cargo.toml" --locked --bin clipline
    cp "$target/debug/clipline" "$work/clipline-$name"
    echo "same-outputs: $name: demo, then configs/demo.toml over $videos"
    "$work/clipline-$name" --quiet demo --output "$work/$name/demo" >/dev/null
    local status=0
    "$work/clipline-$name" --quiet run "$src/configs/demo.toml" --input "$videos" --output "$work/$name/real" >/dev/null || status=$?
    # Exit 3 means some inputs failed, which are rows like any other.
    [ "$status" = 0 ] || [ "$status" = 3 ] || { echo "same-outputs: $name's run failed ($status)" >&2; exit 1; }
    if [ -n "$rev" ]; then git -C "$REPO_ROOT" worktree remove --force "$src"; fi
}
side base "$(git -C "$REPO_ROOT" rev-parse --verify "$1^{commit}")"
side head "${2:+$(git -C "$REPO_ROOT" rev-parse --verify "$2^{commit}")}"
"$CLIPLINE_VENV/bin/python" "$REPO_ROOT/scripts/same_outputs.py" "$work/base" "$work/head"
