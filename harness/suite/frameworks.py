"""The two model trees behind one typed face, imported on first use (the suite never imports a
framework at import time). Each tree's six modules are described by a Protocol below, so a
reader (or an IDE) can follow a call from the suite into models_pt / models_ms."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from harness.core import interrupts
from harness.core.errors import BadInput
from harness.core.vocab import FRAMEWORKS, TITLES


class Models(Protocol):        # models_pt/__init__.py, models_ms/__init__.py
    def build_model(self, cfg) -> Any: ...
    def load_numpy_state(self, model, state: dict[str, np.ndarray], dtype: str = "float32") -> None: ...
    def model_state(self, model) -> dict[str, np.ndarray]: ...
    def run_forward(self, model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> dict: ...


class IO(Protocol):            # models_*/io.py
    WEIGHTS_NAME: str
    def to_tensor(self, array: np.ndarray) -> Any: ...
    def to_numpy(self, tensor) -> np.ndarray: ...
    def save(self, out_dir: Path, cfg, state: dict) -> Path: ...
    def load(self, path: Path, cfg=None, allow_nonfinite: bool = False) -> tuple[Any, dict]: ...
    def weights_writer(self, path: Path, layout: list) -> Any: ...


class Expander(Protocol):      # models_*/expand.py
    EXECUTORS: tuple[str, ...]
    def choose_executor(self, name: str | None = None) -> tuple[str, str]: ...
    def expand(self, src_state: dict, recipes: list, on_tensor: Callable[[str], None] | None = None,
               executor: str | None = None) -> dict: ...
    def expand_one(self, src_state: dict, recipe, executor: str | None = None) -> Any: ...


class Distill(Protocol):       # models_*/distill.py: TinyBERT models, one distillation step, N steps
    BertForSequenceClassification: type
    TinyBertForSequenceClassification: type
    AdamWeightDecay: type
    DistillTrainer: type
    def distill_step(self, teacher, student, input_ids, attention_mask, setup) -> Any: ...
    def distill_models(self, teacher_cfg, student_cfg, num_labels: int, teacher_state: dict, student_state: dict,
                       dtype: str = "float32") -> tuple[Any, Any]: ...


class Train(Protocol):         # models_*/train.py: pre-training steps (LM loss, clipping, AdamWeightDecay)
    Trainer: type
    def trainable(self, cfg, state: dict[str, np.ndarray], dtype: str = "float32") -> Any: ...
    def lm_loss(self, logits, labels, weights) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Framework:
    name: str                  # "pt" | "ms"
    title: str                 # "PyTorch" | "MindSpore"
    models: Models
    io: IO
    expand: Expander
    distill: Distill
    train: Train


def check_framework(name: str) -> str:
    if name not in FRAMEWORKS:
        raise BadInput(f"unknown framework {name!r}", f"use one of: {', '.join(FRAMEWORKS)} (or both)")
    return name


def load(name: str) -> Framework:
    """The tree of framework `name` (models_pt or models_ms), imported now if it was not."""
    with interrupts.held():   # a signal inside a framework's native import is acted on after it
        if check_framework(name) == "pt":
            import models_pt as models
            from models_pt import distill, expand, io, train
        else:
            import models_ms as models
            from models_ms import distill, expand, io, train
    return Framework(name=name, title=TITLES[name], models=cast(Models, models), io=cast(IO, io),
                     expand=cast(Expander, expand), distill=cast(Distill, distill),
                     train=cast(Train, train))
