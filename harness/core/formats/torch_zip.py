"""PyTorch's zip checkpoint (torch.save since 1.6: .bin / .pt / .pth) read into numpy, without torch.

The pickle inside is run by an unpickler that knows only the globals a plain state dict uses
(a dict or OrderedDict of tensors: torch._utils._rebuild_tensor_v2 over typed storages, or
_rebuild_parameter around one). Anything else, code to run, a module, a custom class, is
refused before it is built, so a hostile file never executes (as torch.load(weights_only=True)).
Storages are read from the zip's members, whose CRC-32s zipfile checks as it reads them.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

_STORAGES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class Refused(pickle.UnpicklingError):
    """The pickle names something a plain state dict never holds, or its tensors do not fit their storages."""


class _Storage:
    def __init__(self, dtype, data: bytes, where: str):
        if len(data) % np.dtype(dtype).itemsize:
            raise Refused(f"storage {where}: {len(data)} bytes is not a whole number of {np.dtype(dtype).name}")
        self.array = np.frombuffer(data, dtype=dtype)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise Refused("a tensor is built from something that is not a storage")
    size, stride = tuple(size), tuple(stride)
    if (not isinstance(offset, int) or offset < 0 or len(size) != len(stride)
            or any(not isinstance(n, int) or n < 0 for n in size + stride)):
        raise Refused(f"tensor of size {size}, stride {stride}, offset {offset!r}: not a plain strided tensor")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if all(size) else offset - 1
    if last >= len(storage.array):
        raise Refused(f"tensor of size {size}, stride {stride}, offset {offset} reads past its storage "
                      f"of {len(storage.array)} elements")
    item = storage.array.itemsize
    view = np.lib.stride_tricks.as_strided(storage.array[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view, copy=True)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _STORAGES:
            return ("storage type", _STORAGES[name])
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        raise Refused(f"the pickle needs {module}.{name}, which a plain tensor state dict never holds")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], tuple) and pid[1][0] == "storage type" and isinstance(pid[2], str)):
            raise Refused(f"unknown persistent id {pid!r:.80}")
        key = pid[2]
        try:
            data = _member(self.archive, f"{self.prefix}data/{key}")
        except KeyError:
            raise Refused(f"storage {key!r} is not in the archive") from None
        return _Storage(pid[1][1], data, key)


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, its CRC-32 checked as it is read (torch.save with CRC-32 off writes 0: unchecked)."""
    info = archive.getinfo(name)
    with archive.open(info) as member:
        if info.CRC == 0:
            member._expected_crc = None   # zipfile would compare against 0
        return member.read()


def is_torch_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def read_torch_zip(path: Path) -> object:
    """The unpickled object of a torch zip checkpoint, tensors as numpy arrays. Raises Refused,
    zipfile.BadZipFile (a damaged archive or a CRC mismatch), or pickle / EOF errors."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise Refused(f"{len(pickles)} data.pkl members (a torch.save archive has one)")
        prefix = pickles[0][: -len("data.pkl")]
        has_order = f"{prefix}byteorder" in archive.namelist()
        order = _member(archive, f"{prefix}byteorder").decode() if has_order else "little"
        if order != "little":
            raise Refused(f"byte order {order!r}: only little-endian checkpoints are read")
        return _Unpickler(_member(archive, pickles[0]), archive, prefix).load()
