"""What a case kind declares: its cases, its runner, its quantities and gated metrics, its summary.

A kind is one folder, harness/kinds/<kind>/, whose __init__.py builds one CaseKind, plus one
line in harness/kinds/registry.py. Everything else (pytest wiring in conftest.py, the
tolerance tables, the reports) is generic and reads only what the kind declares here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from harness.suite.isolation import run_isolated
from harness.suite.rows import Row
from harness.suite.summary import Summary
from harness.suite.tolerances import Tolerances


class Case(Protocol):
    """What the generic wiring needs of a kind's case: a unique id (pytest -k selectable), the
    marks of its row ("slow" for seed sizes) and every mark of its test (family, method, ...)."""
    id: str
    marks: tuple[str, ...]

    @property
    def all_marks(self) -> tuple[str, ...]: ...


class Runner(Protocol):
    def __call__(self, case, workdir: Path, *, keep: bool = False, tolerances: Tolerances) -> list[Row]: ...


@dataclasses.dataclass(frozen=True)
class CaseKind:
    name: str                           # "growth"; stamped on every row the kind measures
    fixture: str                        # the test argument its cases parametrise, e.g. "case"
    load: Callable[[], list]            # its cases file -> cases (BadInput names the file and key)
    runner: Runner                      # case -> rows; raises harness.suite.rows.CaseFailed
    quantities: tuple[str, ...]         # one test each, in this order
    gated: Mapping[str, tuple[str, ...]]   # quantity -> the metrics cases/tolerances.toml may limit
    summary: Summary                    # its table in the reports and on the console

    def run(self, case, workdir: Path, keep: bool = False, *, tolerances: Tolerances) -> list[Row]:
        return self.runner(case, workdir, keep=keep, tolerances=tolerances)

    def run_isolated(self, case, workdir: Path, keep: bool = False, *,
                     tolerances: Tolerances) -> tuple[list[Row], str | None]:
        """The runner in a child process (seed sizes): (rows, error or None)."""
        return run_isolated(self.runner, case, workdir, keep=keep, tolerances=tolerances)
