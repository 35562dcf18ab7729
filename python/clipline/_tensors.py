"""The native module's tensors as torch tensors, and per-process native handles."""
import os

from . import _native


def torch():
    """PyTorch, imported when the first tensor is made (``import clipline`` needs none)."""
    try:
        import torch as module
    except ImportError as e:
        raise ImportError("clipline hands out torch tensors: install PyTorch into this environment (pip install torch)") from e
    return module


def to_torch(record):
    """Replace every native tensor in a dict by a torch tensor viewing the same memory."""
    from_dlpack = torch().from_dlpack
    return {k: from_dlpack(v) if isinstance(v, _native.Tensor) else v for k, v in record.items()}


class PerProcess:
    """A native handle opened again in each process that uses it.

    DataLoader workers are forked or spawned copies: a handle opened in the parent holds
    connections and threads that do not work in the child, so each process opens its own.
    """

    def __init__(self, opener):
        self._opener, self._pid, self._value = opener, None, None

    def get(self):
        if self._pid != os.getpid():
            self._value, self._pid = self._opener(), os.getpid()
        return self._value

    def __getstate__(self):
        return {"_opener": self._opener, "_pid": None, "_value": None}
