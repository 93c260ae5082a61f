"""Every case kind, one line each: the pytest wiring, the tolerance tables and the reports read
this tuple and nothing else of a kind (a new kind: its folder under harness/kinds/, and a line here)."""
from __future__ import annotations

from pathlib import Path

from harness.kinds.distill import KIND as DISTILL
from harness.kinds.growth import KIND as GROWTH
from harness.kinds.inference import KIND as INFERENCE
from harness.kinds.train import KIND as TRAIN
from harness.suite import tolerances
from harness.suite.kind import CaseKind

KINDS: tuple[CaseKind, ...] = (
    GROWTH,
    DISTILL,
    INFERENCE,
    TRAIN,
)


def gated() -> dict[str, tuple[str, ...]]:
    """quantity -> the metrics cases/tolerances.toml may set a limit for, over every kind."""
    out: dict[str, tuple[str, ...]] = {}
    for kind in KINDS:
        for quantity, metrics in kind.gated.items():
            if quantity in out:
                raise AssertionError(f"quantity {quantity!r} is declared by two kinds; name it apart")
            out[quantity] = metrics
    return out


def load_tolerances(path: Path = tolerances.TOLERANCES_TOML) -> tolerances.Tolerances:
    """cases/tolerances.toml, checked against every kind's gated metrics."""
    return tolerances.load_tolerances(path, gated())
