"""Run one multi-step distillation case: the same N steps in PyTorch float64 (the judge), PyTorch
and MindSpore (ms.jit, or PyNative by the row's ms_mode).

    rows = run_distill_train_case(case, workdir)          # list[Row], free of pytest

Every run starts from the same numpy teacher and student (harness.kinds.distill.runner's
teacher_state / student_state, as the one-step case), reads the same numpy batches (right-padded
text windows, harness.core.batches.draw_text_batches) and is given the same float32 learning rates
(harness.core.optim.schedule); each records per step every loss term, the global gradient norm
before clipping and the lr its optimizer applied, and the student's parameters at the case's
checkpoints. compare.py turns the three runs into rows; the curves go to reports/distill/<case>.csv
and a plot to reports/distill/<case>.png (plots.py).

Seams for planted faults (each gets the run name "pt64", "pt" or "ms"; None leaves it alone):
- DistillTrainHooks.setup(run, StepSetup) -> StepSetup: what one run's loss terms are told
  (layer map, temperature);
- DistillTrainHooks.lrs(run, lrs) -> lrs: the learning rates one run is given.
"""
from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.batches import TextBatch, draw_text_batches
from harness.core.distill_step import StepSetup, term_names
from harness.core.optim import schedule
from harness.core.paths import ROOT
from harness.kinds.distill.cases import DistillCase
from harness.kinds.distill.runner import student_state, teacher_state
from harness.kinds.distill_train import compare, plots
from harness.kinds.train.runner import RUNS, Curve
from harness.suite import frameworks
from harness.suite.corpus import english_ids
from harness.suite.rows import Row, guarded
from harness.suite.tolerances import Tolerances


@dataclasses.dataclass
class DistillTrainHooks:
    setup: Callable[[str, StepSetup], StepSetup | None] | None = None
    lrs: Callable[[str, np.ndarray], np.ndarray | None] | None = None


@dataclasses.dataclass
class DistillCurve(Curve):
    """A train Curve (loss = the total) plus every loss term per step, and what the terms were told."""
    terms: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    step_setup: StepSetup | None = None


def curves_dir() -> Path:
    """reports/distill/ (or $PARITY_REPORTS/distill/): per-case curves and plots."""
    return Path(os.environ.get("PARITY_REPORTS", ROOT / "reports")) / "distill"


def batches(case: DistillCase) -> list[TextBatch]:
    return draw_text_batches(english_ids(), steps=case.steps, batch=case.batch, length=case.length, seed=case.seed,
                             vocab=case.student_cfg.vocab)


def distill_run(run: str, case: DistillCase, teacher: dict, student: dict, data: list[TextBatch],
                hooks: DistillTrainHooks | None = None) -> DistillCurve:
    """case.steps steps of one run (RUNS[run]); the student's parameters kept at case.steps_compared."""
    hooks = hooks or DistillTrainHooks()
    framework, dtype = RUNS[run]
    setup = (hooks.setup and hooks.setup(run, case.setup)) or case.setup
    lrs = schedule(case.train_setup)
    changed = hooks.lrs and hooks.lrs(run, lrs.copy())
    lrs = lrs if changed is None else np.asarray(changed, dtype=np.float32)
    fw = frameworks.load(framework)
    teacher_model, student_model = fw.distill.distill_models(case.teacher_cfg, case.student_cfg, case.num_labels,
                                                             teacher, student, dtype)
    trainer = fw.distill.DistillTrainer(teacher_model, student_model, setup, case.train_setup, lrs,
                                        compiled=case.ms_mode == "jit")
    n, names = case.steps, term_names(setup)
    curve = DistillCurve(run, case.train_setup, np.zeros(n), np.zeros(n), np.zeros(n), {}, np.zeros(n),
                         {term: np.zeros(n) for term in names}, setup)
    for t, batch in enumerate(data):
        start = time.perf_counter()
        losses, curve.norm[t], curve.lr[t] = trainer.step(batch.input_ids, batch.attention_mask)
        curve.step_s[t] = time.perf_counter() - start
        for term in names:
            curve.terms[term][t] = losses[term]
        if t + 1 in case.steps_compared:
            curve.params[t + 1] = {k: v.copy() for k, v in fw.models.model_state(student_model).items()}
    curve.loss = curve.terms["total"]
    del trainer, teacher_model, student_model
    gc.collect()
    return curve


def run_distill_train_case(case: DistillCase, workdir: Path | None = None, *, keep: bool = False,
                           tolerances: Tolerances, hooks: DistillTrainHooks | None = None) -> list[Row]:
    def measure(rows: list[Row]) -> None:
        teacher, student = teacher_state(case), student_state(case)
        data = batches(case)
        curves = {run: distill_run(run, case, teacher, student, data, hooks) for run in RUNS}
        rows += compare.rows(case, curves, tolerances)
        out = curves_dir()
        csv_path = compare.write_curves(curves, out / f"{case.id}.csv")
        png = plots.plot_case(case, curves, out / f"{case.id}.png")
        rows.append(compare.info(case.id, "plot", str(png.relative_to(out.parent)),
                                 f"{png.name}, {csv_path.name}: loss terms per framework, deviation per step"))
    return guarded("distill_train", case.id, measure)
