"""Checkpoints of this framework's states: config.json + the weights file (WEIGHTS_NAME):
PyTorch writes a Hugging Face folder (model.safetensors), MindSpore a model.ckpt.

Reading goes through harness.core.formats.checkpoint (any supported format, checked against the
config's tensor table), then wraps the numpy arrays without copying.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.formats.checkpoint import CONFIG_NAME, load_checkpoint, write_json
from harness.core.config import ModelConfig
# mirror: framework
from harness.core.formats.checkpoint import CKPT_NAME, write_ckpt
from harness.core.formats.writers import CkptStream, StreamWriter
from mindspore import Tensor

WEIGHTS_NAME = CKPT_NAME


def to_tensor(array: np.ndarray) -> Tensor:
    return Tensor.from_numpy(np.require(array, requirements=["C", "W"]))


def to_numpy(tensor: Tensor) -> np.ndarray:
    return tensor.asnumpy()


def _write_weights(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_ckpt(path, arrays)   # the bytes mindspore.save_checkpoint writes, streamed (tests/test_writers.py)


def weights_writer(path: Path, layout: list[tuple[str, tuple[int, ...], np.dtype]]) -> StreamWriter:
    """A writer of the weights file, tensor by tensor in layout order: the bytes _write_weights
    writes for the same tensors (the streamed expander, harness/kinds/growth/stream.py). A .ckpt
    frames each tensor where it stands: the layout is not needed up front."""
    return CkptStream(path)
# mirror: end


def save(out_dir: Path, cfg: ModelConfig, state: dict[str, Tensor]) -> Path:
    """Write the weights, then config.json, into out_dir (each to a temporary file renamed into
    place); return the weights path. A failed weights write leaves an earlier pair as it was;
    config.json (a few hundred bytes) is written only once the weights are in place."""
    out_dir = Path(out_dir)
    _write_weights(out_dir / WEIGHTS_NAME, {name: to_numpy(t) for name, t in state.items()})
    write_json(out_dir / CONFIG_NAME, cfg.to_hf())
    return out_dir / WEIGHTS_NAME


def load(path: Path, cfg: ModelConfig | None = None,
         allow_nonfinite: bool = False) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(config, state) from any supported checkpoint, tensors sharing the file's memory."""
    cfg, arrays = load_checkpoint(path, cfg, allow_nonfinite)
    return cfg, {name: to_tensor(a) for name, a in arrays.items()}
