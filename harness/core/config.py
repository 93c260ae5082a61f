"""Model configurations and the size presets of cases/sizes.toml."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from harness.core import families
from harness.core.errors import BadInput
from harness.core.families import FAMILIES, param_shapes
from harness.core.paths import CASES_DIR

SIZES_TOML = CASES_DIR / "sizes.toml"

_ROW_KEYS = {"hidden", "layers", "heads", "ffn", "vocab", "positions", "type_vocab", "eps", "act",
             "initializer_range"}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    family: str          # "bert" | "gpt2"
    hidden: int          # d
    layers: int          # L
    heads: int           # H
    ffn: int             # F
    vocab: int
    positions: int
    type_vocab: int      # BERT token types; 0 for GPT-2
    eps: float           # LayerNorm epsilon
    act: str             # "gelu" (erf) | "gelu_new" (tanh)
    initializer_range: float = 0.02
    head: str = "none"   # BERT: "none" (BertModel) | "mlm" (BertForMaskedLM); GPT-2's LM head is tied: "none"
    name: str = ""       # preset name, informational only

    def __post_init__(self):
        where = f"model config {self.name or '(unnamed)'} ({self.family})"
        if self.family not in FAMILIES:
            raise BadInput(f"{where}: unknown model family {self.family!r}",
                           f"use one of: {', '.join(FAMILIES)}")
        for key in ("hidden", "layers", "heads", "ffn", "vocab", "positions"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BadInput(f"{where}: {key} must be a positive integer, got {value!r}",
                               f"set {key} to a positive integer")
        if not isinstance(self.type_vocab, int) or isinstance(self.type_vocab, bool) or self.type_vocab < 0:
            raise BadInput(f"{where}: type_vocab must be a non-negative integer, got {self.type_vocab!r}",
                           "set type_vocab (BERT 2, GPT-2 0)")
        if (not isinstance(self.initializer_range, (int, float)) or isinstance(self.initializer_range, bool)
                or not 0 < self.initializer_range < 1):
            raise BadInput(f"{where}: initializer_range must be a number in (0, 1), got {self.initializer_range!r}",
                           "set initializer_range = 0.02")
        if self.hidden % self.heads:
            raise BadInput(f"{where}: hidden {self.hidden} is not a multiple of heads {self.heads}",
                           "choose heads so that hidden / heads is the (integer) head size")
        heads = families.get(self.family).HEADS
        if self.head not in heads:
            raise BadInput(f"{where}: head {self.head!r} is not one of {self.family}'s: {', '.join(heads)}",
                           f"use head one of: {', '.join(heads)}")
        act = families.get(self.family).ACTIVATION   # BERT the erf GELU, GPT-2 the tanh one
        if self.act != act:
            raise BadInput(f"{where}: activation {self.act!r} is not {self.family}'s {act!r}", f"set act = {act!r}")
        if not (isinstance(self.eps, float) and 0 < self.eps < 1):
            raise BadInput(f"{where}: LayerNorm eps must be a float in (0, 1), got {self.eps!r}",
                           "set eps (BERT 1e-12, GPT-2 1e-5)")

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads

    def n_params(self) -> int:
        total = 0
        for shape in param_shapes(self).values():
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    # -- Hugging Face config.json ------------------------------------------------
    def to_hf(self) -> dict:
        return families.get(self.family).to_hf(self)

    @classmethod
    def from_hf(cls, hf: dict, source: str = "config.json") -> ModelConfig:
        model_type = hf.get("model_type")
        if model_type not in FAMILIES:
            raise BadInput(f"{source}: model_type {model_type!r} is not supported",
                           f"use a {' or '.join(FAMILIES)} config.json")
        try:
            return cls(**families.get(model_type).from_hf(hf), name=source)
        except KeyError as e:
            raise BadInput(f"{source}: missing key {e.args[0]!r} for a {model_type} config",
                           "write a complete Hugging Face config.json") from None
        except (TypeError, ValueError) as e:   # float() of a string or a list
            raise BadInput(f"{source}: a value of the {model_type} config has the wrong type: {e}",
                           "write numbers where Hugging Face's config.json has numbers") from None


def read_toml(path: Path, what: str) -> dict:
    """Parse one of the project's TOML data files; BadInput names the file (and the line)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} file not found", f"restore cases/{path.name}") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}", "fix the syntax at that line") from None


_PRESETS_CACHE: dict[tuple[str, bytes], dict[str, dict[str, ModelConfig]]] = {}


def load_presets(path: Path = SIZES_TOML) -> dict[str, dict[str, ModelConfig]]:
    """Parse sizes.toml into {family: {preset: ModelConfig}}; errors name the file and key.
    The last file parsed is kept with its bytes: the same path with the same bytes is not
    parsed again (about 30x faster); the caller gets its own dicts (the configs are frozen)."""
    path = Path(path)
    try:
        key = (str(path.resolve()), path.read_bytes())
    except OSError:
        return _parse_presets(path)   # read_toml says what is wrong with the path
    if key not in _PRESETS_CACHE:
        presets = _parse_presets(path)
        _PRESETS_CACHE.clear()
        _PRESETS_CACHE[key] = presets
    return {family: dict(rows) for family, rows in _PRESETS_CACHE[key].items()}


def _parse_presets(path: Path) -> dict[str, dict[str, ModelConfig]]:
    data = read_toml(path, "presets")
    defaults = data.get("defaults", {})
    unknown = set(data) - {"defaults", *FAMILIES}
    if unknown:
        raise BadInput(f"{path}: unknown section(s) {sorted(unknown)}",
                       f"sections are: defaults, {', '.join(FAMILIES)}")
    tables = {"defaults": defaults, **{f: data.get(f, {}) for f in FAMILIES}}
    if isinstance(defaults, dict):
        tables.update({f"defaults.{f}": defaults.get(f, {}) for f in FAMILIES})
    for key, value in tables.items():
        if not isinstance(value, dict):
            raise BadInput(f"{path}: key {key!r} must be a table, got {value!r}", f"write it as a [{key}] section")
    presets: dict[str, dict[str, ModelConfig]] = {}
    for family in FAMILIES:
        base = defaults.get(family, {})
        presets[family] = {}
        for name, row in data.get(family, {}).items():
            if not isinstance(row, dict):
                raise BadInput(f"{path}: [{family}] {name} must be a table of sizes",
                               "write it as name = { hidden = ..., layers = ..., heads = ..., ffn = ... }")
            merged = {**base, **row}
            bad = set(merged) - _ROW_KEYS
            if bad:
                raise BadInput(f"{path}: [{family}] {name}: unknown key(s) {sorted(bad)}",
                               f"valid keys: {', '.join(sorted(_ROW_KEYS))}")
            missing = _ROW_KEYS - {"initializer_range"} - set(merged)
            if missing:
                raise BadInput(f"{path}: [{family}] {name}: missing key(s) {sorted(missing)}",
                               "add them to the row or to [defaults." + family + "]")
            try:
                presets[family][name] = ModelConfig(family=family, name=f"{family} {name}", **merged)
            except BadInput as e:
                raise BadInput(f"{path}: [{family}] {name}: {e.what}", e.fix) from None
    return presets


def preset(family: str, name: str) -> ModelConfig:
    presets = load_presets()
    if family not in presets:
        raise BadInput(f"unknown model family {family!r}", f"use one of: {', '.join(FAMILIES)}")
    if name not in presets[family]:
        raise BadInput(f"unknown {family} preset {name!r}",
                       f"use one of: {', '.join(presets[family])} (cases/sizes.toml)")
    return presets[family][name]
