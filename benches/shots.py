#!/usr/bin/env python3
"""Benchmark `shots`: speed of shot detection, side by side, on a directory of videos.

    python3 benches/shots.py [VIDEO_DIR]      (default: $CLIPLINE_VIDEOS or ../shared/videos)

Prints frames/s and video-seconds/s of
  - a plain ffmpeg decode at clipline's analysis size (128x72), discarding the frames: the floor;
  - clipline's shot detection (`run --no-clip-files --no-middle-frames`: fetch, hash, probe,
    decode, detect, score, commit);
  - clipline's ingest with middle frames (the frame-exact seeks included), and with re-encoded
    clip files too (the default);
  - PySceneDetect 0.7 (OpenCV backend) ContentDetector and AdaptiveDetector at their defaults;
each using every core across videos (one process per video at a time per core), and the ratios;
every figure is the best of CLIPLINE_BENCH_REPEAT runs (default 3).
Needs: ffmpeg, a built clipline, `pip install scenedetect opencv-python-headless duckdb`.
"""
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

from common import CORES, REPEAT, best_of, clipline_run, parallel, plain_decode, probe_frames, pyscenedetect_cuts, videos


def main():
    files = videos(sys.argv[1]) if len(sys.argv) > 1 else videos()
    counts = [probe_frames(f) for f in files]
    frames = sum(c[0] for c in counts)
    seconds = sum(c[1] for c in counts)
    print(f"{len(files)} videos, {frames} frames, {seconds:.1f} s of video, {CORES} cores; best of {REPEAT} runs each")

    results = {}
    results["ffmpeg decode 128x72 (floor)"] = best_of(parallel, plain_decode, files)
    variants = {
        "clipline shots + scores": ["--no-clip-files", "--no-middle-frames"],
        "clipline ingest + middle frames": ["--no-clip-files"],
        "clipline ingest + frames + clip files": [],
    }
    for name, flags in variants.items():
        results[name] = best_of(clipline_run, files, *flags, cleanup=shutil.rmtree)
    for detector in ("content", "adaptive"):
        with ProcessPoolExecutor(max_workers=CORES) as pool:
            results[f"PySceneDetect {detector}"] = best_of(lambda: list(pool.map(pyscenedetect_cuts, files, [detector] * len(files))))

    floor = results["ffmpeg decode 128x72 (floor)"]
    print(f"{'':38} {'wall s':>8} {'frames/s':>10} {'video s/s':>10} {'x floor':>8}")
    for name, t in results.items():
        print(f"{name:38} {t:8.2f} {frames / t:10.0f} {seconds / t:10.1f} {t / floor:8.2f}")
    ours = results["clipline shots + scores"]
    for detector in ("content", "adaptive"):
        print(f"clipline is {results[f'PySceneDetect {detector}'] / ours:.2f}x as fast as PySceneDetect {detector}")
    print("decodes per source video: 1 full analysis decode; middle frames and clip files add"
          " frame-exact seeks (keyframe to target only)")


if __name__ == "__main__":
    main()
