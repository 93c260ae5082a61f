"""TinyBERT distillation over N steps (the rows of cases/distill.toml that give `steps`): the one-step
case looped with the train kind's schedule, clipping and AdamWeightDecay, in each framework and in
PyTorch float64 as the judge; every loss term's curve compared per step, parameters at checkpoints;
curves and a plot per case in reports/distill/."""
from __future__ import annotations

from harness.kinds.distill.cases import load_distill_train_cases
from harness.kinds.distill_train.runner import run_distill_train_case
from harness.suite.kind import CaseKind
from harness.suite.summary import Column, Summary, fmt


def _worst_term(metric: str):
    def cell(got) -> str:
        terms = got.numbers("distill_loss", lambda m: m.endswith(f".{metric}.relative"))
        value, name = max(terms) if terms else (None, "-")
        return f"{fmt(value)} ({name.removesuffix(f'.{metric}.relative')})"
    return cell


def _plot(got) -> str:
    path = got.value("distill_loss", "plot")
    return f"[png]({path}) [csv]({str(path).removesuffix('.png')}.csv)" if path else "-"


SUMMARY = Summary(
    columns=(
        Column("steps", lambda got: got.cell("distill_loss", "steps")),
        Column("first-step loss (worst term, relative)", _worst_term("first"), "loss1 rel (term)"),
        Column("worst step (worst term, relative)", _worst_term("worst"), "loss rel (term)"),
        Column("params, last step (relative)", lambda got: got.cell("distill_params", "last.relative"), "params rel"),
        Column("float64 deviation MS / PT (total loss)", lambda got: got.cell("distill_drift", "loss.ratio"),
               "drift MS/PT"),
        Column("first step over a limit", lambda got: got.cell("distill_loss", "first_step_over"), "first over"),
        Column("step MS / PT (s)", lambda got: f"{got.cell('distill_loss', 'ms.step_s', '.3f')} / "
                                               f"{got.cell('distill_loss', 'pt.step_s', '.3f')}", "step MS/PT s"),
        Column("curves", _plot, console=False),
    ),
    console_title="TinyBERT distillation over N steps: MindSpore vs PyTorch (and float64)",
    json_key="distill_train_summary", heading="TinyBERT distillation over N steps",
    blurb="The same teacher and student weights and numpy-drawn batches in each framework, N steps of warm-up / "
          "decay AdamWeightDecay with global-norm clipping: every loss term |MS - PT| / |PT| per step (first step, "
          "worst step, mean); parameters max |MS - PT| / max |PT| per tensor at checkpoints; drift: each side's "
          "deviation from a PyTorch float64 run of the same steps, MindSpore's over PyTorch's.",
)

KIND = CaseKind(
    name="distill_train", fixture="distill_train_case", load=load_distill_train_cases,
    runner=run_distill_train_case,
    quantities=("distill_loss", "distill_norm", "distill_lr", "distill_params", "distill_drift"),
    gated={"distill_loss": ("first.relative", "step.relative", "worst.relative", "mean.relative"),
           "distill_norm": ("worst.relative",),
           "distill_lr": ("worst.relative",),
           "distill_params": ("step.relative", "last.relative"),
           "distill_drift": ("loss.k", "loss.floor", "params.k", "params.floor")},
    summary=SUMMARY,
)
