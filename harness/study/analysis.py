"""From a family's runs to the papers' numbers: the tuned scratch's final validation loss (the target),
and per arm its final loss (mean and spread over seeds), the steps and FLOPs it needs to reach the
target, and the saving without and with its source's pre-training FLOPs (harness.study.savings)."""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.study.arms import GROWTH
from harness.study.flops import flops_per_step
from harness.study.runs import RunResult
from harness.study.savings import ArmSaving, arm_saving, mean_spread, reach
from harness.study.study import FamilyResult

ARM_TITLES = {"scratch": "scratch (tuned lr)", "fpi_paper": "FPI, paper sampling",
              "fpi_balanced": "FPI, balanced (exact)", "aki": "AKI", "depth": "depth-only stacking",
              "lossless": "lossless",
              "minilm": "FPI from real MiniLM", "minilm_scratch": "scratch at MiniLM's grown size"}


@dataclasses.dataclass
class ArmRow:
    arm: str
    baseline: str                     # the scratch arm it is measured against
    seeds: int
    final: tuple[float, float]        # validation loss at the last step: mean, spread (sample std)
    saving: ArmSaving | None          # None for a baseline
    source_flops: float | None        # None: not counted (trained elsewhere) or no source
    source_steps: int = 0


@dataclasses.dataclass
class Baseline:
    arm: str
    lr: float
    target: float                     # mean final validation loss over seeds
    target_spread: float
    steps: float                      # where its mean curve reaches the target
    flops_per_step: float
    eval_steps: np.ndarray
    mean_curve: np.ndarray


@dataclasses.dataclass
class FamilySummary:
    family: str
    baselines: dict[str, Baseline]
    rows: list[ArmRow]
    sweep: list[tuple[float, float]]  # (lr, final validation loss) of the scratch sweep, first seed
    sources: dict[str, tuple[int, float, float]]   # role -> (steps, FLOPs, final validation loss)


def _curves(runs: list[RunResult]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(r.eval_steps.astype(np.float64), r.val_loss) for r in runs]


def _baseline(fam: FamilyResult, arm: str, cfg, batch: int, length: int) -> Baseline | None:
    runs = fam.select(arm, lr=fam.tuned_lr)
    if not runs:
        return None
    mean = np.mean([r.val_loss for r in runs], axis=0)
    target, spread = mean_spread([r.val_loss[-1] for r in runs])
    steps = reach(runs[0].eval_steps, mean, target)
    return Baseline(arm, fam.tuned_lr, target, spread, steps if steps is not None else float(runs[0].steps),
                    float(flops_per_step(cfg, batch, length)), runs[0].eval_steps, mean)


def summarize(fam: FamilyResult, batch: int, length: int) -> FamilySummary:
    baselines = {}
    for arm, role in (("scratch", "target"), ("minilm_scratch", "minilm_target")):
        if role in fam.configs:
            b = _baseline(fam, arm, fam.configs[role], batch, length)
            if b is not None:
                baselines[arm] = b
    sources = {}
    for role in ("source", "source_deep"):
        got = fam.select(role)
        if got and role in fam.configs:
            r = got[0]
            sources[role] = (r.steps, float(r.steps * flops_per_step(fam.configs[role], batch, length)),
                             float(r.val_loss[-1]))
    rows = []
    for arm in ("scratch", *GROWTH, "minilm_scratch"):
        runs = fam.select(arm, lr=fam.tuned_lr)
        if not runs:
            continue
        baseline = "minilm_scratch" if arm.startswith("minilm") else "scratch"
        final = mean_spread([r.val_loss[-1] for r in runs])
        if arm in baselines or baseline not in baselines:
            rows.append(ArmRow(arm, baseline, len(runs), final, None, None))
            continue
        role = GROWTH[arm][0]
        src = sources.get(role)
        b = baselines[baseline]
        saving = arm_saving(_curves(runs), b.target, b.flops_per_step, b.steps, src[1] if src else 0.0)
        rows.append(ArmRow(arm, baseline, len(runs), final, saving, src[1] if src else None,
                           src[0] if src else 0))
    first = min((r.seed for r in fam.select("scratch")), default=0)
    sweep = sorted((r.lr, float(r.val_loss[-1])) for r in fam.select("scratch") if r.seed == first)
    return FamilySummary(fam.family, baselines, rows, sweep, sources)
