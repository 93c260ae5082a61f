"""One growth run of one framework, stage by stage and timed: the CLI, the runner and the bench share it.

expand() then save() time each step alone (the parity runner reports them apart); grow() does
both at once, writing each tensor while the next is computed (the CLI: the user's wall time).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from harness import frameworks
from harness.config import ModelConfig
from harness.init import init_state
from harness.names import param_shapes
from harness.writers import Background

STAGES = ("load", "plan", "expand", "save")


@dataclasses.dataclass
class GrowResult:
    framework: str
    state: dict                          # target state, framework tensors
    seconds: dict[str, float]            # per stage
    weights_path: Path | None = None
    weights_bytes: int = 0


def load_source(framework: str, src_cfg: ModelConfig, src_ckpt: Path | None, seed: int,
                allow_nonfinite: bool = False) -> tuple[dict, float]:
    """Source state in framework tensors (from a checkpoint, or drawn from the seed) and seconds taken."""
    fw = frameworks.load(framework)
    start = time.perf_counter()
    if src_ckpt is not None:
        _, state = fw.io.load(src_ckpt, src_cfg, allow_nonfinite)
    else:
        state = {name: fw.io.to_tensor(a) for name, a in init_state(src_cfg, seed).items()}
    return state, time.perf_counter() - start


def expand(framework: str, recipes: list, src_state: dict,
           on_tensor: Callable[[str], None] | None = None) -> GrowResult:
    """Target state from src_state by the recipes; times the expand stage alone."""
    fw = frameworks.load(framework)
    start = time.perf_counter()
    state = fw.expand.expand(src_state, recipes,
                             on_tensor=None if on_tensor is None else (lambda name, _tensor: on_tensor(name)))
    return GrowResult(framework, state, {"expand": time.perf_counter() - start})


def save(result: GrowResult, dst_cfg: ModelConfig, out_dir: Path) -> Path:
    """Write result.state in its framework's format into out_dir; times the save stage."""
    fw = frameworks.load(result.framework)
    start = time.perf_counter()
    result.weights_path = fw.io.save(out_dir, dst_cfg, result.state)
    result.seconds["save"] = time.perf_counter() - start
    result.weights_bytes = result.weights_path.stat().st_size
    return result.weights_path


def grow(framework: str, recipes: list, src_state: dict, dst_cfg: ModelConfig, out_dir: Path,
         on_tensor: Callable[[str], None] | None = None) -> GrowResult:
    """Expand and save at once: each target tensor goes to a writer thread as soon as it is made,
    so the file is written while the next tensors are computed.

    seconds: "expand" (the expansion loop, sharing the machine with the writer), "save" (what
    is left after it: the writer catching up, fsync, rename) and "grow" (the two together).
    """
    fw = frameworks.load(framework)
    shapes = param_shapes(dst_cfg)
    dtype = fw.io.to_numpy(next(iter(src_state.values()))).dtype   # loads check every tensor is float32
    layout = [(r.name, shapes[r.name], dtype) for r in recipes]

    def handoff(name: str, tensor) -> None:
        writer.put(name, fw.io.to_numpy(tensor))
        if on_tensor is not None:
            on_tensor(name)

    start = time.perf_counter()
    with Background(fw.io.open_writer(out_dir, dst_cfg, layout)) as writer:
        state = fw.expand.expand(src_state, recipes, on_tensor=handoff)
        expand_s = time.perf_counter() - start
    grow_s = time.perf_counter() - start
    path = writer.writer.path
    return GrowResult(framework, state, {"expand": expand_s, "save": grow_s - expand_s, "grow": grow_s},
                      path, path.stat().st_size)


def to_numpy_state(framework: str, state: dict) -> dict[str, np.ndarray]:
    fw = frameworks.load(framework)
    return {name: fw.io.to_numpy(t) for name, t in state.items()}
