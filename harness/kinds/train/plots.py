"""One PNG per training run (matplotlib, Agg backend: no display needed): on the left the loss of
each run over steps; on the right, on a log scale, each float32 framework's deviation from the
float64 run and MindSpore's from PyTorch, per step (when those runs are there). Written atomically
(a temp file, then renamed; inside an OutputSet, staged with the rest of the set)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.formats.checkpoint import atomic_path
from harness.kinds.train.compare import per_step

STYLE = {"pt": ("PyTorch float32", "tab:blue"), "ms": ("MindSpore float32", "tab:red"),
         "pt64": ("PyTorch float64 (judge)", "black")}


def positive(series: np.ndarray) -> np.ndarray:
    # an exact agreement (0) has no place on a log axis: left out, not drawn at an invented floor
    return np.where(series > 0, series, np.nan)


def plot_case(case, curves: dict, path: Path) -> Path:
    return plot_curves(f"{case.id}: loss ({case.task.upper()})", curves, path)


def plot_curves(title: str, curves: dict, path: Path) -> Path:
    """curves: run name ("pt64", "pt", "ms") -> Curve, any non-empty subset."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    runs = [r for r in ("pt64", "pt", "ms") if r in curves]
    steps = np.arange(1, curves[runs[0]].loss.size + 1)
    pairs = [(run, "pt64", f"{STYLE[run][0]} vs float64", ".") for run in ("pt", "ms") if run in curves
             and "pt64" in curves]
    if "pt" in curves and "ms" in curves:
        pairs.append(("ms", "pt", "MindSpore vs PyTorch", "-"))
    fig, axes = plt.subplots(1, 2 if pairs else 1, figsize=(12 if pairs else 6.5, 4.5), constrained_layout=True,
                             squeeze=False)
    left = axes[0][0]
    for run in runs:
        label, colour = STYLE[run]
        left.plot(steps, curves[run].loss, label=label, color=colour, lw=1.0, ls="--" if run == "pt64" else "-")
    left.set(xlabel="step", ylabel="loss", title=title)
    left.legend()
    if pairs:
        right = axes[0][1]
        for run, ref, label, style in pairs:
            colour = "grey" if ref == "pt" else STYLE[run][1]
            kw = {"ms": 3} if style == "." else {"lw": 0.8, "alpha": 0.7}
            right.semilogy(steps, positive(per_step(curves[run].loss, curves[ref].loss)), style, color=colour,
                           label=label, **kw)
        right.set(xlabel="step", ylabel="|loss - reference| / |reference|", title="deviation per step (log)")
        right.legend()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
    finally:
        plt.close(fig)
    return path
