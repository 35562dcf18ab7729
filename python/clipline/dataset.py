"""Random access to an output's committed samples."""
import functools

from . import _native
from ._tensors import PerProcess, to_torch


class Dataset:
    """The readable samples of a clipline output, in sample-id order.

    ``uri`` is a path, ``file://`` or ``s3://bucket/prefix`` (credentials and endpoint from the
    ``AWS_*`` variables the CLI reads, overridden by ``storage_options``: object_store's keys such
    as ``aws_endpoint``, ``aws_access_key_id``). Only samples of committed chunks are seen.

    ``ds[i]`` and ``ds.get(sample_id)`` return a dict: ``latent`` (bf16, [T, C, H, W] as stored),
    ``text`` (bf16, [tokens, width]; absent for a sample without a caption), ``text_length``,
    ``caption``, ``sample_id``, ``clip_id``, ``bucket`` and ``attributes``. The tensors view the
    decoded record in place (no copy after decompression). A sample that fails verification raises
    ``clipline.CorruptSampleError`` naming it, its shard and what is wrong: never wrong numbers.
    """

    def __init__(self, uri, storage_options=None):
        self.uri, self.storage_options = str(uri), storage_options
        self._native = PerProcess(functools.partial(_native.NativeDataset, self.uri, storage_options))
        self._ids = self._native.get().ids()

    def __len__(self):
        return len(self._ids)

    def __getitem__(self, index):
        if not isinstance(index, int):
            raise TypeError(f"dataset indices are integers, not {type(index).__name__}; use .get(sample_id) for ids")
        return self.get(self._ids[index])

    def get(self, sample_id):
        """The sample with this id (``KeyError`` when the output has no such readable sample)."""
        return to_torch(self._native.get().read(sample_id))

    @property
    def ids(self):
        """The readable samples' ids: ``ds[i]`` is ``ds.ids[i]``."""
        return list(self._ids)

    @functools.cached_property
    def samples(self):
        """The ``samples`` table's rows of these samples, as a pyarrow Table (row ``i`` is ``ds[i]``)."""
        import pyarrow.compute as pc

        from .tables import read_table
        table = read_table(self.uri, "samples", self.storage_options)
        return table.filter(pc.equal(table["status"], "ok")).sort_by("sample_id")

    def __repr__(self):
        return f"clipline.Dataset({self.uri!r}, {len(self)} samples)"
