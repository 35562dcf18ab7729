#!/usr/bin/env python3
"""Benchmark `memory`: peak RSS of clipline over N and 10N inputs; it should stay flat.

    python3 benches/memory.py [N]      (default 40: long enough to reach the steady state)

Generates 10N distinct synthetic videos (320x240, 80 frames, ffmpeg's `life` source with
different seeds), runs `clipline run` (middle frames on, clip files off) over the first N and
over all 10N, and reads the clipline process's peak RSS (VmHWM in /proc, sampled until it
exits), and the RSS at each quarter of the 10N run, which shows whether it grows or plateaus.
ffmpeg child processes are not counted: their size depends on the video, not on N.
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


def rss_mib(inputs_dir, output):
    """(peak RSS, [current RSS samples]) of one clipline run, in MiB."""
    proc = subprocess.Popen([str(CLIPLINE), "--quiet", "run", "--input", str(inputs_dir), "--output", str(output),
                             "--no-clip-files"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, samples = 0, []
    while proc.poll() is None:
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
            peak = max(peak, int(status["VmHWM"].split()[0]))
            samples.append(int(status["VmRSS"].split()[0]) / 1024)
        except (FileNotFoundError, ProcessLookupError, KeyError, ValueError):
            break
        time.sleep(0.02)
    if proc.wait() not in (0, 3):
        sys.exit(f"clipline failed with {proc.returncode}")
    return peak / 1024, samples


def main():
    need_clipline()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    work = Path(tempfile.mkdtemp(prefix="clipline-memory-"))
    small, large = work / "small", work / "large"
    small.mkdir()
    large.mkdir()
    parallel(lambda i: make(large / f"v{i:04}.mp4", i), range(10 * n))
    for i in range(n):
        shutil.copy(large / f"v{i:04}.mp4", small / f"v{i:04}.mp4")
    rss_n, _ = rss_mib(small, work / "out-small")
    rss_10n, samples = rss_mib(large, work / "out-large")
    print(f"peak RSS over {n:4} inputs: {rss_n:7.1f} MiB")
    print(f"peak RSS over {10 * n:4} inputs: {rss_10n:7.1f} MiB")
    print(f"ratio 10N / N: {rss_10n / rss_n:.2f} (target: within 1.20)")
    quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3, 4)] if samples else []
    print("RSS through the 10N run at 1/4, 1/2, 3/4, end: " + ", ".join(f"{q:.1f}" for q in quarters) + " MiB")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
