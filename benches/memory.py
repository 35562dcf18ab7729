#!/usr/bin/env python3
"""Benchmark `memory`: peak RSS of clipline over N and 10N inputs; it should stay flat.

    python3 benches/memory.py [N]      (default 16: at least the videos the pipeline keeps in flight)

Generates 10N distinct synthetic videos (320x240, 80 frames, ffmpeg's `life` source with
different seeds), runs `clipline run` (middle frames on, clip files off) over the first N and
over all 10N, and reads the clipline process's peak RSS (VmHWM in /proc, sampled until it
exits). ffmpeg child processes are not counted: their size depends on the video, not on N.
"""
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CLIPLINE, need_clipline, parallel


def make(path, seed):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi",
                    "-i", f"life=seed={seed}:mold=10:ratio=0.1:s=320x240:r=25", "-frames:v", "80",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)


def peak_rss_mib(inputs_dir, output):
    proc = subprocess.Popen([str(CLIPLINE), "--quiet", "run", "--input", str(inputs_dir), "--output", str(output),
                             "--no-clip-files"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    if proc.returncode not in (0, 3):
        sys.exit(f"clipline failed with {proc.returncode}")
    return peak / 1024


def main():
    need_clipline()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    work = Path(tempfile.mkdtemp(prefix="clipline-memory-"))
    small, large = work / "small", work / "large"
    small.mkdir()
    large.mkdir()
    parallel(lambda i: make(large / f"v{i:04}.mp4", i), range(10 * n))
    for i in range(n):
        shutil.copy(large / f"v{i:04}.mp4", small / f"v{i:04}.mp4")
    rss_n = peak_rss_mib(small, work / "out-small")
    rss_10n = peak_rss_mib(large, work / "out-large")
    print(f"peak RSS over {n:4} inputs: {rss_n:7.1f} MiB")
    print(f"peak RSS over {10 * n:4} inputs: {rss_10n:7.1f} MiB")
    print(f"ratio 10N / N: {rss_10n / rss_n:.2f} (target: within 1.20)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
