#!/usr/bin/env python3
"""Benchmark `loader`: samples/s and MB/s delivered to a training loop by clipline's streaming
loader, MosaicML Streaming and WebDataset, reading the same latents, from local disk and from an
S3 server (moto) on 127.0.0.1, shuffling, with a cold first epoch (nothing cached locally) and
warm later ones (three, taken together).

The latents come from a pipeline output (`--data`): clipline reads its shards; the script exports
every sample's tensors (`clipline bench loader --export`) and writes them as MDS shards (zstd, as
MosaicML recommends) and WebDataset tars. Each loader runs in its own process: single process
(0 workers), and with the worker count its docs recommend (MosaicML 8, WebDataset 4; clipline
uses its own fetch and decode threads). MB/s counts decoded tensor bytes.

    python benches/loader.py --data OUTPUT [--batch 8] [--workers 8,4]
Needs mosaicml-streaming, webdataset, boto3, torch, numpy, and moto_server (CLIPLINE_MOTO_SERVER).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CLIPLINE, need_clipline

BUCKET = "bench"
# Epoch 0 is cold (nothing cached locally); the later ones together are the warm figure.
EPOCHS = 4
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3():
    port = free_port()
    server = subprocess.Popen([os.environ.get("CLIPLINE_MOTO_SERVER", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    sys.exit("moto_server did not start; set CLIPLINE_MOTO_SERVER")


def upload(endpoint, local_dir, prefix):
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in Path(local_dir).rglob("*"):
        if path.is_file() and ".staging" not in path.parts:
            s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local_dir)}")


def presigned(endpoint, prefix, names):
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return [s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": f"{prefix}/{name}"}, ExpiresIn=3600) for name in names]


def convert(export_dir, mds_dir, wds_dir):
    """MDS shards and WebDataset tars holding the exported tensors."""
    import webdataset as wds
    from streaming import MDSWriter
    index = json.loads((export_dir / "index.json").read_text())
    columns = {"id": "str", "bucket": "str", "shapes": "json", "latent": "bytes", "text": "bytes"}
    wds_dir.mkdir(parents=True)
    with MDSWriter(out=str(mds_dir), columns=columns, compression="zstd", size_limit="16mb") as mds, \
            wds.ShardWriter(str(wds_dir / "shard-%06d.tar"), maxsize=16 << 20, verbose=0) as tar:
        for n, entry in enumerate(index):
            latent = (export_dir / f"{n}.latent").read_bytes()
            text_file = export_dir / f"{n}.text"
            text = text_file.read_bytes() if text_file.exists() else b""
            shapes = {"latent": entry["latent"], "text": entry.get("text", [])}
            mds.write({"id": entry["id"], "bucket": entry["bucket"], "shapes": shapes, "latent": latent, "text": text})
            tar.write({"__key__": f"{n:08d}", "json": {"id": entry["id"], "bucket": entry["bucket"], **shapes}, "latent.bin": latent, "text.bin": text})
    return len(index)


def tensors(latent, text, shapes):
    """What a training step gets: bf16 arrays (as uint16) of their shapes."""
    import numpy as np
    lat = np.frombuffer(latent, np.uint16).reshape(shapes["latent"])
    txt = np.frombuffer(text, np.uint16).reshape(shapes["text"]) if shapes.get("text") else None
    return lat.nbytes + (txt.nbytes if txt is not None else 0)


def collate_mds(samples):
    return len(samples), sum(tensors(x["latent"], x["text"], x["shapes"]) for x in samples)


def collate_sizes(sizes):
    return len(sizes), sum(sizes)


def decode_wds(sample):
    return tensors(sample["latent.bin"], sample["text.bin"], json.loads(sample["json"]))


def run_mosaic(source, workers, batch, epochs, scratch):
    import torch
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory
    clean_stale_shared_memory()
    remote, local = (source, str(scratch / "mds-cache")) if source.startswith("s3://") else (None, source)
    ds = StreamingDataset(remote=remote, local=local, shuffle=True, shuffle_seed=0, batch_size=batch)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_mds, persistent_workers=workers > 0)
    return epochs_of(loader, epochs)


def run_webdataset(source, workers, batch, epochs, scratch, endpoint):
    import torch
    import webdataset as wds
    if source.startswith("s3://"):
        # Presigned URLs streamed by curl: WebDataset's documented way to read object storage.
        urls = [f"pipe:curl -s -f '{url}'" for url in json.loads(os.environ["CLIPLINE_WDS_URLS"])]
        cache = str(scratch / "wds-cache")
        os.makedirs(cache, exist_ok=True)
    else:
        urls = [str(p) for p in sorted(Path(source).iterdir())]
        cache = None

    ds = wds.WebDataset(urls, shardshuffle=len(urls), cache_dir=cache, empty_check=False, seed=0).shuffle(1000).map(decode_wds).batched(batch, collation_fn=collate_sizes)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
    return epochs_of(loader, epochs)


def epochs_of(loader, epochs):
    out = []
    for epoch in range(epochs):
        start = time.perf_counter()
        samples = nbytes = 0
        for n, b in loader:
            samples += n
            nbytes += b
        secs = time.perf_counter() - start
        out.append({"epoch": epoch, "samples": samples, "seconds": secs, "samples_per_s": samples / secs, "mb_per_s": nbytes / 1e6 / secs})
    return out


def run_clipline(source, batch, epochs, scratch, env):
    cmd = [str(CLIPLINE), "-q", "bench", "loader", "--data", source, "--batch", str(batch), "--epochs", str(epochs), "--cache", str(scratch / "clipline-cache"),
           "--block-mib", os.environ.get("CLIPLINE_BENCH_BLOCK_MIB", "8")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["epochs"]


def child(args):
    """One loader, one source, one worker count, in this process; prints its epochs as JSON."""
    scratch, workers = Path(args.scratch), int(args.workers)
    if args.peer == "mosaic":
        result = run_mosaic(args.source, workers, args.batch, EPOCHS, scratch)
    else:
        result = run_webdataset(args.source, workers, args.batch, EPOCHS, scratch, args.endpoint)
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a pipeline output with samples")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", default="8,4", help="recommended worker counts: MosaicML, WebDataset")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        return child(args)
    if not args.data:
        sys.exit("--data OUTPUT: a pipeline output with samples (clipline run with an [embed] section)")
    need_clipline()
    mosaic_workers, wds_workers = (int(w) for w in args.workers.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([str(CLIPLINE), "-q", "bench", "loader", "--data", args.data, "--export", str(tmp / "export")], check=True, capture_output=True)
        count = convert(tmp / "export", tmp / "mds", tmp / "wds")
        server, endpoint = start_s3()
        env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "S3_ENDPOINT_URL": endpoint}
        try:
            upload(endpoint, Path(args.data), "clipline")
            upload(endpoint, tmp / "mds", "mds")
            upload(endpoint, tmp / "wds", "wds")
            env["CLIPLINE_WDS_URLS"] = json.dumps(presigned(endpoint, "wds", sorted(p.name for p in (tmp / "wds").iterdir())))
            sources = {"local": {"clipline": args.data, "mosaic": str(tmp / "mds"), "wds": str(tmp / "wds")},
                       "s3": {"clipline": f"s3://{BUCKET}/clipline", "mosaic": f"s3://{BUCKET}/mds", "wds": f"s3://{BUCKET}/wds"}}
            rows = []
            for where, paths in sources.items():
                runs = [("clipline", "threads", None), ("mosaic", 0, "mosaic"), ("mosaic", mosaic_workers, "mosaic"), ("wds", 0, "wds"), ("wds", wds_workers, "wds")]
                for name, workers, peer in runs:
                    scratch = Path(tempfile.mkdtemp(dir=tmp))
                    if peer is None:
                        epochs = run_clipline(paths[name], args.batch, EPOCHS, scratch, env)
                    else:
                        cmd = [sys.executable, __file__, "--peer", peer, "--source", paths[name], "--workers", str(workers), "--batch", str(args.batch), "--scratch", str(scratch), "--endpoint", endpoint]
                        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                        if done.returncode != 0:
                            print(f"{name} ({where}, {workers} workers) failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                            continue
                        epochs = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append((where, name, workers, epochs))
                    shutil.rmtree(scratch, ignore_errors=True)
        finally:
            server.terminate()
    print(f"loader benchmark: {count} samples, batch {args.batch}, shuffled; MB/s of decoded tensors")
    print(f"{'source':<6} {'loader':<10} {'workers':>8} {'cold samples/s':>15} {'cold MB/s':>10} {'warm samples/s':>15} {'warm MB/s':>10}")
    best = {}
    for where, name, workers, epochs in rows:
        cold = epochs[0]
        later = epochs[1:]
        secs = sum(e["seconds"] for e in later)
        warm = {"samples_per_s": sum(e["samples"] for e in later) / secs, "mb_per_s": sum(e["mb_per_s"] * e["seconds"] for e in later) / secs}
        print(f"{where:<6} {name:<10} {workers!s:>8} {cold['samples_per_s']:>15.1f} {cold['mb_per_s']:>10.1f} {warm['samples_per_s']:>15.1f} {warm['mb_per_s']:>10.1f}")
        for phase, e in (("cold", cold), ("warm", warm)):
            key = (where, name, phase)
            best[key] = max(best.get(key, 0.0), e["samples_per_s"])
    for where in ("local", "s3"):
        for phase in ("cold", "warm"):
            ours = best.get((where, "clipline", phase))
            for peer in ("mosaic", "wds"):
                theirs = best.get((where, peer, phase))
                if ours and theirs:
                    print(f"ratio {where} {phase}: clipline / {peer} (best worker count) = {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
