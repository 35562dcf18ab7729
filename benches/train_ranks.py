#!/usr/bin/env python3
"""Benchmark `train_ranks`: data-parallel scaling of `clipline train` on this machine's cores.
The same global batches three ways: 1 rank accumulating 2 batches per step, 2 ranks with 1
batch each, and 2 ranks with 2 each (twice the work per step); seconds per step, samples/s of
the whole job, and the share of the step spent summing gradients (`sync_pct`, rank 0, waiting
for the slower rank included).

    python benches/train_ranks.py --data clipline-demo [--config configs/train-tiny.toml] [--steps 30]
"""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from common import CLIPLINE, CORES, need_clipline


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(config, data, steps, ranks, accumulate, scratch):
    text = Path(config).read_text().replace("grad_accum = 1", f"grad_accum = {accumulate}")
    cfg = scratch / f"r{ranks}a{accumulate}.toml"
    cfg.write_text(text)
    run_dir = scratch / f"run-r{ranks}a{accumulate}"
    port = free_port() - 1
    # The cores split between the ranks, as torchrun does (it sets OMP_NUM_THREADS=1 per rank):
    # LibTorch's OpenMP and Flex's rayon pools would otherwise each take every core.
    threads = str(max(1, CORES // ranks))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(ranks),
           "OMP_NUM_THREADS": threads, "RAYON_NUM_THREADS": threads}
    started = time.perf_counter()
    procs = [subprocess.Popen([str(CLIPLINE), "-q", "train", str(cfg), "--data", data, "--run-dir", str(run_dir), "--steps", str(steps)],
                              env={**env, "RANK": str(r)}, stdout=subprocess.DEVNULL) for r in range(ranks)]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"{ranks} ranks: exit codes {codes}")
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # Steady state: the second half of the steps (start-up, the first checkpoint and caches aside).
    half = lines[len(lines) // 2:]
    # Each line covers one logging window: its samples (rank 0's) and, from its rate, its time.
    counts = [b["samples"] - a["samples"] for a, b in zip(half, half[1:])]
    times = [n / l["samples_per_s"] for n, l in zip(counts, half[1:]) if l["samples_per_s"] > 0]
    synced = sum(t * l.get("sync_pct", 0.0) / 100 for t, l in zip(times, half[1:]))
    return {"ranks": ranks, "accumulate": accumulate, "wall_s": wall, "samples_per_s": sum(counts) * ranks / sum(times), "sync_pct": 100 * synced / sum(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", default="configs/train-tiny.toml")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    need_clipline()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.config, args.data, args.steps, r, a, Path(tmp)) for r, a in ((1, 2), (2, 1), (2, 2))]
    print(f"data-parallel scaling: {args.config}, {args.steps} steps, {os.cpu_count()} cores; samples/s of the job over the second half of the steps")
    print(f"{'ranks':>5} {'batches/rank/step':>18} {'samples/s':>10} {'sync % of step':>15} {'wall s':>7}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['accumulate']:>18} {r['samples_per_s']:>10.1f} {r['sync_pct']:>15.1f} {r['wall_s']:>7.1f}")
    print(f"speed-up, 1 -> 2 ranks on the same global batches: {rows[1]['samples_per_s'] / rows[0]['samples_per_s']:.2f}x")


if __name__ == "__main__":
    main()
