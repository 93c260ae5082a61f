"""`python -m harness compare A B`: two checkpoints of one model, tensor by tensor.

A and B: any supported checkpoint (a Hugging Face folder, .safetensors, .ckpt, .bin), each in its
own naming scheme (detected, or --map-a / --map-b: hf, ms-cells, ms-zoo, or a map file). Prints one
line per tensor and what the maps did; writes the rows as reports (parity.csv, .json, .md) under
--reports. Exit 0 when every check passes, 1 when one fails (a tensor over its limit, names or
shapes that differ, a stored name no map accounts for, a tied copy that differs), 2 on bad input.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from harness.suite.checkpoints import KIND, REPORT_KIND, Comparison, compare_checkpoints
from harness.suite.summary import fmt
from harness.suite.tolerances import TOLERANCES_TOML

SUMMARY_METRICS = ("names", "shapes", "unmapped", "map_problems", "ties", "ignored", "table.A", "table.B")


def default_reports() -> Path:
    return Path(os.environ.get("PARITY_REPORTS", "reports")) / KIND


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two checkpoints of one model tensor by tensor (any format, "
                       "any naming scheme); exit 1 if a tensor is over its limit")
    p.add_argument("a", metavar="A", type=Path, help="checkpoint: model folder, .safetensors, .ckpt or .bin")
    p.add_argument("b", metavar="B", type=Path, help="the other checkpoint (B is the reference of `relative`)")
    p.add_argument("--map-a", help="A's naming scheme: hf | ms-cells | ms-zoo | a map file (.toml); "
                   "default: the built-in scheme that maps the most of its names")
    p.add_argument("--map-b", help="B's naming scheme (as --map-a)")
    p.add_argument("--case", default=KIND, help="case id of the rows: tolerance overrides match it (default compare)")
    p.add_argument("--tolerances", type=Path, default=TOLERANCES_TOML,
                   help="limits (default cases/tolerances.toml: param.max_ulp, 0 for weights)")
    p.add_argument("--reports", type=Path, help="report folder (default: reports/compare, or $PARITY_REPORTS/compare)")


def run(args) -> int:
    from harness.kinds.registry import load_tolerances
    from harness.suite.report import write_reports

    tol = load_tolerances(args.tolerances)
    result = compare_checkpoints(args.a, args.b, tol, args.map_a, args.map_b, args.case)
    print_console(result)
    out = args.reports or default_reports()
    paths = write_reports(result.rows, out, [REPORT_KIND])
    print(f"reports: {', '.join(str(p) for p in paths)}")
    return 1 if result.failed else 0


def print_console(result: Comparison) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    for side in (result.a, result.b):
        print(f"{side.label}: {side.weights}: {side.scheme_text}: {side.canonical.summary()}")
    rows = {r.metric: r for r in result.rows}
    print(f"{result.case}: A vs B, joined by canonical name")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("tensor", "shape", "max ULP", "max abs", "relative", "cosine", "sha256 A", "B", "status"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("max ULP", "max abs", "relative", "cosine")
                         else "left")
    for d in result.diff.tensors:
        status = "pass"
        if not d.same_shape:
            shape, status = f"{list(d.shape_got)} vs {list(d.shape_ref)}", "FAIL"
        else:
            shape = "x".join(map(str, d.shape_got)) or "scalar"
            status = "FAIL" if rows[f"{d.name}.max_ulp"].status == "fail" or \
                rows[f"{d.name}.max_abs"].status == "fail" else "pass"
        table.add_row(d.name, shape, fmt(d.max_ulp), fmt(d.max_abs), fmt(d.relative), fmt(d.cosine, ".10f"),
                      d.sha_got[:12], "=" if d.sha_got == d.sha_ref else d.sha_ref[:12], status)
    buffer = io.StringIO()   # the whole table, never cut to a terminal's width; no trailing blanks
    Console(file=buffer, width=Console(width=1 << 16).measure(table).maximum, force_terminal=False).print(table)
    print("\n".join(line.rstrip() for line in buffer.getvalue().splitlines()))
    for metric in ("max_ulp", "max_abs", *SUMMARY_METRICS):
        r = rows.get(metric)
        if r is not None:
            limit = f" (limit {fmt(r.limit, 'g')})" if r.limit is not None else ""
            print(f"{metric}: {fmt(r.value)}{limit} {r.status}: {r.detail}")
    failed = result.failed
    for r in failed:
        if "." in r.metric and r.metric.rsplit(".", 1)[0] in result.a.canonical.tensors:
            print(f"FAIL {r.metric} = {fmt(r.value)}: {r.detail}")
    verdict = (f"FAIL: {len(failed)} check(s) failed ({', '.join(r.metric for r in failed[:4])}"
               + (" ...)" if len(failed) > 4 else ")") if failed
               else f"pass: {len(result.diff.tensors)} tensors, max ULP {rows['max_ulp'].value}")
    print(f"compare: {verdict}")
