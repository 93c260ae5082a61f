"""Streaming checkpoint writers: tensors go to disk one at a time, in order, as they arrive.

    with SafetensorsStream(path, layout) as w:     # layout: [(name, shape, dtype)], known up front
        for name, array in ...: w.write(name, array)
    with CkptStream(path) as w: ...                # MindSpore's .ckpt framing, byte-identical to
                                                   # mindspore.save_checkpoint of the same arrays

Every writer writes to a temporary name beside the final one (harness.core.formats.atomic); leaving
the `with` block normally fsyncs and renames it into place, an error (or Ctrl-C) removes it. Each
array is written from its own memory, never serialised into a second copy of the tensor first.

Where the file system allows it (Linux, not tmpfs), the bytes go to disk with O_DIRECT through a
small page-aligned staging buffer instead of through the page cache: a 6 GB checkpoint then
takes no 6 GB of page cache (which would evict the user's cached files, and which on this
project's VM costs a host page fault per page: buffered writes of 4 GB took 1.3 to 10.6 s
depending on the memory's history, direct ones 1.8 to 2.4 s; measured). Elsewhere, and if the
file system refuses O_DIRECT, the writer falls back to ordinary buffered writes.
"""
from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import struct
from pathlib import Path

import numpy as np

from harness.core.errors import BadInput
from harness.core.formats.atomic import as_bad_input, commit, discard, temp_beside

ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64",
             np.dtype(np.int32): "I32", np.dtype(np.float64): "F64"}
CKPT_DTYPES = {np.dtype(np.float32): "Float32", np.dtype(np.float16): "Float16", np.dtype(np.int64): "Int64",
               np.dtype(np.int32): "Int32", np.dtype(np.float64): "Float64"}
CKPT_CHUNK = 512 * 1024 * 1024   # mindspore.train.serialization: 1024 * SLICE_SIZE bytes per Value
O_DIRECT = getattr(os, "O_DIRECT", 0)   # 0 where the platform has none: buffered writes only
DIRECT_ALIGN = 4096                      # buffer address, file offset and length (any block size up to 4 KiB)
DIRECT_STAGE = 8 * 1024 * 1024           # bytes staged per direct write (measured: 8 and 32 MiB both ~2 GB/s here)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    if view.nbytes == 0:
        return
    view = view.cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


# -- writers -------------------------------------------------------------------------
class StreamWriter:
    """Base: a temporary file open for writing; close() commits it, abort() removes it. As a
    context manager it commits on a normal exit and removes the file on any exception."""

    def __init__(self, path: Path, direct: bool = True):
        self.path = Path(path)
        self.want_direct = direct   # False: buffered writes (the benchmark's plain-write floor)
        self.tmp, self.fd = None, -1
        self._stage: mmap.mmap | None = None   # page-aligned staging buffer while writing with O_DIRECT
        self._staged = 0                         # bytes in the staging buffer
        self._flushed = 0                        # bytes written from it to the file
        try:
            self.tmp = temp_beside(self.path)
            self.fd = self._open(self.tmp)
        except BaseException as e:   # OSError, or an interrupt before the caller's `with` holds us
            self._release_stage()
            if self.tmp is not None:
                discard(self.tmp)
            if isinstance(e, OSError):
                raise as_bad_input(e, self.path, self.tmp) from None
            raise
        self.bytes = 0

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _open(self, tmp: Path) -> int:
        if O_DIRECT and self.want_direct:
            try:
                fd = os.open(tmp, os.O_WRONLY | O_DIRECT)
            except OSError as e:
                if e.errno != errno.EINVAL:    # EINVAL: this file system has no direct I/O
                    raise
            else:
                try:
                    self._stage = mmap.mmap(-1, DIRECT_STAGE)
                except BaseException:
                    os.close(fd)
                    raise
                return fd
        return os.open(tmp, os.O_WRONLY)

    @property
    def direct(self) -> bool:
        """True while the bytes go to disk with O_DIRECT."""
        return self._stage is not None

    def _out(self, data) -> None:
        view = memoryview(data)
        nbytes = view.nbytes
        try:
            if self._stage is None:
                _write_all(self.fd, view)
            elif nbytes:
                view = view.cast("B")
                while view:
                    n = min(len(view), DIRECT_STAGE - self._staged)
                    self._stage[self._staged:self._staged + n] = view[:n]
                    self._staged += n
                    view = view[n:]
                    if self._staged == DIRECT_STAGE:
                        self._flush_stage()
                        if self._stage is None:        # direct I/O refused: the rest buffered
                            _write_all(self.fd, view)
                            break
        except OSError as e:   # disk full, file too large: the caller aborts (removes the file)
            raise as_bad_input(e, self.path, self.tmp) from None
        self.bytes += nbytes

    def _flush_stage(self, last: bool = False) -> None:
        """Write the staged bytes; the last block is padded to DIRECT_ALIGN (close() truncates the
        file to its true length). A file system that refuses the direct write (EINVAL) gets this
        and every later write buffered."""
        stage, n = self._stage, self._staged
        assert stage is not None
        padded = -(-n // DIRECT_ALIGN) * DIRECT_ALIGN if last else n   # the pad: stale bytes, cut off
        refused = False
        with memoryview(stage) as view:
            try:
                _write_all(self.fd, view[:padded])
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                refused = True
                fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~O_DIRECT)
                os.lseek(self.fd, self._flushed, os.SEEK_SET)
                _write_all(self.fd, view[:n])
        self._flushed += n if refused else padded
        self._staged = 0
        if refused:
            self._release_stage()

    def _release_stage(self) -> None:
        if self._stage is not None:
            try:
                self._stage.close()
            except BufferError:   # a view of it lives on in an exception's traceback: freed with it
                pass
            self._stage = None

    def _flush_last(self) -> None:
        """The staged rest, then the file cut to the bytes written (the padding goes)."""
        if self._stage is None:
            return
        try:
            if self._staged:
                self._flush_stage(last=True)
            os.ftruncate(self.fd, self.bytes)
        except OSError as e:
            raise as_bad_input(e, self.path, self.tmp) from None
        finally:
            self._release_stage()

    def write(self, name: str, array: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Anything due after the last tensor (a check that every tensor came)."""

    def close(self) -> Path:
        try:
            self._finish()
            self._flush_last()
        except BaseException:
            self.abort()
            raise
        os.close(self.fd)
        self.fd = -1
        try:
            commit(self.tmp, self.path)
        except OSError as e:
            discard(self.tmp)
            raise as_bad_input(e, self.path, self.tmp) from None
        except BaseException:
            discard(self.tmp)
            raise
        return self.path

    def abort(self) -> None:
        self._release_stage()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        discard(self.tmp)


def _raw(array: np.ndarray) -> memoryview:
    """The array's bytes as a flat view (a copy only if it is not C-contiguous)."""
    array = array if array.flags.c_contiguous else np.ascontiguousarray(array)
    return memoryview(array.reshape(-1).view(np.uint8))


class SafetensorsStream(StreamWriter):
    """safetensors: the header (every name, dtype, shape and offset) first, then the tensors in
    layout order. Equal inputs give byte-identical files."""

    def __init__(self, path: Path, layout: list[tuple[str, tuple[int, ...], np.dtype]],
                 metadata: dict[str, str] | None = None, direct: bool = True):
        header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
        offset = 0
        for name, shape, dtype in layout:
            dtype = np.dtype(dtype)
            if dtype not in ST_DTYPES:
                raise BadInput(f"{path}: tensor {name} has dtype {dtype}, which this writer does not support",
                               "convert it to float32")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            header[name] = {"dtype": ST_DTYPES[dtype], "shape": [int(s) for s in shape],
                            "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        self.layout = [(name, tuple(int(s) for s in shape), np.dtype(dtype)) for name, shape, dtype in layout]
        self.next = 0
        head = json.dumps(header, separators=(",", ":")).encode()
        head += b" " * (-len(head) % 8)
        super().__init__(path, direct)
        try:
            self._out(struct.pack("<Q", len(head)))
            self._out(head)
        except BaseException:   # an interrupt or a full disk before the caller's `with` holds us
            self.abort()
            raise

    def write(self, name: str, array: np.ndarray) -> None:
        if self.next >= len(self.layout):
            raise ValueError(f"{self.path}: tensor {name} is one more than the {len(self.layout)} announced")
        want = self.layout[self.next]
        if (name, tuple(array.shape), array.dtype) != want:
            raise ValueError(f"{self.path}: got tensor {name} {array.dtype}{tuple(array.shape)}, "
                             f"expected {want[0]} {want[2]}{want[1]} (tensor #{self.next + 1} of the header)")
        self._out(_raw(array))
        self.next += 1

    def _finish(self) -> None:
        if self.next != len(self.layout):
            raise ValueError(f"{self.path}: {self.next} of {len(self.layout)} tensors were written "
                             f"(next missing: {self.layout[self.next][0]})")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:     # a length-delimited protobuf field
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


class CkptStream(StreamWriter):
    """MindSpore .ckpt: a run of serialised Checkpoint messages (checkpoint.proto), one Value
    {tag, TensorProto{dims, tensor_type, tensor_content}} per tensor, tensors over 512 MiB split
    into byte chunks that repeat tag and dims: the framing mindspore.save_checkpoint writes.
    The tensor bytes are written straight from the array, after a few bytes of framing."""

    def __init__(self, path: Path, chunk: int = CKPT_CHUNK):
        super().__init__(path)
        self.chunk = chunk

    def write(self, name: str, array: np.ndarray) -> None:
        if array.dtype not in CKPT_DTYPES:
            raise BadInput(f"{self.path}: tensor {name} has dtype {array.dtype}, which this writer does not support",
                           "convert it to float32")
        if array.size == 0:   # save_checkpoint writes no Value for it: the tensor would vanish
            raise BadInput(f"{self.path}: tensor {name} is empty {tuple(array.shape)}; a MindSpore .ckpt "
                           "cannot hold it (mindspore.save_checkpoint silently drops such tensors)",
                           "save this state as safetensors")
        data = _raw(array)
        dims = b"".join(_varint(1 << 3 | 0) + _varint(int(d)) for d in array.shape)
        type_field = _field(2, CKPT_DTYPES[array.dtype].encode())
        for start in range(0, len(data), self.chunk):
            part = data[start:start + self.chunk]
            content_head = _varint(3 << 3 | 2) + _varint(len(part))
            tensor_len = len(dims) + len(type_field) + len(content_head) + len(part)
            value_head = _field(1, name.encode()) + _varint(2 << 3 | 2) + _varint(tensor_len)
            value_len = len(value_head) + tensor_len
            self._out(_varint(1 << 3 | 2) + _varint(value_len) + value_head + dims + type_field + content_head)
            self._out(part)
