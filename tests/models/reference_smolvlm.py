#!/usr/bin/env python3
"""onnxruntime-python reference for clipline's Idefics3/SmolVLM captioner (used by the tests).

Runs the three graphs the way the SmolVLM ONNX model card does (batched here): embed the prompt,
put the vision encoder's features into the `<image>` positions, then greedy decoding with the
merged decoder's key/value cache. Reads the prompt's token ids (JSON list) and the tiles'
pixels ([tiles, 3, side, side] float32, little-endian); prints the greedy tokens as JSON.

    python reference_smolvlm.py MODEL_DIR IDS.json PIXELS.bin TILES SIDE [MAX_NEW_TOKENS]
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from reference_captioner import advance


def load(model):
    """The three sessions of a model directory (graphs in it or in its onnx/)."""
    find = lambda name: next(p for p in (model / name, model / "onnx" / name) if p.exists())  # noqa: E731
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("CLIPLINE_ORT_THREADS", "0"))
    return tuple(
        ort.InferenceSession(str(find(n)), options, providers=["CPUExecutionProvider"])
        for n in ("vision_encoder.onnx", "embed_tokens.onnx", "decoder_model_merged.onnx")
    )


def greedy(sessions, input_ids, pixel_values, pixel_attention_mask, max_new, eos, image_token, pad=0):
    """Greedy tokens per prompt: `input_ids` [clips, length] (equal lengths), the tiles of all
    clips in order [1, tiles, 3, side, side]."""
    vision, embed, decoder = sessions
    pasts = [i for i in decoder.get_inputs() if i.name.startswith("past_key_values.")]
    clips = input_ids.shape[0]
    feed = {p.name: np.zeros((clips, p.shape[1], 0, p.shape[3]), np.float32) for p in pasts}
    ids = input_ids
    mask = np.ones_like(ids)
    positions = np.tile(np.arange(ids.shape[1]), (clips, 1))
    generated = [[] for _ in range(clips)]
    done = [False] * clips
    for step in range(max_new):
        embeds = embed.run(None, {"input_ids": ids})[0]
        if step == 0:
            features = vision.run(None, {"pixel_values": pixel_values, "pixel_attention_mask": pixel_attention_mask})[0]
            embeds[ids == image_token] = features.reshape(-1, features.shape[-1])
        logits, *presents = decoder.run(None, {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions, **feed})
        next_ids = advance(logits[:, -1].argmax(-1), generated, done, eos, pad, max_new)
        if all(done):
            break
        ids = next_ids.reshape(clips, 1).astype(np.int64)
        mask = np.concatenate([mask, np.ones((clips, 1), mask.dtype)], 1)
        positions = positions[:, -1:] + 1
        feed = {p.name: v for p, v in zip(pasts, presents)}
    return generated


def tokens(model):
    """(end tokens, image token, pad token) from a model directory's configs."""
    config = json.loads((model / "config.json").read_text())
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<end_of_utterance>")
    eos = config["text_config"].get("eos_token_id")
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else []) | {end}
    pad = config["text_config"].get("pad_token_id") or min(eos)
    return eos, config["image_token_id"], pad


def main():
    model, ids_file, pixels_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    tiles, side = int(sys.argv[4]), int(sys.argv[5])
    max_new = int(sys.argv[6]) if len(sys.argv) > 6 else 12
    eos, image_token, pad = tokens(model)
    ids = np.array([json.loads(Path(ids_file).read_text())], np.int64)
    pixels = np.fromfile(pixels_file, "<f4").reshape(1, tiles, 3, side, side)
    mask = np.ones((1, tiles, side, side), bool)
    print(json.dumps(greedy(load(model), ids, pixels, mask, max_new, eos, image_token, pad)[0]))


if __name__ == "__main__":
    main()
