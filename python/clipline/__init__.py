"""Read clipline's precomputed video latents from PyTorch.

clipline writes bf16 VAE latents and caption embeddings into zstd-compressed shards, and
Parquet manifests beside them. This package reads them where PyTorch trainers live:

- ``Dataset(uri)``: random access to the committed samples (local or ``s3://``), each a dict
  of torch tensors viewing the decoded record without a copy.
- ``StreamingDataset(uri, ...)``: a ``torch.utils.data.IterableDataset`` of per-bucket batches in
  the global order ``clipline train`` uses, split over torchrun ranks and DataLoader workers,
  with ``state_dict()`` / ``load_state_dict()`` that resume exactly on any number of ranks and
  workers. ``StreamingDataLoader`` carries that state through DataLoader workers.
- ``read_table(uri, name)``: a manifest table as a pyarrow Table of committed rows only.

Fetching, verification, decompression and batch stacking run in Rust (``clipline._native``)
with the GIL released. Neither ONNX Runtime nor ffmpeg is needed.
"""
from ._native import CorruptSampleError, LoaderError, __version__
from .dataset import Dataset
from .tables import read_table


def __getattr__(name):
    # The streaming classes subclass torch's; importing them loads torch, which reading
    # tables does not need.
    if name in ("StreamingDataset", "StreamingDataLoader"):
        from . import streaming
        return getattr(streaming, name)
    raise AttributeError(f"module 'clipline' has no attribute {name!r}")


__all__ = ["Dataset", "StreamingDataset", "StreamingDataLoader", "read_table", "CorruptSampleError", "LoaderError", "__version__"]
