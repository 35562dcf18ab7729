#!/usr/bin/env python3
"""onnxruntime-python reference for clipline's embedders (used by the tests and benchmarks).

    python reference_embedders.py vae MODEL_DIR FRAMES.rgb N H W
        latents [N,C,h,w] of N packed RGB frames: mean, shifted and scaled per config.json
    python reference_embedders.py video-vae MODEL_DIR FRAMES.rgb N H W
        latents [T',C,h,w] of one clip of N frames through a causal video VAE whose export fixes
        T: chunks of T frames overlapping by one, the overlap's latent dropped, the last chunk
        padded with the last frame; normalised per channel (latents_mean, latents_std)
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


def video_latents(vae, rgb: np.ndarray) -> np.ndarray:
    """Latents [T',C,h,w] of one clip [F,H,W,3] uint8."""
    encoder, config = vae
    t = encoder.get_inputs()[0].shape[2]
    k = config.get("scale_factor_temporal", 4)
    frames = len(rgb)
    per_chunk, wanted = 1 + (t - 1) // k, 1 + (frames - 1) // k
    kept, start = [], 0
    while len(kept) < wanted:
        clip = rgb[[min(i, frames - 1) for i in range(start, start + t)]]
        pixels = (clip.astype(np.float32).transpose(3, 0, 1, 2)[None] / 127.5 - 1.0).astype(np.float32)
        params = encoder.run(["latent_parameters"], {"sample": pixels})[0][0]
        mean = params[: params.shape[0] // 2]
        for f in range(0 if start == 0 else 1, per_chunk):
            if len(kept) < wanted:
                kept.append(mean[:, f])
        start += t - 1
    z = np.stack(kept)
    shape = (1, -1, 1, 1)
    return (z - np.array(config["latents_mean"], np.float32).reshape(shape)) / np.array(config["latents_std"], np.float32).reshape(shape)


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
    if kind in ("vae", "video-vae"):
        n, h, w = map(int, sys.argv[4:7])
        rgb = np.fromfile(sys.argv[3], np.uint8).reshape(n, h, w, 3)
        latents = (vae_latents if kind == "vae" else video_latents)(load_vae(model), rgb)
        print(json.dumps({"shape": list(latents.shape), "values": latents.ravel().tolist()}))
    else:
        print(json.dumps([{"shape": list(e.shape), "values": e.ravel().tolist()} for e in text_embeddings(model, sys.argv[3:])]))


if __name__ == "__main__":
    main()
