#!/usr/bin/env python3
"""Benchmark `encode`: frames/s of the image VAE encoder, clipline against onnxruntime-python.

Both run the same ONNX file on the same frames in the same batches: packed RGB bytes in,
normalised to [-1, 1], `latent_parameters` out, the mean scaled (tests/models/reference_embedders.py
is the Python side). The frames are decoded from real footage when there is some
($CLIPLINE_VIDEOS or ../shared/videos), else drawn gradients. Prints frames/s of each per batch
size and the ratio clipline / Python (target >= 1.0).

    python benches/encode.py [--model tests/models/tiny-vae] [--frames 256] [--size 144x256] [--threads 0]
Needs numpy and onnxruntime (the set-up's venv has them).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import EXTENSIONS, REPEAT, REPO, VIDEOS, clipline_bench, need_clipline

sys.path.insert(0, str(REPO / "tests/models"))
import reference_embedders  # noqa: E402


def frames(count, height, width):
    """[count, height, width, 3] uint8: real footage scaled and cropped to the size, or gradients."""
    files = sorted(p for p in VIDEOS.iterdir() if p.suffix.lower() in EXTENSIONS) if VIDEOS.is_dir() else []
    chunks, need = [], count
    for path in files:
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vf",
             f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}",
             "-frames:v", str(need), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            check=True, capture_output=True).stdout
        chunk = np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)
        chunks.append(chunk)
        need -= len(chunk)
        if need <= 0:
            return np.concatenate(chunks)[:count], "real footage"
    y, x = np.mgrid[0:height, 0:width]
    drawn = np.stack([np.stack([(x * 3 + i) % 256, (y * 5 + 2 * i) % 256, np.full_like(x, (7 * i) % 256)], -1) for i in range(count)])
    return drawn.astype(np.uint8), "drawn gradients"


def python_encode(model, rgb, batch):
    vae = reference_embedders.load_vae(model)
    best = float("inf")
    for _ in range(REPEAT):
        started = time.perf_counter()
        for first in range(0, len(rgb), batch):
            reference_embedders.vae_latents(vae, rgb[first:first + batch])
        best = min(best, time.perf_counter() - started)
    return {"seconds": best, "frames_per_s": len(rgb) / best}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "tests/models/tiny-vae")
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--size", default="144x256", help="HEIGHTxWIDTH")
    parser.add_argument("--threads", type=int, default=0, help="threads per model run, both sides (0: one per core)")
    args = parser.parse_args()
    need_clipline()
    height, width = map(int, args.size.split("x"))
    rgb, origin = frames(args.frames, height, width)
    os.environ["CLIPLINE_ORT_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.rgb"
        rgb.tofile(path)
        print(f"VAE encode: {args.model.name}, {len(rgb)} frames of {width}x{height} ({origin}), best of {REPEAT}")
        print(f"{'batch':>5} {'clipline frames/s':>18} {'python frames/s':>16} {'ratio':>6}")
        for batch in (1, 4, 16):
            ours = clipline_bench("vae-encode", model=args.model, frames=path, height=height, width=width, batch=batch, repeat=REPEAT, threads=args.threads)
            theirs = python_encode(args.model, rgb, batch)
            print(f"{batch:>5} {ours['frames_per_s']:>18.1f} {theirs['frames_per_s']:>16.1f} {ours['frames_per_s'] / theirs['frames_per_s']:>5.2f}x")


if __name__ == "__main__":
    main()
