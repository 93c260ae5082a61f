"""The model families, one module each (bert.py, gpt2.py) holding all of the family's knowledge:
tensor table, layer prefix, config.json mapping, growth specs, output and hidden-state names.

The tensor table is the single definition of what a checkpoint holds: both model trees
name their parameters exactly so, the seeded init draws them in this order, loaders check
files against it, and the expanders walk it.
"""
from __future__ import annotations

from types import ModuleType

from harness.core.errors import BadInput
from harness.core.families import bert, gpt2

FAMILIES: dict[str, ModuleType] = {bert.NAME: bert, gpt2.NAME: gpt2}
# Buffers some Hugging Face checkpoints carry beside the parameters; dropped on load.
IGNORED_BUFFERS = frozenset().union(*(f.BUFFERS for f in FAMILIES.values()))


def get(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise BadInput(f"unknown model family {name!r}", f"use one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def param_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """Every parameter tensor name -> shape, in Hugging Face's state-dict order."""
    return get(cfg.family).param_shapes(cfg)


def layer_prefix(family_name: str, i: int) -> str:
    return get(family_name).layer_prefix(i)
