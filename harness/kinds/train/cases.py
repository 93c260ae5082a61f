"""Training-parity cases as data: cases/train.toml, one [[case]] row each, validated before any work.

A row names its model one of three ways:
    model = "<preset>"              seeded weights of a preset of cases/sizes.toml (weights "seed"),
                                    or the real MiniLM weights (model = "minilm", weights = "minilm")
    grown = "<growth case id>"      the grown model of a row of cases/cases.toml (its numpy plan
                                    executed on its seeded or real source: bit-identical to both
                                    frameworks' expanders, which the growth kind proves)
A BERT model trains with the masked-LM head (a seeded one where the source has none); GPT-2 with
its tied head. The id says what it is, with underscores so that `pytest -k` selects it:
    {family}_{model or growth id without family}_{mlm|clm}[_seed{seed}][_{suffix}]
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.lm_head import with_mlm_head
from harness.core.optim import TrainSetup
from harness.core.paths import CASES_DIR
from harness.core.vocab import WEIGHTS
from harness.suite.case_table import check_id_keys, check_keys, check_step_keys, id_tail, load_case_table, number

TRAIN_TOML = CASES_DIR / "train.toml"

_KEYS = {"family": (str, True), "model": (str, False), "grown": (str, False), "weights": (str, False),
         "steps": (int, True), "batch": (int, False), "length": (int, False), "lr": ((int, float), False),
         "warmup": (int, False), "weight_decay": ((int, float), False), "clip": ((int, float), False),
         "checkpoints": (list, False), "ms_mode": (str, False), "seed": (int, False), "marks": (list, False),
         "suffix": (str, False)}


@dataclasses.dataclass(frozen=True)
class TrainCase:
    family: str
    cfg: ModelConfig               # the trained model's (with its LM head)
    model: str                     # preset name, or the growth case id
    grown: bool
    setup: TrainSetup
    batch: int = 8
    length: int = 32
    checkpoints: tuple[int, ...] = ()   # steps (from 1) whose parameters are compared; the last is added
    weights: str = "seed"
    ms_mode: str = "jit"
    seed: int = 0
    marks: tuple[str, ...] = ()
    suffix: str = ""

    @property
    def task(self) -> str:
        return "mlm" if self.family == "bert" else "clm"

    @property
    def id(self) -> str:
        name = self.model.removeprefix(f"{self.family}_")
        return "_".join([self.family, name, self.task] + id_tail(self.seed, self.suffix))

    @property
    def all_marks(self) -> tuple[str, ...]:
        return (self.family, "train", *self.marks)

    @property
    def steps_compared(self) -> tuple[int, ...]:
        return tuple(sorted({*self.checkpoints, self.setup.steps}))

    def describe(self) -> str:
        what = f"grown model of growth case {self.model}" if self.grown else f"{self.family} {self.model}"
        return (f"{what} ({self.weights}), {self.setup.steps} steps of {self.batch} x {self.length} tokens "
                f"({self.task.upper()}), lr {self.setup.lr:g} (warm-up {self.setup.warmup}, linear decay), "
                f"wd {self.setup.weight_decay:g}, clip {self.setup.clip:g}, MindSpore {self.ms_mode}")


def _count(row: dict, key: str, where: str, default: int) -> int:
    value = row.get(key, default)
    if value < 1:
        raise BadInput(f"{where}: key {key!r} must be >= 1, got {value}", f"e.g. {key} = {default}")
    return value


def _model(row: dict, where: str, presets: dict) -> tuple[str, bool, ModelConfig, str]:
    """(model name, grown?, config with the LM head, weights)."""
    family = row["family"]
    if ("model" in row) == ("grown" in row):
        raise BadInput(f"{where}: give exactly one of 'model' (a preset) and 'grown' (a growth case id)",
                       'e.g. model = "tiny" or grown = "gpt2_tiny2tiny_wd_aki"')
    if "grown" in row:
        from harness.kinds.growth.cases import load_cases
        growth = {c.id: c for c in load_cases()}
        if row["grown"] not in growth or growth[row["grown"]].family != family:
            raise BadInput(f"{where}: key 'grown': no {family} growth case {row['grown']!r} in cases/cases.toml",
                           f"use one of: {', '.join(i for i, c in growth.items() if c.family == family)}")
        if "weights" in row:
            raise BadInput(f"{where}: key 'weights' comes from the growth case", "drop weights")
        case = growth[row["grown"]]
        return row["grown"], True, _with_lm_head(case.dst_cfg), case.weights
    if row["model"] not in presets[family]:
        raise BadInput(f"{where}: key 'model': unknown {family} preset {row['model']!r}",
                       f"use one of: {', '.join(presets[family])} (cases/sizes.toml)")
    weights = row.get("weights", "seed")
    if weights not in WEIGHTS or (weights == "minilm") != (row["model"] == "minilm" and family == "bert"):
        raise BadInput(f"{where}: key 'weights' {weights!r} does not fit model {row['model']!r}",
                       'weights = "minilm" goes with the bert model "minilm" only; drop it for seeded weights')
    return row["model"], False, _with_lm_head(presets[family][row["model"]]), weights


def _with_lm_head(cfg: ModelConfig) -> ModelConfig:
    """The model trained: BERT with the masked-LM head (BertForMaskedLM); GPT-2 has its tied head."""
    return with_mlm_head(cfg) if cfg.family == "bert" else cfg


def _check_row(row: object, where: str, presets: dict) -> TrainCase:
    check_keys(row, where, _KEYS)
    if row["family"] not in presets:
        raise BadInput(f"{where}: key 'family': unknown family {row['family']!r}", f"use one of: {', '.join(presets)}")
    model, grown, cfg, weights = _model(row, where, presets)
    steps = _count(row, "steps", where, 200)
    setup = TrainSetup(steps=steps, lr=number(row, "lr", where, 1e-3),
                       warmup=row.get("warmup", max(1, steps // 10)),
                       weight_decay=number(row, "weight_decay", where, 0.01, zero_ok=True),
                       clip=number(row, "clip", where, 1.0, zero_ok=True))
    if not 0 <= setup.warmup <= steps:
        raise BadInput(f"{where}: key 'warmup' must be in 0..{steps} (steps)", f"e.g. warmup = {max(1, steps // 10)}")
    length = _count(row, "length", where, 32)
    if length + 1 > cfg.positions:
        raise BadInput(f"{where}: key 'length' {length} needs {length + 1} positions, the model has {cfg.positions}",
                       f"use length <= {cfg.positions - 1}")
    checkpoints, ms_mode = check_step_keys(row, where, steps)
    marks, seed, suffix = check_id_keys(row, where)
    return TrainCase(family=row["family"], cfg=cfg, model=model, grown=grown, setup=setup,
                     batch=_count(row, "batch", where, 8), length=length, checkpoints=checkpoints,
                     weights=weights, ms_mode=ms_mode, seed=seed, marks=marks, suffix=suffix)


def load_train_cases(path: Path = TRAIN_TOML) -> list[TrainCase]:
    """Every case of the file, in file order; BadInput names the file, the row and the key."""
    return load_case_table(path, "training cases", _check_row)
