"""Inference parity cases as data: cases/inference.toml, one [[case]] row each, validated first.

A case runs one GPT-2 (a preset drawn from a seed, or grown from a smaller preset)
on PyTorch, MindSpore and ONNX Runtime. Its id, with underscores for `pytest -k`:
    gpt2_{preset}_onnx                              drawn from the seed
    gpt2_{grown_from}2{preset}_{method}[_balanced]_onnx    grown (numpy recipe executor)
    ... [_seed{seed}][_{suffix}] before _onnx
so `pytest -k onnx` selects every inference case.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core import lossless
from harness.core.config import ModelConfig, load_presets
from harness.core.errors import BadInput
from harness.core.paths import CASES_DIR
from harness.core.plan import validate
from harness.core.vocab import DTYPES, LOSSLESS, METHODS, SAMPLINGS
from harness.suite.case_table import check_id_keys, check_keys, id_tail, load_case_table
from harness.suite.tokenizer import TOKENIZER_VOCAB

INFER_TOML = CASES_DIR / "inference.toml"
TEXTS = ("english", "ids")          # the English text (real tokenizer), or seeded ids

# key -> (type, required, default)
_KEYS = {
    "preset": (str, True, None), "seed": (int, False, 0), "grown_from": (str, False, ""),
    "method": (str, False, "fpi"), "sampling": (str, False, "paper"), "text": (str, False, "english"),
    "length": (int, False, 64), "windows": (int, False, 4), "batch": (int, False, 2),
    "prompt": (int, False, 8), "greedy": (int, False, 8), "dtypes": (list, False, list(DTYPES)),
    "marks": (list, False, []), "suffix": (str, False, ""),
}


@dataclasses.dataclass(frozen=True)
class InferCase:
    preset: str
    seed: int = 0
    grown_from: str = ""            # "" : drawn from `seed`; else grown from this preset (drawn from `seed`)
    method: str = "fpi"
    sampling: str = "paper"
    text: str = "english"           # "english" | "ids"
    length: int = 64                # tokens per window (perplexity and the logits check)
    windows: int = 4                # windows of the perplexity check
    batch: int = 2                  # windows per forward
    prompt: int = 8                 # greedy: prompt tokens (the first tokens of the first `batch` windows)
    greedy: int = 8                 # greedy: tokens generated
    dtypes: tuple[str, ...] = tuple(DTYPES)
    marks: tuple[str, ...] = ()
    suffix: str = ""

    @property
    def id(self) -> str:
        parts = ["gpt2"]
        if self.grown_from:
            parts += [f"{self.grown_from}2{self.preset}", self.method]
            if self.sampling != "paper":
                parts.append(self.sampling)
        else:
            parts.append(self.preset)
        return "_".join(parts + id_tail(self.seed, self.suffix) + ["onnx"])

    @property
    def all_marks(self) -> tuple[str, ...]:
        return ("gpt2", *self.marks)

    @property
    def cfg(self) -> ModelConfig:
        """The model the case runs: its preset, as a lossless growth makes it where grown so (eps scaled)."""
        cfg = load_presets()["gpt2"][self.preset]
        return lossless.target_config(self.src_cfg, cfg) if self.grown_from and self.method == LOSSLESS else cfg

    @property
    def src_cfg(self) -> ModelConfig | None:
        return load_presets()["gpt2"][self.grown_from] if self.grown_from else None


def _check_row(row: object, where: str, presets: dict) -> InferCase:
    check_keys(row, where, _KEYS)
    values = {key: row.get(key, default) for key, (_, _, default) in _KEYS.items()}
    gpt2 = presets["gpt2"]
    for key in ("preset", "grown_from"):
        if values[key] and values[key] not in gpt2:
            raise BadInput(f"{where}: key {key!r}: unknown gpt2 preset {values[key]!r}",
                           f"use one of: {', '.join(gpt2)} (cases/sizes.toml)")
    for key, valid in (("method", METHODS), ("sampling", SAMPLINGS), ("text", TEXTS)):
        if values[key] not in valid:
            raise BadInput(f"{where}: key {key!r}: unknown {key} {values[key]!r}", f"use one of: {', '.join(valid)}")
    for key in ("length", "windows", "batch", "prompt", "greedy"):
        if values[key] < 1:
            raise BadInput(f"{where}: key {key!r} must be >= 1, got {values[key]}", f"set {key} to a positive integer")
    values["marks"], values["seed"], values["suffix"] = check_id_keys(row, where)
    dtypes = values["dtypes"]
    if not dtypes or any(d not in DTYPES for d in dtypes) or len(set(dtypes)) != len(dtypes):
        raise BadInput(f"{where}: key 'dtypes' must list some of {', '.join(DTYPES)} once each, got {dtypes!r}",
                       'write e.g. dtypes = ["fp32", "fp16"]')
    cfg = gpt2[values["preset"]]
    if values["length"] > cfg.positions:
        raise BadInput(f"{where}: key 'length': {values['length']} tokens exceed {cfg.name}'s "
                       f"{cfg.positions} positions",
                       f"set length <= {cfg.positions}")
    if values["prompt"] + values["greedy"] > cfg.positions:
        raise BadInput(f"{where}: keys 'prompt' + 'greedy' = {values['prompt'] + values['greedy']} exceed "
                       f"{cfg.name}'s {cfg.positions} positions", "shorten the prompt or generate fewer tokens")
    if values["prompt"] > values["length"]:
        raise BadInput(f"{where}: key 'prompt' ({values['prompt']}) is longer than a window ({values['length']})",
                       "prompts are the first tokens of the windows: set prompt <= length")
    if values["batch"] > values["windows"]:
        raise BadInput(f"{where}: key 'batch' ({values['batch']}) exceeds 'windows' ({values['windows']})",
                       "set batch <= windows")
    if values["text"] == "english" and cfg.vocab < TOKENIZER_VOCAB:
        raise BadInput(f"{where}: key 'text': the English text's tokenizer needs a vocabulary of {TOKENIZER_VOCAB}, "
                       f"{cfg.name} has {cfg.vocab}", 'use text = "ids" (seeded token ids) for this preset')
    if values["grown_from"]:
        try:
            validate(gpt2[values["grown_from"]], cfg, values["method"], values["sampling"], values["seed"])
        except BadInput as e:
            raise BadInput(f"{where}: {e.what}", e.fix) from None
    return InferCase(**{**values, "dtypes": tuple(dtypes)})


def load_infer_cases(path: Path = INFER_TOML) -> list[InferCase]:
    """Every case of the file, in file order; BadInput names the file, the row and the key."""
    return load_case_table(path, "inference cases", _check_row)
