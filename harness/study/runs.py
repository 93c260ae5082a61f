"""One training run of the study: N optimizer steps of the train kind's loop (harness.kinds.train.runner.
train_run: the AdamWeightDecay rule, warm-up and linear decay, global-norm clipping, MindSpore's step
under ms.jit) on numpy-drawn batches of the training novels, with the validation loss measured before
the first step and every `eval_every` steps on the same fixed validation batches for every run.

    result = train(spec, state, data, study_batches, on_step)   # RunResult; cached by spec.key

A finished run is kept in <reports>/study/runs/<key>.json (and a source's trained weights in
<key>.npz), written atomically; the same spec (every setting, the code's STUDY_VERSION, the source
run's key) finds it again, so an interrupted study resumes where it stopped (`--fresh` ignores them).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.batches import Batch
from harness.core.config import ModelConfig
from harness.core.formats.checkpoint import atomic_path, write_json
from harness.core.optim import TrainSetup
from harness.kinds.train.runner import train_run

STUDY_VERSION = 1   # bump when a change of code changes what a run computes: cached runs are then redone


@dataclasses.dataclass(frozen=True)
class RunSpec:
    family: str
    arm: str                   # "source", "source_deep", "scratch", "fpi_paper", ..., "minilm"
    seed: int
    framework: str             # "pt" | "ms"
    cfg: ModelConfig
    setup: TrainSetup
    batch: int
    length: int
    eval_every: int
    eval_batches: int
    tokenizer: str             # "austen" | "minilm"
    origin: str                # where the weights come from: "seed", "minilm", or the source run's key
    stop: int | None = None    # MindSpore: the first `stop` steps only
    keep_weights: bool = False # a source: its trained weights are kept for the arms grown from it
    ms_mode: str = "jit"       # MindSpore's step compiled (the study's) or "pynative" (the tests' planted faults)

    @property
    def key(self) -> str:
        fields = dataclasses.asdict(self)
        if fields["ms_mode"] == "jit":   # defaults left out: runs cached before these fields existed stay valid
            del fields["ms_mode"]
        if fields["cfg"].get("head") == "none":
            del fields["cfg"]["head"]
        blob = json.dumps({"version": STUDY_VERSION, **fields}, sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
        lr = f"lr{self.setup.lr:g}"
        return f"{self.family}_{self.arm}_{lr}_seed{self.seed}_{self.framework}_{digest}"

    @property
    def steps_run(self) -> int:
        return self.setup.steps if self.stop is None else min(self.stop, self.setup.steps)


@dataclasses.dataclass
class RunResult:
    key: str
    family: str
    arm: str
    seed: int
    framework: str
    lr: float
    steps: int                 # steps run
    train_loss: np.ndarray     # (steps,)
    lrs: np.ndarray            # (steps,) the learning rate each step applied
    eval_steps: np.ndarray     # (E,) from 0
    val_loss: np.ndarray       # (E,)
    seconds: float
    cached: bool = False
    weights: dict[str, np.ndarray] | None = None   # a source's trained weights

    def to_json(self) -> dict:
        return {"key": self.key, "family": self.family, "arm": self.arm, "seed": self.seed,
                "framework": self.framework, "lr": self.lr, "steps": self.steps,
                "train_loss": [float(v) for v in self.train_loss], "lrs": [float(v) for v in self.lrs],
                "eval_steps": [int(v) for v in self.eval_steps], "val_loss": [float(v) for v in self.val_loss],
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, d: dict) -> RunResult:
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("train_loss", "lrs", "val_loss")}
        return cls(key=d["key"], family=d["family"], arm=d["arm"], seed=d["seed"], framework=d["framework"],
                   lr=d["lr"], steps=d["steps"], eval_steps=np.asarray(d["eval_steps"], dtype=np.int64),
                   seconds=d["seconds"], cached=True, **arrays)


def eval_steps(spec: RunSpec) -> list[int]:
    """0, every eval_every steps, and the last step run."""
    n = spec.steps_run
    return sorted({0, n, *range(spec.eval_every, n + 1, spec.eval_every)})


def _cached(spec: RunSpec, folder: Path) -> RunResult | None:
    path = folder / f"{spec.key}.json"
    weights = folder / f"{spec.key}.npz"
    if not path.is_file() or (spec.keep_weights and not weights.is_file()):
        return None
    try:
        result = RunResult.from_json(json.loads(path.read_text()))
        if spec.keep_weights:
            with np.load(weights) as z:
                result.weights = {n: z[n] for n in z.files}
    except (OSError, ValueError, KeyError):
        return None   # a damaged cache file: the run is done again
    return result


def _save(result: RunResult, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if result.weights is not None:
        with atomic_path(folder / f"{result.key}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **result.weights)
    write_json(folder / f"{result.key}.json", result.to_json())


def train(spec: RunSpec, state: Callable[[], dict[str, np.ndarray]], data: list[Batch], validation: list[Batch],
          folder: Path, *, fresh: bool = False, on_step: Callable[[int, float], None] | None = None,
          cached_only: bool = False) -> RunResult | None:
    """Run `spec` from state() (called only when the run is not cached), or read it from `folder`;
    cached_only: never train, None where the run is not in `folder`."""
    if not fresh:
        got = _cached(spec, folder)
        if got is not None or cached_only:
            return got
    at = set(eval_steps(spec))
    vals: dict[int, float] = {}

    def probe(step: int, trainer) -> None:
        if step in at:
            vals[step] = float(np.mean([trainer.evaluate(b.input_ids, b.labels, b.weights) for b in validation]))

    n = spec.steps_run
    keep = (spec.setup.steps,) if spec.keep_weights else ()
    start = time.perf_counter()
    curve = train_run(spec.framework, spec.cfg, state(), data, spec.setup, keep, spec.ms_mode, on_step=on_step,
                      probe=probe, stop=spec.stop)
    seconds = time.perf_counter() - start
    weights = None
    if spec.keep_weights:
        weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in curve.params[spec.setup.steps].items()}
    steps = np.asarray(sorted(vals), dtype=np.int64)
    result = RunResult(key=spec.key, family=spec.family, arm=spec.arm, seed=spec.seed, framework=spec.framework,
                       lr=spec.setup.lr, steps=n, train_loss=curve.loss[:n].copy(), lrs=curve.lr[:n].copy(),
                       eval_steps=steps, val_loss=np.asarray([vals[s] for s in steps]), seconds=seconds,
                       weights=weights)
    _save(result, folder)
    return result
