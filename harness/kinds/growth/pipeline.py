"""One growth run of one framework, stage by stage and timed: the CLI, the runner and the bench share it."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.config import ModelConfig
from harness.core.formats.atomic import staged
from harness.core.seeded_init import init_state
from harness.suite import frameworks


@dataclasses.dataclass
class GrowResult:
    framework: str
    state: dict                          # target state, framework tensors
    seconds: dict[str, float]            # per stage
    weights_path: Path | None = None
    weights_bytes: int = 0
    executor: str = ""                   # how the expander ran (models_*.expand.EXECUTORS)
    executor_note: str = ""              # why it is not the framework's default, if it is not


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


def with_mlm_head(framework: str, state: dict, cfg: ModelConfig, seed: int) -> dict:
    """A BERT source state without the masked-LM head as a BertForMaskedLM state: the head drawn from
    the seed (harness.core.lm_head), the pooler dropped; framework tensors in and out."""
    from harness.core.lm_head import add_mlm_head
    fw = frameworks.load(framework)
    arrays, _ = add_mlm_head({n: fw.io.to_numpy(t) for n, t in state.items()}, cfg, seed)
    return {n: fw.io.to_tensor(np.ascontiguousarray(a)) for n, a in arrays.items()}


def expand(framework: str, recipes: list, src_state: dict,
           on_tensor: Callable[[str], None] | None = None, executor: str | None = None) -> GrowResult:
    """Target state from src_state by the recipes; times the expand stage alone (the executor is
    chosen, and the MindSpore kernel built if need be, before the clock starts)."""
    fw = frameworks.load(framework)
    executor, note = fw.expand.choose_executor(executor)
    start = time.perf_counter()
    state = fw.expand.expand(src_state, recipes, on_tensor=on_tensor, executor=executor)
    return GrowResult(framework, state, {"expand": time.perf_counter() - start},
                      executor=executor, executor_note=note)


def save(result: GrowResult, dst_cfg: ModelConfig, out_dir: Path) -> Path:
    """Write result.state in its framework's format into out_dir; times the save stage."""
    fw = frameworks.load(result.framework)
    start = time.perf_counter()
    result.weights_path = fw.io.save(out_dir, dst_cfg, result.state)
    result.seconds["save"] = time.perf_counter() - start
    result.weights_bytes = staged(result.weights_path).stat().st_size   # inside an OutputSet: not in place yet
    return result.weights_path


def to_numpy_state(framework: str, state: dict) -> dict[str, np.ndarray]:
    fw = frameworks.load(framework)
    return {name: fw.io.to_numpy(t) for name, t in state.items()}
