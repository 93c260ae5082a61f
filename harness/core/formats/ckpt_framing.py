"""A MindSpore .ckpt: its protobuf framing walked and checked, and its tensors read into numpy.

MindSpore 2.10's load_checkpoint trusts each tensor's dims: a file whose content is
shorter than its dims say loads with the missing values taken from beyond the buffer
(zeros or garbage), and one whose content is longer loads silently cut. So the file
is walked here, without copying tensor data (mmap), and refused unless every length
fits the file and every tensor's bytes equal prod(dims) x its type's size; the tensors are
then read straight from the byte ranges the walk found (read_ckpt), without MindSpore.

Layout (mindspore/train/checkpoint_pb2): a Checkpoint is `repeated Value value = 1`;
Value {tag = 1 (string), tensor = 2 (TensorProto) | maptensor = 3}; TensorProto
{dims = 1 (repeated int64), tensor_type = 2 (string), tensor_content = 3 (bytes)}.
MindSpore splits a tensor over 512 MB into consecutive Values of the same tag and
dims, and may end the file with b"crc_num" and a 10-byte checksum: save_checkpoint(...,
crc_check=True) writes the CRC-32 (zlib / binascii) of every byte before the trailer, as a
big-endian integer. MindSpore's load_checkpoint strips the trailer unverified unless told
crc_check=True; here it is verified whenever present.
"""
from __future__ import annotations

import dataclasses
import math
import mmap
import zlib
from pathlib import Path

import numpy as np

from harness.core.errors import BadInput

# tensor_type -> bytes per element (MindSpore's own table; "str" and Int4 are not weights)
ITEMSIZE = {"Float32": 4, "Float16": 2, "BFloat16": 2, "Float64": 8, "Int8": 1, "UInt8": 1, "Int16": 2,
            "UInt16": 2, "Int32": 4, "UInt32": 4, "Int64": 8, "UInt64": 8, "Bool": 1}
# tensor_type -> numpy dtype (numpy has no bfloat16: such a tensor is refused by name)
NUMPY = {"Float32": np.float32, "Float16": np.float16, "Float64": np.float64, "Int8": np.int8, "UInt8": np.uint8,
         "Int16": np.int16, "UInt16": np.uint16, "Int32": np.int32, "UInt32": np.uint32, "Int64": np.int64,
         "UInt64": np.uint64, "Bool": np.bool_}
_CRC_TRAILER = 17          # b"crc_num" + 10 bytes, stripped by MindSpore before parsing
_VARINT, _LEN = 0, 2        # protobuf wire types used by this format


@dataclasses.dataclass
class TensorEntry:
    dims: tuple[int, ...]
    tensor_type: str
    nbytes: int = 0
    spans: list[tuple[int, int]] = dataclasses.field(default_factory=list)   # content byte ranges, in order


class _Corrupt(Exception):
    def __init__(self, problem: str, at: int):
        super().__init__(f"{problem} at byte {at}")


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise _Corrupt("truncated varint", start)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt("varint longer than 10 bytes", start)


def _fields(buf, pos: int, end: int):
    """Yield (field number, wire type, value or (start, stop) of a length-delimited field, key offset)."""
    while pos < end:
        key_at = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, key_at
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise _Corrupt(f"field {number} claims {length} bytes, only {end - pos} remain "
                               "(truncated or damaged)", key_at)
            yield number, wire, (pos, pos + length), key_at
            pos += length
        else:
            raise _Corrupt(f"field {number} has wire type {wire}, which this format never uses", key_at)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(buf, span: tuple[int, int], what: str, at: int) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise _Corrupt(f"{what} is not UTF-8", at) from None


def _tensor(buf, span: tuple[int, int], at: int) -> tuple[list[int], str, tuple[int, int]]:
    dims: list[int] = []
    tensor_type = content = None
    for number, wire, value, key_at in _fields(buf, *span):
        if number == 1 and wire == _VARINT:
            dims.append(_signed(value))
        elif number == 1:                                   # packed dims
            pos, stop = value
            while pos < stop:
                dim, pos = _varint(buf, pos, stop)
                dims.append(_signed(dim))
        elif number == 2 and wire == _LEN and tensor_type is None:
            tensor_type = _text(buf, value, "tensor_type", key_at)
        elif number == 3 and wire == _LEN and content is None:
            content = value
        else:
            raise _Corrupt(f"unexpected or repeated field {number} (wire type {wire}) in a tensor", key_at)
    if tensor_type is None or content is None:
        raise _Corrupt("tensor without " + ("tensor_type" if tensor_type is None else "tensor_content"), at)
    return dims, tensor_type, content


def _value(buf, span: tuple[int, int], at: int) -> tuple[str, list[int], str, tuple[int, int]]:
    tag = tensor = None
    for number, wire, value, key_at in _fields(buf, *span):
        if number == 1 and wire == _LEN and tag is None:
            tag = _text(buf, value, "tensor name", key_at)
        elif number == 2 and wire == _LEN and tensor is None:
            tensor = _tensor(buf, value, key_at)
        elif number == 3:
            raise _Corrupt("a map tensor (MindSpore MapParameter), which is not a model weight", key_at)
        else:
            raise _Corrupt(f"unexpected or repeated field {number} (wire type {wire}) in an entry", key_at)
    if tag is None or tensor is None:
        raise _Corrupt("entry without " + ("a name" if tag is None else "a tensor"), at)
    return (tag, *tensor)


def _walk(buf, size: int) -> dict[str, TensorEntry]:
    end = size
    if size >= _CRC_TRAILER and buf[size - _CRC_TRAILER:size - 10] == b"crc_num":
        end = size - _CRC_TRAILER
        _check_crc(buf, end, int.from_bytes(buf[size - 10:size], "big"))
    entries: dict[str, TensorEntry] = {}
    last = None
    for number, wire, value, key_at in _fields(buf, 0, end):
        if number != 1 or wire != _LEN:
            raise _Corrupt(f"field {number} (wire type {wire}) where a checkpoint entry belongs", key_at)
        tag, dims, tensor_type, content = _value(buf, value, key_at)
        nbytes = content[1] - content[0]
        if tag == last:                                      # the next slice of a tensor over 512 MB
            entry = entries[tag]
            if (tuple(dims), tensor_type) != (entry.dims, entry.tensor_type):
                raise _Corrupt(f"slice of {tag} with dims {dims} {tensor_type}, "
                               f"earlier slices {list(entry.dims)} {entry.tensor_type}", key_at)
            entry.nbytes += nbytes
            entry.spans.append(content)
            continue
        if tag in entries:
            raise _Corrupt(f"tensor {tag} appears twice", key_at)
        if tensor_type not in ITEMSIZE:
            raise _Corrupt(f"tensor {tag} has type {tensor_type!r}; known types: {', '.join(ITEMSIZE)}", key_at)
        if any(d < 0 for d in dims):
            raise _Corrupt(f"tensor {tag} has a negative dimension in {dims}", key_at)
        entries[tag] = TensorEntry(tuple(dims), tensor_type, nbytes, [content])
        last = tag
    if not entries:
        raise _Corrupt("no tensors", 0)
    for tag, entry in entries.items():
        dims = () if entry.dims == (0,) else entry.dims     # MindSpore reads dims [0] as a scalar
        needed = math.prod(dims) * ITEMSIZE[entry.tensor_type]
        if needed != entry.nbytes:
            raise _Corrupt(f"tensor {tag} of dims {list(entry.dims)} {entry.tensor_type} needs {needed} bytes, "
                           f"the file holds {entry.nbytes}", 0)
        entry.dims = dims
    return entries


def _check_crc(buf, end: int, stored: int) -> None:
    """The CRC-32 of buf[:end] must be `stored` (MindSpore's crc_num trailer)."""
    crc = 0
    with memoryview(buf) as view:
        for start in range(0, end, 1 << 26):          # 64 MiB at a time: no copy, any size
            with view[start:min(end, start + (1 << 26))] as part:
                crc = zlib.crc32(part, crc)
    if crc != stored:
        raise _Corrupt(f"the CRC-32 checksum of its crc_num trailer is {stored:#x}, the content's is {crc:#x} "
                       "(a damaged byte, or a damaged checksum)", end)


def check_ckpt(path: Path) -> dict[str, TensorEntry]:
    """name -> TensorEntry of every tensor in a .ckpt, or BadInput naming the file and what is wrong."""
    path = Path(path)
    fix = "the file is truncated or corrupt; write it again"
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                raise BadInput(f"{path}: not a MindSpore checkpoint: the file is empty", fix)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _walk(buf, size)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}", "check the path and its permissions") from None
    except _Corrupt as e:
        raise BadInput(f"{path}: not a valid MindSpore checkpoint: {e}", fix) from None


def read_ckpt(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .ckpt, checked by check_ckpt, read from the byte ranges of its content
    (one copy each, no MindSpore); BadInput names the file and the tensor of an unreadable type."""
    path = Path(path)
    entries = check_ckpt(path)
    for name, entry in entries.items():
        if entry.tensor_type not in NUMPY:
            raise BadInput(f"{path}: tensor {name} is {entry.tensor_type}, which numpy cannot hold",
                           "save the checkpoint in float32 (or float16)")
    arrays = {}
    try:
        with open(path, "rb") as f:
            for name, entry in entries.items():
                out = np.empty(entry.dims, dtype=NUMPY[entry.tensor_type])
                view, at = memoryview(out.reshape(-1).view(np.uint8)), 0
                for start, end in entry.spans:
                    f.seek(start)
                    if f.readinto(view[at:at + end - start]) != end - start:
                        raise BadInput(f"{path}: tensor {name} ends early (the file changed while read?)",
                                       "read it again once it is whole")
                    at += end - start
                arrays[name] = out
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}", "check the path and its permissions") from None
    return arrays

