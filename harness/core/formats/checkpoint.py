"""Checkpoint files, framework-neutral: read any supported format into numpy, write
safetensors atomically, and check a state against the tensor table of a config.

Formats: a Hugging Face folder (config.json + model.safetensors), a .safetensors
file, a MindSpore .ckpt (framing checked and tensors read by harness.core.formats.ckpt_framing,
without MindSpore), and a PyTorch zip checkpoint .bin/.pth/.pt (read without torch by
harness.core.formats.torch_zip: zip CRCs checked, only a plain tensor state dict unpickled).
Any damage is a BadInput naming the file.
"""
from __future__ import annotations

import dataclasses
import json
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput, file_kind, one_line
from harness.core.families import IGNORED_BUFFERS, param_shapes
from harness.core.formats.atomic import as_bad_input, commit, discard, temp_beside
from harness.core.formats.writers import CkptStream, SafetensorsStream

SAFETENSORS_NAME = "model.safetensors"
CKPT_NAME = "model.ckpt"
CONFIG_NAME = "config.json"
# safetensors dtype codes numpy can hold, as little-endian numpy dtypes (BF16, F8 and the like: none)
ST_NUMPY = {code: np.dtype(t) for code, t in {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "U64": "<u8", "I32": "<i4", "U32": "<u4",
    "I16": "<i2", "U16": "<u2", "I8": "i1", "U8": "u1", "BOOL": "?"}.items()}


# -- atomic writes ----------------------------------------------------------------
@contextmanager
def atomic_path(final: Path):
    """Yield a temporary path beside `final`; on success fsync and rename it into place.

    On any error (or KeyboardInterrupt) the temporary file is removed, so no partial
    file ever carries the final name and an earlier file of that name is untouched.
    An OSError (folder not writable, disk full) becomes BadInput naming `final`.
    """
    final = Path(final)
    tmp = None
    try:
        tmp = temp_beside(final)
        yield tmp
        commit(tmp, final)
        tmp = None
    except OSError as e:
        raise as_bad_input(e, final, tmp) from None
    finally:
        if tmp is not None:
            discard(tmp)


def write_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None,
                      direct: bool = True) -> None:
    """Write `tensors` (name -> numpy array) as one safetensors file (harness.core.formats.writers).

    Streams tensor by tensor (no second copy of the model in memory) in the given
    order, so equal inputs give byte-identical files. Aliased arrays (a stacked
    layer shared by several names) are written once per name, as the format needs.
    direct=False writes through the page cache (harness.core.formats.writers).
    """
    layout = [(name, arr.shape, arr.dtype) for name, arr in tensors.items()]
    _stream(SafetensorsStream(path, layout, metadata, direct), tensors)


def write_ckpt(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write `tensors` as a MindSpore .ckpt (harness.core.formats.writers.CkptStream: the bytes
    mindspore.save_checkpoint writes, streamed from each array's memory; save_checkpoint
    builds and serialises a protobuf copy of every tensor first, 3-5x the write time)."""
    _stream(CkptStream(path), tensors)


def _stream(writer, tensors: dict[str, np.ndarray]) -> None:
    with writer:
        for name, arr in tensors.items():
            writer.write(name, arr)


# -- reading --------------------------------------------------------------------
def resolve(path: Path) -> tuple[Path, Path | None]:
    """Map a user path to (weights file, config.json or None); errors name the path."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "missing":
        raise BadInput(f"{path}: no such file or folder", "check the path (a model folder, .safetensors, .ckpt)")
    if kind not in ("a regular file", "a folder"):
        raise BadInput(f"{path}: {kind}, not a regular file or folder", "point at a checkpoint file or a model folder")
    if kind == "a folder":
        for name in (SAFETENSORS_NAME, CKPT_NAME, "pytorch_model.bin"):
            if _present(path / name):
                return path / name, _config_beside(path / name)
        raise BadInput(f"{path}: folder holds no {SAFETENSORS_NAME}, {CKPT_NAME} or pytorch_model.bin",
                       "point at a model folder written by this tool or by Hugging Face")
    return path, _config_beside(path)


def _present(path: Path) -> bool:
    """True if `path` is a regular file, False if nothing is there; BadInput if something else is
    (a FIFO would block the reader, a symbolic link loop is not "missing")."""
    kind = file_kind(path)
    if kind == "a regular file":
        return True
    if kind == "missing" and not path.is_symlink():
        return False
    raise BadInput(f"{path}: {'a dangling symbolic link' if kind == 'missing' else kind}, not a regular file",
                   f"replace {path.name} by the file itself")


def _config_beside(weights: Path) -> Path | None:
    cfg = weights.parent / CONFIG_NAME
    return cfg if _present(cfg) else None


def read_config(path: Path) -> ModelConfig:
    try:
        hf = parse_json(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: cannot read config: not UTF-8 text ({e.reason} at byte {e.start})",
                       "write config.json as UTF-8 (a valid Hugging Face config.json)") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: cannot read config: {e}", "write a valid Hugging Face config.json") from None
    if not isinstance(hf, dict):
        raise BadInput(f"{path}: config is not a JSON object", "write a valid Hugging Face config.json")
    return ModelConfig.from_hf(hf, source=str(path))


def parse_json(text: str | bytes):
    """json.loads; JSON nested deeper than Python's parser goes (RecursionError) is a ValueError saying so."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"the JSON is {JSON_TOO_DEEP}") from None


JSON_TOO_DEEP = "nested deeper than Python's JSON parser allows"


@dataclasses.dataclass(frozen=True)
class SafetensorsHeader:
    """What a safetensors file's header says (safetensors_header)."""
    data_start: int              # offset of the tensor bytes in the file: 8 + the header's length
    tensors: dict[str, dict]     # name -> {"dtype", "shape", "data_offsets"} (offsets from data_start)
    metadata: dict | None        # the header's "__metadata__"

    def dtype(self, name: str) -> np.dtype:
        return ST_NUMPY[self.tensors[name]["dtype"]]


def safetensors_header(path: Path) -> SafetensorsHeader:
    """The header of a safetensors file, once safetensors itself has validated it (offsets inside
    the file, shapes, dtypes), every dtype one numpy holds; only the header is read. BadInput names
    the file and what is wrong (truncated, JSON nested too deep, a dtype numpy has not). The one
    header reader of the in-memory loader and of harness.core.formats.tensor_source."""
    from harness.core.interrupts import native
    safetensors = native("safetensors")
    SafetensorError, safe_open = safetensors.SafetensorError, safetensors.safe_open
    path = Path(path)
    try:
        with safe_open(str(path), framework="np"):
            pass
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = parse_json(f.read(n))
    except (SafetensorError, ValueError, OSError, struct.error) as e:
        raise BadInput(f"{path}: not a readable safetensors file: {_truncation(path) or one_line(e)}",
                       "the file is truncated or corrupt; write it again") from None
    metadata = header.pop("__metadata__", None)
    for name, entry in header.items():
        if entry["dtype"] not in ST_NUMPY:
            raise BadInput(f"{path}: tensor {name} has dtype {entry['dtype']}, which numpy cannot hold",
                           "convert the checkpoint to float32")
    return SafetensorsHeader(8 + n, header, metadata)


def check_safetensors_crc(path: Path, head: SafetensorsHeader, piece: int = 64 << 20) -> None:
    """MindSpore's save_checkpoint(..., format="safetensors", crc_check=True) puts a CRC-32 in the
    metadata ("crc_num": of every name and its tensor's bytes, names sorted); verify it if present
    (the tensors read in pieces of `piece` bytes: memory of one piece, whatever the file's size).
    BadInput names the file if it does not match."""
    metadata = head.metadata
    if not isinstance(metadata, dict) or metadata.get("format") != "ms" or "crc_num" not in metadata:
        return
    import os
    import zlib
    crc = 0
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}", "check the path and its permissions") from None
    try:
        for name in sorted(head.tensors):
            crc = zlib.crc32(name.encode(), crc)
            a, b = head.tensors[name]["data_offsets"]
            for at in range(head.data_start + a, head.data_start + b, piece):
                crc = zlib.crc32(os.pread(fd, min(piece, head.data_start + b - at), at), crc)
    finally:
        os.close(fd)
    if str(crc) != str(metadata["crc_num"]).strip():
        raise BadInput(f"{path}: the CRC-32 checksum in its metadata (crc_num {metadata['crc_num']}) does not match "
                       f"its tensors ({crc}): a damaged byte, or a damaged checksum",
                       "the file is corrupt; write it again")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor as a view of one copy-on-write memory map of the file (no read, no copy: pages
    come from the page cache when touched; writing to a view never reaches the file), once the
    header is validated (safetensors_header) and MindSpore's checksum, if any, verified."""
    head = safetensors_header(path)
    check_safetensors_crc(path, head)
    if path.stat().st_size == head.data_start:   # no tensor bytes at all (mmap cannot map an empty range)
        return {name: np.zeros(e["shape"], head.dtype(name)) for name, e in head.tensors.items()}
    mm = np.memmap(path, dtype=np.uint8, mode="c")
    return {name: np.ndarray(e["shape"], head.dtype(name), buffer=mm, offset=head.data_start + e["data_offsets"][0])
            for name, e in head.tensors.items()}


def _truncation(path: Path) -> str | None:
    """'truncated: ...' when the file is shorter than its own header says; what is wrong with the
    header's JSON when Python cannot parse it for nesting (the library's own message does not say
    so); else None."""
    try:
        size = path.stat().st_size
        if size < 8:
            return f"truncated: {size} bytes, not even the 8-byte header length"
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                return None if n > 100_000_000 else f"truncated: the header alone claims {n} bytes, the file has {size}"
            try:
                header = json.loads(f.read(n))
            except RecursionError:
                return f"the header's JSON is {JSON_TOO_DEEP}"
        end = 8 + n + max(e["data_offsets"][1] for k, e in header.items() if k != "__metadata__")
        return f"truncated: the header describes {end} bytes, the file has {size}" if end > size else None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def _read_ckpt(path: Path) -> dict[str, np.ndarray]:
    from harness.core.formats.ckpt_framing import read_ckpt
    return read_ckpt(path)   # framing walked and checked first: a tensor must hold exactly its dims' bytes


def _read_pickle(path: Path) -> dict[str, np.ndarray]:
    """A torch zip checkpoint, read by harness.core.formats.torch_zip (no torch, no code run)."""
    import pickle
    import zipfile

    from harness.core.formats.torch_zip import Refused, is_torch_zip, read_torch_zip
    if not is_torch_zip(path):
        raise BadInput(f"{path}: not a PyTorch zip checkpoint (torch.save's format since torch 1.6)",
                       "re-save it with torch.save(model.state_dict(), path), or convert to safetensors")
    try:
        obj = read_torch_zip(path)
    except (Refused, pickle.UnpicklingError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
            ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError, RecursionError,
            MemoryError, NotImplementedError) as e:
        raise BadInput(f"{path}: refused or unreadable PyTorch pickle: {type(e).__name__}: {one_line(e)[:200]}",
                       "only plain tensor state dicts load (as torch.load with weights_only=True); "
                       "convert to safetensors") from None
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise BadInput(f"{path}: pickle does not hold a flat name -> tensor dict",
                       "save model.state_dict() or convert to safetensors")
    return dict(obj)


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Raw tensors of a weights file, by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix == ".ckpt":
        return _read_ckpt(path)
    if suffix in (".bin", ".pth", ".pt"):
        return _read_pickle(path)
    raise BadInput(f"{path}: unknown checkpoint format {suffix!r}",
                   "use .safetensors, .ckpt, .bin/.pth, or a model folder")


def check_state(state: dict[str, np.ndarray], cfg: ModelConfig, source: str,
                allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """Return `state` restricted to cfg's tensors, in table order, or raise naming the tensor."""
    expected = param_shapes(cfg)
    state = {k: v for k, v in state.items() if k not in IGNORED_BUFFERS}
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BadInput(f"{source}: missing tensor {missing[0]}{more}",
                       f"the checkpoint does not match the {cfg.family} config "
                       f"(hidden {cfg.hidden}, layers {cfg.layers}); use the matching config or checkpoint")
    extra = [k for k in state if k not in expected]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise BadInput(f"{source}: unexpected tensor {extra[0]}{more}",
                       f"the checkpoint holds tensors a {cfg.family} model of this config does not have")
    out = {}
    for name, shape in expected.items():
        arr = state[name]
        if tuple(arr.shape) != tuple(shape):
            raise BadInput(f"{source}: tensor {name} has shape {tuple(arr.shape)}, expected {tuple(shape)}",
                           "the checkpoint and config.json disagree; use the matching pair")
        if arr.dtype != np.float32:
            raise BadInput(f"{source}: tensor {name} has dtype {arr.dtype}, expected float32",
                           "convert the checkpoint to float32")
        if not allow_nonfinite and not np.isfinite(arr).all():
            raise BadInput(f"{source}: tensor {name} holds NaN or Inf values",
                           "fix the checkpoint, or pass --allow-nonfinite to proceed anyway")
        out[name] = arr
    return out


def load_checkpoint(path: Path, cfg: ModelConfig | None = None,
                    allow_nonfinite: bool = False) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """(config, numpy state) of any supported checkpoint; config from config.json unless given."""
    weights, cfg_path = resolve(path)
    if cfg is None:
        if cfg_path is None:
            raise BadInput(f"{weights}: no config.json beside it", "put the model's config.json in the same folder")
        cfg = read_config(cfg_path)
    state = check_state(read_tensors(weights), cfg, str(weights), allow_nonfinite)
    return cfg, state


def sha256(path: Path, chunk: int = 1 << 24) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


