"""Checkpoints of this framework's states: config.json + the weights file (WEIGHTS_NAME):
PyTorch writes a Hugging Face folder (model.safetensors), MindSpore a model.ckpt.

Reading goes through harness.checkpoint (any supported format, checked against the
config's tensor table), then wraps the numpy arrays without copying.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.checkpoint import CONFIG_NAME, load_checkpoint, write_json
from harness.config import ModelConfig
# mirror: framework
from harness.checkpoint import CKPT_NAME, atomic_path
from harness.errors import BadInput
import mindspore as ms
from mindspore import log as ms_log
from mindspore import Tensor

WEIGHTS_NAME = CKPT_NAME


def to_tensor(array: np.ndarray) -> Tensor:
    return Tensor.from_numpy(np.require(array, requirements=["C", "W"]))


def to_numpy(tensor: Tensor) -> np.ndarray:
    return tensor.asnumpy()


def _write_weights(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # save_checkpoint takes a dict of numpy arrays; a dict mixing arrays and Tensors
    # silently drops entries, so only arrays go in, and the size is checked after.
    with atomic_path(path) as tmp:
        log = ms_log._get_logger()   # its "Failed to save ... permission" line would precede our own error
        quiet, log.disabled = log.disabled, True
        try:
            ms.save_checkpoint(arrays, str(tmp))
        finally:   # MindSpore writes NAME.tmp, renamed to NAME at its end: left behind when interrupted
            log.disabled = quiet
            Path(tmp).with_suffix(".tmp").unlink(missing_ok=True)
        written, needed = Path(tmp).stat().st_size, sum(a.nbytes for a in arrays.values())
        if written < needed:
            raise BadInput(f"{path}: MindSpore wrote {written} bytes for {needed} bytes of tensors",
                           "check free disk space and rerun")
# mirror: end


def save(out_dir: Path, cfg: ModelConfig, state: dict[str, Tensor]) -> Path:
    """Write config.json and the weights into out_dir; return the weights path."""
    out_dir = Path(out_dir)
    path = out_dir / WEIGHTS_NAME
    _write_weights(path, {name: to_numpy(t) for name, t in state.items()})
    write_json(out_dir / CONFIG_NAME, cfg.to_hf())   # after the weights: a failed save leaves an earlier pair as it was
    return path


def load(path: Path, cfg: ModelConfig | None = None,
         allow_nonfinite: bool = False) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(config, state) from any supported checkpoint, tensors sharing the file's memory."""
    cfg, arrays = load_checkpoint(path, cfg, allow_nonfinite)
    return cfg, {name: to_tensor(a) for name, a in arrays.items()}
