#!/usr/bin/env python3
"""Train and export the tiny captioner the tests and the demo use (a developer tool, not run in CI).

The model is a real vision-encoder-decoder (ViT encoder, GPT-2 decoder with cross-attention),
exported to ONNX by optimum exactly as the public ViT-GPT2 captioners are
(`encoder_model.onnx`, `decoder_model_merged.onnx`), with a byte-level BPE `tokenizer.json`.
It is trained on frames drawn the way `clipline demo` draws its videos (a 64-pixel sprite of a
circle, square or triangle on a 320x240 plain background), so that the demo's shots get their
true captions ("a red circle on a white background").

clipline shows a clip to the captioner as several frames: the encoder runs on each, and the
decoder cross-attends to all their patch states at once. Training does the same with 1 to 3
frames of one scene, so the model learns to read any number of frames.

Needs torch, transformers 4.57 and optimum-onnx 0.1 (see tests/models/README.md):
    python tests/models/make_captioner.py --out tests/models/tiny-captioner
"""

import argparse
import io
import json
import math
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    ViTConfig,
    ViTImageProcessor,
    ViTModel,
    VisionEncoderDecoderModel,
)

# The demo's palette and sizes (pipeline/src/demo.rs).
COLOURS = {
    "red": (220, 30, 30),
    "blue": (30, 60, 220),
    "green": (30, 170, 60),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
SHAPES = ["circle", "square", "triangle"]
WIDTH, HEIGHT, SPRITE = 320, 240, 64
EOS = "<|endoftext|>"


def sprite_mask(shape: str) -> np.ndarray:
    """The sprite's inside, with the demo's geometry."""
    half = SPRITE / 2
    ys, xs = np.mgrid[0:SPRITE, 0:SPRITE].astype(np.float32)
    fx, fy = xs + 0.5 - half, ys + 0.5 - half
    if shape == "circle":
        return fx * fx + fy * fy <= (half - 4) ** 2
    if shape == "square":
        return (np.abs(fx) <= half - 4) & (np.abs(fy) <= half - 4)
    top, bottom = 6 - half, half - 6
    return (fy >= top) & (fy <= bottom) & (np.abs(fx) <= (fy - top) / (bottom - top) * (half - 4))


MASKS = {s: sprite_mask(s) for s in SHAPES}


def draw(shape: str, colour: str, background: str, rng: random.Random) -> Image.Image:
    """One frame: the sprite somewhere on the demo's elliptic paths, then a lossy round trip."""
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = COLOURS[background]
    cx, cy = (WIDTH - SPRITE) // 2, (HEIGHT - SPRITE) // 2
    angle = rng.uniform(0, 2 * math.pi)
    x = int(cx + rng.uniform(0, 120) * math.sin(angle))
    y = int(cy + rng.uniform(0, 80) * math.cos(angle))
    x, y = min(max(x, 0), WIDTH - SPRITE), min(max(y, 0), HEIGHT - SPRITE)
    region = frame[y : y + SPRITE, x : x + SPRITE]
    region[MASKS[shape]] = COLOURS[colour]
    image = Image.fromarray(frame)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=rng.randint(70, 95))
    return Image.open(buf).convert("RGB")


def scenes():
    return [(s, c, b) for s in SHAPES for c in COLOURS for b in COLOURS if c != b]


def caption(scene) -> str:
    shape, colour, background = scene
    return f"a {colour} {shape} on a {background} background"


def make_tokenizer(out: Path) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([caption(s) for s in scenes()] * 4, trainer)
    eos = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{EOS} $A", special_tokens=[(EOS, eos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS, unk_token=EOS)
    fast.save_pretrained(out)
    return fast


def build_model(tokenizer, image: int) -> VisionEncoderDecoderModel:
    encoder = ViTModel(
        ViTConfig(image_size=image, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
        add_pooling_layer=False,
    )
    eos = tokenizer.eos_token_id
    decoder = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer), n_positions=32, n_embd=64, n_layer=2, n_head=4, add_cross_attention=True,
            bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        )
    )
    model = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = eos
    model.config.pad_token_id = eos
    model.config.eos_token_id = eos
    model.generation_config.decoder_start_token_id = eos
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos
    model.generation_config.max_length = 16
    return model


def encode_frames(model, pixels: torch.Tensor, frames: int) -> torch.Tensor:
    """Encoder states of `frames` frames per sample, concatenated along the sequence axis."""
    states = model.encoder(pixel_values=pixels).last_hidden_state
    batch = states.shape[0] // frames
    return states.reshape(batch, frames * states.shape[1], states.shape[2])


class FrameBank:
    """Preprocessed frames drawn ahead of training: `per_scene` frames of every scene."""

    def __init__(self, processor, seed, per_scene):
        rng = random.Random(seed)
        self.scenes = scenes()
        images = [draw(*scene, rng) for scene in self.scenes for _ in range(per_scene)]
        pixels = processor(images=images, return_tensors="pt").pixel_values
        self.pixels = pixels.reshape(len(self.scenes), per_scene, *pixels.shape[1:])

    def batch(self, tokenizer, rng, size, frames):
        """`size` random scenes with `frames` random frames each, and their caption tokens."""
        chosen = [rng.randrange(len(self.scenes)) for _ in range(size)]
        per_scene = self.pixels.shape[1]
        pixels = torch.stack([self.pixels[i, rng.randrange(per_scene)] for i in chosen for _ in range(frames)])
        ids = tokenizer([caption(self.scenes[i]) + EOS for i in chosen], padding=True, return_tensors="pt")
        return [self.scenes[i] for i in chosen], pixels, ids.input_ids, ids.attention_mask


@torch.no_grad()
def greedy(model, pixels, frames, eos, max_len=16):
    states = encode_frames(model, pixels, frames)
    ids = torch.full((states.shape[0], 1), eos, dtype=torch.long)
    for _ in range(max_len):
        logits = model.decoder(input_ids=ids, encoder_hidden_states=states).logits[:, -1]
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        if ((ids[:, 1:] == eos).any(dim=1)).all():
            break
    return ids[:, 1:]


def accuracy(model, bank, tokenizer, rng, frames, n=128):
    chosen, pixels, _, _ = bank.batch(tokenizer, rng, n, frames)
    eos = tokenizer.eos_token_id
    out = greedy(model.eval(), pixels, frames, eos).tolist()
    texts = tokenizer.batch_decode([ids[: ids.index(eos)] if eos in ids else ids for ids in out])
    return sum(t.strip() == caption(s) for t, s in zip(texts, chosen)) / n


def train(model, processor, tokenizer, steps, seed, bank_size):
    rng = random.Random(seed)
    bank, held_out = FrameBank(processor, seed, bank_size), FrameBank(processor, seed + 1, 8)
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    for step in range(1, steps + 1):
        frames = rng.randint(1, 3)
        model.train()
        _, pixels, ids, mask = bank.batch(tokenizer, rng, 32, frames)
        states = encode_frames(model, pixels, frames)
        logits = model.decoder(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], encoder_hidden_states=states).logits
        # The loss is computed here: VisionEncoderDecoderModel(labels=...) shifts twice in 4.57.
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == steps:
            acc = [accuracy(model, held_out, tokenizer, random.Random(step + f), f) for f in (1, 3)]
            print(f"step {step}: loss {loss.item():.4f}, exact match 1 frame {acc[0]:.2f}, 3 frames {acc[1]:.2f}", flush=True)


def export(model_dir: Path, out: Path):
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory() as tmp:
        main_export(str(model_dir), output=tmp, task="image-to-text-with-past", opset=17, device="cpu")
        for name in ["encoder_model.onnx", "decoder_model_merged.onnx"]:
            shutil.copy(Path(tmp) / name, out / name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "tiny-captioner")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--image", type=int, default=64, help="input side of the ViT (patches of 8)")
    parser.add_argument("--bank", type=int, default=48, help="training frames drawn per scene")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp)
        tokenizer = make_tokenizer(hf)
        processor = ViTImageProcessor(size={"height": args.image, "width": args.image}, image_mean=[0.5] * 3, image_std=[0.5] * 3, resample=2)
        processor.save_pretrained(hf)
        model = build_model(tokenizer, args.image)
        print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
        train(model, processor, tokenizer, args.steps, args.seed, args.bank)
        model.save_pretrained(hf)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ["tokenizer.json", "preprocessor_config.json", "config.json", "generation_config.json"]:
            shutil.copy(hf / name, args.out / name)
        export(hf, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
