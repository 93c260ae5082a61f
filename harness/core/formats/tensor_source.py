"""Checkpoint tensors read one at a time, on demand: the streamed expander's source and the two sides
of the streamed parity (harness/kinds/growth/stream.py), for models larger than memory.

    src = TensorFile(path)              # .safetensors or .ckpt: the header / framing only is read now
    src.entries[name]                   # Entry(dtype, shape, spans): where each tensor's bytes lie
    a = src[name]                       # that tensor, read now into a fresh array (one copy)
    window = SourceWindow(src, needs)   # the sources a run of recipes needs, each read once while in use

A tensor is read with os.preadv into memory of its own, never through a memory map: pages of a
mapping that a run touches stay in the process's RSS (file-backed, reclaimable, but counted) until
the mapping goes, so a mapped 6 GB source looks like a 6 GB process by the end; a read buffer is
freed when the last tensor made from it is written. The bytes pass through the page cache, which the
kernel may drop at will (it is no part of RSS).

read_sequential(path) walks a file front to back instead, hashing every byte as it passes and
yielding each tensor's content in pieces of at most `piece` bytes into reused buffers: the streamed
parity compares two files and hashes both in one read of each, in memory of a few pieces.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.core.errors import BadInput

PIECE = 64 * 1024 * 1024   # bytes per piece of a sequential read


@dataclasses.dataclass(frozen=True)
class Entry:
    dtype: np.dtype
    shape: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]   # content byte ranges [start, end) in the file, in order

    @property
    def nbytes(self) -> int:
        return sum(end - start for start, end in self.spans)


def _safetensors_entries(path: Path) -> dict[str, Entry]:
    """Entries of a safetensors file, its header validated as the in-memory loader validates it
    (harness.core.formats.checkpoint.safetensors_header), and MindSpore's crc_num checksum, where
    the file has one, verified in one read of the tensors in pieces."""
    from harness.core.formats.checkpoint import check_safetensors_crc, safetensors_header
    head = safetensors_header(path)
    check_safetensors_crc(path, head)
    return {name: Entry(head.dtype(name), tuple(int(s) for s in e["shape"]),
                        ((head.data_start + e["data_offsets"][0], head.data_start + e["data_offsets"][1]),))
            for name, e in head.tensors.items()}


def _ckpt_entries(path: Path) -> dict[str, Entry]:
    from harness.core.formats.ckpt_framing import NUMPY, check_ckpt
    entries = {}
    for name, e in check_ckpt(path).items():   # the framing walked and checked: lengths, bytes = dims
        if e.tensor_type not in NUMPY:
            raise BadInput(f"{path}: tensor {name} is {e.tensor_type}, which numpy cannot hold",
                           "save the checkpoint in float32 (or float16)")
        entries[name] = Entry(np.dtype(NUMPY[e.tensor_type]), tuple(e.dims), tuple(e.spans))
    return entries


def entries(path: Path) -> dict[str, Entry]:
    """name -> Entry of every tensor of a .safetensors or .ckpt file, in file order; only the header
    (safetensors) or the framing (.ckpt) is read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _safetensors_entries(path)
    if suffix == ".ckpt":
        return _ckpt_entries(path)
    raise BadInput(f"{path}: tensors are read one at a time from .safetensors and .ckpt files only",
                   "convert the checkpoint to safetensors")


def streamable(path: Path) -> bool:
    return Path(path).suffix.lower() in (".safetensors", ".ckpt")


def _unreadable(path: Path, e: OSError) -> BadInput:
    return BadInput(f"{path}: cannot read: {e.strerror or e}", "check the path and its permissions")


def _read_exactly(fd: int, view: memoryview, offset: int, path: Path, what: str) -> None:
    while view:
        n = os.preadv(fd, [view], offset)
        if n == 0:
            raise BadInput(f"{path}: {what} ends early (the file changed while read?)", "read it again once whole")
        view, offset = view[n:], offset + n


class _OpenFile:
    """Owns one read-only file descriptor (self._fd, -1 once closed): close() and the context manager."""
    _fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorFile(_OpenFile, Mapping):
    """A .safetensors or .ckpt file as a read-only mapping name -> numpy array, each tensor read on
    access into a fresh array (module doc). Use as a context manager, or close()."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries = entries(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as e:
            raise _unreadable(self.path, e) from None
        self.bytes_read = 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """Tensor `name`, read into `out` (C-contiguous, its shape and dtype) or a fresh array."""
        entry = self.entries[name]
        if out is None:
            out = np.empty(entry.shape, dtype=entry.dtype)
        elif out.shape != entry.shape or out.dtype != entry.dtype or not out.flags.c_contiguous:
            raise ValueError(f"{name}: cannot read {entry.dtype}{entry.shape} into {out.dtype}{out.shape}")
        view, at = memoryview(out.reshape(-1).view(np.uint8)), 0
        try:
            for start, end in entry.spans:
                _read_exactly(self._fd, view[at:at + end - start], start, self.path, f"tensor {name}")
                at += end - start
        except OSError as e:
            raise _unreadable(self.path, e) from None
        self.bytes_read += at
        return out

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def prefetch(self, name: str) -> None:
        """Ask the kernel to start reading tensor `name` into the page cache now (posix_fadvise
        WILLNEED: returns at once), so that a later read finds it there: reading from a cold disk
        then overlaps the work on earlier tensors."""
        if hasattr(os, "posix_fadvise") and self._fd >= 0:
            for start, end in self.entries[name].spans:
                os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_WILLNEED)


class SourceWindow:
    """The source tensors of a run of target tensors, each read when first needed and kept only while
    it is needed again within `window` steps (AKI reads layer l + 1 again for the next layer; a
    depth copy reads its source layer again, later: from the page cache, most likely).

        needs[i] = the source names step i reads;  arrays(i) -> {name: array};  done(i) after step i;
        close() at the end

    A source with a `read(name, out)` (a TensorFile) is read on a thread of its own one step ahead:
    while step i is made, step i + 1's sources are read (os.preadv releases the GIL), into released
    arrays of the same shape where there are some; the sources of the steps after that are hinted to
    the page cache (`prefetch`).
    """

    AHEAD = 12   # steps whose sources are asked for ahead (a page-cache hint: no memory of ours)
    SPARES = 2   # released arrays kept per shape to read into

    def __init__(self, source: Mapping, needs: list[tuple[str, ...]], window: int):
        self.source, self.needs, self.window = source, needs, window
        self.uses: dict[str, list[int]] = {}
        for i, names in enumerate(needs):
            for name in names:
                self.uses.setdefault(name, []).append(i)
        self.held: dict[str, np.ndarray] = {}
        self.hinted: set[str] = set()   # asked for ahead, not read yet
        self.spares: dict[tuple, list[np.ndarray]] = {}   # (shape, dtype) -> released arrays to read into
        self.pending: dict[str, Future] = {}              # being read on the reader thread
        self.reads = 0
        self._read = getattr(source, "read", None)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="source-reader") if self._read else None

    def _spare(self, name: str) -> np.ndarray | None:
        entry = self.source.entries[name]
        spare = self.spares.get((entry.shape, entry.dtype.str))
        return spare.pop() if spare else None

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """The sources of step i (read now if not held or on their way)."""
        for name in self.needs[i]:
            if name in self.held:
                continue
            if name in self.pending:
                self.held[name] = self.pending.pop(name).result()
            elif self._read is not None:
                self.held[name] = self._read(name, self._spare(name))
            else:
                self.held[name] = self.source[name]
            self.reads += 1
            self.hinted.discard(name)
        mine = {name: self.held[name] for name in self.needs[i]}
        if self._reader is not None:
            for name in self.needs[i + 1] if i + 1 < len(self.needs) else ():
                if name not in self.held and name not in self.pending:
                    self.pending[name] = self._reader.submit(self._read, name, self._spare(name))
            prefetch = getattr(self.source, "prefetch", None)
            for step in self.needs[i + 2:i + 2 + self.AHEAD] if prefetch is not None else ():
                for name in step:
                    if name not in self.held and name not in self.pending and name not in self.hinted:
                        prefetch(name)
                        self.hinted.add(name)
        return mine

    def done(self, i: int) -> None:
        """Release what step i read that no step in (i, i + window] needs; an array nobody else
        holds any more (the step's result may be the source itself, on its way to the file) is
        kept as a spare for the next read of its shape: memory already touched is reused (on this
        project's VM the first touch of a page costs several times a copy into it)."""
        for name in list(self.held):
            later = [u for u in self.uses[name] if u > i]
            if not later or later[0] > i + self.window:
                array = self.held.pop(name)
                if sys.getrefcount(array) <= 2:    # `array` and getrefcount's argument: ours alone
                    spare = self.spares.setdefault((array.shape, array.dtype.str), [])
                    if len(spare) < self.SPARES:
                        spare.append(array)
                del array

    def close(self) -> None:
        """Stop the reader thread (a read under way finishes; none queued starts)."""
        if self._reader is not None:
            self._reader.shutdown(wait=True, cancel_futures=True)
            self._reader = None
        self.pending.clear()


# -- front to back, hashed --------------------------------------------------------------
class SequentialReader(_OpenFile):
    """A file read front to back exactly once (no seeks back), every byte fed to sha256 as it passes;
    tensors come out in file order, in pieces. Page cache behind the reader is dropped
    (posix_fadvise DONTNEED) so a 27 GB file leaves no 27 GB of cache behind."""

    def __init__(self, path: Path, piece: int = PIECE):
        self.path = Path(path)
        self.entries = entries(self.path)
        self.size = self.path.stat().st_size
        self.piece = piece
        self.sha = hashlib.sha256()
        self._fd = os.open(self.path, os.O_RDONLY)
        self._pos = 0
        self._buf = np.empty(piece, dtype=np.uint8)
        self._dropped = 0

    def _read(self, n: int) -> memoryview:
        view = memoryview(self._buf)[:n]
        _read_exactly(self._fd, view, self._pos, self.path, f"byte range at {self._pos}")
        self.sha.update(view)
        self._pos += n
        if self._pos - self._dropped >= 4 * self.piece and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, self._dropped, self._pos - self._dropped, os.POSIX_FADV_DONTNEED)
            self._dropped = self._pos
        return view

    def _skip_to(self, offset: int) -> None:
        while self._pos < offset:
            self._read(min(self.piece, offset - self._pos))

    def tensors(self) -> Iterator[tuple[str, Entry, Iterator[memoryview]]]:
        """(name, entry, pieces) in file order; `pieces` yields the tensor's content (views into one
        reused buffer: each is valid until the next is taken) and must be consumed before the next
        tensor is asked for."""
        order = sorted(self.entries.items(), key=lambda kv: kv[1].spans[0][0])
        for name, entry in order:
            yield name, entry, self._pieces(entry)
        self._skip_to(self.size)   # trailing bytes (a .ckpt's crc_num) are part of the hash

    def _pieces(self, entry: Entry) -> Iterator[memoryview]:
        for start, end in entry.spans:
            if start < self._pos:
                raise BadInput(f"{self.path}: tensor byte ranges overlap or run backwards at byte {start}",
                               "the file is damaged; write it again")
            self._skip_to(start)
            while self._pos < end:
                yield self._read(min(self.piece, end - self._pos))

    def hexdigest(self) -> str:
        return self.sha.hexdigest()

