"""The pre-training optimizer of the train cases, framework-neutral: what both frameworks are told
(TrainSetup), the learning-rate schedule, global-norm clipping and the AdamWeightDecay rule, in numpy.

Both model trees (models_*/train.py) receive the same float32 learning rates from `schedule`
and apply `clip_scale`'s rule and the rule of `adam_weight_decay_step`; the tests check each
framework's step against these numpy definitions, so a difference between the frameworks is
never a difference of rules.

The rule is BERT's and TinyBERT's AdamWeightDecay (MindSpore's nn.AdamWeightDecay; no bias
correction; harness.core.distill_step.RULE), with
- a linear warm-up to the peak lr over `warmup` steps, then a linear decay to 0 at step `steps`:
  lr(t) = peak * min((t + 1) / warmup, (steps - t) / (steps - warmup)) for the t-th step (from 0),
  computed in float64 and handed to both sides as float32 (HF's linear schedule, counted so that
  the first step's lr is not 0);
- global-norm clipping as MindSpore's ops.clip_by_global_norm and TensorFlow's: g * clip / max(norm,
  clip) with norm = sqrt(sum of every g^2). torch's clip_grad_norm_ is not quite this (it
  multiplies by clip / (norm + 1e-6)), so models_pt writes the rule out (tests/test_train.py
  measures the difference);
- no weight decay on biases and LayerNorm parameters (BERT's and GPT-2's names alike).
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """One framework's optimizer; the same on both sides unless a planted fault changes one."""
    steps: int
    lr: float = 1e-3             # the peak learning rate
    warmup: int = 10             # steps of linear warm-up
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6            # BERT's AdamWeightDecay and MindSpore's default
    clip: float = 1.0            # global-norm clipping; 0: none
    exempt_norms_and_biases: bool = True   # BERT's no-decay list (False: a planted fault)

    def differences(self, other: TrainSetup) -> list[str]:
        """'key: self vs other' for every setting that differs."""
        return [f"{f.name}: {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
                for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def decays(name: str, setup: TrainSetup) -> bool:
    """Whether a parameter gets weight decay: not biases, not LayerNorm (BERT `.LayerNorm.`,
    GPT-2 `ln_1`, `ln_2`, `ln_f`), unless the setup exempts nothing."""
    if not setup.exempt_norms_and_biases:
        return True
    is_norm = ".LayerNorm." in name or ".ln_" in name
    return not (name.endswith(".bias") or is_norm)


def schedule(setup: TrainSetup) -> np.ndarray:
    """(steps,) float32: the learning rate of every step, warm-up then linear decay."""
    t = np.arange(setup.steps, dtype=np.float64)
    warm = (t + 1) / max(setup.warmup, 1)
    decay = (setup.steps - t) / max(setup.steps - setup.warmup, 1)
    return (setup.lr * np.clip(np.minimum(warm, decay), 0.0, 1.0)).astype(np.float32)


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt(sum of every gradient element squared), in float64."""
    return float(np.sqrt(sum(float(np.sum(np.square(g.astype(np.float64)))) for g in grads.values())))


def clip_by_global_norm(grads: dict[str, np.ndarray], clip: float) -> dict[str, np.ndarray]:
    """MindSpore's / TensorFlow's rule: every g * clip / max(norm, clip), in the gradients' dtype."""
    if not clip:
        return dict(grads)
    norm = global_norm(grads)
    dtype = next(iter(grads.values())).dtype
    return {n: g * dtype.type(clip) / dtype.type(max(norm, clip)) for n, g in grads.items()}


@dataclasses.dataclass
class AdamState:
    m: dict[str, np.ndarray]
    v: dict[str, np.ndarray]

    @classmethod
    def zeros(cls, params: dict[str, np.ndarray]) -> AdamState:
        return cls({n: np.zeros_like(p) for n, p in params.items()}, {n: np.zeros_like(p) for n, p in params.items()})


def adam_weight_decay_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: AdamState,
                           lr: float, setup: TrainSetup) -> dict[str, np.ndarray]:
    """The parameters after one step of the rule at learning rate lr (state's moments are updated
    in place), in the parameters' dtype:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr (m / (eps + sqrt v) + wd p)."""
    after = {}
    for name, p in params.items():
        f = p.dtype.type
        g = np.asarray(grads[name], dtype=p.dtype)
        state.m[name] = f(setup.beta1) * state.m[name] + (f(1) - f(setup.beta1)) * g
        state.v[name] = f(setup.beta2) * state.v[name] + (f(1) - f(setup.beta2)) * np.square(g)
        update = state.m[name] / (f(setup.eps) + np.sqrt(state.v[name]))
        if decays(name, setup):
            update = f(setup.weight_decay) * p + update
        after[name] = p - f(lr) * update
    return after
