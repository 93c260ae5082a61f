"""One PNG per training case (matplotlib, Agg backend: no display needed): on the left the loss of
each run over steps; on the right, on a log scale, each float32 framework's deviation from the
float64 run and MindSpore's from PyTorch, per step. Written atomically (a temp file, then renamed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.formats.atomic import commit, discard, temp_beside
from harness.kinds.train.compare import per_step

STYLE = {"pt": ("PyTorch float32", "tab:blue"), "ms": ("MindSpore float32", "tab:red"),
         "pt64": ("PyTorch float64 (judge)", "black")}


def _positive(series: np.ndarray) -> np.ndarray:
    # an exact agreement (0) has no place on a log axis: left out, not drawn at an invented floor
    return np.where(series > 0, series, np.nan)


def plot_case(case, curves: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = np.arange(1, curves["pt"].loss.size + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for run in ("pt64", "pt", "ms"):
        label, colour = STYLE[run]
        left.plot(steps, curves[run].loss, label=label, color=colour, lw=1.0,
                  ls="--" if run == "pt64" else "-")
    left.set(xlabel="step", ylabel="loss", title=f"{case.id}: loss ({case.task.upper()})")
    left.legend()
    judge = curves["pt64"].loss
    for run in ("pt", "ms"):
        label, colour = STYLE[run]
        right.semilogy(steps, _positive(per_step(curves[run].loss, judge)), ".", ms=3, color=colour,
                       label=f"{label} vs float64")
    right.semilogy(steps, _positive(per_step(curves["ms"].loss, curves["pt"].loss)), "-", lw=0.8, color="grey",
                   alpha=0.7, label="MindSpore vs PyTorch")
    right.set(xlabel="step", ylabel="|loss - reference| / |reference|", title="deviation per step (log)")
    right.legend()
    tmp = temp_beside(path)
    try:
        fig.savefig(tmp, dpi=90, format="png")
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    finally:
        plt.close(fig)
    return path
