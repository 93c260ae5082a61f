"""TinyBERT distillation-step parity (cases/distill.toml): one step in each framework, compared by
name: loss terms, gradients, and parameters after the AdamWeightDecay step."""
from __future__ import annotations

from harness.kinds.distill.cases import load_distill_cases
from harness.kinds.distill.runner import run_distill_case
from harness.suite.kind import CaseKind
from harness.suite.summary import Column, Summary, fmt


def _worst_term(got) -> str:
    terms = got.numbers("loss", lambda m: m.endswith(".relative"))
    value, metric = max(terms) if terms else (None, "-")
    return f"{fmt(value)} ({metric.removesuffix('.relative')})"


SUMMARY = Summary(
    columns=(
        Column("stage", lambda got: got.cell("loss", "setup")),
        Column("loss err (worst term, relative)", _worst_term, "loss rel (term)"),
        Column("grad err (worst, relative)", lambda got: got.cell("grad", "worst.relative"), "grad rel"),
        Column("update err (params / from zero)",
               lambda got: f"{got.cell('update', 'params.relative')} / {got.cell('update', 'from_zero.relative')}",
               "update rel (params/zero)"),
        Column("rule err PT / MS",
               lambda got: f"{got.cell('update', 'pt.rule.relative')} / {got.cell('update', 'ms.rule.relative')}",
               "rule PT/MS"),
        Column("step MS / PT (s)",
               lambda got: f"{got.cell('update', 'ms.step_s', '.2f')} / {got.cell('update', 'pt.step_s', '.2f')}",
               "step MS/PT s"),
    ),
    console_title="TinyBERT distillation step: MindSpore vs PyTorch", json_key="distill_summary",
    heading="TinyBERT distillation steps",
    blurb="Loss terms |MS - PT| / |PT|; gradients and parameters after one AdamWeightDecay step "
          "max |MS - PT| / max |PT| per tensor; rule: each side against the rule in numpy on its own gradients.",
)

KIND = CaseKind(
    name="distill", fixture="distill_case", load=load_distill_cases, runner=run_distill_case,
    quantities=("loss", "grad", "update"),
    gated={"loss": ("relative",), "grad": ("relative",), "update": ("relative", "from_zero.relative")},
    summary=SUMMARY,
)
