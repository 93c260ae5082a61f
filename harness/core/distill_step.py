"""What a TinyBERT distillation step is told, and its optimizer rule, framework-neutral.

StepSetup travels to both model trees (models_*/distill.py); decays() is TinyBERT's no-decay
list, shared by both trees and by the numpy reference of the optimizer rule below.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class StepSetup:
    """One framework's step; the same for both sides unless a planted fault changes one."""
    stage: str                   # "gd" (general distillation) | "td" (task distillation: + prediction)
    layer_map: tuple[int, ...]   # layer_map[m - 1] = g(m): the teacher layer (from 1) student layer m learns
    temperature: float           # task distillation's soft cross-entropy
    lr: float
    weight_decay: float
    beta1: float = 0.9           # TinyBERT's BertAdam and MindSpore's nn.AdamWeightDecay defaults
    beta2: float = 0.999
    eps: float = 1e-6

    def differences(self, other: StepSetup) -> list[str]:
        """'key: self vs other' for every setting that differs."""
        return [f"{f.name}: {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
                for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]


RULE = ("AdamWeightDecay without bias correction (BERT's and TinyBERT's BertAdam without its schedule, "
        "MindSpore's nn.AdamWeightDecay): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, "
        "p -= lr (m / (eps + sqrt v) + wd p), no decay on biases and LayerNorm")


def term_names(setup: StepSetup) -> list[str]:
    """The loss terms of a step, in the order the models compute them; "total" (their sum) last."""
    layers = range(1, len(setup.layer_map) + 1)
    return (["embedding", *(f"hidden.{m}" for m in layers), *(f"attention.{m}" for m in layers)]
            + (["prediction"] if setup.stage == "td" else []) + ["total"])


def decays(name: str) -> bool:
    """TinyBERT's no_decay list: biases and LayerNorm parameters get no weight decay."""
    return not (name.endswith(".bias") or ".LayerNorm." in name)


def adam_weight_decay_reference(params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                                setup: StepSetup) -> dict[str, np.ndarray]:
    """The parameters after one step of RULE from m = v = 0, in float32 numpy: what each
    framework's step is checked against, each on its own gradients."""
    f32 = np.float32
    one, b1, b2 = f32(1.0), f32(setup.beta1), f32(setup.beta2)
    eps, lr, wd = f32(setup.eps), f32(setup.lr), f32(setup.weight_decay)
    after = {}
    for name, p in params.items():
        g = np.asarray(grads[name], dtype=f32)
        m = (one - b1) * g            # b1 * 0 + (1 - b1) g
        v = (one - b2) * np.square(g)
        update = m / (eps + np.sqrt(v))
        if decays(name):
            update = wd * p + update
        after[name] = p - lr * update
    return after
