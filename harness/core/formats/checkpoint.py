"""Checkpoint files, framework-neutral: read any supported format into numpy, write
safetensors atomically, and check a state against the tensor table of a config.

Formats: a Hugging Face folder (config.json + model.safetensors), a .safetensors
file, a MindSpore .ckpt (framing checked and tensors read by harness.core.formats.ckpt_framing,
without MindSpore), and a PyTorch zip checkpoint .bin/.pth/.pt (read without torch by
harness.core.formats.torch_zip: zip CRCs checked, only a plain tensor state dict unpickled). Any damage is a BadInput naming the file.
"""
from __future__ import annotations

import json
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput, one_line
from harness.core.families import IGNORED_BUFFERS, param_shapes
from harness.core.formats.writers import CkptStream, SafetensorsStream, as_bad_input, commit, discard, temp_beside

SAFETENSORS_NAME = "model.safetensors"
CKPT_NAME = "model.ckpt"
CONFIG_NAME = "config.json"
# safetensors dtype codes numpy can hold, as little-endian numpy dtypes (BF16, F8 and the like: none)
_ST_NUMPY = {code: np.dtype(t) for code, t in {
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
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder", "check the path (a model folder, .safetensors, .ckpt)")
    if not path.is_dir() and not path.is_file():
        raise BadInput(f"{path}: not a regular file or folder", "point at a checkpoint file or a model folder")
    if path.is_dir():
        for name in (SAFETENSORS_NAME, CKPT_NAME, "pytorch_model.bin"):
            if (path / name).is_file():
                cfg = path / CONFIG_NAME
                return path / name, cfg if cfg.is_file() else None
        raise BadInput(f"{path}: folder holds no {SAFETENSORS_NAME}, {CKPT_NAME} or pytorch_model.bin",
                       "point at a model folder written by this tool or by Hugging Face")
    cfg = path.parent / CONFIG_NAME
    return path, cfg if cfg.is_file() else None


def read_config(path: Path) -> ModelConfig:
    try:
        hf = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: cannot read config: {e}", "write a valid Hugging Face config.json") from None
    if not isinstance(hf, dict):
        raise BadInput(f"{path}: config is not a JSON object", "write a valid Hugging Face config.json")
    return ModelConfig.from_hf(hf, source=str(path))


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor as a view of one copy-on-write memory map of the file (no read, no copy: pages
    come from the page cache when touched; writing to a view never reaches the file), once
    safetensors itself has validated the header (offsets inside the file, shapes, dtypes)."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="np"):
            pass
        with open(path, "rb") as f:
            n, header = _st_header(f)
    except (SafetensorError, ValueError, OSError) as e:
        raise BadInput(f"{path}: not a readable safetensors file: {_truncation(path) or one_line(e)}",
                       "the file is truncated or corrupt; write it again") from None
    header.pop("__metadata__", None)
    for name, entry in header.items():
        if entry["dtype"] not in _ST_NUMPY:
            raise BadInput(f"{path}: tensor {name} has dtype {entry['dtype']}, which numpy cannot hold",
                           "convert the checkpoint to float32")
    if path.stat().st_size == 8 + n:   # no tensor bytes at all (mmap cannot map an empty range)
        return {name: np.zeros(e["shape"], _ST_NUMPY[e["dtype"]]) for name, e in header.items()}
    mm = np.memmap(path, dtype=np.uint8, mode="c")
    return {name: np.ndarray(e["shape"], _ST_NUMPY[e["dtype"]], buffer=mm, offset=8 + n + e["data_offsets"][0])
            for name, e in header.items()}


def _st_header(f) -> tuple[int, dict]:
    """(header length, header) of an open safetensors file; raises ValueError / struct.error if
    unreadable. The caller checks the length against the file size first where it matters."""
    (n,) = struct.unpack("<Q", f.read(8))
    return n, json.loads(f.read(n))


def _truncation(path: Path) -> str | None:
    """'truncated: ...' when the file is shorter than its own header says, else None."""
    try:
        size = path.stat().st_size
        if size < 8:
            return f"truncated: {size} bytes, not even the 8-byte header length"
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                return None if n > 100_000_000 else f"truncated: the header alone claims {n} bytes, the file has {size}"
            header = json.loads(f.read(n))
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
        raise BadInput(f"{source}: missing tensor {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                       f"the checkpoint does not match the {cfg.family} config "
                       f"(hidden {cfg.hidden}, layers {cfg.layers}); use the matching config or checkpoint")
    extra = [k for k in state if k not in expected]
    if extra:
        raise BadInput(f"{source}: unexpected tensor {extra[0]}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""),
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


