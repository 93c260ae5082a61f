"""Rows of a multi-step distillation case from its three runs (PyTorch float64 "pt64", PyTorch "pt",
MindSpore "ms"), with the train kind's comparisons (harness.kinds.train.compare) under this kind's
quantity names:
- distill_loss: per loss term (embedding, hidden.m, attention.m, prediction, total) |MS - PT| / |PT|
  at step 1 ({term}.first.relative), the worst step ({term}.worst.relative: the detail names the
  first step over the limit) and of the mean over the steps; the total at the checkpoints; step
  times; the first step over any limit, naming the term (or norm, lr, tensor);
- distill_norm, distill_lr: the global gradient norm before clipping and the lr applied, per step;
- distill_params: the student's parameters at each checkpoint and the last step, per tensor;
- distill_drift: each float32 run's deviation from the float64 run (total loss: worst step and per step
  against k x PyTorch's running max + floor; parameters: worst tensor at the last step), and per term
  MindSpore's worst deviation over PyTorch's (reported).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.core.formats.atomic import commit, discard, temp_beside
from harness.kinds.train.compare import (
    _params_row,
    _series_row,
    _tensor_errors,
    drift_rows,
    envelope_row,
    info as train_info,
    per_step,
)
from harness.suite.rows import Row, limited, names_rows, row

LOSS, NORM, LR, PARAMS, DRIFT = "distill_loss", "distill_norm", "distill_lr", "distill_params", "distill_drift"


def info(case_id: str, metric: str, value, detail: str = "", quantity: str = LOSS) -> Row:
    return train_info(case_id, metric, value, detail, quantity)


def _setups_note(pt, ms) -> str:
    diffs = ms.step_setup.differences(pt.step_setup) + ms.setup.differences(pt.setup)
    return "; SETUPS DIFFER (MindSpore vs PyTorch): " + ", ".join(diffs) if diffs else ""


def _term_rows(cid, tol, term: str, pt, ms, note: str) -> tuple[list[Row], int | None]:
    a, b = ms.terms[term], pt.terms[term]
    rel = per_step(a, b)
    lim1, why = limited(tol, cid, LOSS, "first.relative")
    out = [row(cid, LOSS, f"{term}.first.relative", float(rel[0]), lim1,
               f"MindSpore {a[0]!r} vs PyTorch {b[0]!r}{why}{note}")]
    lim, why = limited(tol, cid, LOSS, "worst.relative")
    r, first = _series_row(cid, LOSS, f"{term}.worst.relative", rel, lim, why,
                           lambda t: f"MindSpore {a[t]:.7g} vs PyTorch {b[t]:.7g}")
    out.append(r)
    lim, why = limited(tol, cid, LOSS, "mean.relative")
    mean = float(abs(a.mean() - b.mean()) / abs(b.mean())) if b.mean() else float(abs(a.mean()))
    out.append(row(cid, LOSS, f"{term}.mean.relative", mean, lim,
                   f"mean over {a.size} steps MindSpore {a.mean():.7g} vs PyTorch {b.mean():.7g}{why}"))
    if lim1 is not None and not rel[0] <= lim1:   # over the first step's own limit (NaN too)
        first = 1
    return out, first


def rows(case, curves: dict, tol) -> list[Row]:
    cid, pt, ms, judge = case.id, curves["pt"], curves["ms"], curves["pt64"]
    note = _setups_note(pt, ms)
    out = [info(cid, "setup", case.describe(), "teacher frozen; student from the seed" + note),
           info(cid, "steps", case.steps)]
    firsts: dict[str, int | None] = {}
    for term in [t for t in pt.terms if t in ms.terms]:
        r, firsts[term] = _term_rows(cid, tol, term, pt, ms, note)
        out += r
    missing = sorted(set(pt.terms) ^ set(ms.terms))
    if missing:
        out.append(row(cid, LOSS, "terms", len(missing), 0, f"terms on one side only: {missing}"))
    lim, why = limited(tol, cid, LOSS, "step.relative")
    total = per_step(ms.loss, pt.loss)
    for step in [s for s in case.steps_compared if s != 1]:
        out.append(row(cid, LOSS, f"total.step{step}.relative", float(total[step - 1]), lim,
                       f"MindSpore {ms.loss[step - 1]!r} vs PyTorch {pt.loss[step - 1]!r}{why}"))
    for c in (pt, ms, judge):   # the first step compiles (MindSpore jit): reported apart
        out.append(info(cid, f"{c.run}.step_s", float(np.median(c.step_s[1:] if c.step_s.size > 1 else c.step_s)),
                        f"median seconds per step after the first ({c.step_s[0]:.2f} s)"))

    lim, why = limited(tol, cid, NORM, "worst.relative")
    r, firsts["grad norm"] = _series_row(cid, NORM, "worst.relative", per_step(ms.norm, pt.norm), lim, why,
                                         lambda t: f"MindSpore {ms.norm[t]:.7g} vs PyTorch {pt.norm[t]:.7g}")
    out.append(r)
    lim, why = limited(tol, cid, LR, "worst.relative")
    r, firsts["lr"] = _series_row(cid, LR, "worst.relative", per_step(ms.lr, pt.lr), lim, why,
                                  lambda t: f"MindSpore {ms.lr[t]:.7g} vs PyTorch {pt.lr[t]:.7g}")
    out.append(r)

    last, tensor = case.steps, None
    for step in case.steps_compared:
        out += names_rows(cid, PARAMS, ms.params[step], pt.params[step])
        metric, key = ("last.relative", "last.relative") if step == last else (f"step{step}.relative", "step.relative")
        lim, why = limited(tol, cid, PARAMS, key)
        r, first = _params_row(case, metric, ms.params[step], pt.params[step], lim, f" (step {step}){why}", PARAMS)
        out += r
        if first and tensor is None:
            firsts["params"], tensor = step, first

    pt_dev, ms_dev = per_step(pt.loss, judge.loss), per_step(ms.loss, judge.loss)
    out += drift_rows(cid, tol, "loss", float(pt_dev.max()), float(ms_dev.max()), "total loss, worst step", DRIFT)
    r, firsts["drift from float64"] = envelope_row(cid, tol, pt_dev, ms_dev, DRIFT)
    out += r
    for term in [t for t in judge.terms if t in pt.terms and t in ms.terms and t != "total"]:
        p, m = per_step(pt.terms[term], judge.terms[term]).max(), per_step(ms.terms[term], judge.terms[term]).max()
        out.append(info(cid, f"{term}.ratio", float(m / p) if p > 0 else (1.0 if m == 0 else float("inf")),
                        f"worst step: MindSpore {m:.3g} vs PyTorch {p:.3g} from float64", DRIFT))
    pt_p = max(_tensor_errors(pt.params[last], judge.params[last]).values())
    ms_p = max(_tensor_errors(ms.params[last], judge.params[last]).values())
    out += drift_rows(cid, tol, "params", pt_p, ms_p, f"worst tensor at step {last}", DRIFT)

    over = {k: v for k, v in firsts.items() if isinstance(v, int)}
    if over:
        what, step = min(over.items(), key=lambda kv: kv[1])   # the first in term order among equal steps
        named = f"params ({tensor})" if what == "params" else what
        out.append(info(cid, "first_step_over", step, f"{named} first over its limit at step {step}"))
    else:
        out.append(info(cid, "first_step_over", "none", "no per-step or checkpoint limit exceeded"))
    return out


def write_curves(curves: dict, path: Path) -> Path:
    """Per step: lr, global norm and every loss term of the three runs, and the total's deviations (csv,
    atomic: a temp file beside it, then renamed)."""
    pt, ms, judge = curves["pt"], curves["ms"], curves["pt64"]
    terms = [t for t in pt.terms if t in ms.terms and t in judge.terms]
    columns = {"step": np.arange(1, pt.loss.size + 1), "lr_pt": pt.lr, "lr_ms": ms.lr,
               **{f"norm_{c.run}": c.norm for c in (judge, pt, ms)},
               **{f"{t}_{c.run}": c.terms[t] for t in terms for c in (judge, pt, ms)},
               "total_ms_vs_pt": per_step(ms.loss, pt.loss), "total_pt_vs_pt64": per_step(pt.loss, judge.loss),
               "total_ms_vs_pt64": per_step(ms.loss, judge.loss)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(columns)
            for t in range(pt.loss.size):
                out.writerow([t + 1] + [repr(float(v[t])) for k, v in columns.items() if k != "step"])
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path
