"""A kind's summary table: one line per case, its cells read from that case's rows.

A kind declares its columns (title, how to read the cell, a short console title); the
report renders every kind's table the same way, markdown, json and console, and adds the
status column (pass, or FAIL with the failed quantities in the kind's order).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable


def fmt(value, spec: str = ".3g") -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return format(value, spec)


def mb(n) -> str:
    return f"{n / 1e6:,.1f}" if isinstance(n, (int, float)) else "-"


def worst(values: list[tuple[float, str]]):
    return max(v for v, _ in values) if values else None


class CaseRows:
    """One case's rows by (quantity, metric), for a summary table's cells."""

    def __init__(self, rows: list):
        self.rows = {(r.quantity, r.metric): r for r in rows}

    def value(self, quantity: str, metric: str):
        row = self.rows.get((quantity, metric))
        return None if row is None else row.value

    def cell(self, quantity: str, metric: str, spec: str = ".3g") -> str:
        return fmt(self.value(quantity, metric), spec)

    def numbers(self, quantity: str, keep: Callable[[str], bool]) -> list[tuple[float, str]]:
        """(value, metric) of the quantity's numeric rows whose metric passes keep(metric)."""
        return [(r.value, m) for (q, m), r in self.rows.items()
                if q == quantity and keep(m) and not isinstance(r.value, str)]

    def status(self, quantities: tuple[str, ...]) -> str:
        """"pass", or "FAIL (quantities)" in the kind's quantity order ("run": the case did not complete)."""
        order = (*quantities, "run")
        failed = sorted({q for (q, _), r in self.rows.items() if r.status == "fail"},
                        key=lambda q: (order.index(q) if q in order else len(order), q))
        return f"FAIL ({', '.join(failed)})" if failed else "pass"


@dataclasses.dataclass(frozen=True)
class Column:
    title: str                            # markdown and json
    cell: Callable[[CaseRows], str]
    short: str = ""                       # the console's title ("": the same)
    console: bool = True                  # False: markdown and json only


@dataclasses.dataclass(frozen=True)
class Summary:
    columns: tuple[Column, ...]
    console_title: str
    json_key: str                         # the table's key in parity.json
    heading: str = ""                     # markdown heading above the table ("": none)
    blurb: str = ""                       # markdown paragraph above the table
    footer: str = ""                      # a column printed once under the console table, from the first case

    def table(self, by_case: dict[str, CaseRows], quantities: tuple[str, ...]) -> list[dict[str, str]]:
        """One dict per case: case, every column, status."""
        return [{"case": case, **{c.title: c.cell(got) for c in self.columns}, "status": got.status(quantities)}
                for case, got in by_case.items()]
