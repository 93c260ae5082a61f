"""Tolerance tables as data: cases/tolerances.toml.

One default limit per (dtype, quantity, metric), plus sparse overrides matched by
case-id glob (fnmatch); every override carries its measured `reason`. A value
passes when value <= limit. A metric with no limit is reported, not gated.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import math
from pathlib import Path

from harness.core.config import read_toml
from harness.core.errors import BadInput
from harness.core.paths import CASES_DIR
from harness.core.vocab import DTYPES

TOLERANCES_TOML = CASES_DIR / "tolerances.toml"
_OVERRIDE_KEYS = {"cases": str, "quantity": str, "metric": str, "limit": float, "reason": str, "dtype": str}
_OVERRIDE_REQUIRED = ("cases", "quantity", "metric", "limit", "reason")


@dataclasses.dataclass(frozen=True)
class Override:
    cases: str          # glob over case ids, e.g. "gpt2_large2xl_*"
    quantity: str
    metric: str
    limit: float
    reason: str
    dtype: str | None = None   # None: every dtype


@dataclasses.dataclass(frozen=True)
class Limit:
    value: float | None        # None: not gated
    reason: str = ""           # the override's reason, "" for a default


@dataclasses.dataclass(frozen=True)
class Tolerances:
    defaults: dict             # dtype -> quantity -> metric -> limit
    overrides: tuple[Override, ...] = ()
    source: str = "tolerances"

    def limit(self, case_id: str, quantity: str, metric: str, dtype: str = "fp32") -> Limit:
        """The limit of one metric for one case: the LAST matching override, else the default."""
        for o in reversed(self.overrides):
            if (o.quantity == quantity and o.metric == metric and (o.dtype in (None, dtype))
                    and fnmatch.fnmatchcase(case_id, o.cases)):
                return Limit(o.limit, f"override {o.cases!r}: {o.reason}")
        return Limit(self.defaults.get(dtype, {}).get(quantity, {}).get(metric))


def _number(value: object, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise BadInput(f"{where}: key {key!r} must be a non-negative number, got {value!r}",
                       "write a limit such as 1e-5 (0 for bit-identical)")
    return float(value)


def _check_metric(gated: dict, quantity: object, metric: object, where: str) -> None:
    if quantity not in gated:
        raise BadInput(f"{where}: unknown quantity {quantity!r}", f"limits exist for: {', '.join(gated)}")
    if metric not in gated[quantity]:
        raise BadInput(f"{where}: unknown {quantity} metric {metric!r}",
                       f"{quantity} metrics with limits: {', '.join(gated[quantity])}")


def parse(data: dict, source: str, gated: dict[str, tuple[str, ...]]) -> Tolerances:
    """gated: quantity -> the metrics a limit may be set for (every kind's; harness.kinds.registry)."""
    unknown = sorted(set(data) - {"default", "override"})
    if unknown:
        raise BadInput(f"{source}: unknown key {unknown[0]!r}", "the file holds [default.<dtype>] and [[override]]")
    defaults: dict = {}
    table = data.get("default", {})
    if not isinstance(table, dict):
        raise BadInput(f"{source}: key 'default' must be a table", "write [default.fp32] sections")
    for dtype, quantities in table.items():
        if dtype not in DTYPES:
            raise BadInput(f"{source}: key 'default.{dtype}': unknown dtype", f"use one of: {', '.join(DTYPES)}")
        if not isinstance(quantities, dict):
            raise BadInput(f"{source}: key 'default.{dtype}' must be a table", "write quantity = { metric = limit }")
        for quantity, metrics in quantities.items():
            where = f"{source}: key 'default.{dtype}.{quantity}'"
            if not isinstance(metrics, dict):
                raise BadInput(f"{where} must be a table", f"write {quantity} = {{ metric = limit }}")
            for metric, value in metrics.items():
                _check_metric(gated, quantity, metric, f"{source}: key 'default.{dtype}.{quantity}.{metric}'")
                limit = _number(value, f"{source}: default.{dtype}.{quantity}", metric)
                defaults.setdefault(dtype, {}).setdefault(quantity, {})[metric] = limit
    rows = data.get("override", [])
    if not isinstance(rows, list):
        raise BadInput(f"{source}: key 'override' must be an array of tables", "write each as [[override]]")
    overrides = []
    for i, row in enumerate(rows):
        where = f"{source}: override #{i + 1}"
        if not isinstance(row, dict):
            raise BadInput(f"{where} must be a table", "write it as [[override]]")
        bad = sorted(set(row) - set(_OVERRIDE_KEYS))
        if bad:
            raise BadInput(f"{where}: unknown key {bad[0]!r}", f"valid keys: {', '.join(_OVERRIDE_KEYS)}")
        for key in _OVERRIDE_REQUIRED:
            if key not in row:
                fix = ("say why the default does not hold, with the measured value" if key == "reason"
                       else f"add {key} = ...")
                raise BadInput(f"{where}: missing key {key!r}", fix)
        for key, kind in _OVERRIDE_KEYS.items():
            if key in row and kind is str and not isinstance(row[key], str):
                raise BadInput(f"{where}: key {key!r} must be a string, got {row[key]!r}", f"quote the {key}")
        if not row["reason"].strip():
            raise BadInput(f"{where}: key 'reason' is empty",
                           "say why the default does not hold, with the measured value")
        if "dtype" in row and row["dtype"] not in DTYPES:
            raise BadInput(f"{where}: key 'dtype': unknown dtype {row['dtype']!r}", f"use one of: {', '.join(DTYPES)}")
        _check_metric(gated, row["quantity"], row["metric"], f"{where}: key 'metric'")
        overrides.append(Override(cases=row["cases"], quantity=row["quantity"], metric=row["metric"],
                                  limit=_number(row["limit"], where, "limit"), reason=row["reason"].strip(),
                                  dtype=row.get("dtype")))
    return Tolerances(defaults, tuple(overrides), source)


def load_tolerances(path: Path, gated: dict[str, tuple[str, ...]]) -> Tolerances:
    path = Path(path)
    data = read_toml(path, "tolerances")
    return parse(data, str(path), gated)
