#!/usr/bin/env python3
"""onnxruntime-python reference for clipline's embedders (used by the tests and benchmarks).

    python reference_embedders.py vae MODEL_DIR FRAMES.rgb N H W
        latents [N,C,h,w] of N packed RGB frames: mean, shifted and scaled per config.json
    python reference_embedders.py text MODEL_DIR TEXT [TEXT ...]
        each text's last_hidden_state over its real tokens (no padding)

Prints JSON: {"shape": [...], "values": [...]} for vae; a list of such for text.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("CLIPLINE_ORT_THREADS", "0"))
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_vae(model: Path):
    """The encoder session and the config of a VAE directory."""
    return session(model / "model.onnx"), json.loads((model / "config.json").read_text())


def vae_latents(vae, rgb: np.ndarray) -> np.ndarray:
    """Latents of frames [N,H,W,3] uint8."""
    encoder, config = vae
    pixels = rgb.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    params = encoder.run(["latent_parameters"], {"sample": pixels})[0]
    mean = params[:, : params.shape[1] // 2]
    return (mean - (config.get("shift_factor") or 0.0)) * (config.get("scaling_factor") or 1.0)


def text_embeddings(model: Path, texts):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    s = session(model / "model.onnx")
    names = {i.name for i in s.get_inputs()}
    out = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], np.int64)
        feed = {"input_ids": ids}
        if "attention_mask" in names:
            feed["attention_mask"] = np.ones_like(ids)
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        out.append(s.run(["last_hidden_state"], feed)[0][0])
    return out


def main() -> None:
    kind, model = sys.argv[1], Path(sys.argv[2])
    if kind == "vae":
        n, h, w = map(int, sys.argv[4:7])
        rgb = np.fromfile(sys.argv[3], np.uint8).reshape(n, h, w, 3)
        latents = vae_latents(load_vae(model), rgb)
        print(json.dumps({"shape": list(latents.shape), "values": latents.ravel().tolist()}))
    else:
        print(json.dumps([{"shape": list(e.shape), "values": e.ravel().tolist()} for e in text_embeddings(model, sys.argv[3:])]))


if __name__ == "__main__":
    main()
