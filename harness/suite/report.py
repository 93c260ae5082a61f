"""Reports rendered from one list of rows: parity.csv (the source of truth), then
parity.json and parity.md rendered from the CSV as read back, and a console table.

xdist workers each send their rows to the controller as a shard (a JSON text in xdist's
workeroutput, which reaches the controller over the worker's channel, also from another host);
the controller merges the shards before rendering. (write_shard / merge_shards: the same shards as
files in one folder.)
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from harness.core.formats.checkpoint import atomic_path
from harness.suite.rows import Row
from harness.suite.summary import CaseRows, fmt

FIELDS = tuple(f.name for f in dataclasses.fields(Row))
SHARDS = ".shards"


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)   # atomic_path gives it the mode any new file gets (umask)


# -- the CSV, and values read back from it ---------------------------------------------
def _parse_value(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def write_csv(rows: list[Row], path: Path) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for r in rows:
        writer.writerow([r.case, r.quantity, r.metric, repr(r.value) if isinstance(r.value, float) else r.value,
                         "" if r.limit is None else repr(float(r.limit)), r.status, r.detail, r.kind])
    _write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[Row]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [Row(d["case"], d["quantity"], d["metric"], _parse_value(d["value"]),
                    None if d["limit"] == "" else float(d["limit"]), d["status"], d["detail"], d["kind"])
                for d in reader]


# -- shards (pytest-xdist) ------------------------------------------------------------
def shard_text(rows: list[Row]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in rows])


def write_shard(rows: list[Row], path: Path) -> None:
    _write_text(path, shard_text(rows))


def merge_shard_texts(texts: list[str]) -> dict[str, list[Row]]:
    """case id -> rows, from shards in order; a case found in two shards (its checks were split
    over workers, so it was computed twice) keeps the first shard's rows."""
    merged: dict[str, list[Row]] = {}
    for text in texts:
        mine: dict[str, list[Row]] = {}
        for d in json.loads(text):
            mine.setdefault(d["case"], []).append(Row(**d))
        for case, rows in mine.items():
            merged.setdefault(case, rows)
    return merged


def merge_shards(folder: Path) -> dict[str, list[Row]]:
    """merge_shard_texts of every shard file of the folder, by file name."""
    return merge_shard_texts([path.read_text() for path in sorted(Path(folder).glob("*.json"))])


# -- every kind's summary table ---------------------------------------------------------
def _by_case(rows: list[Row], kind) -> dict[str, CaseRows]:
    """kind's cases in the order they first appear, each with its rows (its "run" error row included)."""
    grouped: dict[str, list[Row]] = {}
    for r in rows:
        if r.kind == kind.name:
            grouped.setdefault(r.case, []).append(r)
    return {case: CaseRows(case_rows) for case, case_rows in grouped.items()}


def summaries(rows: list[Row], kinds) -> dict[str, list[dict[str, str]]]:
    """json key -> the kind's summary table (one dict per case), for every kind, in kind order."""
    return {k.summary.json_key: k.summary.table(_by_case(rows, k), k.quantities) for k in kinds}


def _md_table(header: list[str], body: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _quantities(kinds) -> tuple[str, ...]:
    """Every quantity of every kind, in kind order, each once (the detail sections use this order)."""
    return tuple(dict.fromkeys(q for k in kinds for q in k.quantities))


def render_markdown(rows: list[Row], kinds) -> str:
    parts = ["# Parity report: MindSpore vs PyTorch", "",
             "Rendered from parity.csv (the source of truth): one table per kind of case, then every row "
             "by quantity.", ""]
    for kind in kinds:
        table = kind.summary.table(_by_case(rows, kind), kind.quantities)
        if not table:
            continue
        if kind.summary.heading:
            parts += [f"## {kind.summary.heading}", ""]
        if kind.summary.blurb:
            parts += [kind.summary.blurb, ""]
        parts += [_md_table(list(table[0]), [list(d.values()) for d in table]), ""]
    for quantity in _quantities(kinds) + ("run",):
        chosen = [r for r in rows if r.quantity == quantity]
        if not chosen:
            continue
        parts += [f"## {quantity}", "", _md_table(
            ["case", "metric", "value", "limit", "status", "detail"],
            [[r.case, r.metric, fmt(r.value, ".4g"), fmt(r.limit, "g"), r.status, r.detail] for r in chosen]), ""]
    return "\n".join(parts)


def render_console(rows: list[Row], kinds, width: int = 160) -> str:
    """Each kind's summary as a console table; failed cases named under it."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False)
    for kind in kinds:
        summary = kind.summary
        data = summary.table(_by_case(rows, kind), kind.quantities)
        if not data:
            continue
        shown = [c for c in summary.columns if c.console]
        table = Table(title=summary.console_title, box=box.SIMPLE_HEAD)
        for title in ("case", *(c.short or c.title for c in shown), "status"):
            table.add_column(title, no_wrap=True)
        for d in data:
            table.add_row(d["case"], *(d[c.title] for c in shown), d["status"].split(" ")[0],
                          style="red" if d["status"].startswith("FAIL") else None)
        console.print(table)
        for d in data:
            if d["status"].startswith("FAIL"):
                console.print(f"{d['case']}: {d['status']}")
        if summary.footer:
            console.print(f"{summary.footer}: {data[0][summary.footer]}")
    return buffer.getvalue()


def write_reports(rows: list[Row], out_dir: Path, kinds) -> list[Path]:
    """parity.csv from the rows; parity.json and parity.md from the CSV as read back."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "parity.csv"
    write_csv(rows, csv_path)
    rows = read_csv(csv_path)
    json_path, md_path = out_dir / "parity.json", out_dir / "parity.md"
    _write_text(json_path, json.dumps({**summaries(rows, kinds), "rows": [dataclasses.asdict(r) for r in rows]},
                                      indent=1) + "\n")
    _write_text(md_path, render_markdown(rows, kinds) + "\n")
    return [csv_path, json_path, md_path]
