"""The study's two PNGs (matplotlib, Agg): validation loss against optimizer steps, and against training
FLOPs (harness.study.flops) with each grown arm's curve starting at its source's pre-training FLOPs and
the source's own curve drawn up to there. One panel per family (BERT's MiniLM arms on a panel of their
own: another vocabulary, so another loss scale). Mean over seeds, the band from the lowest to the
highest seed; the tuned scratch's final loss as a dotted line; MindSpore's runs as crosses."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.core.formats.checkpoint import atomic_path
from harness.study.analysis import ARM_TITLES, FamilySummary
from harness.study.arms import GROWTH
from harness.study.flops import flops_per_step
from harness.study.study import FamilyResult

COLOURS = {"scratch": "black", "fpi_paper": "tab:blue", "fpi_balanced": "tab:cyan", "aki": "tab:green",
           "depth": "tab:orange", "lossless": "tab:purple", "minilm": "tab:red", "minilm_scratch": "black",
           "source": "tab:grey", "source_deep": "tab:brown"}
PANELS = (("gpt2", ("scratch", "fpi_paper", "fpi_balanced", "aki", "depth", "lossless")),
          ("bert", ("scratch", "fpi_paper", "fpi_balanced", "aki", "depth", "lossless")),
          ("bert", ("minilm_scratch", "minilm")))


def _panels(results: dict[str, FamilyResult]):
    out = []
    for family, arms in PANELS:
        fam = results.get(family)
        if fam is None or not any(fam.select(a, lr=fam.tuned_lr) for a in arms):
            continue
        out.append((fam, arms))
    return out


def _band(ax, x, runs, colour, label, ls="-"):
    vals = np.asarray([r.val_loss for r in runs])
    seeds = f"{len(runs)} seed" + ("" if len(runs) == 1 else "s")
    ax.plot(x, vals.mean(axis=0), color=colour, ls=ls, lw=1.6, label=f"{label} ({seeds})")
    if len(runs) > 1:
        ax.fill_between(x, vals.min(axis=0), vals.max(axis=0), color=colour, alpha=0.15, lw=0)


def plot(results: dict[str, FamilyResult], summaries: dict[str, FamilySummary], out: Path, batch: int,
         length: int) -> tuple[Path, Path]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = _panels(results)
    paths = out / "loss_vs_steps.png", out / "loss_vs_flops.png"
    for path, by_flops in zip(paths, (False, True), strict=True):
        n = max(1, len(panels))
        fig, axes = plt.subplots(1, n, figsize=(7.5 * n, 5.2), constrained_layout=True, squeeze=False)
        if not panels:
            axes[0][0].text(0.5, 0.5, "no family ran", ha="center", va="center")
        for ax, (fam, arms) in zip(axes[0], panels, strict=False):
            summary = summaries[fam.family]
            lowest = []
            for arm in arms:
                runs = fam.select(arm, lr=fam.tuned_lr)
                if not runs:
                    continue
                cfg = fam.run_configs[runs[0].key]
                per_step = flops_per_step(cfg, batch, length)
                offset = 0.0
                if by_flops and arm in GROWTH and GROWTH[arm][0] in summary.sources:
                    role = GROWTH[arm][0]
                    offset = summary.sources[role][1]
                x = runs[0].eval_steps * (per_step if by_flops else 1) + offset
                title = ARM_TITLES.get(arm, arm)
                _band(ax, x / (1e12 if by_flops else 1), runs, COLOURS[arm], title,
                      ls="-" if arm in ("scratch", "minilm_scratch") or arm == "minilm" else "-")
                lowest.append(np.min([r.val_loss for r in runs]))
                ms = [r for r in fam.select(arm, framework="ms", lr=fam.tuned_lr)]
                for r in ms:
                    xm = r.eval_steps * (per_step if by_flops else 1) + offset
                    ax.plot(xm / (1e12 if by_flops else 1), r.val_loss, "x", color=COLOURS[arm], ms=7, mew=1.5,
                            label=f"{title}: MindSpore, seed {r.seed}")
            if by_flops and arms[0] == "scratch":
                for role, colour in (("source", "tab:grey"), ("source_deep", "tab:brown")):
                    got = fam.select(role)
                    if got and role in fam.configs:
                        r = got[0]
                        x = r.eval_steps * flops_per_step(fam.configs[role], batch, length) / 1e12
                        c = fam.configs[role]
                        ax.plot(x, r.val_loss, color=colour, lw=1.0, ls="--",
                                label=f"source pre-training ({c.layers} x {c.hidden})")
            if arms[0] == "scratch" and not by_flops:
                first = min(r.seed for r in fam.select("scratch"))
                for r in fam.select("scratch"):
                    if r.lr != fam.tuned_lr and r.seed == first:
                        ax.plot(r.eval_steps, r.val_loss, color="grey", lw=0.8, ls=":",
                                label=f"scratch lr {r.lr:g} (sweep)")
            base = summary.baselines.get(arms[0])
            if base is not None:
                ax.axhline(base.target, color="black", lw=0.8, ls=":")
                ax.annotate(f"tuned scratch's final loss {base.target:.3f}", (0.99, base.target),
                            xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8)
                top = float(np.max([r.val_loss[min(1, r.val_loss.size - 1)] for r in fam.select(arms[0])]))
                ax.set_ylim(min(lowest) - 0.15 if lowest else None, max(top, base.target + 0.5))
            t = fam.run_configs[fam.select(arms[0], lr=fam.tuned_lr)[0].key]
            what = "masked LM" if fam.family == "bert" else "causal LM"
            vocab = "MiniLM's vocabulary" if arms[0] == "minilm_scratch" else "study BPE"
            ax.set_title(f"{fam.family.upper()} {what}: target {t.layers} x {t.hidden} ({vocab})", fontsize=10)
            ax.set_xlabel("training FLOPs (TFLOPs, 6 N D + attention; grown arms include the source's)"
                          if by_flops else "optimizer step (batch x length tokens each)")
            ax.set_ylabel("validation loss (held-out novel)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
    return paths
