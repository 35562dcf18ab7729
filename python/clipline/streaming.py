"""The streaming loader as a PyTorch ``IterableDataset``, with exact, portable resume.

The order is ``clipline train``'s: a pure function of the seed and the data, cut into
per-bucket batches and shuffled per epoch; global batch ``g`` goes to rank ``g % world_size``.
The state is where the ranks stand in that stream (three numbers and a fingerprint of the
data), so a state saved by rank 0 of N ranks resumes the same stream on any number of ranks and
DataLoader workers: what an uninterrupted run would have read next is read next.

Nothing here leaves state outside the process but the optional block cache, whose files are
written whole and renamed and are never locked: a job killed with SIGKILL restarts cleanly.
"""
import functools
import json
import logging
import os

import torch

from . import _native
from ._tensors import PerProcess, to_torch

log = logging.getLogger("clipline")

STATE_FORMAT = 1
# The [data.loader] keys of a training config, which StreamingDataset also takes as arguments.
LOADER_OPTIONS = ("prefetch_samples", "prefetch_mib", "decode_threads", "cache_dir", "cache_mib", "cache_block_mib", "max_skipped_fraction")


def _env_int(name):
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def _open_plan(uri, storage_options, config_json):
    return _native.NativePlan(_native.NativeDataset(uri, storage_options), config_json)


class StreamingDataset(torch.utils.data.IterableDataset):
    """Batches of one bucket at a time, this rank's share of the global stream, one epoch per
    iteration.

    Each batch is a dict: ``latent`` (bf16 [B, T, C, H, W]), ``text`` (bf16 [B, tokens, width],
    zero-padded to the longest caption), ``text_mask`` (bool [B, tokens], true at real tokens),
    ``text_length``, ``caption``, ``sample_id``, ``clip_id`` and ``attributes`` (lists, one entry
    per sample), ``bucket``, ``epoch``, ``global_batch`` (its place in the global stream) and
    ``skipped`` ((sample id, reason) of corrupt samples left out of it; a batch whose samples were
    all corrupt has no tensors).

    The options are ``clipline train``'s ``[data]`` section: ``seed``; ``batch_size``, an int or a
    mapping from bucket keys (``default``, ``240p``, ``240p-33f``, a full bucket name) to sizes;
    ``kinds``, ``min_frames``, ``min_height``, ``val_samples`` (held out, by a hash of the id);
    and the ``[data.loader]`` keys as arguments: ``prefetch_samples``, ``prefetch_mib`` (the bound
    on decoded bytes held ahead), ``decode_threads``, ``cache_dir``, ``cache_mib``,
    ``cache_block_mib``, ``max_skipped_fraction``.

    ``rank`` and ``world_size`` default to torchrun's ``RANK`` and ``WORLD_SIZE``. Every rank gets
    the same number of batches per epoch (an epoch's last batches, fewer than the ranks, are
    dropped), so data-parallel ranks never wait on each other at an epoch's end. DataLoader
    workers split the rank's batches without changing their order. Epochs advance on their own;
    ``set_epoch`` chooses one.

    ``state_dict()`` / ``load_state_dict()`` follow ``torch.distributed.checkpoint.Stateful``
    and torchdata's ``StatefulDataLoader``: iterated in the main process (``num_workers=0``),
    the dataset's own state is exact; with DataLoader workers, wrap it in
    ``StreamingDataLoader``, whose ``state_dict()`` is.
    """

    def __init__(self, uri, *, seed=0, batch_size=1, kinds=(), min_frames=0, min_height=0, val_samples=0,
                 rank=None, world_size=None, storage_options=None, **loader):
        super().__init__()
        unknown = sorted(set(loader) - set(LOADER_OPTIONS))
        if unknown:
            raise TypeError(f"unknown options {', '.join(unknown)}; the loader's are {', '.join(LOADER_OPTIONS)}")
        sizes = {"default": int(batch_size)} if isinstance(batch_size, int) else {str(k): int(v) for k, v in dict(batch_size).items()}
        loader = {k: (str(v) if k == "cache_dir" else v) for k, v in loader.items() if v is not None}
        self.config = {"seed": int(seed), "batch_size": sizes, "kinds": list(kinds), "min_frames": int(min_frames),
                       "min_height": int(min_height), "val_samples": int(val_samples), "loader": loader}
        self.uri, self.storage_options = str(uri), storage_options
        self.world_size = world_size if world_size is not None else (_env_int("WORLD_SIZE") or 1)
        self.rank = rank if rank is not None else (_env_int("RANK") or 0)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} of world size {self.world_size} is out of range")
        self._plan = PerProcess(functools.partial(_open_plan, self.uri, storage_options, json.dumps(self.config)))
        plan = self._plan.get()
        if plan.batches_per_epoch == 0:
            buckets = "; ".join(f"{name}: {n} samples, batch size {size}" for name, n, size, _ in plan.buckets()) or "no samples match"
            raise _native.LoaderError(f"no bucket of {self.uri} yields a full batch ({buckets}); lower batch_size")
        self.batches_per_epoch = plan.batches_per_epoch
        self._position = 0
        self._epoch = None
        self._last_global = None
        self.skipped = []

    @property
    def validation_ids(self):
        """Ids of the samples held out by ``val_samples``."""
        return self._plan.get().validation

    def buckets(self):
        """The dry run: (bucket, samples, batch size, full batches per epoch) for each bucket."""
        return self._plan.get().buckets()

    def set_epoch(self, epoch):
        """Read epoch ``epoch`` next (from its start, unless the state stands inside it)."""
        self._epoch = int(epoch)

    def _start(self):
        per_epoch = self.batches_per_epoch
        epoch = self._epoch if self._epoch is not None else self._position // per_epoch
        first = epoch * per_epoch
        return self._position if first <= self._position < first + per_epoch else first

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        start = self._start()
        stream = self._plan.get().stream(self.rank, self.world_size, worker, workers, start)
        for batch in stream:
            batch = to_torch(batch)
            if info is None:
                self._consumed(batch)
            yield batch
        if info is not None:
            # A worker's copy only knows its own batches; at the end it knows the epoch is done.
            per_epoch = self.batches_per_epoch
            self._position, self._epoch = (start // per_epoch + 1) * per_epoch, None

    def _consumed(self, batch):
        """Note that this rank has taken ``batch`` (and, in lockstep, every rank its own)."""
        global_batch = batch["global_batch"]
        if global_batch == self._last_global:
            return
        self._last_global = global_batch
        for sample_id, reason in batch["skipped"]:
            log.warning("skipped corrupt sample %s: %s", sample_id, reason)
        self.skipped.extend(batch["skipped"])
        per_epoch = self.batches_per_epoch
        position = global_batch - self.rank + self.world_size
        end = (global_batch // per_epoch + 1) * per_epoch
        self._position = end if end - position < self.world_size else position
        self._epoch = None

    def state_dict(self):
        """Where the ranks stand: resume it with ``load_state_dict`` on any world size."""
        return {"format": STATE_FORMAT, "loader": json.loads(self._plan.get().state_at(self._position))}

    def load_state_dict(self, state):
        """Continue from a ``state_dict()`` (of any rank, any world size); raises
        ``clipline.LoaderError`` when it belongs to other data, another seed or other batch sizes."""
        if state.get("format") != STATE_FORMAT:
            raise _native.LoaderError(f"loader state format {state.get('format')!r}; this clipline reads format {STATE_FORMAT}")
        self._position = self._plan.get().resume(json.dumps(state["loader"]))
        self._epoch, self._last_global = None, None

    def __repr__(self):
        return f"clipline.StreamingDataset({self.uri!r}, rank {self.rank} of {self.world_size}, {self.batches_per_epoch} batches per epoch)"


class StreamingDataLoader(torch.utils.data.DataLoader):
    """A DataLoader over a ``StreamingDataset`` that knows where the stream stands.

    With DataLoader workers each worker iterates its own copy of the dataset, so only the
    batches that reach the main process tell how far the rank has read; this loader notes each
    one and offers ``state_dict()`` / ``load_state_dict()`` as torchdata's
    ``StatefulDataLoader`` does. The state resumes on any number of ranks and workers.
    """

    def __init__(self, dataset, num_workers=0, **kwargs):
        if not isinstance(dataset, StreamingDataset):
            raise TypeError("StreamingDataLoader reads a clipline.StreamingDataset")
        kwargs.setdefault("batch_size", None)
        if kwargs["batch_size"] is not None:
            raise ValueError("the dataset yields whole batches; leave batch_size unset")
        super().__init__(dataset, num_workers=num_workers, **kwargs)

    def __iter__(self):
        for batch in super().__iter__():
            self.dataset._consumed(batch)
            yield batch

    def state_dict(self):
        return self.dataset.state_dict()

    def load_state_dict(self, state):
        self.dataset.load_state_dict(state)
