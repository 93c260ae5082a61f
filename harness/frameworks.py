"""Lazy access to the two model trees, so harness never imports a framework at import time."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

from harness.errors import BadInput

FRAMEWORKS = ("pt", "ms")
NAMES = {"pt": "PyTorch", "ms": "MindSpore"}


def check_framework(name: str) -> str:
    if name not in FRAMEWORKS:
        raise BadInput(f"unknown framework {name!r}", f"use one of: {', '.join(FRAMEWORKS)} (or both)")
    return name


def load(name: str) -> SimpleNamespace:
    """The tree of framework `name`: .models (build_model, load_numpy_state, run_forward),
    .io (save, load, to_tensor, to_numpy, WEIGHTS_NAME), .expand (expand) and .distill
    (TinyBERT models and distill_step)."""
    check_framework(name)
    package = f"models_{name}"
    return SimpleNamespace(name=name, title=NAMES[name],
                           models=importlib.import_module(package),
                           io=importlib.import_module(f"{package}.io"),
                           expand=importlib.import_module(f"{package}.expand"),
                           distill=importlib.import_module(f"{package}.distill"))
