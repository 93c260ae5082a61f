"""Parity cases as data: cases/cases.toml, one [[case]] row each, validated before any work.

A case id is derived from the row, with underscores so that `pytest -k` selects it:
    {family}_{src}2{dst}_{method}[_balanced][_seed{seed}][_{suffix}]
e.g. bert_small2base_aki, bert_minilm2minilm2x_fpi_balanced.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core.config import FAMILIES, ModelConfig, load_presets
from harness.core.errors import BadInput
from harness.core.paths import CASES_DIR
from harness.core.plan import validate
from harness.core.vocab import LOSSLESS, METHODS, SAMPLINGS, WEIGHTS
from harness.suite.case_table import check_id_keys, check_keys, id_tail, load_case_table

CASES_TOML = CASES_DIR / "cases.toml"

# key -> (type, required); bool is checked apart from int (TOML true is not a seed)
_KEYS = {"family": (str, True), "src": (str, True), "dst": (str, True), "method": (str, True),
         "sampling": (str, False), "seed": (int, False), "weights": (str, False), "exact": (bool, False),
         "marks": (list, False), "suffix": (str, False)}


@dataclasses.dataclass(frozen=True)
class Case:
    family: str
    src: str
    dst: str
    method: str
    sampling: str = "paper"
    seed: int = 0
    weights: str = "seed"                # where the source weights come from (core.vocab.WEIGHTS)
    exact: bool = False             # FPI that is function preserving: preservation is gated, not just reported
    marks: tuple[str, ...] = ()     # from the row ("slow"); see all_marks
    suffix: str = ""

    @property
    def id(self) -> str:
        parts = [self.family, f"{self.src}2{self.dst}", self.method]
        if self.sampling != "paper":
            parts.append(self.sampling)
        return "_".join(parts + id_tail(self.seed, self.suffix))

    @property
    def preserving(self) -> bool:
        """Preservation is gated: lossless growth always (its plan refuses what it cannot keep exact),
        FPI where the row says exact."""
        return self.exact or self.method == LOSSLESS

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
    """Why this growth is not function preserving (growth.md "When FPI is exact"), or None.
    Lossless growth is preserving by method (harness.core.lossless refuses what it cannot keep)."""
    if method == LOSSLESS:
        return None
    if method != "fpi":
        return f"method {method} is not function preserving (fpi can be, lossless is)"
    if src.layers != dst.layers:
        return f"depth grows {src.layers} -> {dst.layers} layers (stacking is not function preserving)"
    if dst.hidden % src.hidden:
        return f"hidden {src.hidden} -> {dst.hidden} is not a multiple (LayerNorm statistics change)"
    if dst.hidden != src.hidden and sampling != "balanced":
        return "widening with paper sampling copies units unequally often (use sampling = \"balanced\")"
    return None


def _check_row(row: object, where: str, presets: dict) -> Case:
    check_keys(row, where, _KEYS)
    family = row["family"]
    if family not in FAMILIES:
        raise BadInput(f"{where}: key 'family': unknown family {family!r}", f"use one of: {', '.join(FAMILIES)}")
    for key in ("src", "dst"):
        if row[key] not in presets[family]:
            raise BadInput(f"{where}: key {key!r}: unknown {family} preset {row[key]!r}",
                           f"use one of: {', '.join(presets[family])} (cases/sizes.toml)")
    choices = {"method": METHODS, "sampling": SAMPLINGS, "weights": WEIGHTS}
    for key, valid in choices.items():
        if key in row and row[key] not in valid:
            raise BadInput(f"{where}: key {key!r}: unknown {key} {row[key]!r}", f"use one of: {', '.join(valid)}")
    marks, seed, suffix = check_id_keys(row, where, " (family and method marks are derived)")
    case = Case(family=family, src=row["src"], dst=row["dst"], method=row["method"],
                sampling=row.get("sampling", "paper"), seed=seed,
                weights=row.get("weights", "seed"), exact=row.get("exact", False),
                marks=marks, suffix=suffix)
    src, dst = presets[family][case.src], presets[family][case.dst]
    try:
        validate(src, dst, case.method, case.sampling, case.seed)
    except BadInput as e:
        raise BadInput(f"{where}: {e.what}", e.fix) from None
    if case.weights == "minilm" and (family != "bert" or case.src != "minilm"):
        raise BadInput(f"{where}: key 'weights': the real MiniLM weights are a bert 'minilm' source, "
                       f"not {family} {case.src!r}", "use family = \"bert\", src = \"minilm\"")
    if case.method == LOSSLESS and row.get("exact") is False:
        raise BadInput(f"{where}: key 'exact': a lossless case is exact by its method (preservation is gated)",
                       "drop exact = false")
    if case.exact and (problem := _exactness_problem(src, dst, case.method, case.sampling)):
        raise BadInput(f"{where}: key 'exact': exact = true but {problem}",
                       "drop exact = true (preservation is then reported, not gated)")
    return case


def load_cases(path: Path = CASES_TOML) -> list[Case]:
    """Every growth case of the file, in file order; BadInput names the file, the row and the key."""
    return load_case_table(path, "cases", _check_row)
