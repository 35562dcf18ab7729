#!/usr/bin/env python3
"""onnxruntime-python reference for clipline's Idefics3/SmolVLM captioner (used by the tests).

Runs the three graphs the way the SmolVLM ONNX model card does, for one clip: embed the prompt,
put the vision encoder's features into the `<image>` positions, then greedy decoding with the
merged decoder's key/value cache. Reads the prompt's token ids (JSON list) and the tiles'
pixels ([tiles, 3, side, side] float32, little-endian); prints the greedy tokens as JSON.

    python reference_smolvlm.py MODEL_DIR IDS.json PIXELS.bin TILES SIDE [MAX_NEW_TOKENS]
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def greedy(model, input_ids, pixel_values, pixel_attention_mask, max_new, eos, image_token):
    """Greedy tokens for one prompt ([1, length] ids) and its tiles ([1, tiles, 3, side, side])."""
    find = lambda name: next(p for p in (model / name, model / "onnx" / name) if p.exists())  # noqa: E731
    vision = ort.InferenceSession(str(find("vision_encoder.onnx")))
    embed = ort.InferenceSession(str(find("embed_tokens.onnx")))
    decoder = ort.InferenceSession(str(find("decoder_model_merged.onnx")))
    pasts = [i for i in decoder.get_inputs() if i.name.startswith("past_key_values.")]
    feed = {p.name: np.zeros((1, p.shape[1], 0, p.shape[3]), np.float32) for p in pasts}
    ids = input_ids
    mask = np.ones_like(ids)
    positions = np.arange(ids.shape[1])[None]
    generated = []
    for step in range(max_new):
        embeds = embed.run(None, {"input_ids": ids})[0]
        if step == 0:
            features = vision.run(None, {"pixel_values": pixel_values, "pixel_attention_mask": pixel_attention_mask})[0]
            embeds[ids == image_token] = features.reshape(-1, features.shape[-1])
        logits, *presents = decoder.run(None, {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions, **feed})
        token = int(logits[0, -1].argmax())
        if token in eos:
            break
        generated.append(token)
        ids = np.array([[token]])
        mask = np.concatenate([mask, np.ones((1, 1), mask.dtype)], 1)
        positions = positions[:, -1:] + 1
        feed = {p.name: v for p, v in zip(pasts, presents)}
    return generated


def main():
    model, ids_file, pixels_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    tiles, side = int(sys.argv[4]), int(sys.argv[5])
    max_new = int(sys.argv[6]) if len(sys.argv) > 6 else 12
    config = json.loads((model / "config.json").read_text())
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<end_of_utterance>")
    eos = config["text_config"].get("eos_token_id")
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else []) | {end}
    ids = np.array([json.loads(Path(ids_file).read_text())], np.int64)
    pixels = np.fromfile(pixels_file, "<f4").reshape(1, tiles, 3, side, side)
    mask = np.ones((1, tiles, side, side), bool)
    print(json.dumps(greedy(model, ids, pixels, mask, max_new, eos, config["image_token_id"])))


if __name__ == "__main__":
    main()
