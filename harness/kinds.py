"""Kinds of parity case: growth (cases/cases.toml), TinyBERT distillation steps (cases/distill.toml),
and the families added beside them.

Every kind yields rows (harness.runner.Row) into the same tolerance tables and reports;
conftest.py parametrises each kind's test argument (`fixture`) with its cases and gates
the rows one test per quantity. A kind's cases need `.id` (unique over all kinds, pytest
-k selectable), `.marks` (row marks, "slow" for seed sizes) and `.all_marks`.

To add a kind: write its loader and runner, add a CaseKind to KINDS, and a tests/ file
whose tests take `fixture` and `parity` and call `parity.check(case, "<quantity>")`.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable


@dataclasses.dataclass(frozen=True)
class CaseKind:
    name: str                  # "growth"
    fixture: str               # the test argument its cases parametrise, e.g. "case"
    loader: str                # "module:function" -> list of cases (import deferred: conftest stays light)
    runner: str                # "module:function" (case, workdir, keep=...) -> rows; raises runner.CaseFailed
    quantities: tuple[str, ...]

    def load(self) -> list:
        return resolve(self.loader)()

    def run(self, case, workdir, keep: bool = False):
        return resolve(self.runner)(case, workdir, keep=keep)

    def run_isolated(self, case, workdir, keep: bool = False):
        """The runner in a child process (seed sizes): (rows, error or None)."""
        from harness.runner import run_isolated
        return run_isolated(self.runner, case, workdir, keep=keep)


def resolve(ref: str) -> Callable:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


GROWTH = CaseKind("growth", "case", "harness.cases:load_cases", "harness.runner:run_case",
                  ("param", "output", "layers", "preservation", "time", "size", "hash"))

DISTILL = CaseKind("distill", "distill_case", "harness.distill_cases:load_distill_cases",
                   "harness.distill_runner:run_distill_case",
                   ("loss", "grad", "update"))

# GPT-2 inference on PyTorch, MindSpore and ONNX Runtime (cases/inference.toml)
INFERENCE = CaseKind("inference", "infer_case", "harness.infer_cases:load_infer_cases",
                     "harness.infer_runner:run_infer_case",
                     ("logits", "greedy", "perplexity"))

KINDS: tuple[CaseKind, ...] = (GROWTH, DISTILL, INFERENCE)


def all_quantities() -> tuple[str, ...]:
    """Every quantity of every kind, in kind order, each once (report sections use this order)."""
    seen: dict[str, None] = {}
    for kind in KINDS:
        seen.update(dict.fromkeys(kind.quantities))
    return tuple(seen)
