#!/usr/bin/env python3
"""Caption benchmark (a): the model loop alone, clipline against onnxruntime-python.

Both run the same ONNX files on the same preprocessed inputs the same way. Encoder-decoder
models: the encoder on every frame of a batch, each clip's frame states end to end, then greedy
decoding with the merged decoder's key/value cache (tests/models/reference_captioner.py is the
Python side). Idefics3/SmolVLM models (`--model tests/models/tiny-smolvlm`): clipline tiles and
tokenizes the frames beforehand and exports them; both sides then run the vision encoder, put
its features into the image tokens' embeddings and decode greedily
(tests/models/reference_smolvlm.py). Printed per batch size: clips/s and tokens/s of each, and
the ratio clipline / Python (target >= 1.0).

    python benches/captions.py [--model DIR] [--clips 96] [--threads 0]
Needs numpy, Pillow and onnxruntime (the set-up's venv has them but Pillow: pip install pillow).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import REPEAT, REPO, clipline_bench, need_clipline

sys.path.insert(0, str(REPO / "tests/models"))
import reference_captioner  # noqa: E402
import reference_smolvlm  # noqa: E402

COLOURS = [(220, 30, 30), (30, 60, 220), (30, 170, 60), (240, 220, 40), (245, 140, 20), (255, 255, 255), (0, 0, 0)]


def drawn(clips, per_clip, seed=1):
    """320x240 frames of drawn discs and boxes, clip by clip."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(clips):
        fg, bg = rng.choice(len(COLOURS), 2, replace=False)
        for _ in range(per_clip):
            image = Image.new("RGB", (320, 240), COLOURS[bg])
            x, y = rng.integers(40, 250), rng.integers(40, 170)
            draw = ImageDraw.Draw(image)
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x - 26, y - 26, x + 26, y + 26], fill=COLOURS[fg])
            out.append(image)
    return out


def frames(clips, per_clip, side):
    """Preprocessed frames, [clips * per_clip, 3, side, side]."""
    out = []
    for image in drawn(clips, per_clip):
        pixels = np.asarray(image.resize((side, side), Image.BILINEAR), np.float32) / 255.0
        out.append(((pixels - 0.5) / 0.5).transpose(2, 0, 1))
    return np.stack(out).astype("<f4")


def python_vlm_loop(model, ids, pixels, batch, max_new):
    """The SmolVLM loop over clipline's exported inputs: ids per clip, tiles of all clips."""
    sessions = reference_smolvlm.load(model)
    eos, image_token, pad = reference_smolvlm.tokens(model)
    clips, side = len(ids), pixels.shape[-1]
    per_clip = pixels.shape[0] // clips
    best, count = float("inf"), 0
    for _ in range(REPEAT):
        started, count = time.perf_counter(), 0
        for first in range(0, clips, batch):
            n = min(batch, clips - first)
            chunk = np.array(ids[first:first + n], np.int64)
            tiles = pixels[first * per_clip:(first + n) * per_clip][None]
            mask = np.ones((1, tiles.shape[1], side, side), bool)
            generated = reference_smolvlm.greedy(sessions, chunk, tiles, mask, max_new, eos, image_token, pad)
            count += sum(len(g) for g in generated)
        best = min(best, time.perf_counter() - started)
    return {"seconds": best, "clips_per_s": clips / best, "tokens_per_s": count / best, "tokens": count}


def vlm(args):
    """Benchmark (a) for an Idefics3/SmolVLM model."""
    images = drawn(args.clips, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        rgb = Path(tmp) / "frames.rgb"
        rgb.write_bytes(b"".join(np.asarray(im, np.uint8).tobytes() for im in images))
        print(f"caption model loop: {args.model.name} (Idefics3), {args.clips} clips x {args.frames} frames of 320x240, greedy, up to {args.max_new_tokens} tokens, best of {REPEAT}")
        print(f"{'batch':>5} {'clipline clips/s':>17} {'tokens/s':>9} {'python clips/s':>15} {'tokens/s':>9} {'ratio':>6}")
        for batch in (1, 4, 16):
            ours = clipline_bench("vlm-loop", model=args.model, rgb=rgb, clips=args.clips, frames=args.frames, width=320, height=240, batch=batch,
                                  max_new_tokens=args.max_new_tokens, repeat=REPEAT, threads=args.threads, export=tmp)
            ids = json.loads((Path(tmp) / "ids.json").read_text())
            side = json.loads((args.model / "preprocessor_config.json").read_text())["max_image_size"]["longest_edge"]
            pixels = np.fromfile(Path(tmp) / "pixels.bin", "<f4").reshape(-1, 3, side, side)
            theirs = python_vlm_loop(args.model, ids, pixels, batch, args.max_new_tokens)
            assert ours["tokens"] == theirs["tokens"], f"different token counts: {ours['tokens']} vs {theirs['tokens']}"
            print(f"{batch:>5} {ours['clips_per_s']:>17.1f} {ours['tokens_per_s']:>9.0f} {theirs['clips_per_s']:>15.1f} {theirs['tokens_per_s']:>9.0f} {ours['clips_per_s'] / theirs['clips_per_s']:>5.2f}x")


def python_loop(model, pixels, clips, per_clip, batch, max_new):
    encoder, decoder, tokens = reference_captioner.load(model)
    best, count = float("inf"), 0
    for _ in range(REPEAT):
        started, count = time.perf_counter(), 0
        for first in range(0, clips, batch):
            n = min(batch, clips - first)
            chunk = pixels[first * per_clip:(first + n) * per_clip]
            _, _, generated = reference_captioner.caption(encoder, decoder, tokens, chunk, n, per_clip, max_new)
            count += sum(len(g) for g in generated)
        best = min(best, time.perf_counter() - started)
    return {"seconds": best, "clips_per_s": clips / best, "tokens_per_s": count / best, "tokens": count}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "tests/models/tiny-captioner")
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="threads per model run, both sides (0: one per core)")
    args = parser.parse_args()
    need_clipline()
    os.environ["CLIPLINE_ORT_THREADS"] = str(args.threads)
    if any((args.model / d / "vision_encoder.onnx").exists() for d in (".", "onnx")):
        return vlm(args)
    side = json.loads((args.model / "preprocessor_config.json").read_text())["size"]["height"]
    pixels = frames(args.clips, args.frames, side)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pixels.bin"
        pixels.tofile(path)
        print(f"caption model loop: {args.model.name}, {args.clips} clips x {args.frames} frames at {side}px, greedy, up to {args.max_new_tokens} tokens, best of {REPEAT}")
        print(f"{'batch':>5} {'clipline clips/s':>17} {'tokens/s':>9} {'python clips/s':>15} {'tokens/s':>9} {'ratio':>6}")
        for batch in (1, 4, 16):
            ours = clipline_bench("caption-loop", model=args.model, pixels=path, clips=args.clips, frames=args.frames, size=side, batch=batch,
                                  max_new_tokens=args.max_new_tokens, repeat=REPEAT, threads=args.threads)
            theirs = python_loop(args.model, pixels, args.clips, args.frames, batch, args.max_new_tokens)
            assert ours["tokens"] == theirs["tokens"], f"different token counts: {ours['tokens']} vs {theirs['tokens']}"
            print(f"{batch:>5} {ours['clips_per_s']:>17.1f} {ours['tokens_per_s']:>9.0f} {theirs['clips_per_s']:>15.1f} {theirs['tokens_per_s']:>9.0f} {ours['clips_per_s'] / theirs['clips_per_s']:>5.2f}x")


if __name__ == "__main__":
    main()
