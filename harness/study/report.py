"""reports/study/: the curves csv (every run, every evaluation) and summary.md (the papers' table beside
their anchors, the sweep, the sources' cost, MindSpore's parity rows, the FLOPs estimate stated)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from harness.core.formats.checkpoint import atomic_path
from harness.study.analysis import ARM_TITLES, FamilySummary
from harness.study.flops import flops_params, flops_per_step
from harness.study.savings import mean_spread
from harness.study.study import FamilyResult

CSV_COLUMNS = ("family", "arm", "seed", "framework", "lr", "step", "tokens", "flops", "train_loss", "val_loss")

ANCHORS = """Published anchors (BERT-base / GPT-base scale, hundreds of thousands of steps):

| source | growth | saved |
|---|---|---|
| bert2BERT (Chen et al., ACL 2022) | BERT-small -> BERT-base, AKI | ~45% of pre-training FLOPs |
| bert2BERT | GPT small -> GPT-base | ~47% |
| LiGO (Wang et al., ICLR 2023) re-running bert2BERT | BERT-Small (6L, 512) -> Base | 29.0% FLOPs, 25.1% wall time |
| LiGO | BERT-Small -> Base | 44.7% of FLOPs |
| LEMON (Wang et al., ICLR 2024) | BERT | 33.2% |

The anchors do not count the source's own pre-training (the source is taken as given), as the
column "saved (no source cost)" above; "saved (with source cost)" adds it."""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_curves(results: dict[str, FamilyResult], path: Path, batch: int, length: int) -> Path:
    """One row per run and step: the training loss at every step, the validation loss where measured."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    for fam in results.values():
        for r in fam.runs:
            cfg = fam.run_configs.get(r.key)
            per_step = flops_per_step(cfg, batch, length) if cfg is not None else float("nan")
            vals = dict(zip(r.eval_steps.tolist(), r.val_loss.tolist(), strict=True))
            for step in range(0, r.steps + 1):
                train = repr(float(r.train_loss[step - 1])) if step else ""
                val = repr(vals[step]) if step in vals else ""
                out.writerow([fam.family, r.arm, r.seed, r.framework, repr(r.lr), step, step * batch * length,
                              repr(float(step * per_step)), train, val])
    _write(path, buf.getvalue())
    return path


def _pm(mean: float, spread: float, fmt: str = ".3f") -> str:
    return "-" if math.isnan(mean) else f"{mean:{fmt}} ± {spread:{fmt}}"


def _flops(x: float | None) -> str:
    """FLOPs in PF, TF or GF, three significant digits."""
    if x is None or math.isnan(x):
        return "-"
    if x == 0:
        return "0"
    for scale, unit in ((1e15, "PF"), (1e12, "TF"), (1e9, "GF")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} F"


def _arm_cells(row, baseline, n_seeds: int) -> list[str]:
    s = row.saving
    if s is None:
        return [f"{baseline.steps:.0f} (its final loss)", _flops(baseline.steps * baseline.flops_per_step), "-", "-"]
    if s.reached == 0:
        return ["not reached", "not reached", "-", "-"]
    steps = mean_spread(s.steps)
    flops = mean_spread(s.flops)
    tag = "" if s.reached == row.seeds else f" ({s.reached} of {row.seeds} seeds reached it)"
    saved = _pm(*mean_spread(s.saved), ".1f") + " %" + tag
    with_src = (_pm(*mean_spread(s.saved_with_source), ".1f") + " %") if row.source_flops is not None \
        else "n/a (trained elsewhere)"
    return [_pm(*steps, ".0f") + tag, f"{_flops(flops[0])} ± {_flops(flops[1])}", saved, with_src]


def family_section(fam: FamilyResult, summary: FamilySummary | None, batch: int, length: int) -> str:
    lines = [f"## {fam.family.upper()} ({'masked LM' if fam.family == 'bert' else 'causal LM'})", ""]
    if summary is None or "target" not in fam.configs or fam.tuned_lr is None:
        return "\n".join(lines + ["**Not run**: " + ("; ".join(fam.missing) or "no run finished"), ""])
    t = fam.configs["target"]
    lines.append(f"Target: {t.layers} layers x {t.hidden} (heads {t.heads}, FFN {t.ffn}, vocabulary {t.vocab}); "
                 f"{flops_params(t):,} parameters multiplied per token, {flops_per_step(t, batch, length) / 1e9:.2f} "
                 f"GFLOPs per step of {batch} x {length} tokens.")
    for role, (steps, flops, final) in summary.sources.items():
        c = fam.configs[role]
        what = "FPI / AKI / lossless arms" if role == "source" else "depth-only arm"
        lines.append(f"Source of the {what}: {c.layers} x {c.hidden}, pre-trained here for {steps} steps "
                     f"({_flops(flops)}LOPs), final validation loss {final:.3f}.")
    lines.append("")
    lines.append("Scratch learning-rate sweep (first seed; the tuned lr has the lowest final validation loss):")
    lines.append("")
    lines.append("| peak lr | final validation loss |")
    lines.append("|---|---|")
    for lr, final in summary.sweep:
        mark = " **(tuned)**" if lr == fam.tuned_lr else ""
        lines.append(f"| {lr:g}{mark} | {final:.4f} |")
    if fam.tuned_lr is not None and summary.sweep and fam.tuned_lr in (summary.sweep[0][0], summary.sweep[-1][0]):
        lines.append("")
        lines.append(f"The tuned lr {fam.tuned_lr:g} is at the edge of the sweep: a wider sweep might tune scratch "
                     "further.")
    lines.append("")
    for name, b in summary.baselines.items():
        lines.append(f"Target loss ({ARM_TITLES[name]}): {b.target:.4f} ± {b.target_spread:.4f} (mean ± sample std of "
                     f"the final validation loss over seeds), reached by its mean curve at step {b.steps:.0f}.")
    lines += ["", "| arm | seeds | final validation loss | steps to scratch's final loss | FLOPs to it | "
                  "saved (no source cost) | saved (with source cost) |", "|---|---|---|---|---|---|---|"]
    for row in summary.rows:
        b = summary.baselines.get(row.baseline)
        if b is None:
            continue
        cells = _arm_cells(row, b, row.seeds)
        lines.append(f"| {ARM_TITLES.get(row.arm, row.arm)} | {row.seeds} | {_pm(*row.final, '.4f')} | "
                     + " | ".join(cells) + " |")
    lines += [f"- {n}" for n in fam.notes]
    if fam.missing:
        lines += ["", f"**Not run** ({len(fam.missing)} runs of the profile; the reports were assembled with "
                      "--cached-only from the finished runs): " + "; ".join(fam.missing) + "."]
    lines.append("")
    return "\n".join(lines)


def parity_section(rows) -> str:
    if not rows:
        return "## MindSpore vs PyTorch\n\nNo MindSpore run in this profile.\n"
    lines = ["## MindSpore vs PyTorch (ms.jit), the same steps, each judged against PyTorch float64", "",
             "| case | metric | value | limit | status | detail |", "|---|---|---|---|---|---|"]
    for r in rows:
        limit = "-" if r.limit is None else f"{r.limit:g}"
        lines.append(f"| {r.case} | {r.metric} | {r.value:.3g} | {limit} | {r.status} | {r.detail} |")
    return "\n".join(lines) + "\n"


def write_summary(path: Path, head: str, sections: list[str], parity: str) -> Path:
    _write(path, "\n".join([head, *sections, parity, ANCHORS, ""]))
    return path
