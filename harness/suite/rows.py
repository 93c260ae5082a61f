"""Rows: what every case kind measures, one row per metric, and how a row is gated.

A row is (case, quantity, metric, value, limit, status, detail, kind); the report, the
tolerance tables and the pytest wiring read rows only, whatever kind made them.
"""
from __future__ import annotations

import dataclasses
import gc
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.suite.tolerances import Tolerances


@dataclasses.dataclass
class Row:
    case: str
    quantity: str
    metric: str
    value: float | str
    limit: float | None
    status: str            # "pass" | "fail" | "info"
    detail: str = ""
    kind: str = ""         # the case kind that measured it (harness.kinds), stamped by `guarded`


class CaseFailed(Exception):
    """A case stopped early; `rows` holds what was measured before, plus an error row."""

    def __init__(self, case_id: str, rows: list[Row], cause: BaseException):
        self.rows = rows
        super().__init__(f"{case_id}: {type(cause).__name__}: {cause}")


def gate(value: float, limit: float | None) -> str:
    if limit is None:
        return "info"
    return "pass" if value <= limit else "fail"   # NaN fails


def row(case_id, quantity, metric, value, limit=None, detail="", status=None) -> Row:
    """A row gated against `limit` (None: info) unless `status` is given."""
    return Row(case_id, quantity, metric, value, limit, status or gate(value, limit), detail)


def limited(tol: Tolerances, case_id: str, quantity: str, key: str,
            dtype: str = "fp32") -> tuple[float | None, str]:
    """(limit, " [limit: reason]" for an override, else "") of one metric of one case."""
    limit = tol.limit(case_id, quantity, key, dtype)
    return limit.value, (f" [limit: {limit.reason}]" if limit.reason else "")


def failure_message(case_id: str, quantity: str, rows: list[Row]) -> str | None:
    """None if every `quantity` row of the case passes (or is info); else one line per failed row,
    naming the case, quantity, metric, value, limit and detail (worst tensor, first layer, ...)."""
    chosen = [r for r in rows if r.case == case_id and r.quantity == quantity]
    if not chosen:
        return f"{case_id}: {quantity}: no rows were measured"
    failed = [r for r in chosen if r.status == "fail"]
    if not failed:
        return None
    lines = [f"{r.case} {r.quantity} {r.metric} = {r.value!r}"
             + (f" exceeds limit {r.limit!r}" if r.limit is not None else "") + f": {r.detail}" for r in failed]
    return f"{len(failed)} {quantity} check(s) failed:\n" + "\n".join(lines)


def first_and_worst(errors: dict[str, float], limit: float | None) -> tuple[str, str, int]:
    """Over errors (name -> value, in a meaningful order): the worst name (NaN counts as worst),
    the first name over the limit as "name (value > limit)" or "none", and how many are over."""
    over = [(n, e) for n, e in errors.items() if gate(e, limit) == "fail"]
    worst = max(errors, key=lambda n: (bool(np.isnan(errors[n])), errors[n]))
    first = f"{over[0][0]} ({over[0][1]:.3g} > {limit:g})" if over else "none"
    return worst, first, len(over)


def names_rows(case_id: str, quantity: str, got, ref, got_name: str = "MindSpore",
               ref_name: str = "PyTorch") -> list[Row]:
    """[a `names` row] when the tensor names of `got` and `ref` differ (each side's missing ones), else []."""
    missing_got, missing_ref = sorted(set(ref) - set(got)), sorted(set(got) - set(ref))
    if not (missing_got or missing_ref):
        return []
    detail = (f"{got_name} lacks {missing_got[:5] or 'none'}{' ...' if len(missing_got) > 5 else ''}; "
              f"{ref_name} lacks {missing_ref[:5] or 'none'}{' ...' if len(missing_ref) > 5 else ''}")
    return [row(case_id, quantity, "names", len(missing_got) + len(missing_ref), 0, detail)]


def guarded(kind: str, case_id: str, measure: Callable[[list], None], scratch: Path | None = None) -> list[Row]:
    """measure(rows) appends a case's rows, each then stamped with `kind`; on an error, an error row
    is added and CaseFailed (carrying the rows so far) raised. `scratch` (a folder) is removed either way."""
    rows: list[Row] = []
    try:
        measure(rows)
    except Exception as e:
        rows.append(Row(case_id, "run", "error", type(e).__name__, None, "fail", str(e).splitlines()[0][:300]))
        raise CaseFailed(case_id, _stamped(rows, kind), e) from e
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        gc.collect()
    return _stamped(rows, kind)


def _stamped(rows: list[Row], kind: str) -> list[Row]:
    for r in rows:
        r.kind = kind
    return rows
