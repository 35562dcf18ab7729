"""Compare the outputs of two clipline builds (scripts/same-outputs.sh makes them).

    same_outputs.py BASE_DIR HEAD_DIR

Each directory holds the same runs (`demo/`, `real/`). Equal means: every manifest table but
`runs` has the same rows (output roots, run ids, creation times and caption latencies aside),
every shard file has the same bytes, and every clip file and middle frame decodes to the same
frames (ffmpeg's framemd5). Prints a line per check and exits 1 on any difference.
"""

import hashlib
import subprocess
import sys
from pathlib import Path

import polars as pl

TABLES = ["videos", "shots", "clips", "captions", "samples", "shards"]
# Columns that differ between two runs of the same build: when, how long, which invocation.
VOLATILE = {"created_at", "latency_ms", "run_id"}


def rows(output: Path, table: str) -> pl.DataFrame:
    parts = sorted((output / "manifests" / table).glob("*.parquet"))
    if not parts:
        return pl.DataFrame()
    frame = pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed")
    frame = frame.drop([c for c in frame.columns if c in VOLATILE])
    root = str(output.resolve())
    frame = frame.with_columns(pl.col(c).str.replace_all(root, "OUT", literal=True) for c, t in frame.schema.items() if t == pl.String)
    return frame.sort([c for c, t in frame.schema.items() if not t.is_nested()], nulls_last=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frames(path: Path) -> str:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"], capture_output=True, text=True, timeout=300, check=True)
    return "\n".join(line for line in out.stdout.splitlines() if not line.startswith("#"))


def compare(base: Path, head: Path) -> list[str]:
    problems = []
    for table in TABLES:
        a, b = rows(base, table), rows(head, table)
        if a.columns != b.columns or not a.equals(b, null_equal=True):
            problems.append(f"{table}: rows differ ({a.height} vs {b.height} rows)")
        else:
            print(f"  {table}: {a.height} rows equal")
    shards = lambda d: {p.name: digest(p) for p in (d / "shards").glob("*.shard")}
    if shards(base) != shards(head):
        problems.append(f"shards differ: {sorted(set(shards(base).items()) ^ set(shards(head).items()))[:4]}")
    else:
        print(f"  shards: {len(shards(base))} files byte-identical")
    for kind, pattern in (("clip files", "clips/*/*.mp4"), ("middle frames", "frames/*/*.jpg")):
        names = lambda d: sorted(p.relative_to(d) for p in d.glob(pattern))
        if names(base) != names(head):
            problems.append(f"{kind}: different files")
            continue
        different = [str(n) for n in names(base) if frames(base / n) != frames(head / n)]
        if different:
            problems.append(f"{kind}: frames differ in {different[:4]}")
        else:
            print(f"  {kind}: {len(names(base))} files, the same decoded frames")
    return problems


def main() -> int:
    base, head = Path(sys.argv[1]), Path(sys.argv[2])
    problems = []
    for run in ("demo", "real"):
        print(f"{run}:")
        problems += [f"{run}: {p}" for p in compare(base / run, head / run)]
    for p in problems:
        print(f"DIFFERENT {p}")
    print("same outputs" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
