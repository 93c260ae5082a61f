"""Lazy access to the two model trees, so harness never imports a framework at import time."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

from harness import interrupts
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
                           models=native(package),
                           io=native(f"{package}.io"),
                           expand=native(f"{package}.expand"),
                           distill=native(f"{package}.distill"))


def native(module: str):
    """importlib.import_module(module), SIGINT / SIGTERM held until it is done (harness.interrupts:
    interrupted, a framework's native initialisation fails, or crashes the process at exit)."""
    with interrupts.held():
        return importlib.import_module(module)
