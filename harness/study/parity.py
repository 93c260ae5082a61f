"""MindSpore's curves against PyTorch's, one set of rows per arm MindSpore ran (case id
study_<profile>_<family>_<arm>, so a limit can be set per profile): the same arm, seed, weights, batches
and lr, MindSpore for its first ms_steps.

Rows (quantity train_loss, the train kind's metrics, limits from cases/tolerances.toml):
- first.relative: |MS - PT| / |PT| of the training loss at step 1;
- worst.relative: the worst step's training-loss relative error over the steps MindSpore ran;
- step.relative: the worst relative error of the validation loss at the evaluations both ran.
- drift (the train kind's judge, harness.kinds.train.compare): PyTorch float32's and MindSpore's deviation
  of the training loss from the same steps in PyTorch float64, the worst step and their ratio; gated as
  MindSpore's <= k x PyTorch's + floor, at the worst step and per step against PyTorch's largest so far
  (loss.excess). Past a chaos horizon (a loss spike, a large lr) both float32 runs leave the float64 one
  and each other; this says whether MindSpore left it more than PyTorch did.
A run MindSpore could not finish, or a missing PyTorch or float64 twin, is a failed row, never a skipped one.
"""
from __future__ import annotations

import numpy as np

from harness.kinds.train.compare import drift_rows, envelope_row, per_step
from harness.study.runs import RunResult
from harness.suite.rows import Row, limited, row
from harness.suite.tolerances import Tolerances


def case_id(profile: str, family: str, arm: str) -> str:
    return f"study_{profile}_{family}_{arm}"


def parity_rows(ms: RunResult, pt: RunResult | None, tol: Tolerances, profile: str, *,
                judge: RunResult | None = None) -> list[Row]:
    cid = case_id(profile, ms.family, ms.arm)
    if pt is None:
        return [row(cid, "train_loss", "worst.relative", float("nan"), 0.0,
                    f"no PyTorch run of {ms.arm} seed {ms.seed} lr {ms.lr:g} to compare with", status="fail")]
    n = ms.steps
    loss = per_step(ms.train_loss[:n], pt.train_loss[:n])
    out = []
    lim, why = limited(tol, cid, "train_loss", "first.relative")
    out.append(row(cid, "train_loss", "first.relative", float(loss[0]), lim,
                   f"step 1: MindSpore {ms.train_loss[0]:.7g} vs PyTorch {pt.train_loss[0]:.7g}{why}"))
    lim, why = limited(tol, cid, "train_loss", "worst.relative")
    worst = int(np.nanargmax(loss)) if np.isfinite(loss).any() else 0
    out.append(row(cid, "train_loss", "worst.relative", float(np.max(loss)), lim,
                   f"training loss over {n} steps, worst at step {worst + 1} (MindSpore "
                   f"{ms.train_loss[worst]:.7g} vs PyTorch {pt.train_loss[worst]:.7g}){why}"))
    both = [s for s in ms.eval_steps if s in set(pt.eval_steps.tolist())]
    ms_val = np.asarray([ms.val_loss[list(ms.eval_steps).index(s)] for s in both])
    pt_val = np.asarray([pt.val_loss[list(pt.eval_steps).index(s)] for s in both])
    val = per_step(ms_val, pt_val)
    lim, why = limited(tol, cid, "train_loss", "step.relative")
    at = int(np.nanargmax(val)) if np.isfinite(val).any() else 0
    out.append(row(cid, "train_loss", "step.relative", float(np.max(val)), lim,
                   f"validation loss at steps {both[0]}..{both[-1]} ({len(both)} evaluations), worst at step "
                   f"{both[at]} (MindSpore {ms_val[at]:.7g} vs PyTorch {pt_val[at]:.7g}){why}"))
    if judge is None or judge.steps < n:
        out.append(row(cid, "drift", "loss.ms_dev", float("nan"), 0.0,
                       f"no PyTorch float64 run of {ms.arm} seed {ms.seed} lr {ms.lr:g} over {n} steps to judge by",
                       status="fail"))
        return out
    pt_dev = per_step(pt.train_loss[:n], judge.train_loss[:n])
    ms_dev = per_step(ms.train_loss[:n], judge.train_loss[:n])
    out += drift_rows(cid, tol, "loss", float(pt_dev.max()), float(ms_dev.max()), f"training loss, worst of {n} steps")
    out += envelope_row(cid, tol, pt_dev, ms_dev)[0]
    return out
