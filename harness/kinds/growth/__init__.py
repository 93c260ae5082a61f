"""Growth parity (cases/cases.toml): grow with each framework, compare the grown models by name,
their outputs, their faithfulness to the source, their times, sizes and hashes."""
from __future__ import annotations

from harness.core.vocab import FRAMEWORKS
from harness.kinds.growth.cases import load_cases
from harness.kinds.growth.runner import TIMED_STAGES, run_case
from harness.suite.kind import CaseKind
from harness.suite.summary import Column, Summary, fmt, mb, worst


def _preservation(got, fw: str, precision: str = ""):
    """The worst preservation error of one framework: float32 ("") or float64 (function-preserving cases)."""
    prefix = f"{fw}.{precision}." if precision else f"{fw}."
    return worst(got.numbers("preservation", lambda m: m.startswith(prefix) and m.endswith(".relative")
                             and (bool(precision) or ".float64." not in m)))


def _vs_f64(got, fw: str):
    return worst(got.numbers("output", lambda m: m.endswith(f".{fw}_vs_f64")))


SUMMARY = Summary(
    columns=(
        Column("resource", lambda got: got.cell("time", "resource"), console=False),
        Column("param err (max ULP / max abs)",
               lambda got: f"{got.cell('param', 'max_ulp')} / {got.cell('param', 'max_abs')}", "param ULP/abs"),
        Column("output err (relative)",
               lambda got: fmt(worst(got.numbers("output", lambda m: m.endswith(".relative")))), "output rel"),
        Column("outputs vs float64, PT / MS (relative)",
               lambda got: f"{fmt(_vs_f64(got, 'pt'))} / {fmt(_vs_f64(got, 'ms'))}", console=False),
        Column("worst layer (relative)", lambda got: got.cell("layers", "worst.relative"), "layer rel"),
        Column("hidden (target)", lambda got: got.cell("size", "hidden"), "hidden"),
        Column("expand MS / PT (s)",
               lambda got: f"{got.cell('time', 'ms.expand_s', '.2f')} / {got.cell('time', 'pt.expand_s', '.2f')}",
               "expand MS/PT s"),
        Column("model MB (safetensors / ckpt)",
               lambda got: f"{mb(got.value('size', 'pt.bytes'))} / {mb(got.value('size', 'ms.bytes'))}", "MB st/ckpt"),
        Column("preservation PT / MS (relative)",
               lambda got: f"{fmt(_preservation(got, 'pt'))} / {fmt(_preservation(got, 'ms'))}", "preserve PT/MS"),
        Column("preservation in float64 PT / MS (relative)",
               lambda got: f"{fmt(_preservation(got, 'pt', 'float64'))} / {fmt(_preservation(got, 'ms', 'float64'))}",
               console=False),
    ),
    console_title="parity: MindSpore vs PyTorch", json_key="summary", footer="resource",
    blurb="Growth: relative error = max |MS - PT| / max |PT| over unpadded positions; preservation compares "
          "each framework's grown model with its source (gated for function-preserving cases: lossless, exact FPI).",
)

KIND = CaseKind(
    name="growth", fixture="case", load=load_cases, runner=run_case,
    quantities=("param", "output", "layers", "preservation", "time", "size", "hash"),
    gated={
        "param": ("max_ulp", "max_abs"),
        "output": ("relative", "max_abs"),
        "layers": ("relative",),
        "preservation": ("relative", "loss_relative", "float64_relative"),
        "size": tuple(f"{fw}.overhead" for fw in FRAMEWORKS),
        "time": ("plan_s", *(f"{fw}.{stage}_s" for fw in FRAMEWORKS for stage in TIMED_STAGES),
                 *(f"ms_over_pt.{stage}" for stage in TIMED_STAGES)),
    },
    summary=SUMMARY,
)
