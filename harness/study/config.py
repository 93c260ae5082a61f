"""cases/study.toml: one profile ([profile.full] for `make study`, [profile.quick] for the test),
checked before any work; errors name the file, the key and the fix.

A profile sets the shared training settings and, per family, the presets (cases/sizes.toml) of the
source the study pre-trains, of the depth-only arm's source (the target's width, fewer layers) and of
the target; BERT may add a target for the arm grown from the real MiniLM.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core.config import ModelConfig, load_presets, read_toml
from harness.core.errors import BadInput
from harness.core.lm_head import with_mlm_head
from harness.core.paths import CASES_DIR
from harness.core.vocab import MS_MODES

STUDY_TOML = CASES_DIR / "study.toml"
FAMILIES = ("gpt2", "bert")
GROWN_ARMS = ("fpi_paper", "fpi_balanced", "aki", "depth", "lossless")   # from the study's own sources
ARMS = ("scratch", *GROWN_ARMS, "minilm")                                 # minilm: BERT only
MS_ARMS = ("scratch", "fpi_paper", "fpi_balanced")

_KEYS = {"batch": int, "length": int, "steps": int, "source_steps": int, "warmup": int, "eval_every": int,
         "eval_batches": int, "seeds": list, "lrs": list, "source_lr": float, "ms_steps": int, "ms_arms": list,
         "arms": list, "families": list, "weight_decay": float, "clip": float, "minilm_steps": int, "ms_mode": str}
_FAMILY_KEYS = {"source": True, "source_deep": True, "target": True, "minilm_target": False}


@dataclasses.dataclass(frozen=True)
class FamilyModels:
    source: ModelConfig        # pre-trained by the study: the source of the FPI, AKI and lossless arms
    source_deep: ModelConfig   # the depth-only arm's source: the target's width, fewer layers
    target: ModelConfig
    minilm_target: ModelConfig | None = None   # BERT: grown from the real MiniLM


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    profile: str
    path: Path
    batch: int
    length: int
    steps: int                 # optimizer steps of every target-size run
    source_steps: int          # of each source the study pre-trains
    warmup: int
    eval_every: int
    eval_batches: int          # validation batches (batch x length tokens each), fixed for every run
    seeds: tuple[int, ...]
    lrs: tuple[float, ...]     # scratch's learning-rate sweep (first seed); the best is the tuned scratch
    source_lr: float
    ms_steps: int              # MindSpore runs the first ms_steps steps of these arms (first seed)
    ms_arms: tuple[str, ...]
    arms: tuple[str, ...]
    families: tuple[str, ...]
    models: dict[str, FamilyModels]
    weight_decay: float = 0.01
    clip: float = 1.0
    minilm_steps: int = 0      # steps of the MiniLM arms (0: the profile's steps)
    ms_mode: str = "jit"       # MindSpore's step compiled (the study's), or "pynative" (the quick profile)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("models", "path")}
        out["models"] = {fam: {k: (dataclasses.asdict(v) if v else None) for k, v in dataclasses.asdict(m).items()}
                         for fam, m in self.models.items()}
        return out


def _number(value, where: str, key: str, *, integer: bool = False, positive: bool = True):
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or (positive and value <= 0) or value < 0:
        kind = "a positive integer" if integer else "a positive number"
        raise BadInput(f"{where}: key {key!r} must be {kind}, got {value!r}", f"e.g. {key} = {8 if integer else 1e-3}")
    return value


def _choices(values, where: str, key: str, valid: tuple[str, ...]) -> tuple[str, ...]:
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise BadInput(f"{where}: key {key!r}: {'unknown ' + repr(bad[0]) if bad else 'empty list'}",
                       f"use some of: {', '.join(valid)}")
    return tuple(values)


def _family(table: object, where: str, family: str, presets: dict) -> FamilyModels:
    if not isinstance(table, dict):
        raise BadInput(f"{where}: must be a table of presets", f"write [{where.split(': ')[-1]}] with source = ...")
    unknown = sorted(set(table) - set(_FAMILY_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}", f"valid keys: {', '.join(_FAMILY_KEYS)}")
    got = {}
    for key, required in _FAMILY_KEYS.items():
        if key not in table:
            if required:
                raise BadInput(f"{where}: missing key {key!r}", f'add {key} = "<{family} preset of cases/sizes.toml>"')
            continue
        if table[key] not in presets[family]:
            raise BadInput(f"{where}: key {key!r}: unknown {family} preset {table[key]!r}",
                           f"use one of: {', '.join(presets[family])} (cases/sizes.toml)")
        cfg = presets[family][table[key]]
        got[key] = with_mlm_head(cfg) if family == "bert" else cfg   # BERT trains as BertForMaskedLM
    return FamilyModels(**got)


def load_study(path: Path = STUDY_TOML, profile: str = "full") -> StudyConfig:
    path = Path(path)
    data = read_toml(path, "study")
    profiles = data.get("profile")
    if set(data) - {"profile"} or not isinstance(profiles, dict):
        raise BadInput(f"{path}: the file holds [profile.<name>] tables only", "see cases/study.toml's header")
    if profile not in profiles:
        raise BadInput(f"{path}: no [profile.{profile}]", f"use one of: {', '.join(profiles)}")
    table, where = profiles[profile], f"{path}: [profile.{profile}]"
    presets = load_presets()
    unknown = sorted(set(table) - set(_KEYS) - set(FAMILIES))
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}", f"valid keys: {', '.join([*_KEYS, *FAMILIES])}")
    missing = [k for k in ("batch", "length", "steps", "source_steps", "eval_every", "eval_batches", "seeds", "lrs",
                           "source_lr", "ms_steps") if k not in table]
    if missing:
        raise BadInput(f"{where}: missing key {missing[0]!r}", f"add {missing[0]} = ... (see [profile.full])")
    ints = {k: _number(table[k], where, k, integer=True)
            for k in ("batch", "length", "steps", "source_steps", "eval_every", "eval_batches", "ms_steps")}
    warmup = _number(table.get("warmup", max(1, ints["steps"] // 20)), where, "warmup", integer=True, positive=False)
    if warmup > min(ints["steps"], ints["source_steps"]):
        raise BadInput(f"{where}: key 'warmup' {warmup} exceeds the steps", "use warmup <= steps and source_steps")
    if ints["ms_steps"] > ints["steps"]:
        raise BadInput(f"{where}: key 'ms_steps' {ints['ms_steps']} exceeds steps {ints['steps']}",
                       "MindSpore runs a prefix of each arm: use ms_steps <= steps")
    if ints["ms_steps"] % ints["eval_every"]:
        raise BadInput(f"{where}: key 'ms_steps' {ints['ms_steps']} is no multiple of eval_every {ints['eval_every']}",
                       "MindSpore's validation losses are compared at PyTorch's evaluations: make ms_steps a multiple")
    seeds = table["seeds"]
    if len(seeds) < 1 or len(set(seeds)) != len(seeds) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise BadInput(f"{where}: key 'seeds' must list distinct non-negative integers, got {seeds!r}",
                       "e.g. seeds = [0, 1, 2]")
    lrs = tuple(float(_number(v, where, "lrs")) for v in table["lrs"])
    if not lrs:
        raise BadInput(f"{where}: key 'lrs' is empty", "list the scratch sweep, e.g. lrs = [3e-4, 1e-3, 3e-3]")
    families = _choices(table.get("families", list(FAMILIES)), where, "families", FAMILIES)
    models = {}
    for family in families:
        if family not in table:
            raise BadInput(f"{where}: no [profile.{profile}.{family}] table", "add it (source, source_deep, target)")
        models[family] = _family(table[family], f"{where}.{family}", family, presets)
    arms = _choices(table.get("arms", list(ARMS)), where, "arms", ARMS)
    if "scratch" not in arms:
        raise BadInput(f"{where}: key 'arms' must hold 'scratch'", "every saving is measured against scratch")
    ms_mode = table.get("ms_mode", "jit")
    if ms_mode not in MS_MODES:
        raise BadInput(f"{where}: key 'ms_mode': unknown mode {ms_mode!r}", f"use one of: {', '.join(MS_MODES)}")
    return StudyConfig(
        profile=profile, ms_mode=ms_mode, path=path, warmup=warmup, seeds=tuple(seeds), lrs=lrs,
        source_lr=float(_number(table["source_lr"], where, "source_lr")),
        ms_arms=_choices(table.get("ms_arms", list(MS_ARMS)), where, "ms_arms", MS_ARMS),
        arms=arms, families=families, models=models,
        weight_decay=float(_number(table.get("weight_decay", 0.01), where, "weight_decay", positive=False)),
        clip=float(_number(table.get("clip", 1.0), where, "clip", positive=False)),
        minilm_steps=_number(table.get("minilm_steps", ints["steps"]), where, "minilm_steps", integer=True),
        **ints)
