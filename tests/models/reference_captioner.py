#!/usr/bin/env python3
"""onnxruntime-python reference for clipline's encoder-decoder captioner (used by the tests).

Reads preprocessed pixels ([clips * frames, 3, H, W] float32, little-endian) and runs the same
model the same way clipline does: the encoder on every frame, each clip's frame states laid end
to end, then a greedy loop over the merged decoder with its key/value cache. Prints JSON with
the encoder states, the first step's logits and the greedy tokens.

    python reference_captioner.py MODEL_DIR PIXELS.bin CLIPS FRAMES H W [MAX_NEW_TOKENS]
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def tokens_of(config, key):
    value = config.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def load(model):
    """The two sessions and the start, end and pad tokens of an encoder-decoder model."""
    generation = json.loads((model / "generation_config.json").read_text())
    tokens = (tokens_of(generation, "decoder_start_token_id")[0], tokens_of(generation, "eos_token_id"), tokens_of(generation, "pad_token_id")[0])
    options = ort.SessionOptions()
    threads = int(os.environ.get("CLIPLINE_ORT_THREADS", "0"))
    options.intra_op_num_threads = threads
    encoder = ort.InferenceSession(str(model / "encoder_model.onnx"), options, providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(model / "decoder_model_merged.onnx"), options, providers=["CPUExecutionProvider"])
    return encoder, decoder, tokens


def advance(next_ids, generated, done, eos, pad, max_new):
    """One greedy step's bookkeeping: append each live sequence's token, end it at an end token
    or the limit; ended sequences are fed `pad`. Returns the ids to feed next."""
    for i, token in enumerate(next_ids.tolist()):
        if done[i]:
            next_ids[i] = pad
        elif token in eos:
            done[i] = True
            next_ids[i] = pad
        else:
            generated[i].append(token)
            done[i] = len(generated[i]) >= max_new
    return next_ids


def caption(encoder, decoder, tokens, pixels, clips, frames, max_new):
    """Encoder states, first-step logits and greedy tokens for `clips` clips of `frames` frames."""
    start, eos, pad = tokens
    states = encoder.run(["last_hidden_state"], {"pixel_values": pixels})[0]
    states = states.reshape(clips, frames * states.shape[1], states.shape[2])
    pasts = [i for i in decoder.get_inputs() if i.name.startswith("past_key_values.")]
    names = [o.name for o in decoder.get_outputs()]
    feed = {p.name: np.zeros((clips, p.shape[1], 0, p.shape[3]), np.float32) for p in pasts}
    ids = np.full((clips, 1), start, np.int64)
    generated = [[] for _ in range(clips)]
    done = [False] * clips
    first_logits = None
    for step in range(max_new + 1):
        outputs = decoder.run(None, {"input_ids": ids, "encoder_hidden_states": states, "use_cache_branch": np.array([step > 0]), **feed})
        named = dict(zip(names, outputs))
        if first_logits is None:
            first_logits = named["logits"]
        feed = {p.name: named[p.name.replace("past_key_values", "present", 1)] for p in pasts}
        next_ids = advance(named["logits"][:, -1].argmax(-1), generated, done, eos, pad, max_new)
        if all(done):
            break
        ids = next_ids.reshape(clips, 1).astype(np.int64)
    return states, first_logits, generated


def main():
    model, pixels_path = Path(sys.argv[1]), Path(sys.argv[2])
    clips, frames, height, width = map(int, sys.argv[3:7])
    max_new = int(sys.argv[7]) if len(sys.argv) > 7 else 32
    pixels = np.fromfile(pixels_path, dtype="<f4").reshape(clips * frames, 3, height, width)
    encoder, decoder, tokens = load(model)
    states, first_logits, generated = caption(encoder, decoder, tokens, pixels, clips, frames, max_new)
    print(json.dumps({"states": states.ravel().tolist(), "first_logits": first_logits.ravel().tolist(), "tokens": generated}))


if __name__ == "__main__":
    main()
