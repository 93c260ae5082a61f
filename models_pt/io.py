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
from harness.checkpoint import SAFETENSORS_NAME
from harness.writers import SafetensorsStream, StreamWriter
import torch

Tensor = torch.Tensor
WEIGHTS_NAME = SAFETENSORS_NAME


def to_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(array)


def to_numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().numpy()


def _open_weights(path: Path, layout: list) -> StreamWriter:
    return SafetensorsStream(path, layout, {"format": "pt"})
# mirror: end


def open_writer(out_dir: Path, cfg: ModelConfig, layout: list) -> StreamWriter:
    """Open the weights file of out_dir for streaming: the tensors of `layout` ([(name, shape,
    dtype)]) are then written in that order, as numpy arrays. config.json is written once the
    weights are in place, so a failed save leaves an earlier pair as it was."""
    out_dir = Path(out_dir)
    writer = _open_weights(out_dir / WEIGHTS_NAME, layout)
    writer.after_commit.append(lambda: write_json(out_dir / CONFIG_NAME, cfg.to_hf()))
    return writer


def save(out_dir: Path, cfg: ModelConfig, state: dict[str, Tensor]) -> Path:
    """Write config.json and the weights into out_dir; return the weights path."""
    arrays = {name: to_numpy(t) for name, t in state.items()}
    with open_writer(out_dir, cfg, [(name, a.shape, a.dtype) for name, a in arrays.items()]) as writer:
        for name, a in arrays.items():
            writer.write(name, a)
    return writer.path


def load(path: Path, cfg: ModelConfig | None = None,
         allow_nonfinite: bool = False) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(config, state) from any supported checkpoint, tensors sharing the file's memory."""
    cfg, arrays = load_checkpoint(path, cfg, allow_nonfinite)
    return cfg, {name: to_tensor(a) for name, a in arrays.items()}
