#!/usr/bin/env python3
"""Caption benchmark (b): end to end from clips to captions, clipline against a Python pipeline.

Both start from the same cut: the clip files a `clipline run` writes.

clipline: `clipline run` with a [caption] section, minus the same run without it (the cut alone:
probe, analysis decode, shot detection, clip files), each the best of CLIPLINE_BENCH_REPEAT runs;
clipline's cost is the larger of that difference and the caption worker's busy time (the sum of
the captions' `latency_ms`): captioning overlaps decoding, so the difference alone can vanish in
the runs' noise. The difference is what captioning costs
inside the dataflow: the caption frames come from the decode that writes the clip files anyway,
and are preprocessed and captioned in batches gathered across videos while other videos decode.

Python, in the style of the peers' caption scripts (which caption the clip files a cutting step
wrote): each clip file's frames at 20%, 50% and 80% read with PyAV (seek, then decode to the
frame), resized and normalised with PIL and numpy, batched across clips, and captioned with
onnxruntime running the same greedy loop on the same ONNX files
(tests/models/reference_captioner.py).

`--no-clip-files` compares without clip files instead: clipline then decodes each clip for its
caption frames alone, and Python seeks in the source videos.

Printed: clips, seconds, clips/s, tokens/s of each, and the ratio (target >= 1.5).

    python benches/captions_e2e.py [VIDEO_DIR] [--model DIR] [--batch 16]
Needs numpy, Pillow, av, onnxruntime and duckdb; VIDEO_DIR defaults to CLIPLINE_VIDEOS or
../shared/videos.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import duckdb
import numpy as np
from PIL import Image

from common import REPEAT, REPO, VIDEOS, clipline_run, timed, videos

sys.path.insert(0, str(REPO / "tests/models"))
import reference_captioner  # noqa: E402

POSITIONS = [0.2, 0.5, 0.8]


def config(path, model, batch, clip_files):
    """A run config: clip files or not, no middle frames; captions when `model` is given."""
    text = f"[clips]\nwrite_clip_files = {str(clip_files).lower()}\nwrite_middle_frames = false\n"
    if model:
        text += f'\n[caption]\nmodel = "{model}"\nbatch_size = {batch}\n'
    Path(path).write_text(text)
    return path


def read_frames(uri, start, end):
    """The clip's frames at POSITIONS, as RGB images (seek to each, decode up to it)."""
    with av.open(uri.removeprefix("file://")) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        out = []
        for p in POSITIONS:
            index = start + round(p * (end - start - 1))
            seconds = index / rate
            container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= seconds - 0.5 / rate:
                    out.append(frame.to_image())
                    break
        return out


def preprocess(images, processor):
    side = processor["size"].get("height") or processor["size"].get("shortest_edge")
    mean, std = np.array(processor["image_mean"], np.float32), np.array(processor["image_std"], np.float32)
    pixels = [((np.asarray(im.convert("RGB").resize((side, side), Image.BILINEAR), np.float32) / 255.0 - mean) / std).transpose(2, 0, 1) for im in images]
    return np.stack(pixels).astype(np.float32)


def python_pipeline(model, clips, batch):
    encoder, decoder, tokens = reference_captioner.load(model)
    processor = json.loads((model / "preprocessor_config.json").read_text())
    count = 0
    for first in range(0, len(clips), batch):
        chunk = clips[first:first + batch]
        frames = [im for uri, start, end in chunk for im in read_frames(uri, start, end)]
        pixels = preprocess(frames, processor)
        _, _, generated = reference_captioner.caption(encoder, decoder, tokens, pixels, len(chunk), len(POSITIONS), 96)
        count += sum(len(g) for g in generated)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="?", default=VIDEOS)
    parser.add_argument("--model", default=str(REPO / "tests/models/tiny-captioner"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--no-clip-files", action="store_true", help="cut without clip files (Python reads the sources)")
    args = parser.parse_args()
    inputs = videos(args.videos)
    work = Path(tempfile.mkdtemp(prefix="clipline-captions-e2e-"))

    files = not args.no_clip_files

    def best_run(name, model):
        """Fastest of REPEAT runs into fresh outputs (this machine's load varies)."""
        cfg = str(config(work / f"{name}.toml", model, args.batch, files))
        best, out = float("inf"), None
        for k in range(REPEAT):
            seconds, out = timed(clipline_run, inputs, cfg, output=str(work / f"{name}{k}"))
            best = min(best, seconds)
        return best, out

    cut_s, cut_out = best_run("cut", None)
    run_s, run_out = best_run("caption", args.model)
    captions = duckdb.sql(f"SELECT count(*), sum(tokens), sum(latency_ms) / 1000 FROM '{run_out}/manifests/captions/*.parquet' WHERE status = 'ok'").fetchall()[0]
    where = f"'{cut_out}/manifests/clips/*.parquet' WHERE status = 'ok' ORDER BY source_uri, start_frame"
    if files:
        clips = duckdb.sql(f"SELECT clip_uri, 0, num_frames FROM {where}").fetchall()
    else:
        clips = duckdb.sql(f"SELECT source_uri, start_frame, end_frame FROM {where}").fetchall()
    # Captioning overlaps the other stages, so the difference of the runs can vanish in their
    # noise; the worker's busy time bounds the cost from the other side. The larger is taken.
    clipline_s = max(run_s - cut_s, captions[2])
    python_s, python_tokens = timed(python_pipeline, Path(args.model), clips, args.batch)

    print(f"inputs: {len(inputs)} videos from {args.videos}; {len(clips)} clips; model {args.model}; batch {args.batch}")
    print(f"clipline run without captions {cut_s:.1f} s, with captions {run_s:.1f} s ({'with' if files else 'without'} clip files; best of {REPEAT});"
          f" the caption worker was busy {captions[2]:.2f} s")
    print(f"{'':10} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'tokens/s':>9}")
    print(f"{'clipline':10} {captions[0]:>6} {clipline_s:>8.2f} {captions[0] / clipline_s:>8.1f} {captions[1] / clipline_s:>9.0f}")
    print(f"{'python':10} {len(clips):>6} {python_s:>8.2f} {len(clips) / python_s:>8.1f} {python_tokens / python_s:>9.0f}")
    print(f"ratio clipline / python (clips/s): {(captions[0] / clipline_s) / (len(clips) / python_s):.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
