"""The papers' measure: how many steps (and FLOPs) a grown run needs to reach the tuned scratch run's
final validation loss, and the saving in %.

    x = reach(steps, val_loss, target)          # first crossing, linearly interpolated; None: never
    saving(cost, reference) = 100 x (1 - cost / reference)

reach: the first evaluation at or below `target`; between it and the evaluation before it the curve is
taken as a straight line (steps are the x axis, so FLOPs, proportional to steps for one model, follow).
A curve at or below the target at its first point reaches it there. A NaN loss never reaches it.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def reach(x: np.ndarray, loss: np.ndarray, target: float) -> float | None:
    """The x at which the piecewise-linear curve (x, loss) first comes down to `target`, else None."""
    x, loss = np.asarray(x, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    below = np.flatnonzero(loss <= target)       # NaN compares False: never below
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], loss[i - 1], loss[i]
    if not np.isfinite(y0):
        return float(x1)
    return float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def saving(cost: float, reference: float) -> float:
    """% of `reference` saved by spending `cost` instead (negative: it cost more)."""
    return 100.0 * (1.0 - cost / reference)


@dataclasses.dataclass(frozen=True)
class ArmSaving:
    """One grown arm against the tuned scratch: per seed, steps to the target (None: not reached),
    and the savings of those that reached it, without and with the source's pre-training FLOPs."""
    steps: tuple[float | None, ...]
    flops: tuple[float | None, ...]          # the arm's own training FLOPs to the target
    saved: tuple[float, ...]                 # % of scratch's FLOPs, without the source's cost
    saved_with_source: tuple[float, ...]     # % of scratch's FLOPs, the source's pre-training added

    @property
    def reached(self) -> int:
        return sum(s is not None for s in self.steps)


def arm_saving(curves: list[tuple[np.ndarray, np.ndarray]], target: float, flops_per_step: float,
               reference_steps: float, source_flops: float) -> ArmSaving:
    """curves: (steps, validation loss) per seed of one arm; the reference: scratch's steps to the target
    at the same FLOPs per step (the same target model)."""
    steps = tuple(reach(x, y, target) for x, y in curves)
    flops = tuple(None if s is None else s * flops_per_step for s in steps)
    ref = reference_steps * flops_per_step
    done = [f for f in flops if f is not None]
    return ArmSaving(steps, flops, tuple(saving(f, ref) for f in done),
                     tuple(saving(f + source_flops, ref) for f in done))


def mean_spread(values) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value) of the finite values; (nan, nan) for none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
