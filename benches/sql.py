#!/usr/bin/env python3
"""Benchmark `sql`: latency of the ready queries over `videos` and `clips` (sql/queries/) on a
synthetic manifest of 1M and 10M clip rows, clipline (polars, in process) against DuckDB (PyPI
`duckdb`, in process) on the same Parquet files, printed side by side. Best of several passes
after one untimed pass, for both.

clipline writes the synthetic output (`clipline bench sql`, the real schema, zstd parts of
500k rows with their commit markers) and times its queries; DuckDB then reads the same part
files through views named like the tables and runs the same SQL text.

    python benches/sql.py [--rows 1000000,10000000] [--dir /tmp/clipline-sql-bench]
Needs duckdb (scripts/setup.sh --test installs it into the venv).
"""
import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import duckdb

from common import CLIPLINE, REPEAT, REPO, need_clipline


def clipline_times(data, rows):
    out = subprocess.run([str(CLIPLINE), "--quiet", "bench", "sql", "--data", str(data), "--rows", str(rows), "--repeat", str(REPEAT)],
                         check=True, capture_output=True, text=True)
    return {r["query"]: r for r in map(json.loads, out.stdout.splitlines())}


def duckdb_times(data, names):
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 2}")
    for table in ("videos", "clips"):
        files = sorted(str(p) for p in (Path(data) / "manifests" / table).glob("*.parquet"))
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
    times = {}
    for name in names:
        sql = (REPO / "sql" / "queries" / f"{name}.sql").read_text()
        best, rows = float("inf"), 0
        for _ in range(REPEAT + 1):
            start = time.perf_counter()
            rows = len(con.execute(sql).fetchall())
            best = min(best, time.perf_counter() - start)
        times[name] = {"seconds": best, "rows": rows}
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="clip rows of each synthetic manifest")
    parser.add_argument("--dir", default="/tmp/clipline-sql-bench", help="where the synthetic outputs are kept (reused)")
    args = parser.parse_args()
    need_clipline()
    print(f"best of {REPEAT} passes after one untimed pass; {os.cpu_count()} cores; duckdb {duckdb.__version__}")
    print(f"{'rows':>10} {'query':<22} {'clipline s':>11} {'duckdb s':>9} {'ratio':>6}  rows out")
    for rows in map(int, args.rows.split(",")):
        data = Path(args.dir) / f"clips-{rows}"
        ours = clipline_times(data, rows)
        theirs = duckdb_times(data, list(ours))
        for name, r in ours.items():
            d = theirs[name]
            same = "" if d["rows"] == r["rows"] else f" (duckdb: {d['rows']})"
            print(f"{rows:>10} {name:<22} {r['seconds']:>11.3f} {d['seconds']:>9.3f} {r['seconds'] / d['seconds']:>5.2f}x  {r['rows']}{same}")
        total_ours = sum(r["seconds"] for r in ours.values())
        total_theirs = sum(d["seconds"] for d in theirs.values())
        print(f"{rows:>10} {'(all queries)':<22} {total_ours:>11.3f} {total_theirs:>9.3f} {total_ours / total_theirs:>5.2f}x")


if __name__ == "__main__":
    main()
