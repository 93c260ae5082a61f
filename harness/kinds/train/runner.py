"""Run one training case: the same N steps in PyTorch float64 (the judge), PyTorch and MindSpore.

    rows = run_train_case(case, workdir)          # list[Row], free of pytest

Every run starts from the same numpy weights (state.py), reads the same numpy batches and MLM
masks, and is told the same TrainSetup and float32 learning rates (harness.core.optim); dropout
is off (the models have none). Each run records, per step, its loss, its gradients' global norm
(before clipping) and the learning rate its optimizer applied, and its parameters at the case's
checkpoints. compare.py turns the three runs into rows; the curves go to reports/train/<case>.csv
and a plot to reports/train/<case>.png (plots.py).

Seams for planted faults, so tests need not edit product code (each gets the run name: "pt64",
"pt" or "ms", and returns None to leave it alone):
- TrainHooks.setup(run, TrainSetup) -> TrainSetup: what one run's optimizer is told;
- TrainHooks.lrs(run, lrs) -> lrs: the learning rates one run is given;
- TrainHooks.batch(run, step, Batch) -> Batch: what one run reads at a step (from 1).
"""
from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.batches import Batch
from harness.core.optim import TrainSetup, schedule
from harness.core.paths import ROOT
from harness.kinds.train import compare, plots
from harness.kinds.train.cases import TrainCase
from harness.kinds.train.state import batches, initial_state
from harness.suite import frameworks
from harness.suite.rows import Row, guarded
from harness.suite.tolerances import Tolerances

# run name -> (framework, dtype); the judge first, so its checkpoints are held while the others run
RUNS = {"pt64": ("pt", "float64"), "pt": ("pt", "float32"), "ms": ("ms", "float32")}


@dataclasses.dataclass
class TrainHooks:
    setup: Callable[[str, TrainSetup], TrainSetup | None] | None = None
    lrs: Callable[[str, np.ndarray], np.ndarray | None] | None = None
    batch: Callable[[str, int, Batch], Batch | None] | None = None


@dataclasses.dataclass
class Curve:
    """One run: per step (index 0 = step 1) loss, global norm and lr; parameters at the checkpoints."""
    run: str
    setup: TrainSetup
    loss: np.ndarray
    norm: np.ndarray
    lr: np.ndarray
    params: dict[int, dict[str, np.ndarray]]
    step_s: np.ndarray


def curves_dir() -> Path:
    """reports/train/ (or $PARITY_REPORTS/train/): per-case curves and plots."""
    return Path(os.environ.get("PARITY_REPORTS", ROOT / "reports")) / "train"


def _hooked(hook, *args):
    return None if hook is None else hook(*args)


def train_run(run: str, cfg, state: dict[str, np.ndarray], data: list[Batch], setup: TrainSetup,
              keep: tuple[int, ...], ms_mode: str = "jit", hooks: TrainHooks | None = None,
              on_step: Callable[[int, float], None] | None = None, *,
              probe: Callable[[int, object], None] | None = None, stop: int | None = None) -> Curve:
    """N steps of one run (RUNS[run]) from `state`; parameters kept at the steps in `keep`.
    probe(step, trainer), if given, runs before the first step (step 0) and after each step: the growth
    study measures validation loss there (trainer.evaluate). stop: run only the first `stop` steps of the
    schedule (the curve's arrays keep setup.steps entries; those past `stop` stay 0)."""
    hooks = hooks or TrainHooks()
    framework, dtype = RUNS[run]
    setup = _hooked(hooks.setup, run, setup) or setup
    lrs = schedule(setup)
    changed = _hooked(hooks.lrs, run, lrs.copy())
    lrs = lrs if changed is None else np.asarray(changed, dtype=np.float32)
    fw = frameworks.load(framework)
    model = fw.train.trainable(cfg, state, dtype)
    trainer = fw.train.Trainer(model, setup, lrs, compiled=ms_mode == "jit")
    n = setup.steps
    curve = Curve(run, setup, np.zeros(n), np.zeros(n), np.zeros(n), {}, np.zeros(n))
    if probe is not None:
        probe(0, trainer)
    for t in range(n if stop is None else min(stop, n)):
        batch = _hooked(hooks.batch, run, t + 1, data[t]) or data[t]
        start = time.perf_counter()
        curve.loss[t], curve.norm[t], curve.lr[t] = trainer.step(batch.input_ids, batch.labels, batch.weights)
        curve.step_s[t] = time.perf_counter() - start
        if t + 1 in keep:
            curve.params[t + 1] = {k: v.copy() for k, v in fw.models.model_state(model).items()}
        if probe is not None:
            probe(t + 1, trainer)
        if on_step is not None:
            on_step(t + 1, curve.loss[t])
    del trainer, model
    gc.collect()
    return curve


def run_train_case(case: TrainCase, workdir: Path | None = None, *, keep: bool = False,
                   tolerances: Tolerances, hooks: TrainHooks | None = None) -> list[Row]:
    def measure(rows: list[Row]) -> None:
        state, note = initial_state(case)
        data = batches(case)
        curves = {run: train_run(run, case.cfg, state, data, case.setup, case.steps_compared, case.ms_mode, hooks)
                  for run in RUNS}
        rows += compare.rows(case, curves, tolerances, note)
        out = curves_dir()
        csv_path = compare.write_curves(curves, out / f"{case.id}.csv")
        png = plots.plot_case(case, curves, out / f"{case.id}.png")
        rows.append(compare.info(case.id, "plot", str(png.relative_to(out.parent)),
                                 f"{png.name}, {csv_path.name}: loss per framework, deviation per step"))
    return guarded("train", case.id, measure)
