"""Write a checkpoint's tensors in another naming scheme and format.

    convert(src, "ms-zoo", out)     # -> out/model.ckpt (+ config.json where the config is known)

Targets: hf (Hugging Face folder: model.safetensors + config.json), ms (this project's MindSpore
checkpoint: the same names in model.ckpt), ms-zoo / ms-cells (those schemes in model.ckpt), another
built-in scheme (hf-legacy: model.safetensors), or a map file (.toml; model.ckpt unless `fmt` says
safetensors). Every stored tensor of the source must be
accounted for (mapped, a tied copy equal to its tensor, or ignored by the map with its reason): an
unmapped name, a rule that does not fit or a tied copy that differs stops the conversion before
anything is written. Values and dtypes are kept bit for bit; files are written atomically (weights
first, then config.json) in the target scheme's order, so the same input gives the same bytes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.core import families
from harness.core.config import ModelConfig, preset
from harness.core.errors import BadInput
from harness.core.formats.checkpoint import (
    CKPT_NAME,
    CONFIG_NAME,
    SAFETENSORS_NAME,
    read_config,
    read_tensors,
    resolve,
    write_ckpt,
    write_json,
    write_safetensors,
)
from harness.core.naming.engine import Canonical, detect, from_canonical, to_canonical
from harness.core.naming.scheme import Scheme, builtin_names, candidates

TARGETS = {"hf": ("hf", "safetensors"), "ms": ("hf", "ckpt"), "ms-zoo": ("ms-zoo", "ckpt"),
           "ms-cells": ("ms-cells", "ckpt")}
FORMATS = ("safetensors", "ckpt")


@dataclasses.dataclass
class Converted:
    source: Canonical
    target: Scheme
    weights: Path
    config: Path | None
    n_tensors: int


def target_scheme(to: str, family: str) -> tuple[Scheme, str]:
    """(scheme, default format) of a --to value."""
    if to in TARGETS:
        name, fmt = TARGETS[to]
        return candidates(name, family)[0], fmt
    if to in builtin_names(family):   # a built-in scheme beyond the targets (hf-legacy): Hugging Face's format
        return candidates(to, family)[0], "safetensors" if to.startswith("hf") else "ckpt"
    if to.endswith(".toml") or Path(to).is_file():
        return candidates(to, family)[0], "ckpt"
    raise BadInput(f"unknown target {to!r}",
                   f"use one of: {', '.join(dict.fromkeys([*TARGETS, *builtin_names(family)]))}, or a map file (.toml)")


def read_canonical(src: Path, spec: str | None = None,
                   cfg: ModelConfig | None = None) -> tuple[Canonical, ModelConfig | None, Path]:
    """(canonical state, config (given, else config.json beside src, else None), weights file)."""
    weights, cfg_path = resolve(src)
    if cfg is None and cfg_path is not None:
        cfg = read_config(cfg_path)
    state = read_tensors(weights)
    if not state:
        raise BadInput(f"{weights}: holds no tensors", "point at a checkpoint of the model")
    scheme, prefix = detect(list(state), spec, cfg.family if cfg else None, what=str(weights))
    return to_canonical(scheme, state, prefix), cfg, weights


def check_complete(canonical: Canonical, weights: Path, cfg: ModelConfig | None) -> None:
    """BadInput unless every stored name is accounted for and, given a config, the canonical tensors
    are its table (names and shapes)."""
    c = canonical
    if c.unmapped:
        raise BadInput(f"{weights}: {len(c.unmapped)} tensor(s) the {c.scheme.label} map does not account for: "
                       + ", ".join(c.unmapped[:5]) + (" ..." if len(c.unmapped) > 5 else ""),
                       "name the source's scheme (--from), or extend the map with rules or [[ignore]] patterns")
    if c.problems:
        raise BadInput(f"{weights}: the {c.scheme.label} map does not fit: {c.problems[0]}",
                       "fix the map (its axis, transpose or parts), or name another scheme with --from")
    if c.broken_ties:
        t = c.broken_ties[0]
        raise BadInput(f"{weights}: {t.stored} is tied to {t.canonical} but {t.note}",
                       "a tied weight stored twice must hold one value; fix the checkpoint")
    if cfg is None:
        return
    expected = families.param_shapes(cfg)
    missing = [n for n in expected if n not in c.tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BadInput(f"{weights}: lacks {missing[0]}{more} of the {cfg.family} table "
                       f"(hidden {cfg.hidden}, layers {cfg.layers})",
                       "use the config that belongs to this checkpoint (--config / --size)")
    for name, shape in expected.items():
        if tuple(c.tensors[name].shape) != tuple(shape):
            raise BadInput(f"{weights}: {name} has shape {tuple(c.tensors[name].shape)} "
                           f"(from {c.origin[name].text()}), the config's table {tuple(shape)}",
                           "use the config that belongs to this checkpoint, or fix the map's transpose")
    extra = [n for n in c.tensors if n not in expected]
    if extra:
        raise BadInput(f"{weights}: {extra[0]} is not in the config's {cfg.family} table",
                       "use the config that belongs to this checkpoint (--config / --size)")


def convert(src: Path, to: str, out: Path, spec: str | None = None, cfg: ModelConfig | None = None,
            fmt: str | None = None, size: str | None = None) -> Converted:
    """size: the model's preset (cases/sizes.toml), of the family the source's names say, in place of cfg."""
    canonical, cfg, weights = read_canonical(src, spec, cfg)
    family = canonical.scheme.family
    if size is not None:
        cfg = preset(family, size)
    if cfg is not None and cfg.family != family:
        raise BadInput(f"the config is a {cfg.family} model, {weights} holds {family} names",
                       "use the config that belongs to this checkpoint")
    check_complete(canonical, weights, cfg)
    target, default_fmt = target_scheme(to, family)
    fmt = fmt or default_fmt
    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    if to == "hf" and cfg is None:
        raise BadInput(f"{weights}: no config.json beside it, and a Hugging Face folder needs one",
                       "pass --config CONFIG.json or --size PRESET")
    stored = from_canonical(target, canonical.tensors)   # in the target scheme's own order
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{out}: cannot create the output folder: {e.strerror or e}",
                       "choose a writable --out folder") from None
    if fmt == "safetensors":
        path = out / SAFETENSORS_NAME
        write_safetensors(path, stored, {"format": "pt"})
    else:
        path = out / CKPT_NAME
        write_ckpt(path, stored)
    config = None
    if cfg is not None:
        config = out / CONFIG_NAME
        write_json(config, cfg.to_hf())
    return Converted(canonical, target, path, config, len(stored))
