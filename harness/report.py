"""Reports rendered from one list of rows: parity.csv (the source of truth), then
parity.json and parity.md rendered from the CSV as read back, and a console table.

xdist workers each write their rows to a shard (reports/.shards/<worker>.json);
the controller merges the shards before rendering.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

from harness.checkpoint import atomic_path
from harness.kinds import DISTILL, GROWTH, INFERENCE, KINDS, all_quantities
from harness.runner import Row

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
                         "" if r.limit is None else repr(float(r.limit)), r.status, r.detail])
    _write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[Row]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [Row(d["case"], d["quantity"], d["metric"], _parse_value(d["value"]),
                    None if d["limit"] == "" else float(d["limit"]), d["status"], d["detail"]) for d in reader]


# -- shards (pytest-xdist) ------------------------------------------------------------
def write_shard(rows: list[Row], path: Path) -> None:
    _write_text(path, json.dumps([dataclasses.asdict(r) for r in rows]))


def merge_shards(folder: Path) -> dict[str, list[Row]]:
    """case id -> rows, from every shard of the folder; a case found in two shards (its checks
    were split over workers, so it was computed twice) keeps the first shard's rows."""
    merged: dict[str, list[Row]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        mine: dict[str, list[Row]] = {}
        for d in json.loads(path.read_text()):
            mine.setdefault(d["case"], []).append(Row(**d))
        for case, rows in mine.items():
            merged.setdefault(case, rows)
    return merged


# -- the per-case summary (the seed README's table, plus preservation and status) -------
def _fmt(value, spec: str = ".3g") -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return format(value, spec)


def _mb(n) -> str:
    return f"{n / 1e6:,.1f}" if isinstance(n, (int, float)) else "-"


def _rows_of(rows: list[Row], kind) -> list[Row]:
    """Every row (its "run" error row included) of kind's cases: those that measured any of its
    quantities, and those that failed before measuring anything (only "run" rows) whose id is
    in kind's cases file (an id in none of them: growth). Each kind's summary table takes these,
    so the same rule decides for all of them, and a case that crashed early is not left out."""
    cases = {r.case for r in rows if r.quantity in kind.quantities}
    measured = {r.case for r in rows if r.quantity != "run"}
    unmeasured = {r.case for r in rows} - measured
    if unmeasured:
        kinds = _kinds_by_id()
        cases |= {case for case in unmeasured if kinds.get(case, GROWTH) is kind}
    return [r for r in rows if r.case in cases]


def _kinds_by_id() -> dict:
    """case id -> the kind whose cases file holds it (each file read once; one that cannot be
    read holds none)."""
    from harness.errors import BadInput
    out = {}
    for kind in KINDS:
        try:
            out.update({case.id: kind for case in kind.load()})
        except BadInput:
            continue
    return out


class _CaseRows:
    """One case's rows by (quantity, metric), for a summary table's cells."""

    def __init__(self, rows: list[Row]):
        self.rows = {(r.quantity, r.metric): r for r in rows}

    def value(self, quantity: str, metric: str):
        row = self.rows.get((quantity, metric))
        return None if row is None else row.value

    def numbers(self, quantity: str, keep) -> list[tuple[float, str]]:
        """(value, metric) of the quantity's numeric rows whose metric passes keep(metric)."""
        return [(r.value, m) for (q, m), r in self.rows.items()
                if q == quantity and keep(m) and not isinstance(r.value, str)]

    def status(self, kind) -> str:
        """"pass", or "FAIL (quantities)" in kind's quantity order ("run": the case did not complete)."""
        order = (*kind.quantities, "run")
        failed = sorted({q for (q, _), r in self.rows.items() if r.status == "fail"},
                        key=lambda q: (order.index(q) if q in order else len(order), q))
        return f"FAIL ({', '.join(failed)})" if failed else "pass"


def _by_case(rows: list[Row], kind) -> dict[str, _CaseRows]:
    """kind's cases (harness.report._rows_of) in the order they first appear, each with its rows."""
    grouped: dict[str, list[Row]] = {}
    for r in _rows_of(rows, kind):
        grouped.setdefault(r.case, []).append(r)
    return {case: _CaseRows(case_rows) for case, case_rows in grouped.items()}


def _worst(values: list[tuple[float, str]]):
    return max(v for v, _ in values) if values else None


def summary(rows: list[Row]) -> list[dict[str, str]]:
    """One dict per growth case, in the order cases first appear in `rows` (other kinds' cases,
    which have none of the growth quantities, get their own tables)."""
    out = []
    for case, got in _by_case(rows, GROWTH).items():
        v = got.value
        preservation = {fw: _worst(got.numbers("preservation", lambda m, fw=fw: m.startswith(fw) and m.endswith(".relative")))
                        for fw in ("pt.", "ms.")}
        out.append({
            "case": case,
            "resource": _fmt(v("time", "resource")),
            "param err (max ULP / max abs)": f"{_fmt(v('param', 'max_ulp'))} / {_fmt(v('param', 'max_abs'))}",
            "output err (relative)": _fmt(_worst(got.numbers("output", lambda m: m.endswith(".relative")))),
            "worst layer (relative)": _fmt(v("layers", "worst.relative")),
            "hidden (target)": _fmt(v("size", "hidden")),
            "expand MS / PT (s)": f"{_fmt(v('time', 'ms.expand_s'), '.2f')} / {_fmt(v('time', 'pt.expand_s'), '.2f')}",
            "model MB (safetensors / ckpt)": f"{_mb(v('size', 'pt.bytes'))} / {_mb(v('size', 'ms.bytes'))}",
            "preservation PT / MS (relative)": f"{_fmt(preservation['pt.'])} / {_fmt(preservation['ms.'])}",
            "status": got.status(GROWTH),
        })
    return out


def distill_summary(rows: list[Row]) -> list[dict[str, str]]:
    """One dict per distillation case (harness/distill_runner.py), in the order cases first appear."""
    out = []
    for case, got in _by_case(rows, DISTILL).items():
        v = got.value
        terms = got.numbers("loss", lambda m: m.endswith(".relative"))
        worst_value, worst_metric = max(terms) if terms else (None, "-")
        out.append({
            "case": case,
            "stage": _fmt(v("loss", "setup")),
            "loss err (worst term, relative)": f"{_fmt(worst_value)} ({worst_metric.removesuffix('.relative')})",
            "grad err (worst, relative)": _fmt(v("grad", "worst.relative")),
            "update err (params / from zero)": f"{_fmt(v('update', 'params.relative'))} / "
                                               f"{_fmt(v('update', 'from_zero.relative'))}",
            "rule err PT / MS": f"{_fmt(v('update', 'pt.rule.relative'))} / {_fmt(v('update', 'ms.rule.relative'))}",
            "step MS / PT (s)": f"{_fmt(v('update', 'ms.step_s'), '.2f')} / {_fmt(v('update', 'pt.step_s'), '.2f')}",
            "status": got.status(DISTILL),
        })
    return out


def infer_summary(rows: list[Row]) -> list[dict[str, str]]:
    """One dict per inference case (PyTorch, MindSpore, ONNX Runtime), in order of appearance."""
    out = []
    for case, got in _by_case(rows, INFERENCE).items():
        def v(quantity, metric, spec=".3g"):
            return _fmt(got.value(quantity, metric), spec)

        def pair(quantity, dtype, metric, spec=".3g"):
            return f"{v(quantity, f'{dtype}.ort_vs_pt.{metric}', spec)} / {v(quantity, f'{dtype}.ms_vs_pt.{metric}', spec)}"

        out.append({
            "case": case,
            "model": v("logits", "model"),
            "logits rel fp32 ORT / MS": pair("logits", "fp32", "relative"),
            "logits rel fp16 ORT / MS": pair("logits", "fp16", "relative"),
            "greedy diverged fp32 ORT / MS": pair("greedy", "fp32", "diverged"),
            "ppl fp32 PT / MS / ORT": " / ".join(v("perplexity", f"fp32.{b}.perplexity", ".7g") for b in ("pt", "ms", "ort")),
            "ppl rel fp32 ORT / MS": pair("perplexity", "fp32", "relative"),
            "ppl fp16 gap (max)": _fmt(_worst(got.numbers("perplexity", lambda m: m.startswith("fp16_gap.")))),
            "status": got.status(INFERENCE),
        })
    return out


def _md_table(header: list[str], body: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    parts = ["# Parity report: MindSpore vs PyTorch growth", "",
             "Rendered from parity.csv (the source of truth). Relative error = max |MS - PT| / max |PT| "
             "over unpadded positions; preservation compares each framework's grown model with its source "
             "(gated only for exact cases).", ""]
    table = summary(rows)
    if table:
        parts += [_md_table(list(table[0]), [list(d.values()) for d in table]), ""]
    distill = distill_summary(rows)
    if distill:
        parts += ["TinyBERT distillation steps: loss terms |MS - PT| / |PT|; gradients and parameters after one "
                  "AdamWeightDecay step max |MS - PT| / max |PT| per tensor; rule: each side against the rule "
                  "in numpy on its own gradients.", "",
                  _md_table(list(distill[0]), [list(d.values()) for d in distill]), ""]
    infer = infer_summary(rows)
    if infer:
        parts += ["## inference: PyTorch, MindSpore and ONNX Runtime", "",
                  "Same weights and token ids on each backend; relative error = max |got - PyTorch| / max |PyTorch|. "
                  "Random weights: perplexity near the vocabulary size is expected.", "",
                  _md_table(list(infer[0]), [list(d.values()) for d in infer]), ""]
    for quantity in all_quantities() + ("run",):
        chosen = [r for r in rows if r.quantity == quantity]
        if not chosen:
            continue
        parts += [f"## {quantity}", "", _md_table(
            ["case", "metric", "value", "limit", "status", "detail"],
            [[r.case, r.metric, _fmt(r.value, ".4g"), _fmt(r.limit, "g"), r.status, r.detail] for r in chosen]), ""]
    return "\n".join(parts)


_SHORT = {"param err (max ULP / max abs)": "param ULP/abs", "output err (relative)": "output rel",
          "worst layer (relative)": "layer rel", "hidden (target)": "hidden",
          "expand MS / PT (s)": "expand MS/PT s", "model MB (safetensors / ckpt)": "MB st/ckpt",
          "preservation PT / MS (relative)": "preserve PT/MS",
          "loss err (worst term, relative)": "loss rel (term)", "grad err (worst, relative)": "grad rel",
          "update err (params / from zero)": "update rel (params/zero)", "rule err PT / MS": "rule PT/MS",
          "step MS / PT (s)": "step MS/PT s"}


def render_console(rows: list[Row], width: int = 160) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    table = Table(title="parity: MindSpore vs PyTorch", box=box.SIMPLE_HEAD)
    data = summary(rows)
    columns = [c for c in (data[0] if data else []) if c != "resource"]
    for col in columns:
        table.add_column(_SHORT.get(col, col), no_wrap=True)
    for d in data:
        failed = d["status"].startswith("FAIL")
        table.add_row(*(d[c] if c != "status" else d[c].split(" ")[0] for c in columns),
                      style="red" if failed else None)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False)
    console.print(table)
    for d in data:
        if d["status"].startswith("FAIL"):
            console.print(f"{d['case']}: {d['status']}")
    if data:
        console.print(f"resource: {data[0]['resource']}")
    distill = distill_summary(rows)
    if distill:
        table = Table(title="TinyBERT distillation step: MindSpore vs PyTorch", box=box.SIMPLE_HEAD)
        for col in distill[0]:
            table.add_column(_SHORT.get(col, col), no_wrap=True)
        for d in distill:
            table.add_row(*(d[c] if c != "status" else d[c].split(" ")[0] for c in d),
                          style="red" if d["status"].startswith("FAIL") else None)
        console.print(table)
        for d in distill:
            if d["status"].startswith("FAIL"):
                console.print(f"{d['case']}: {d['status']}")
    infer = infer_summary(rows)
    if infer:
        extra = Table(title="inference: PyTorch, MindSpore, ONNX Runtime", box=box.SIMPLE_HEAD)
        for col in infer[0]:
            extra.add_column(col, no_wrap=col != "model")
        for d in infer:
            extra.add_row(*d.values(), style="red" if d["status"].startswith("FAIL") else None)
        console.print(extra)
    return buffer.getvalue()


def write_reports(rows: list[Row], out_dir: Path) -> list[Path]:
    """parity.csv from the rows; parity.json and parity.md from the CSV as read back."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "parity.csv"
    write_csv(rows, csv_path)
    rows = read_csv(csv_path)
    json_path, md_path = out_dir / "parity.json", out_dir / "parity.md"
    _write_text(json_path, json.dumps({"summary": summary(rows), "distill_summary": distill_summary(rows),
                                       "inference_summary": infer_summary(rows),
                                       "rows": [dataclasses.asdict(r) for r in rows]}, indent=1) + "\n")
    _write_text(md_path, render_markdown(rows) + "\n")
    return [csv_path, json_path, md_path]
