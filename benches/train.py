#!/usr/bin/env python3
"""Benchmark `train`: step time of clipline's STDiT (burn) against a PyTorch eager implementation
of the same model config on the same batch shape and device: forward, backward and an AdamW step
on synthetic latents, the first steps untimed. Both print their parameter count, which must
match. clipline runs on each CPU backend its build has (Flex always, LibTorch in a `libtorch`
build such as the one `scripts/test.sh` makes). Prints seconds per step, samples/s and the ratio
PyTorch time / clipline time (> 1: clipline is faster).

    python benches/train.py [--config configs/train-tiny.toml] [--batch 4] [--latent 4,17,14,18]
                            [--text 12,32] [--steps 10] [--device cpu|cuda]
Needs torch and the clipline package (`scripts/setup.sh --test` installs both). For the LibTorch
figures, build clipline with `source scripts/env.sh && use_libtorch && cargo build --features
clipline/libtorch`; on a GPU machine, with `--features clipline-trainer/cuda`.
"""
import argparse
import json
import subprocess
import time

import torch
import torch.nn.functional as F

from clipline.stdit import Stdit, model_config
from common import CLIPLINE, need_clipline


def torch_steps(cfg, batch, latent, text, warmup, steps, device):
    c, t, h, w = latent
    tokens, width = text
    torch.manual_seed(0)
    model = Stdit(cfg, c, width if tokens else 0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, target = torch.randn(batch, c, t, h, w, device=device), torch.randn(batch, c, t, h, w, device=device)
    y = torch.randn(batch, tokens, width, device=device) if tokens else None
    pad = torch.zeros(batch, tokens, dtype=torch.bool, device=device) if tokens else None
    dropped = torch.zeros(batch, 1, 1, device=device)
    ts = (torch.arange(batch, dtype=torch.float32) + 0.5) / batch
    start = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = F.mse_loss(model(x, ts, y, pad, dropped), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = loss.item()
    step_s = (time.perf_counter() - start) / steps
    return {"parameters": sum(p.numel() for p in model.parameters()), "step_s": step_s, "samples_per_s": batch / step_s, "last_loss": last}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/train-tiny.toml")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--latent", default="4,17,14,18")
    ap.add_argument("--text", default="12,32")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    need_clipline()
    cfg = model_config(args.config)
    latent, text = [int(v) for v in args.latent.split(",")], [int(v) for v in args.text.split(",")]
    rows = []
    # Each of clipline's CPU backends in this build (LibTorch needs the `libtorch` feature), then
    # PyTorch eager: the same model, shapes, optimizer and thread pool size (torch's default).
    for backend in (["flex", "libtorch"] if args.device == "cpu" else ["auto"]):
        run = subprocess.run(
            [str(CLIPLINE), "-q", "bench", "train", "--config", args.config, "--batch", str(args.batch), "--latent", args.latent,
             "--text", args.text, "--warmup", str(args.warmup), "--steps", str(args.steps), "--device", args.device,
             "--cpu-backend", backend], capture_output=True, text=True)
        if run.returncode != 0 and "not available in this build" in run.stderr:
            print(f"  clipline ({backend}): not in this build (scripts/test.sh builds it with the `libtorch` feature)")
            continue
        if run.returncode != 0:
            raise SystemExit(f"clipline bench train --cpu-backend {backend} failed:\n{run.stderr}")
        rows.append((f"clipline ({backend})", json.loads(run.stdout.strip().splitlines()[-1])))
    theirs = torch_steps(cfg, args.batch, latent, text, args.warmup, args.steps, args.device)
    print(f"train step: {cfg['depth']} blocks of {cfg['hidden']}, batch {args.batch}, latent {args.latent}, text {args.text}, "
          f"{args.device}, {torch.get_num_threads()} torch threads")
    for name, r in rows + [("PyTorch eager", theirs)]:
        print(f"  {name:<20} {r['parameters']:>12,} parameters  {r['step_s'] * 1000:9.1f} ms/step  {r['samples_per_s']:8.2f} samples/s")
    for name, ours in rows:
        if ours["parameters"] != theirs["parameters"]:
            print(f"  WARNING: {name} and PyTorch have different parameter counts; the models are not the same")
        print(f"ratio {name}: PyTorch step time / clipline step time = {theirs['step_s'] / ours['step_s']:.2f}x")

if __name__ == "__main__":
    main()
