"""Parity cases as data: cases/cases.toml, one [[case]] row each, validated before any work.

A case id is derived from the row, with underscores so that `pytest -k` selects it:
    {family}_{src}2{dst}_{method}[_balanced][_seed{seed}][_{suffix}]
e.g. bert_small2base_aki, bert_minilm2minilm2x_fpi_balanced.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from harness.config import CASES_DIR, FAMILIES, ModelConfig, load_presets, read_toml
from harness.errors import BadInput
from harness.plan import METHODS, SAMPLINGS, validate

CASES_TOML = CASES_DIR / "cases.toml"
SOURCES = ("seed", "minilm")   # drawn from the seed (as `python -m harness init`), or real MiniLM weights
ROW_MARKS = ("slow",)          # family and method marks are derived from the row itself

# key -> (type, required); bool is checked apart from int (TOML true is not a seed)
_KEYS = {"family": (str, True), "src": (str, True), "dst": (str, True), "method": (str, True),
         "sampling": (str, False), "seed": (int, False), "source": (str, False), "exact": (bool, False),
         "marks": (list, False), "suffix": (str, False)}
_ID_PART = re.compile(r"^[a-z0-9_]+$")


@dataclasses.dataclass(frozen=True)
class Case:
    family: str
    src: str
    dst: str
    method: str
    sampling: str = "paper"
    seed: int = 0
    source: str = "seed"
    exact: bool = False             # function preserving: preservation is gated, not just reported
    marks: tuple[str, ...] = ()     # from the row ("slow"); see all_marks
    suffix: str = ""

    @property
    def id(self) -> str:
        parts = [self.family, f"{self.src}2{self.dst}", self.method]
        if self.sampling != "paper":
            parts.append(self.sampling)
        return "_".join(parts + id_tail(self.seed, self.suffix))

    @property
    def all_marks(self) -> tuple[str, ...]:
        return (self.family, self.method, *self.marks)

    @property
    def src_cfg(self) -> ModelConfig:
        return load_presets()[self.family][self.src]

    @property
    def dst_cfg(self) -> ModelConfig:
        return load_presets()[self.family][self.dst]


def _exactness_problem(src: ModelConfig, dst: ModelConfig, method: str, sampling: str) -> str | None:
    """Why this growth is not function preserving (growth.md "When FPI is exact"), or None."""
    if method != "fpi":
        return f"method {method} is not function preserving (only fpi is)"
    if src.layers != dst.layers:
        return f"depth grows {src.layers} -> {dst.layers} layers (stacking is not function preserving)"
    if dst.hidden % src.hidden:
        return f"hidden {src.hidden} -> {dst.hidden} is not a multiple (LayerNorm statistics change)"
    if dst.hidden != src.hidden and sampling != "balanced":
        return "widening with paper sampling copies units unequally often (use sampling = \"balanced\")"
    return None


def check_keys(row: object, where: str, keys: dict) -> dict:
    """A cases-file row against its key table (key -> (type or tuple of types, required, ...)):
    a table, no unknown key, every required key, each value of its type (a TOML true is never a
    number). Returns the row."""
    if not isinstance(row, dict):
        raise BadInput(f"{where}: a case must be a table", "write it as a [[case]] table")
    unknown = sorted(set(row) - set(keys))
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}", f"valid keys: {', '.join(keys)}")
    for key, (kind, required, *_) in keys.items():
        if key not in row:
            if required:
                raise BadInput(f"{where}: missing key {key!r}", f"add {key} = ... to the row")
            continue
        value = row[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            name = "number" if float in kinds else "integer" if kind is int else kinds[0].__name__
            article = "an" if name[0] in "aeiou" else "a"
            raise BadInput(f"{where}: key {key!r} must be {article} {name}, got {value!r}",
                           f"write {key} as a TOML {name}")
    return row


def check_id_keys(row: dict, where: str, derived_marks: str = "") -> tuple[tuple[str, ...], int, str]:
    """The keys every cases file shares, checked: marks (only ROW_MARKS; derived_marks says which
    the kind adds itself), seed >= 0, suffix (a-z, 0-9, _). Returns (marks, seed, suffix)."""
    marks = row.get("marks", [])
    for mark in marks:
        if mark not in ROW_MARKS:
            raise BadInput(f"{where}: key 'marks': unknown mark {mark!r}",
                           f"rows may add: {', '.join(ROW_MARKS)}{derived_marks}")
    seed = row.get("seed", 0)
    if seed < 0:
        raise BadInput(f"{where}: key 'seed' must be >= 0, got {seed}", "use e.g. seed = 0")
    suffix = row.get("suffix", "")
    if suffix and not _ID_PART.match(suffix):
        raise BadInput(f"{where}: key 'suffix' {suffix!r} may hold only a-z, 0-9 and _",
                       "ids must work with pytest -k")
    return tuple(marks), seed, suffix


def id_tail(seed: int, suffix: str) -> list[str]:
    """The end every case id shares: [seed{seed}] when the seed is not 0, then [suffix]."""
    return ([f"seed{seed}"] if seed else []) + ([suffix] if suffix else [])


def _check_row(row: object, where: str, presets: dict) -> Case:
    check_keys(row, where, _KEYS)
    family = row["family"]
    if family not in FAMILIES:
        raise BadInput(f"{where}: key 'family': unknown family {family!r}", f"use one of: {', '.join(FAMILIES)}")
    for key in ("src", "dst"):
        if row[key] not in presets[family]:
            raise BadInput(f"{where}: key {key!r}: unknown {family} preset {row[key]!r}",
                           f"use one of: {', '.join(presets[family])} (cases/sizes.toml)")
    choices = {"method": METHODS, "sampling": SAMPLINGS, "source": SOURCES}
    for key, valid in choices.items():
        if key in row and row[key] not in valid:
            raise BadInput(f"{where}: key {key!r}: unknown {key} {row[key]!r}", f"use one of: {', '.join(valid)}")
    marks, seed, suffix = check_id_keys(row, where, " (family and method marks are derived)")
    case = Case(family=family, src=row["src"], dst=row["dst"], method=row["method"],
                sampling=row.get("sampling", "paper"), seed=seed,
                source=row.get("source", "seed"), exact=row.get("exact", False),
                marks=marks, suffix=suffix)
    src, dst = presets[family][case.src], presets[family][case.dst]
    try:
        validate(src, dst, case.method, case.sampling, case.seed)
    except BadInput as e:
        raise BadInput(f"{where}: {e.what}", e.fix) from None
    if case.source == "minilm" and (family != "bert" or case.src != "minilm"):
        raise BadInput(f"{where}: key 'source': the real MiniLM weights are a bert 'minilm' source, "
                       f"not {family} {case.src!r}", "use family = \"bert\", src = \"minilm\"")
    if case.exact and (problem := _exactness_problem(src, dst, case.method, case.sampling)):
        raise BadInput(f"{where}: key 'exact': exact = true but {problem}",
                       "drop exact = true (preservation is then reported, not gated)")
    return case


def load_case_table(path: Path, what: str, check_row) -> list:
    """Every [[case]] row of a cases file, checked by check_row(row, where, presets), in file order;
    BadInput names the file, the row and the key. Ids must be unique within the file."""
    path = Path(path)
    data = read_toml(path, what)
    unknown = sorted(set(data) - {"case"})
    if unknown:
        raise BadInput(f"{path}: unknown key {unknown[0]!r}", "the file holds only [[case]] rows")
    rows = data.get("case", [])
    if not isinstance(rows, list):
        raise BadInput(f"{path}: key 'case' must be an array of tables", "write each case as [[case]]")
    presets = load_presets()
    cases, seen = [], {}
    for i, row in enumerate(rows):
        case = check_row(row, f"{path}: case #{i + 1}", presets)
        if case.id in seen:
            raise BadInput(f"{path}: case #{i + 1}: duplicate id {case.id!r} (also case #{seen[case.id] + 1})",
                           "change seed or sampling, or add suffix = \"...\" to one of them")
        seen[case.id] = i
        cases.append(case)
    return cases


def load_cases(path: Path = CASES_TOML) -> list[Case]:
    """Every growth case of the file, in file order; BadInput names the file, the row and the key."""
    return load_case_table(path, "cases", _check_row)
