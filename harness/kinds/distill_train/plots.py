"""One PNG per multi-step distillation case (matplotlib, Agg backend): left, every loss term of
PyTorch float32 (lines) and MindSpore float32 (circles, every few steps) over steps, log scale (the terms span decades);
middle, on a log scale, each float32 framework's deviation of the total loss from the float64 run
and MindSpore's from PyTorch; right, each term's MindSpore-vs-PyTorch deviation. Written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.formats.checkpoint import atomic_path
from harness.kinds.train.compare import per_step
from harness.kinds.train.plots import STYLE, positive


def plot_case(case, curves: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    pt, ms, judge = curves["pt"], curves["ms"], curves["pt64"]
    steps = np.arange(1, pt.loss.size + 1)
    terms = [t for t in pt.terms if t in ms.terms]
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(terms), 2)))
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    for term, colour in zip(terms, colours, strict=False):
        colour = "black" if term == "total" else colour
        width = 2.0 if term == "total" else 1.0
        left.semilogy(steps, pt.terms[term], "-", color=colour, lw=width, label=term)
        every = max(1, steps.size // 25)
        left.semilogy(steps[::every], ms.terms[term][::every], "o", color=colour, ms=5, mfc="none")
        right.semilogy(steps, positive(per_step(ms.terms[term], pt.terms[term])), "o" if term == "total" else ".",
                       ms=4 if term == "total" else 3, mfc="none" if term == "total" else colour, color=colour,
                       label=term)
    left.set(xlabel="step", ylabel="loss term (log)",
             title=f"{case.id}: loss terms (lines PyTorch, circles MindSpore)")
    left.legend(fontsize=7, ncol=2)
    for run in ("pt", "ms"):
        label, colour = STYLE[run]
        middle.semilogy(steps, positive(per_step(curves[run].loss, judge.loss)), ".", ms=3, color=colour,
                        label=f"{label} vs float64")
    middle.semilogy(steps, positive(per_step(ms.loss, pt.loss)), "x", ms=3, color="grey",
                    label="MindSpore vs PyTorch")
    middle.set(xlabel="step", ylabel="|total - reference| / |reference|", title="total loss: deviation per step")
    middle.legend(fontsize=8)
    right.set(xlabel="step", ylabel="|MS - PT| / |PT| (equal: not drawn)", title="each term: MindSpore vs PyTorch")
    right.legend(fontsize=7, ncol=2)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        return path
    finally:
        plt.close(fig)
