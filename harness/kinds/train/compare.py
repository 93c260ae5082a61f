"""Rows of a training case from its three runs (PyTorch float64 "pt64", PyTorch "pt", MindSpore "ms").

Quantities:
- train_loss: MS vs PT |MS - PT| / |PT| at step 1, the worst step, and of the mean loss over the
  steps (MindFormers' acceptance: first-step loss 0.5%, mean loss 1%); step times; the first step
  over any per-step or checkpoint limit;
- grad_norm: the global gradient norm before clipping, per step, MS vs PT;
- lr: the learning rate each optimizer applied, per step (the same float32 values: limit 0);
- train_params: at each checkpoint and the last step, max |MS - PT| / max |PT| per tensor: the
  worst tensor and the first over the limit in model order;
- drift: each float32 run's deviation from the float64 run (loss: the worst step; parameters: the
  worst tensor at the last step) and MindSpore's over PyTorch's. Gate: MS <= k x PT + floor, k and
  floor from cases/tolerances.toml (drift loss.k, loss.floor, params.k, params.floor).
Parameters whose loss gradient is zero in exact arithmetic (BERT's key biases: NULL_GRADIENT of
harness.core.families) hold amplified rounding noise in every run: they are reported in a
`null_gradient` info row and left out of the parameter gates and the drift.
Per-step series are relative errors against the reference's own value at that step.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from harness.core import families
from harness.core.formats.atomic import commit, discard, temp_beside
from harness.suite.metrics import relative
from harness.suite.rows import Row, first_and_worst, limited, names_rows, row


def info(case_id: str, metric: str, value, detail: str = "", quantity: str = "train_loss") -> Row:
    return row(case_id, quantity, metric, value, None, detail)


def per_step(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| / |ref| at every step (|got - ref| where ref is 0)."""
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    scale = np.abs(ref.astype(np.float64))
    return np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), diff)


def _first_over(series: np.ndarray, limit: float | None) -> int | None:
    if limit is None:
        return None
    over = np.flatnonzero(~(series <= limit))   # NaN is over
    return int(over[0]) + 1 if over.size else None


def _series_row(case_id, quantity, metric, series, limit, why, what) -> tuple[Row, int | None]:
    worst = int(np.nanargmax(series)) if np.isfinite(series).any() else 0
    first = _first_over(series, limit)
    detail = (f"worst at step {worst + 1} ({what(worst)}); first step over limit: "
              + (f"{first} ({series[first - 1]:.3g})" if first else "none") + why)
    return row(case_id, quantity, metric, float(np.max(series)), limit, detail), first


def null_gradient(family: str, name: str) -> bool:
    """A tensor whose loss gradient is zero in exact arithmetic (harness.core.families: NULL_GRADIENT)."""
    return name.endswith(families.get(family).NULL_GRADIENT) if families.get(family).NULL_GRADIENT else False


def _tensor_errors(got: dict, ref: dict, family: str | None = None) -> dict[str, float]:
    """name -> relative error, in model order; without the null-gradient tensors when family is given."""
    return {n: relative(got[n], ref[n]) for n in ref if n in got and not (family and null_gradient(family, n))}


def _params_row(case, metric, got, ref, limit, why, quantity="train_params") -> tuple[list[Row], str | None]:
    errors = _tensor_errors(got, ref, case.family)
    worst, first, n_over = first_and_worst(errors, limit)
    detail = (f"worst: {worst} ({errors[worst]:.3g}); first over limit (model order): {first}; "
              f"{n_over} of {len(errors)} over{why}")
    out = [row(case.id, quantity, metric, errors[worst], limit, detail)]
    null = {n: relative(got[n], ref[n]) for n in ref if n in got and case.family and null_gradient(case.family, n)}
    if null:
        w = max(null, key=null.get)
        out.append(info(case.id, f"{metric.removesuffix('.relative')}.null_gradient", null[w],
                        f"{len(null)} tensors left out of the gate above, worst {w}: their loss gradient is 0 in "
                        "exact arithmetic (a key bias shifts every score of a query alike), so their values are "
                        "each run's rounding noise amplified by Adam (tests/test_train.py measures the gradient)",
                        quantity))
    return out, (None if first == "none" else first)


def drift_rows(cid: str, tol, what: str, pt_dev: float, ms_dev: float, where: str, quantity="drift") -> list[Row]:
    """MindSpore's and PyTorch's deviation from float64 (`what`: loss | params) and their ratio; the gate:
    MindSpore's <= k x PyTorch's + floor (cases/tolerances.toml)."""
    k, k_why = limited(tol, cid, quantity, f"{what}.k")
    floor, floor_why = limited(tol, cid, quantity, f"{what}.floor")
    ratio = ms_dev / pt_dev if pt_dev > 0 else (1.0 if ms_dev == 0 else float("inf"))
    bound = None if k is None or floor is None else k * pt_dev + floor
    rows = [info(cid, f"{what}.pt_dev", pt_dev, f"PyTorch float32 vs float64, {where}", quantity),
            info(cid, f"{what}.ratio", ratio, "MindSpore's deviation / PyTorch's", quantity),
            row(cid, quantity, f"{what}.ms_dev", ms_dev, bound,
                f"MindSpore float32 vs float64, {where}; limit = k {k} x PyTorch's {pt_dev:.3g} + floor {floor}"
                + k_why + floor_why)]
    return rows


def envelope_row(cid, tol, pt_dev: np.ndarray, ms_dev: np.ndarray, quantity="drift") -> tuple[list[Row], int | None]:
    """Per step: MindSpore's loss deviation from float64 against k x the largest PyTorch deviation so far
    + floor (a running max, as single steps scatter over a decade). Value: the worst ratio to that bound."""
    k, _ = limited(tol, cid, quantity, "loss.k")
    floor, _ = limited(tol, cid, quantity, "loss.floor")
    if k is None or floor is None:
        return [], None
    excess = ms_dev / (k * np.maximum.accumulate(pt_dev) + floor)
    r, first = _series_row(cid, quantity, "loss.excess", excess, 1.0,
                           f"; per step: MindSpore's deviation / (k {k:g} x PyTorch's largest so far + {floor:g})",
                           lambda t: f"MindSpore {ms_dev[t]:.3g} vs PyTorch {pt_dev[t]:.3g} from float64")
    return [r], first


def rows(case, curves: dict, tol, note: str) -> list[Row]:
    cid, pt, ms, judge = case.id, curves["pt"], curves["ms"], curves["pt64"]
    setups = "" if pt.setup == ms.setup else "; SETUPS DIFFER (MindSpore vs PyTorch): " + ", ".join(
        ms.setup.differences(pt.setup))
    out = [info(cid, "setup", case.describe(), note + setups), info(cid, "steps", case.setup.steps)]
    firsts: dict[str, int] = {}

    loss_rel = per_step(ms.loss, pt.loss)
    lim, why = limited(tol, cid, "train_loss", "first.relative")
    out.append(row(cid, "train_loss", "first.relative", float(loss_rel[0]), lim,
                   f"MindSpore {ms.loss[0]!r} vs PyTorch {pt.loss[0]!r}{why}{setups}"))
    lim, why = limited(tol, cid, "train_loss", "step.relative")
    for step in case.steps_compared[1:] if case.steps_compared[0] == 1 else case.steps_compared:
        out.append(row(cid, "train_loss", f"step{step}.relative", float(loss_rel[step - 1]), lim,
                       f"MindSpore {ms.loss[step - 1]!r} vs PyTorch {pt.loss[step - 1]!r}{why}"))
    lim, why = limited(tol, cid, "train_loss", "worst.relative")
    r, firsts["loss"] = _series_row(cid, "train_loss", "worst.relative", loss_rel, lim, why,
                                    lambda t: f"MindSpore {ms.loss[t]:.7g} vs PyTorch {pt.loss[t]:.7g}")
    out.append(r)
    lim, why = limited(tol, cid, "train_loss", "mean.relative")
    mean = float(abs(ms.loss.mean() - pt.loss.mean()) / abs(pt.loss.mean()))
    out.append(row(cid, "train_loss", "mean.relative", mean, lim,
                   f"mean loss MindSpore {ms.loss.mean():.7g} vs PyTorch {pt.loss.mean():.7g}{why}"))
    for c in (pt, ms, judge):   # the first step compiles (MindSpore jit): reported apart
        out.append(info(cid, f"{c.run}.step_s", float(np.median(c.step_s[1:] if c.step_s.size > 1 else c.step_s)),
                        f"median seconds per step after the first ({c.step_s[0]:.2f} s)"))

    lim, why = limited(tol, cid, "grad_norm", "worst.relative")
    r, firsts["grad norm"] = _series_row(cid, "grad_norm", "worst.relative", per_step(ms.norm, pt.norm), lim, why,
                                         lambda t: f"MindSpore {ms.norm[t]:.7g} vs PyTorch {pt.norm[t]:.7g}")
    out.append(r)
    lim, why = limited(tol, cid, "lr", "worst.relative")
    r, firsts["lr"] = _series_row(cid, "lr", "worst.relative", per_step(ms.lr, pt.lr), lim, why,
                                  lambda t: f"MindSpore {ms.lr[t]:.7g} vs PyTorch {pt.lr[t]:.7g}")
    out.append(r)

    last = case.setup.steps
    for step in case.steps_compared:
        out += names_rows(cid, "train_params", ms.params[step], pt.params[step])
        # step 1 has a limit of its own: later checkpoints may be past the chaos horizon, the first step never is
        key = "last.relative" if step == last else ("first.relative" if step == 1 else "step.relative")
        metric = "last.relative" if step == last else f"step{step}.relative"
        lim, why = limited(tol, cid, "train_params", key)
        r, first = _params_row(case, metric, ms.params[step], pt.params[step], lim, f" (step {step}){why}")
        out += r
        if first and "params" not in firsts:
            firsts["params"] = step
            firsts["params tensor"] = first

    pt_dev, ms_dev = per_step(pt.loss, judge.loss), per_step(ms.loss, judge.loss)
    out += drift_rows(cid, tol, "loss", float(pt_dev.max()), float(ms_dev.max()), "worst step")
    r, firsts["drift from float64"] = envelope_row(cid, tol, pt_dev, ms_dev)
    out += r
    pt_dev = max(_tensor_errors(pt.params[last], judge.params[last], case.family).values())
    ms_dev = max(_tensor_errors(ms.params[last], judge.params[last], case.family).values())
    out += drift_rows(cid, tol, "params", pt_dev, ms_dev, f"worst tensor at step {last}")

    over = {k: v for k, v in firsts.items() if isinstance(v, int)}
    if over:
        what, step = min(over.items(), key=lambda kv: kv[1])
        tensor = f" ({firsts['params tensor']})" if what == "params" else ""
        out.append(info(cid, "first_step_over", step, f"{what}{tensor} first over its limit at step {step}"))
    else:
        out.append(info(cid, "first_step_over", "none", "no per-step or checkpoint limit exceeded"))
    return out


COLUMNS = ("step", "lr_pt", "lr_ms", "loss_pt64", "loss_pt", "loss_ms", "norm_pt64", "norm_pt", "norm_ms",
           "loss_ms_vs_pt", "loss_pt_vs_pt64", "loss_ms_vs_pt64")


def write_curves(curves: dict, path: Path) -> Path:
    """The per-step curves of the three runs as csv (atomic: a temp file beside it, then renamed)."""
    pt, ms, judge = curves["pt"], curves["ms"], curves["pt64"]
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([np.arange(1, pt.loss.size + 1), pt.lr, ms.lr, judge.loss, pt.loss, ms.loss, judge.norm,
                             pt.norm, ms.norm, per_step(ms.loss, pt.loss), per_step(pt.loss, judge.loss),
                             per_step(ms.loss, judge.loss)])
    tmp = temp_beside(path)
    try:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            out.writerows([[int(r[0])] + [repr(float(x)) for x in r[1:]] for r in table])
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path
