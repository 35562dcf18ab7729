"""clipline's weights in the PyTorch twin, run by tests/e2e/train_ranks.rs.

    check_twin.py CLIPLINE CONFIG WEIGHTS OUT_DIR

Loads WEIGHTS (a checkpoint's model.safetensors) with safetensors.torch.load_file into
clipline.stdit.Stdit with strict names and shapes, runs it and `clipline bench stdit-forward` on
the same random inputs, and compares the outputs. Then saves the twin's weights, changed, as
PyTorch writes them (OUT_DIR/torch.safetensors) and checks clipline reads those the same way.
Prints the largest differences as JSON; exits non-zero past the tolerance.
"""
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from clipline.stdit import Stdit, model_config

TOLERANCE = 1e-4


def clipline_forward(clipline, config, weights, inputs, scratch):
    path = scratch / "inputs.json"
    path.write_text(json.dumps({k: (v.flatten().tolist() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}))
    out = subprocess.run([clipline, "-q", "bench", "stdit-forward", "--config", config, "--weights", str(weights), "--inputs", str(path)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return torch.tensor(json.loads(out.strip().splitlines()[-1])["out"]).reshape(inputs["x_shape"])


def main():
    clipline, config, weights, scratch = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    cfg = model_config(config)
    state = load_file(weights)
    patch = cfg["patch"]
    channels = state["proj.weight"].shape[1] // (patch[0] * patch[1] * patch[2])
    width = state["text_fc1.weight"].shape[1] if "text_fc1.weight" in state else 0
    model = Stdit(cfg, channels, width)
    model.load_state_dict(state, strict=True)
    model.eval()

    torch.manual_seed(0)
    b, t, h, w, tokens = 2, 3 * patch[0], 4 * patch[1], 6 * patch[2], 5
    x = torch.randn(b, channels, t, h, w)
    ts = torch.tensor([0.25, 0.8])
    inputs = {"x": x, "x_shape": list(x.shape), "t": ts}
    y = pad = None
    if width:
        y = torch.randn(b, tokens, width)
        pad = torch.zeros(b, tokens, dtype=torch.bool)
        pad[1, 3:] = True
        y[1, 3:] = 0
        inputs.update(y=y, y_shape=list(y.shape), pad=pad.flatten().tolist())
    dropped = torch.zeros(b, 1, 1)
    with torch.no_grad():
        ours = model(x, ts, y, pad, dropped)
    theirs = clipline_forward(clipline, config, weights, inputs, scratch)
    diff = (ours - theirs).abs().max().item()
    scale = ours.abs().max().item()

    # Weights as PyTorch writes them, changed so a wrong load shows.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.01).add_(0.001)
        changed = model(x, ts, y, pad, dropped)
    torch_file = scratch / "torch.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(torch_file))
    back = clipline_forward(clipline, config, torch_file, inputs, scratch)
    diff_back = (changed - back).abs().max().item()
    print(json.dumps({"max_abs_diff": diff, "output_scale": scale, "max_abs_diff_torch_written": diff_back, "parameters": len(state)}))
    if not (diff <= TOLERANCE and diff_back <= TOLERANCE and scale > 0):
        sys.exit(f"FAILED: outputs differ by {diff} (clipline's weights) and {diff_back} (PyTorch's), tolerance {TOLERANCE}")


if __name__ == "__main__":
    main()
