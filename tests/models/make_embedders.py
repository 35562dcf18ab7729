#!/usr/bin/env python3
"""Make the tiny embedding models clipline's tests and demo use: an image VAE encoder in the
Stable Diffusion `AutoencoderKL` layout and a T5 text encoder, both at tiny random configs of the
real architectures, exported to ONNX with the input and output names of optimum's exports.

The weights are random (seeded): these models test shapes, layouts, numerics and plumbing, not
what the latents mean. Run on a developer machine (torch, diffusers<0.36, transformers 4.57,
onnx); CI only uses the committed files.

    python make_embedders.py [--out tests/models]

Writes:
  tiny-vae/model.onnx, config.json           input `sample` [B,3,H,W] in [-1,1];
                                             output `latent_parameters` [B,2C,H/f,W/f] (mean ‖ logvar)
  tiny-video-vae/model.onnx, config.json     a causal video VAE (Wan layout): input `sample`
                                             [B,3,9,H,W] (T fixed at 9 by the export);
                                             output `latent_parameters` [B,2C,3,H/8,W/8]
  tiny-text-encoder/model.onnx, config.json, tokenizer.json
                                             inputs `input_ids`, `attention_mask` [B,S];
                                             output `last_hidden_state` [B,S,D]
The text encoder reuses the tiny captioner's tokenizer (its vocabulary is the shapes' words).
"""

import argparse
import json
import shutil
from pathlib import Path

import torch


class VaeEncoder(torch.nn.Module):
    """A VAE's encoding half, returning the latent distribution's parameters (mean ‖ log-variance
    along channels) as optimum's vae_encoder export does; `encode(vae, sample)` is the model's
    own path to them."""

    def __init__(self, vae, encode):
        super().__init__()
        self.vae = vae
        self.encode = encode

    def forward(self, sample):
        return self.encode(self.vae, sample)


def export_vae(vae, encode, example: torch.Tensor, out: Path) -> None:
    """Export `encode(vae, sample)` with `sample` -> `latent_parameters`, height and width dynamic (the time
    axis of a video VAE is fixed by its unrolled loop), and the model's config beside it."""
    spatial = {example.dim() - 2: "height", example.dim() - 1: "width"}
    out.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        VaeEncoder(vae, encode),
        (example,),
        str(out / "model.onnx"),
        input_names=["sample"],
        output_names=["latent_parameters"],
        dynamic_axes={"sample": {0: "batch", **spatial}, "latent_parameters": {0: "batch", **spatial}},
        opset_version=17,
        dynamo=False,
    )
    config = dict(vae.config)
    config["_class_name"] = type(vae).__name__
    (out / "config.json").write_text(json.dumps(config, indent=2, default=list) + "\n")


def make_vae(out: Path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(7)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=0.18215,
    ).eval()
    export_vae(vae, lambda v, sample: v.quant_conv(v.encoder(sample)), torch.zeros(1, 3, 64, 64), out)


def make_video_vae(out: Path) -> None:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(5)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.2, 0.3, 0.0],
        latents_std=[1.5, 2.0, 0.5, 1.0],
    ).eval()
    # The causal encoder over a whole clip; its time loop unrolls, fixing T = 9 in the graph.
    export_vae(vae, lambda v, sample: v._encode(sample), torch.zeros(1, 3, 9, 32, 32), out)


def make_text_encoder(out: Path, tokenizer: Path) -> None:
    from transformers import T5Config, T5EncoderModel

    vocab = json.loads(tokenizer.read_text())["model"]["vocab"]
    torch.manual_seed(11)
    config = T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, max_length=64)
    model = T5EncoderModel(config).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(2, 8, dtype=torch.int64)
    torch.onnx.export(
        Encoder(model),
        (ids, torch.ones_like(ids)),
        str(out / "model.onnx"),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"}},
        opset_version=17,
        dynamo=False,
    )
    config.architectures = ["T5EncoderModel"]
    config.save_pretrained(out)
    shutil.copy(tokenizer, out / "tokenizer.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    make_vae(args.out / "tiny-vae")
    make_video_vae(args.out / "tiny-video-vae")
    make_text_encoder(args.out / "tiny-text-encoder", args.out / "tiny-captioner" / "tokenizer.json")
    for d in ("tiny-vae", "tiny-video-vae", "tiny-text-encoder"):
        size = sum(f.stat().st_size for f in (args.out / d).iterdir())
        print(f"{d}: {size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
