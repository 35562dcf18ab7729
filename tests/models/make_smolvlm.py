#!/usr/bin/env python3
"""Make the tiny SmolVLM-layout test model (a developer tool, not run in CI).

A real Idefics3 model (SigLIP-style vision encoder, pixel-shuffle connector, Llama decoder) at a
tiny random configuration, exported as the public SmolVLM ONNX releases are laid out:
`vision_encoder.onnx` (pixel_values, pixel_attention_mask -> image_features), `embed_tokens.onnx`
(input_ids -> inputs_embeds) and `decoder_model_merged.onnx` (inputs_embeds, attention_mask,
position_ids, past_key_values.* -> logits, present.*), with its tokenizer and configs.

Two export workarounds (see ../shared/recipes/tiny-models.md): the vision wrapper embeds patches
itself (the model's patch mask uses `Tensor.unfold`, which does not export; every tile clipline
makes is whole, so the position ids are those of a whole tile), and the decoder wrapper builds the 4-D causal mask itself.

It also writes `reference.json`: for a deterministic test frame (the same integer pattern the Rust
test draws), transformers' own Idefics3Processor output (input ids, pixel statistics, rows and
columns) and torch's greedy tokens, so the Rust test checks clipline's prompt expansion and image
preprocessing against transformers without torch in CI.

Needs torch and transformers 4.57 (pip install torch transformers==4.57.* onnx onnxruntime pillow):
    python tests/models/make_smolvlm.py --out tests/models/tiny-smolvlm
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessor,
    Idefics3Processor,
    PreTrainedTokenizerFast,
)
from transformers.cache_utils import DynamicCache

from reference_smolvlm import greedy as ort_greedy
from reference_smolvlm import load as ort_load

HERE = Path(__file__).resolve().parent
PROMPT = (HERE.parent.parent / "configs/prompts/describe.txt").read_text()
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>"]
SPECIAL += [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
TILE = 64  # max_image_size: the vision encoder's input side
LONGEST = 128  # size.longest_edge: frames are resized to this before tiling


def make_tokenizer(out: Path) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [PROMPT, "User:", "Assistant:", "a red circle on a white background", "Not enough information", "Single image", "No movement"]
    tok.train_from_iterator(corpus * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>", unk_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[3:],
    )
    fast.save_pretrained(out)
    return fast


def build(tokenizer) -> Idefics3ForConditionalGeneration:
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": TILE, "patch_size": 16},
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 1024, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id, "tie_word_embeddings": False,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(3)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


class Vision(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vision, self.connector = model.model.vision_model, model.model.connector
        # The position ids the embeddings compute for a whole tile (by bucketing fractional
        # coordinates), computed once: a tile clipline makes is always whole.
        n = self.vision.embeddings.num_patches_per_side
        boundaries = torch.arange(1 / n, 1.0, 1 / n)
        buckets = torch.bucketize(torch.arange(n, dtype=torch.float32) / n * (1 - 1e-6), boundaries, right=True)
        self.register_buffer("positions", (buckets[:, None] * n + buckets[None, :]).flatten())

    def forward(self, pixel_values, pixel_attention_mask):
        b, n, c, h, w = pixel_values.shape
        pixels = (pixel_values * pixel_attention_mask[:, :, None].to(pixel_values.dtype)).reshape(b * n, c, h, w)
        x = self.vision.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = x + self.vision.embeddings.position_embedding(self.positions)
        x = self.vision.encoder(inputs_embeds=x).last_hidden_state
        return self.connector(self.vision.post_layernorm(x))


class Embed(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.model.text_model.embed_tokens

    def forward(self, input_ids):
        return self.embed(input_ids)


class Decoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.text, self.head = model.model.text_model, model.lm_head
        self.layers = model.config.text_config.num_hidden_layers

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        past_len, q, total = past[0].shape[2], inputs_embeds.shape[1], attention_mask.shape[1]
        allowed = torch.arange(total)[None, :] <= (torch.arange(q) + past_len)[:, None]
        allowed = allowed[None, None] & attention_mask[:, None, None, :].bool()
        mask = torch.zeros(allowed.shape, dtype=inputs_embeds.dtype).masked_fill(~allowed, torch.finfo(inputs_embeds.dtype).min)
        out = self.text(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        presents = []
        for i in range(self.layers):
            presents += [out.past_key_values.layers[i].keys, out.past_key_values.layers[i].values]
        return (self.head(out.last_hidden_state), *presents)


def export(model, out: Path):
    cfg = model.config.text_config
    heads, dim = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    pixels, mask = torch.randn(1, 2, 3, TILE, TILE), torch.ones(1, 2, TILE, TILE, dtype=torch.bool)
    torch.onnx.export(Vision(model), (pixels, mask), out / "vision_encoder.onnx", input_names=["pixel_values", "pixel_attention_mask"],
                      output_names=["image_features"], dynamic_axes={"pixel_values": {0: "batch", 1: "images"}, "pixel_attention_mask": {0: "batch", 1: "images"}, "image_features": {0: "images"}},
                      opset_version=17, dynamo=False)
    ids = torch.tensor([[1, 2, 3]])
    torch.onnx.export(Embed(model), (ids,), out / "embed_tokens.onnx", input_names=["input_ids"], output_names=["inputs_embeds"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "inputs_embeds": {0: "batch", 1: "sequence"}}, opset_version=17, dynamo=False)
    b, q, p = 2, 3, 4
    past = [torch.randn(b, heads, p, dim) for _ in range(2 * cfg.num_hidden_layers)]
    past_names = [f"past_key_values.{i}.{kv}" for i in range(cfg.num_hidden_layers) for kv in ("key", "value")]
    present_names = [n.replace("past_key_values", "present") for n in past_names]
    axes = {"inputs_embeds": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total"}, "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}}
    axes.update({n: {0: "batch", 2: "past"} for n in past_names})
    axes.update({n: {0: "batch", 2: "total"} for n in present_names})
    args = (torch.randn(b, q, cfg.hidden_size), torch.ones(b, p + q, dtype=torch.long), torch.arange(p, p + q).repeat(b, 1), *past)
    torch.onnx.export(Decoder(model), args, out / "decoder_model_merged.onnx", input_names=["inputs_embeds", "attention_mask", "position_ids", *past_names],
                      output_names=["logits", *present_names], dynamic_axes=axes, opset_version=17, dynamo=False)


def test_frame(shift: int) -> Image.Image:
    """The Rust test draws the same pattern: a 320x240 frame of integer arithmetic."""
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([(x * 7 + y * 3 + shift) % 256, (x * 2 + y * 5) % 256, (x // 4 * y // 4 + shift) % 256], -1).astype(np.uint8)
    return Image.fromarray(rgb)


def prompt_text(frames: int) -> str:
    return f"<|im_start|>User:{'<image>' * frames}{PROMPT}<end_of_utterance>\nAssistant:"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "tiny-smolvlm")
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp)
        tokenizer = make_tokenizer(hf)
        images = Idefics3ImageProcessor(size={"longest_edge": LONGEST}, max_image_size={"longest_edge": TILE}, do_image_splitting=True)
        processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4)
        processor.save_pretrained(hf)
        model = build(tokenizer)
        model.save_pretrained(hf)
        for name in ["tokenizer.json", "preprocessor_config.json", "processor_config.json", "config.json", "generation_config.json"]:
            if (hf / name).exists():
                shutil.copy(hf / name, args.out / name)
        export(model, args.out)

        frames = [test_frame(s) for s in (0, 40, 80)]
        inputs = processor(text=prompt_text(3), images=[frames], return_tensors="pt")
        inputs.pop("token_type_ids", None)
        with torch.no_grad():
            torch_tokens = model.generate(**inputs, max_new_tokens=12, do_sample=False)[0, inputs.input_ids.shape[1]:].tolist()
        torch_tokens = [t for t in torch_tokens if t != tokenizer.eos_token_id]
        onnx_tokens = ort_greedy(ort_load(args.out), inputs.input_ids.numpy(), inputs.pixel_values.numpy(), inputs.pixel_attention_mask.numpy().astype(bool), 12,
                                 {tokenizer.eos_token_id}, model.config.image_token_id)[0]
        print(f"torch greedy {torch_tokens}\nonnx  greedy {onnx_tokens}")
        assert torch_tokens[: len(onnx_tokens)] == onnx_tokens, "the ONNX graphs do not generate what torch does"
        pixels = inputs.pixel_values[0].numpy()
        reference = {
            "frames": [0, 40, 80],
            "prompt": PROMPT,
            "input_ids": inputs.input_ids[0].tolist(),
            "pixel_shape": list(pixels.shape),
            "pixel_mean_per_image": pixels.reshape(pixels.shape[0], -1).mean(1).tolist(),
            "pixel_samples": [[int(i), float(pixels.reshape(-1)[i])] for i in np.linspace(0, pixels.size - 1, 97).astype(int)],
            "greedy_tokens": onnx_tokens,
        }
        (args.out / "reference.json").write_text(json.dumps(reference))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
