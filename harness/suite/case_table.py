"""A cases file (TOML, one [[case]] row each), checked row by row before any work: the keys
every kind's rows share, and the loop over the file. Each kind checks its own keys."""
from __future__ import annotations

import math
import re
from pathlib import Path

from harness.core.config import load_presets, read_toml
from harness.core.errors import BadInput

ROW_MARKS = ("slow",)          # what a row may mark itself; family, method, ... marks are derived from the row
_ID_PART = re.compile(r"^[a-z0-9_]+$")


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


def number(row: dict, key: str, where: str, default: float, zero_ok: bool = False) -> float:
    """A finite number of the row (default if absent): positive, or non-negative where zero_ok."""
    value = float(row.get(key, default))
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise BadInput(f"{where}: key {key!r} must be a {'non-negative' if zero_ok else 'positive'} number, "
                       f"got {row[key]!r}", f"e.g. {key} = {default}")
    return value


def check_step_keys(row: dict, where: str, steps: int) -> tuple[tuple[int, ...], str]:
    """(checkpoints, ms_mode) of a multi-step row (train, distillation over N steps): the steps whose
    parameters are compared, default [1, steps // 2], and MindSpore's mode, default "jit"."""
    from harness.core.vocab import MS_MODES
    checkpoints = row.get("checkpoints", [1, steps // 2])
    if not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= steps for s in checkpoints):
        raise BadInput(f"{where}: key 'checkpoints' {checkpoints!r} must hold steps in 1..{steps}",
                       f"e.g. checkpoints = [1, {steps // 2}]")
    ms_mode = row.get("ms_mode", "jit")
    if ms_mode not in MS_MODES:
        raise BadInput(f"{where}: key 'ms_mode': unknown mode {ms_mode!r}", f"use one of: {', '.join(MS_MODES)}")
    return tuple(checkpoints), ms_mode
