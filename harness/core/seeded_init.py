"""Seeded random initialisation of any preset: one numpy generator, HF order."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from harness.core.config import ModelConfig
from harness.core.families import param_shapes


def is_layernorm(name: str) -> bool:
    return ".LayerNorm." in name or ".ln_" in name


def init_state(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Normal(0, initializer_range) weights, LayerNorm 1 / 0, biases 0, all float32.

    Tensors are drawn in param_shapes order from default_rng(seed), so a given
    (config, seed) always yields the same bits on every machine and framework.
    """
    return dict(iter_init(cfg, seed))


def iter_init(cfg: ModelConfig, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """init_state's tensors one at a time, in order, the same bits: a model larger than memory is
    drawn straight into a file (harness.kinds.growth.stream), one tensor held at a time."""
    rng = np.random.default_rng(seed)
    std = np.float32(cfg.initializer_range)
    for name, shape in param_shapes(cfg).items():
        if is_layernorm(name):
            value = np.ones(shape, np.float32) if name.endswith(".weight") else np.zeros(shape, np.float32)
        elif name.endswith(".bias"):
            value = np.zeros(shape, np.float32)
        else:
            value = rng.standard_normal(shape, dtype=np.float32)
            value *= std
        yield name, value
