#!/usr/bin/env python3
"""Benchmark `loader`: a PyTorch training loop's data, read by clipline's Python package and by
MosaicML Streaming, LitData and WebDataset, from the same latents, from local disk and from an S3
server (moto) on 127.0.0.1, shuffled, cold (first epoch: nothing cached locally, the page cache
dropped) and warm (the later epochs, from each loader's local cache when it has one).

The data: `clipline bench synthesize` writes a committed clipline output of real-size samples
(latent 9×16×30×40 bf16, a 240p clip through a 16-channel VAE, and a 64×768 bf16 caption
embedding: 443 KB a sample before compression). The script reads every sample back through
`clipline.Dataset` and writes the same tensors as MDS shards (zstd, MosaicML's recommendation),
LitData's optimized chunks (zstd, torch tensors) and WebDataset tars. Every format is cut into
64 MB objects.

moto answers a ranged GET by reading the whole object, so on this server a request costs the
object, not the range: clipline's block cache is set to read whole 64 MiB shards
(`cache_block_mib = 64`, `--block-mib`), as the peers read whole objects. On real object storage
the default 8 MiB blocks are the better choice.

Every loader feeds the same consumer: take the batch (8 samples), touch every tensor (a sum, on
one torch thread, as a GPU trainer's main process leaves the CPU to its loader).
Each runs in its own process, at each worker count of `--workers`; the best of each is
compared. clipline's fetching and decoding run on its own threads, so it also runs with 0
DataLoader workers. Memory is the peak proportional set size (PSS) of the loader's whole
process tree, DataLoader workers included, sampled every 0.5 s.

    python benches/loader.py [--samples 10000] [--batch 8] [--epochs 3] [--workers 0,2,4]
Needs the set-up's venv (the clipline package, PyTorch, moto) with mosaicml-streaming,
litdata and webdataset (`pip install mosaicml-streaming==0.13.0 litdata==0.2.76 webdataset==1.0.2`;
their torchvision requirement upgrades PyTorch in that venv, which the tests also pass with).
The formats are kept under --work (default ~/.cache/clipline/bench-loader) for later runs.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from common import CLIPLINE, need_clipline

BUCKET = "bench"
LATENT, TEXT = [9, 16, 30, 40], [64, 768]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
LOADERS = ("clipline", "mosaic", "litdata", "wds")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3():
    port = free_port()
    server = subprocess.Popen([os.environ.get("CLIPLINE_MOTO_SERVER", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    sys.exit("moto_server did not start; set CLIPLINE_MOTO_SERVER")


def s3_client(endpoint):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def upload(endpoint, local_dir, prefix):
    s3 = s3_client(endpoint)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in Path(local_dir).rglob("*"):
        if path.is_file() and ".staging" not in path.parts:
            s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local_dir)}")


# ---- the data, in every format ------------------------------------------------------------

def synthesize(work, samples):
    out = work / "clipline"
    if not (out / "done").exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([str(CLIPLINE), "-q", "bench", "synthesize", "--output", str(out), "--samples", str(samples), "--shard-mib", "64",
                        "--latent", ",".join(map(str, LATENT)), "--text", ",".join(map(str, TEXT))], check=True)
        (out / "done").write_text(str(samples))
    return out


_SOURCE = {}


def sample_tensors(index):
    """Sample `index` of the clipline output (in id order) as bf16 tensors, read by clipline."""
    import clipline
    ds = _SOURCE.get("ds") or _SOURCE.setdefault("ds", clipline.Dataset(os.environ["BENCH_CLIPLINE"]))
    s = ds[index]
    return s["sample_id"], s["latent"].clone(), s["text"].clone()


def litdata_item(index):
    """LitData's serializer has no bf16: the same bits as int16, viewed back as bf16 when read."""
    import torch
    sample_id, latent, text = sample_tensors(index)
    return {"id": sample_id, "latent": latent.view(torch.int16), "text": text.view(torch.int16)}


class AsBf16:
    """A loader whose batches' int16 tensors are viewed as the bf16 they hold (no copy)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        import torch
        for batch in self.loader:
            yield {k: v.view(torch.bfloat16) if isinstance(v, torch.Tensor) and v.dtype == torch.int16 else v for k, v in batch.items()}


def convert(work, source, count):
    """The same tensors as MDS, LitData and WebDataset shards (each written once)."""
    os.environ["BENCH_CLIPLINE"] = str(source)
    mds, lit, wds_dir = work / "mds", work / "litdata", work / "wds"
    if not (mds / "done").exists() or not (wds_dir / "done").exists():
        import torch
        import webdataset as wds
        from streaming import MDSWriter
        for d in (mds, wds_dir):
            shutil.rmtree(d, ignore_errors=True)
        wds_dir.mkdir(parents=True)
        columns = {"id": "str", "latent": "bytes", "text": "bytes"}
        with MDSWriter(out=str(mds), columns=columns, compression="zstd", size_limit="64mb") as writer, \
                wds.ShardWriter(str(wds_dir / "shard-%06d.tar"), maxsize=64 << 20, verbose=0) as tar:
            for n in range(count):
                sample_id, latent, text = sample_tensors(n)
                latent, text = (t.view(torch.int16).numpy().tobytes() for t in (latent, text))
                writer.write({"id": sample_id, "latent": latent, "text": text})
                tar.write({"__key__": f"{n:08d}", "id.txt": sample_id, "latent.bin": latent, "text.bin": text})
        (mds / "done").write_text("")
        (wds_dir / "done").write_text("")
    if not (lit / "done").exists():
        from litdata import optimize
        shutil.rmtree(lit, ignore_errors=True)
        optimize(fn=litdata_item, inputs=list(range(count)), output_dir=str(lit), chunk_bytes="64MB", compression="zstd", num_workers=2, verbose=False)
        (lit / "done").write_text("")
    return {"clipline": source, "mosaic": mds, "litdata": lit, "wds": wds_dir}


# ---- the consumer and each loader, in a child process ---------------------------------------

def consume(loader, epochs):
    """The training loop's side: take each batch, touch every tensor; per-epoch figures."""
    out = []
    for epoch in range(epochs):
        start = time.perf_counter()
        samples = nbytes = 0
        for batch in loader:
            for t in (batch["latent"], batch["text"]):
                t.sum()
                nbytes += t.numel() * t.element_size()
            samples += batch["latent"].shape[0]
        secs = time.perf_counter() - start
        out.append({"epoch": epoch, "samples": samples, "seconds": secs, "samples_per_s": samples / secs, "mb_per_s": nbytes / 1e6 / secs})
    return out


def bf16(data, shape):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.frombuffer(data, dtype=torch.bfloat16).reshape(shape)


def collate_bytes(samples):
    import torch
    return {"latent": torch.stack([bf16(s["latent"], LATENT) for s in samples]), "text": torch.stack([bf16(s["text"], TEXT) for s in samples])}


def wds_collate(samples):
    import torch
    return {"latent": torch.stack([bf16(s["latent.bin"], LATENT) for s in samples]), "text": torch.stack([bf16(s["text.bin"], TEXT) for s in samples])}


def child(args):
    import torch
    # The consumer's sums run on one thread: a GPU trainer's main process leaves the CPU to its
    # loader, and torch's spinning intra-op threads would otherwise take the cores from
    # whichever loader decodes in this process.
    torch.set_num_threads(1)
    source, workers, batch, cache = args.source, args.workers, args.batch, Path(args.cache)
    s3 = source.startswith("s3://")
    persistent = {"persistent_workers": workers > 0}
    if args.child == "clipline":
        import clipline
        ds = clipline.StreamingDataset(source, batch_size=batch, seed=0, cache_dir=str(cache) if s3 else None, cache_block_mib=args.block_mib)
        loader = clipline.StreamingDataLoader(ds, num_workers=workers, **persistent)
    elif args.child == "mosaic":
        from streaming import StreamingDataset
        from streaming.base.util import clean_stale_shared_memory
        clean_stale_shared_memory()
        ds = StreamingDataset(remote=source if s3 else None, local=str(cache) if s3 else source, shuffle=True, shuffle_seed=0, batch_size=batch)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_bytes, **persistent)
    elif args.child == "litdata":
        import litdata.streaming.downloader as downloader
        from litdata import StreamingDataLoader, StreamingDataset
        # LitData's obstore path gives an http:// endpoint (moto here) without allowing http;
        # the same option a user would set for any http endpoint.
        downloader._OBSTORE_CLIENT_OPTIONS = {**downloader._OBSTORE_CLIENT_OPTIONS, "allow_http": "true"}
        options = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"], "aws_access_key_id": "testing", "aws_secret_access_key": "testing"} if s3 else None
        ds = StreamingDataset(source, cache_dir=str(cache) if s3 else None, shuffle=True, seed=0, storage_options=options)
        loader = AsBf16(StreamingDataLoader(ds, batch_size=batch, num_workers=workers, **persistent))
    else:
        import webdataset as wds
        if s3:
            # Presigned URLs streamed by curl: WebDataset's documented way to read object storage.
            urls = [f"pipe:curl -s -f '{u}'" for u in json.loads(os.environ["BENCH_WDS_URLS"])]
        else:
            urls = [str(p) for p in sorted(Path(source).glob("*.tar"))]
        ds = wds.WebDataset(urls, shardshuffle=len(urls), cache_dir=str(cache) if s3 else None, empty_check=False, seed=0, nodesplitter=wds.split_by_node,
                            workersplitter=wds.split_by_worker).shuffle(1000).batched(batch, collation_fn=wds_collate)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, **persistent)
    print(json.dumps(consume(loader, args.epochs)))


# ---- the runs -------------------------------------------------------------------------------

def drop_page_cache():
    """Make a local first epoch cold; False where this machine does not allow it."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3")
        return True
    except OSError:
        return False


def run_child(name, source, workers, args, env, scratch):
    """One loader in its own process; its epochs and the peak PSS of its process tree."""
    import psutil
    cache = Path(tempfile.mkdtemp(dir=scratch))
    cmd = [sys.executable, __file__, "--child", name, "--source", str(source), "--workers", str(workers), "--batch", str(args.batch),
           "--epochs", str(args.epochs), "--cache", str(cache), "--block-mib", str(args.block_mib)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                peak[0] = max(peak[0], total)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        print(f"  {name} ({workers} workers): no result within {args.timeout} s", file=sys.stderr)
        return None
    finally:
        sampler.join(timeout=2)
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        print(f"  {name} ({workers} workers) failed:\n{stderr[-3000:]}", file=sys.stderr)
        return None
    return {"epochs": json.loads(stdout.strip().splitlines()[-1]), "peak_mb": peak[0] / 1e6}


def summarize(result):
    cold, later = result["epochs"][0], result["epochs"][1:]
    secs = sum(e["seconds"] for e in later)
    warm = {"samples_per_s": sum(e["samples"] for e in later) / secs, "mb_per_s": sum(e["mb_per_s"] * e["seconds"] for e in later) / secs}
    return cold, warm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3, help="the first is cold, the others warm")
    ap.add_argument("--workers", default="0,2,4", help="DataLoader worker counts to try for every loader")
    ap.add_argument("--loaders", default=",".join(LOADERS))
    ap.add_argument("--where", default="local,s3")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds one loader's run may take")
    ap.add_argument("--block-mib", type=int, default=64, help="clipline's cache block (data.loader.cache_block_mib); see below")
    ap.add_argument("--work", default=str(Path(os.environ.get("CLIPLINE_CACHE", Path.home() / ".cache/clipline")) / "bench-loader"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.workers = int(args.workers)
        return child(args)
    need_clipline()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source = synthesize(work, args.samples)
    formats = convert(work, source, args.samples)
    sizes = {name: sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file()) / 1e9 for name, d in formats.items()}
    loaders = args.loaders.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    cold_local = True
    try:
        for where in args.where.split(","):
            for name in loaders:
                env = dict(os.environ)
                server = None
                if where == "s3":
                    server, endpoint = start_s3()
                    upload(endpoint, formats[name], name)
                    env.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint, S3_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true")
                    if name == "wds":
                        names = sorted(p.name for p in formats[name].glob("*.tar"))
                        s3 = s3_client(endpoint)
                        env["BENCH_WDS_URLS"] = json.dumps([s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": f"wds/{n}"}, ExpiresIn=7200) for n in names])
                    src = f"s3://{BUCKET}/{name}"
                else:
                    src = str(formats[name])
                try:
                    for w in workers:
                        if where == "local":
                            if name == "mosaic":
                                # MDS decompresses local zstd shards beside them on first read:
                                # remove those copies, or only the first run would be cold.
                                for copy in Path(src).glob("*.mds"):
                                    copy.unlink()
                            cold_local = drop_page_cache() and cold_local
                        result = run_child(name, src, w, args, env, scratch)
                        if result:
                            rows.append((where, name, w, result))
                            cold, warm = summarize(result)
                            print(f"  {where:<6} {name:<9} {w} workers: cold {cold['samples_per_s']:.0f} samples/s ({cold['seconds']:.1f} s), "
                                  f"warm {warm['samples_per_s']:.0f} samples/s, peak {result['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
                finally:
                    if server:
                        server.terminate()
                        server.wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"loader benchmark: {args.samples} samples (latent {'x'.join(map(str, LATENT))} + text {'x'.join(map(str, TEXT))} bf16), batch {args.batch}, shuffled, "
          f"{args.epochs - 1} warm epochs; {os.cpu_count()} cores")
    print("on disk: " + ", ".join(f"{n} {s:.2f} GB" for n, s in sizes.items()))
    if not cold_local:
        print("note: the page cache could not be dropped; local cold epochs read cached pages")
    print(f"{'source':<6} {'loader':<9} {'workers':>7} {'cold s':>7} {'cold samples/s':>15} {'cold MB/s':>10} {'warm samples/s':>15} {'warm MB/s':>10} {'peak MB':>8}")
    best = {}
    for where, name, w, result in rows:
        cold, warm = summarize(result)
        print(f"{where:<6} {name:<9} {w:>7} {cold['seconds']:>7.1f} {cold['samples_per_s']:>15.1f} {cold['mb_per_s']:>10.1f} {warm['samples_per_s']:>15.1f} {warm['mb_per_s']:>10.1f} {result['peak_mb']:>8.0f}")
        for phase, e in (("cold", cold), ("warm", warm)):
            key = (where, name, phase)
            if e["samples_per_s"] > best.get(key, (0.0, None, 0))[0]:
                best[key] = (e["samples_per_s"], w, result["peak_mb"])
    print("best worker count of each loader; ratio = clipline samples/s / peer samples/s")
    for where in args.where.split(","):
        for phase in ("cold", "warm"):
            ours = best.get((where, "clipline", phase))
            for peer in loaders:
                theirs = best.get((where, peer, phase))
                if peer != "clipline" and ours and theirs:
                    print(f"  {where:<5} {phase}: clipline {ours[0]:.0f} ({ours[1]} workers, {ours[2]:.0f} MB) vs {peer} {theirs[0]:.0f} ({theirs[1]} workers, {theirs[2]:.0f} MB) = {ours[0] / theirs[0]:.2f}x")


if __name__ == "__main__":
    main()
