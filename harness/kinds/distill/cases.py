"""TinyBERT distillation-step cases as data: cases/distill.toml, one [[case]] row each, validated
before any work.

A case id is derived from the row, with underscores so that `pytest -k` selects it:
    {student}_{stage}_step[_seed{seed}][_{suffix}]          one step (the distill kind)
    {student}_{stage}_{steps}steps[_seed{seed}][_{suffix}]  a row with `steps`: N steps with the
                                                            schedule (the distill_train kind)
e.g. tinybert_gd_step (general distillation), tinybert_td_step (task distillation).
Both kinds read this file; each takes its own rows (load_distill_cases, load_distill_train_cases),
and every row is checked (and ids kept unique) whichever kind loads it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core.config import ModelConfig, load_presets
from harness.core.distill_step import StepSetup
from harness.core.errors import BadInput
from harness.core.optim import TrainSetup
from harness.core.paths import CASES_DIR
from harness.core.vocab import WEIGHTS
from harness.suite.case_table import check_id_keys, check_keys, check_step_keys, id_tail, load_case_table, number

DISTILL_TOML = CASES_DIR / "distill.toml"
DISTILL_STAGES = ("gd", "td")          # general distillation; task distillation (adds the prediction term)

# key -> (types, required); bool is refused where a number is expected (TOML true is not a seed)
_KEYS = {"stage": (str, True), "teacher": (str, True), "student": (str, True), "weights": (str, False),
         "seed": (int, False), "layer_map": (list, False), "num_labels": (int, False),
         "temperature": ((int, float), False), "lr": ((int, float), False),
         "weight_decay": ((int, float), False), "marks": (list, False), "suffix": (str, False),
         # multi-step rows only (distill_train): N steps with warm-up / decay and global-norm clipping
         "steps": (int, False), "batch": (int, False), "length": (int, False), "warmup": (int, False),
         "clip": ((int, float), False), "checkpoints": (list, False), "ms_mode": (str, False)}
_STEP_KEYS = ("batch", "length", "warmup", "clip", "checkpoints", "ms_mode")


@dataclasses.dataclass(frozen=True)
class DistillCase:
    stage: str
    teacher: str                 # bert preset
    student: str                 # bert preset
    layer_map: tuple[int, ...]
    layer_map_given: bool        # False: derived as g(m) = m * teacher layers / student layers
    weights: str = "seed"                # where the source weights come from (core.vocab.WEIGHTS)
    seed: int = 0
    num_labels: int = 0          # td: the classifier's labels; gd: 0 (no classifier)
    temperature: float = 1.0
    lr: float = 1e-4
    weight_decay: float = 0.01
    marks: tuple[str, ...] = ()
    suffix: str = ""
    steps: int = 0               # 0: the one-step case; N: N steps with the schedule (distill_train)
    batch: int = 8
    length: int = 32
    warmup: int = 0
    clip: float = 1.0
    checkpoints: tuple[int, ...] = ()   # steps (from 1) whose parameters are compared; the last is added
    ms_mode: str = "jit"
    # the parameter rows leave no tensor out (the train kind's null-gradient key biases): distillation's
    # attention term compares raw scores, which a key bias does shift
    family = None

    @property
    def id(self) -> str:
        return "_".join([self.student, self.stage, f"{self.steps}steps" if self.steps else "step"]
                        + id_tail(self.seed, self.suffix))

    @property
    def all_marks(self) -> tuple[str, ...]:
        return ("bert", "distill", *self.marks)

    @property
    def train_setup(self) -> TrainSetup:
        """The multi-step optimizer: AdamWeightDecay at a warm-up / linear-decay lr, global-norm clipping."""
        return TrainSetup(steps=self.steps, lr=self.lr, warmup=self.warmup, weight_decay=self.weight_decay,
                          clip=self.clip)

    @property
    def steps_compared(self) -> tuple[int, ...]:
        return tuple(sorted({*self.checkpoints, self.steps}))

    @property
    def teacher_cfg(self) -> ModelConfig:
        return load_presets()["bert"][self.teacher]

    @property
    def student_cfg(self) -> ModelConfig:
        return load_presets()["bert"][self.student]

    @property
    def setup(self) -> StepSetup:
        return StepSetup(self.stage, self.layer_map, self.temperature, self.lr, self.weight_decay)

    def describe(self) -> str:
        how = "given in the row" if self.layer_map_given else "derived: g(m) = m * teacher layers / student layers"
        head = f", {self.num_labels} labels, temperature {self.temperature:g}" if self.stage == "td" else ""
        return (f"teacher bert {self.teacher} ({self.weights}), student bert {self.student} (seed {self.seed}){head}; "
                f"layer map student m <- teacher g(m): "
                + ", ".join(f"{m}<-{g}" for m, g in enumerate((0,) + self.layer_map)) + f" ({how})"
                + (f"; {self.steps} steps of {self.batch} x {self.length} tokens (right-padded rows), lr "
                   f"{self.lr:g} (warm-up {self.warmup}, linear decay), wd {self.weight_decay:g}, clip {self.clip:g}, "
                   f"MindSpore {self.ms_mode}" if self.steps else ""))


def _layer_map(row: dict, where: str, teacher: ModelConfig, student: ModelConfig) -> tuple[tuple[int, ...], bool]:
    if "layer_map" not in row:
        if teacher.layers % student.layers:
            raise BadInput(f"{where}: teacher layers {teacher.layers} are not a multiple of student layers "
                           f"{student.layers}, so g(m) = m * {teacher.layers} / {student.layers} is not a layer",
                           f"write layer_map = [...]: {student.layers} teacher layers (1..{teacher.layers}), "
                           "one per student layer")
        step = teacher.layers // student.layers
        return tuple(m * step for m in range(1, student.layers + 1)), False
    layer_map = row["layer_map"]
    if (len(layer_map) != student.layers
            or not all(isinstance(g, int) and not isinstance(g, bool) and 1 <= g <= teacher.layers for g in layer_map)):
        even = [m * teacher.layers // student.layers for m in range(1, student.layers + 1)]
        raise BadInput(f"{where}: key 'layer_map' {layer_map!r} must hold {student.layers} teacher layers in "
                       f"1..{teacher.layers}, one per student layer",
                       f"e.g. layer_map = {even}")
    return tuple(layer_map), True


def _check_row(row: object, where: str, presets: dict) -> DistillCase:
    check_keys(row, where, _KEYS)
    if row["stage"] not in DISTILL_STAGES:
        raise BadInput(f"{where}: key 'stage': unknown stage {row['stage']!r}",
                       "use gd (general distillation) or td (task distillation)")
    for key in ("teacher", "student"):
        if row[key] not in presets["bert"]:
            raise BadInput(f"{where}: key {key!r}: unknown bert preset {row[key]!r}",
                           f"use one of: {', '.join(presets['bert'])} (cases/sizes.toml)")
    teacher, student = presets["bert"][row["teacher"]], presets["bert"][row["student"]]
    if teacher.vocab != student.vocab:
        raise BadInput(f"{where}: teacher {row['teacher']} has vocab {teacher.vocab}, student {row['student']} "
                       f"{student.vocab}: both read the same token ids",
                       "pick a student preset with the teacher's vocabulary (cases/sizes.toml)")
    weights = row.get("weights", "seed")
    if weights not in WEIGHTS:
        raise BadInput(f"{where}: key 'weights': unknown weights {weights!r}", f"use one of: {', '.join(WEIGHTS)}")
    if weights == "minilm" and row["teacher"] != "minilm":
        raise BadInput(f"{where}: key 'weights': the real MiniLM weights are the bert 'minilm' teacher, "
                       f"not {row['teacher']!r}", "use teacher = \"minilm\"")
    td = row["stage"] == "td"
    for key in ("num_labels", "temperature"):
        if key in row and not td:
            raise BadInput(f"{where}: key {key!r} is used only by task distillation, and stage is gd",
                           f"drop {key}, or set stage = \"td\"")
    num_labels = row.get("num_labels", 2) if td else 0
    if td and num_labels < 2:
        raise BadInput(f"{where}: key 'num_labels' must be >= 2, got {num_labels}", "e.g. num_labels = 2 (SST-2)")
    marks, seed, suffix = check_id_keys(row, where)
    layer_map, given = _layer_map(row, where, teacher, student)
    return DistillCase(**_steps(row, where, student),
                       stage=row["stage"], teacher=row["teacher"], student=row["student"], layer_map=layer_map,
                       layer_map_given=given, weights=weights, seed=seed, num_labels=num_labels,
                       temperature=number(row, "temperature", where, 1.0),
                       lr=number(row, "lr", where, 1e-4),
                       weight_decay=number(row, "weight_decay", where, 0.01, zero_ok=True),
                       marks=marks, suffix=suffix)


def _steps(row: dict, where: str, student: ModelConfig) -> dict:
    """The multi-step keys of a row (none without `steps`), checked."""
    if "steps" not in row:
        given = [k for k in _STEP_KEYS if k in row]
        if given:
            raise BadInput(f"{where}: key {given[0]!r} is used only by multi-step rows, and the row has no 'steps'",
                           f"drop {given[0]}, or add steps = 200")
        return {}
    steps = row["steps"]
    for key, default, least in (("steps", 200, 2), ("batch", 8, 1), ("length", 32, 2)):
        if row.get(key, default) < least:
            raise BadInput(f"{where}: key {key!r} must be >= {least}, got {row[key]}", f"e.g. {key} = {default}")
    length = row.get("length", 32)
    if length > student.positions:
        raise BadInput(f"{where}: key 'length' {length} exceeds the student's {student.positions} positions",
                       f"use length <= {student.positions}")
    warmup = row.get("warmup", max(1, steps // 10))
    if not 0 <= warmup <= steps:
        raise BadInput(f"{where}: key 'warmup' must be in 0..{steps} (steps)", f"e.g. warmup = {max(1, steps // 10)}")
    checkpoints, ms_mode = check_step_keys(row, where, steps)
    return {"steps": steps, "batch": row.get("batch", 8), "length": length, "warmup": warmup,
            "clip": number(row, "clip", where, 1.0, zero_ok=True), "checkpoints": checkpoints,
            "ms_mode": ms_mode}


def _all_cases(path: Path) -> list[DistillCase]:
    return load_case_table(path, "distillation cases", _check_row)


def load_distill_cases(path: Path = DISTILL_TOML) -> list[DistillCase]:
    """Every one-step case of the file, in file order; BadInput names the file, the row and the key."""
    return [c for c in _all_cases(path) if not c.steps]


def load_distill_train_cases(path: Path = DISTILL_TOML) -> list[DistillCase]:
    """Every multi-step case (a row with `steps`) of the file, in file order."""
    return [c for c in _all_cases(path) if c.steps]
