"""Two checkpoints of one model compared tensor by tensor, whatever their format and naming scheme.

Each side is read (an HF folder, .safetensors, .ckpt, .bin: harness.core.formats.checkpoint), put
in canonical names by its map (harness.core.naming: detected, or named), then joined by canonical
name and compared by harness.suite.tensors.compare_states, the comparison the growth cases use.
Rows (quantity "param", kind "compare"): per tensor max ULP (gated: cases/tolerances.toml's
param.max_ulp, 0 by default), max abs (gated where a limit is set), relative, cosine, sha256 of
each side; then the worst tensor, names on one side only, shape mismatches, stored names no map
accounts for, rules the map could not apply, tied copies that differ, names ignored (with the
map's reason), and each side against its config.json's tensor table where it has one.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core import families
from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.formats.checkpoint import read_config, read_tensors, resolve
from harness.core.naming.engine import Canonical, detect, to_canonical
from harness.suite.metrics import max_ulp
from harness.suite.rows import Row, limited, row
from harness.suite.summary import Column, Summary
from harness.suite.tensors import StateDiff, compare_states, explain, sha256
from harness.suite.tolerances import Tolerances

KIND = "compare"
QUANTITY = "param"


@dataclasses.dataclass
class Side:
    label: str                   # "A" | "B"
    path: Path                   # as given
    weights: Path                # the file read
    cfg: ModelConfig | None      # its config.json, if beside it
    canonical: Canonical

    @property
    def scheme_text(self) -> str:
        c = self.canonical
        return c.scheme.label + (f" (prefix {c.prefix!r})" if c.prefix else "")


@dataclasses.dataclass
class Comparison:
    case: str
    a: Side
    b: Side
    diff: StateDiff
    rows: list[Row]

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]


def read_side(label: str, path: Path, spec: str | None, family: str | None = None) -> Side:
    """A checkpoint in canonical names; `spec`: a scheme name or map file (None: detected)."""
    weights, cfg_path = resolve(path)
    cfg = read_config(cfg_path) if cfg_path is not None else None
    if cfg is not None and family is not None and cfg.family != family:
        raise BadInput(f"{cfg_path}: a {cfg.family} model, the other checkpoint a {family} one",
                       "compare two checkpoints of the same model")
    state = read_tensors(weights)
    if not state:
        raise BadInput(f"{weights}: holds no tensors", "point at a checkpoint of the model")
    scheme, prefix = detect(list(state), spec, cfg.family if cfg else family, what=str(weights))
    return Side(label, Path(path), weights, cfg, to_canonical(scheme, state, prefix))


def compare_checkpoints(a_path: Path, b_path: Path, tol: Tolerances, map_a: str | None = None,
                        map_b: str | None = None, case_id: str = "compare") -> Comparison:
    a = read_side("A", a_path, map_a)
    b = read_side("B", b_path, map_b, a.canonical.scheme.family)
    return compare_sides(a, b, tol, case_id)


def compare_sides(a: Side, b: Side, tol: Tolerances, case_id: str = "compare") -> Comparison:
    got, ref = a.canonical, b.canonical
    ref_sha = {name: sha256(t) for name, t in ref.tensors.items()}
    by_sha: dict[str, list[str]] = {}
    for name, digest in ref_sha.items():
        by_sha.setdefault(digest, []).append(name)
    diff = compare_states(got.tensors, list(ref.tensors), ref.tensors.__getitem__, full=True,
                          explain_with=lambda d, x, y: explain(d, x, y, by_sha), ref_sha=ref_sha)
    dtypes = {t.dtype_got for t in diff.tensors} | {t.dtype_ref for t in diff.tensors}
    dtype = "fp16" if "float16" in dtypes else "fp32"
    ulp_limit, ulp_why = limited(tol, case_id, QUANTITY, "max_ulp", dtype)
    abs_limit, abs_why = limited(tol, case_id, QUANTITY, "max_abs", dtype)
    rows: list[Row] = []

    def add(metric, value, limit=None, detail="", status=None):
        rows.append(row(case_id, QUANTITY, metric, value, limit, detail, status))

    for side in (a, b):
        c = side.canonical
        add(f"scheme.{side.label}", side.scheme_text, None,
            f"{side.weights}: {c.summary()}; {c.scheme.title}; names from {c.scheme.source}", "info")
    for d in diff.tensors:
        detail = (f"A {d.dtype_got}{list(d.shape_got)} from {got.origin[d.name].text()}; "
                  f"B {d.dtype_ref}{list(d.shape_ref)} from {ref.origin[d.name].text()}")
        detail += f"; hint: {d.hint}" if d.hint else ""
        if d.same_shape:
            add(f"{d.name}.max_ulp", d.max_ulp, ulp_limit, detail + ulp_why)
            add(f"{d.name}.max_abs", d.max_abs, abs_limit, detail + abs_why)
            add(f"{d.name}.relative", d.relative, None, "max |A - B| / max |B|")
            add(f"{d.name}.cosine", d.cosine, None, "cosine of A and B, flattened")
        else:
            add(f"{d.name}.shape", f"A {list(d.shape_got)} vs B {list(d.shape_ref)}", None, detail, "fail")
        add(f"{d.name}.sha256", d.sha_got, None,
            f"B {d.sha_ref}: " + ("the same bytes" if d.sha_got == d.sha_ref else "different bytes"), "info")

    worst, w_ulp, w_abs, differing, compared = diff.worst()
    where = (f"worst tensor {worst} (max ULP {w_ulp}, max abs {w_abs:.3g}); {differing} of {compared} tensors "
             f"differ; A vs B")
    add("max_ulp", w_ulp, ulp_limit, where + ulp_why)
    add("max_abs", w_abs, abs_limit, where + abs_why)
    add("names", len(diff.missing_got) + len(diff.missing_ref), 0,
        f"A lacks {_few(diff.missing_got)}; B lacks {_few(diff.missing_ref)}"
        if diff.missing_got or diff.missing_ref else f"the same {len(diff.tensors)} canonical tensors on both sides")
    shapes = diff.shape_errors
    add("shapes", len(shapes), 0, "; ".join(
        f"{d.name} A {list(d.shape_got)} ({got.origin[d.name].how}) vs B {list(d.shape_ref)} "
        f"({ref.origin[d.name].how})" + (f": {d.hint}" if d.hint else "") for d in shapes[:5]) or "none")
    add("unmapped", len(got.unmapped) + len(ref.unmapped), 0,
        f"stored names no rule, tie or ignore pattern of the map accounts for: A {_few(got.unmapped)}; "
        f"B {_few(ref.unmapped)}")
    add("map_problems", len(got.problems) + len(ref.problems), 0,
        "; ".join([f"A: {p}" for p in got.problems] + [f"B: {p}" for p in ref.problems]) or "none")
    broken = [(s, t) for s in (a, b) for t in s.canonical.broken_ties]
    add("ties", len(broken), 0, "; ".join(_tie_text(s, t) for s, t in broken) or
        f"tied copies checked: {sum(len(s.canonical.ties) for s in (a, b))}, all equal to their tensor")
    ignored = [(s.label, n, why) for s in (a, b) for n, why in s.canonical.ignored]
    add("ignored", len(ignored), None, _ignored_text(ignored), "info")
    for side in (a, b):
        if side.cfg is not None:
            add(f"table.{side.label}", *_table_check(side))
    for r in rows:
        r.kind = KIND
    return Comparison(case_id, a, b, diff, rows)


def _few(names: list[str], n: int = 5) -> str:
    return "none" if not names else ", ".join(names[:n]) + (f" (and {len(names) - n} more)" if len(names) > n else "")


def _tie_text(side: Side, tie) -> str:
    main = side.canonical.tensors.get(tie.canonical)
    ulp = ""
    if main is not None and tie.copy is not None and main.shape == tie.copy.shape:
        ulp = f" (max ULP {max_ulp(tie.copy, main)})"
    return f"{side.label}: {tie.stored} is tied to {tie.canonical} but {tie.note}{ulp}: the tied weight is stored twice"


def _ignored_text(ignored: list[tuple[str, str, str]]) -> str:
    by_reason: dict[tuple[str, str], list[str]] = {}
    for label, name, why in ignored:
        by_reason.setdefault((label, why), []).append(name)
    return "; ".join(f"{label}: {len(names)} ({_few(names, 3)}): {why}"
                     for (label, why), names in by_reason.items()) or "none"


def _table_check(side: Side) -> tuple[int, int, str]:
    """(mismatches, limit 0, detail) of a side's canonical tensors against its config's table."""
    expected = families.param_shapes(side.cfg)
    got = side.canonical.tensors
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    shapes = [f"{n} {list(got[n].shape)}, table {list(s)}" for n, s in expected.items()
              if n in got and tuple(got[n].shape) != tuple(s)]
    cfg = side.cfg
    what = f"{side.label} against the {cfg.family} table of its config.json (hidden {cfg.hidden}, layers {cfg.layers})"
    if not (missing or extra or shapes):
        return 0, 0, f"{what}: all {len(expected)} tensors, shapes as listed"
    return (len(missing) + len(extra) + len(shapes), 0,
            f"{what}: lacks {_few(missing)}; not in the table {_few(extra)}; shapes {_few(shapes, 3)}")


@dataclasses.dataclass(frozen=True)
class ReportKind:
    """What harness.suite.report needs of a kind to render the compare rows (not a case kind: no cases)."""
    name: str
    quantities: tuple[str, ...]
    summary: Summary


SUMMARY = Summary(
    columns=(
        Column("A", lambda got: got.cell(QUANTITY, "scheme.A")),
        Column("B", lambda got: got.cell(QUANTITY, "scheme.B")),
        Column("max ULP / max abs", lambda got: f"{got.cell(QUANTITY, 'max_ulp')} / {got.cell(QUANTITY, 'max_abs')}",
               "ULP / abs"),
        Column("names / shapes / unmapped / ties",
               lambda got: " / ".join(got.cell(QUANTITY, m) for m in ("names", "shapes", "unmapped", "ties")),
               "names/shapes/unmapped/ties"),
    ),
    console_title="checkpoints compared tensor by tensor", json_key="compare_summary",
    heading="Checkpoint comparison",
    blurb="`python -m harness compare A B`: both sides in canonical names by their maps, joined by name; "
          "max ULP gated by param.max_ulp (cases/tolerances.toml).",
)
REPORT_KIND = ReportKind(KIND, (QUANTITY,), SUMMARY)
