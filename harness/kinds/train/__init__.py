"""Training parity (cases/train.toml): N optimizer steps of pre-training in each framework, and in
PyTorch float64 as the judge of which side drifted; per-step curves and a plot per case in reports/train/."""
from __future__ import annotations

from harness.kinds.train.cases import load_train_cases
from harness.kinds.train.runner import run_train_case
from harness.suite.kind import CaseKind
from harness.suite.summary import Column, Summary


def _plot(got) -> str:
    path = got.value("train_loss", "plot")
    return f"[png]({path}) [csv]({str(path).removesuffix('.png')}.csv)" if path else "-"


def _step_times(got) -> str:
    return f"{got.cell('train_loss', 'ms.step_s', '.3f')} / {got.cell('train_loss', 'pt.step_s', '.3f')}"


SUMMARY = Summary(
    columns=(
        Column("steps", lambda got: got.cell("train_loss", "steps")),
        Column("first-step loss (relative)", lambda got: got.cell("train_loss", "first.relative"), "loss1 rel"),
        Column("worst loss (relative)", lambda got: got.cell("train_loss", "worst.relative"), "loss rel"),
        Column("mean loss (relative)", lambda got: got.cell("train_loss", "mean.relative"), "mean rel",
               console=False),
        Column("params, last step (relative)", lambda got: got.cell("train_params", "last.relative"), "params rel"),
        Column("float64 deviation MS / PT (loss)", lambda got: got.cell("drift", "loss.ratio"), "drift MS/PT"),
        Column("first step over a limit", lambda got: got.cell("train_loss", "first_step_over"), "first over"),
        Column("step MS / PT (s)", _step_times, "step MS/PT s"),
        Column("curves", _plot, console=False),
    ),
    console_title="training: MindSpore vs PyTorch (and float64)", json_key="train_summary",
    heading="Training parity",
    blurb="N steps of pre-training from the same weights on the same numpy-drawn batches (and MLM masks): loss "
          "|MS - PT| / |PT| per step; parameters max |MS - PT| / max |PT| per tensor at checkpoints; drift: each "
          "side's deviation from a PyTorch float64 run of the same steps, MindSpore's over PyTorch's.",
)

KIND = CaseKind(
    name="train", fixture="train_case", load=load_train_cases, runner=run_train_case,
    quantities=("train_loss", "grad_norm", "lr", "train_params", "drift"),
    gated={"train_loss": ("first.relative", "step.relative", "worst.relative", "mean.relative"),
           "grad_norm": ("worst.relative",),
           "lr": ("worst.relative",),
           "train_params": ("first.relative", "step.relative", "last.relative"),
           "drift": ("loss.k", "loss.floor", "params.k", "params.floor")},
    summary=SUMMARY,
)
