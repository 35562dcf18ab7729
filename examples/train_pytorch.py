#!/usr/bin/env python3
"""Train clipline's STDiT in PyTorch on a clipline output, data-parallel, resumable.

The model is the PyTorch twin of ``clipline train``'s (``clipline.stdit``), the objective its
rectified flow (x_t = (1 - t) x_0 + t ε, the velocity ε - x_0 predicted, logit-normal t). The data
come from ``clipline.StreamingDataset`` with the config's ``[data]`` section; the model, the
optimizer and the loader's state are checkpointed together, so a job resumed on another number
of ranks or DataLoader workers reads exactly the batches an uninterrupted run would have.

    # one process
    python examples/train_pytorch.py --data clipline-demo --config configs/train-tiny.toml --steps 20
    # two ranks on CPUs (gloo), or one per GPU (NCCL), with 2 DataLoader workers each
    torchrun --nproc-per-node 2 examples/train_pytorch.py --data clipline-demo --workers 2 --run-dir runs/torch

``--run-dir`` holds ``checkpoints/step-N.pt`` (every ``--checkpoint-every`` steps, the newest is
resumed) and ``batches-rank-R.jsonl``, one line per step: the global batch and the sample ids
this rank trained on.
"""
import argparse
import json
import os
import tomllib
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import clipline
from clipline.stdit import Stdit, model_config


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a clipline output: path or s3://bucket/prefix")
    ap.add_argument("--config", default="configs/train-tiny.toml", help="a clipline training config: [data] and [model] are used")
    ap.add_argument("--run-dir", default="runs/torch")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps in all (a resumed run continues to this count)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers per rank")
    ap.add_argument("--checkpoint-every", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--cache-dir", help="block cache for data in object storage")
    return ap.parse_args()


def data_options(config):
    """``clipline.StreamingDataset`` arguments from a training config's ``[data]`` section."""
    data = dict(config.get("data", {}))
    loader = data.pop("loader", {})
    return {**data, **loader}


def latest_checkpoint(run_dir):
    found = sorted(run_dir.glob("checkpoints/step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    return found[-1] if found else None


def velocity_loss(model, batch, generator, device):
    """Rectified flow on one batch; a batch whose samples were all corrupt still takes part in
    the gradient all-reduce, with a zero loss, so no rank waits for it."""
    if "latent" not in batch:
        return sum(p.sum() * 0.0 for p in model.parameters())
    x0 = batch["latent"].to(device).float().transpose(1, 2)  # [B, T, C, H, W] as stored -> [B, C, T, H, W]
    b = x0.shape[0]
    t = torch.sigmoid(torch.randn(b, generator=generator)).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    xt = (1 - t.view(b, 1, 1, 1, 1)) * x0 + t.view(b, 1, 1, 1, 1) * noise
    y = pad = None
    if "text" in batch:
        y, pad = batch["text"].to(device).float(), ~batch["text_mask"].to(device)
    dropped = torch.zeros(b, 1, 1, device=device)
    return F.mse_loss(model(xt, t, y, pad, dropped), noise - x0)


def main():
    args = parse()
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    run_dir = Path(args.run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / f"rank-{rank}.pid").write_text(str(os.getpid()))

    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    options = data_options(config)
    if args.cache_dir:
        options["cache_dir"] = args.cache_dir
    dataset = clipline.StreamingDataset(args.data, rank=rank, world_size=world, **options)
    loader = clipline.StreamingDataLoader(dataset, num_workers=args.workers)
    first = clipline.Dataset(args.data)[0]
    channels, text_width = first["latent"].shape[1], first["text"].shape[1] if "text" in first else 0

    torch.manual_seed(0)
    model = Stdit(model_config(args.config), channels, text_width).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    step = 0
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        loader.load_state_dict(state["loader"])
        step = state["step"]
        if rank == 0:
            print(f"resumed from {checkpoint} at step {step} on {world} ranks x {args.workers} workers", flush=True)
    trained = DistributedDataParallel(model) if distributed else model
    generator = torch.Generator().manual_seed(1000 * step + rank)

    log = open(run_dir / f"batches-rank-{rank}.jsonl", "a")
    while step < args.steps:
        for batch in loader:
            loss = velocity_loss(trained, batch, generator, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            log.write(json.dumps({"step": step, "rank": rank, "global_batch": batch["global_batch"], "sample_ids": batch["sample_id"], "skipped": batch["skipped"], "loss": loss.item()}) + "\n")
            log.flush()
            if step % args.checkpoint_every == 0 or step == args.steps:
                # Every rank has taken as many batches as rank 0, so rank 0's loader state is the job's.
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "loader": loader.state_dict(), "step": step}
                if rank == 0:
                    path = run_dir / "checkpoints" / f"step-{step}.pt"
                    torch.save(state, path.with_suffix(".tmp"))
                    os.replace(path.with_suffix(".tmp"), path)
                    print(f"step {step}: loss {loss.item():.4f}, checkpoint {path}", flush=True)
                if distributed:
                    dist.barrier()
            if step >= args.steps:
                break
    log.close()
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
