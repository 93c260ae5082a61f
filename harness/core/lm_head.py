"""BERT's masked-LM head (Hugging Face's BertForMaskedLM, harness.core.families.bert) for a model
that has none: the config with the head, and the head's tensors drawn by numpy from a seed.

    cfg = with_mlm_head(cfg)                                  # head "mlm": no pooler, cls.predictions.*
    state, note = add_mlm_head(state, cfg, seed)              # a BertModel state -> a BertForMaskedLM one

The head is drawn as `init` draws any tensor (harness.core.seeded_init: dense weight normal(0,
initializer_range), LayerNorm 1 / 0, biases 0), from its own generator default_rng([seed, HEAD_STREAM]),
so the same (config, seed) gives the same head on every machine and in both frameworks. The
pooler, which BertForMaskedLM does not have, is dropped.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.families import bert, param_shapes

HEAD_STREAM = 1   # default_rng([seed, 1]): the head's draws, apart from init_state's default_rng(seed)


def with_mlm_head(cfg: ModelConfig) -> ModelConfig:
    """The BertForMaskedLM config of a BERT config (the same config if it has the head)."""
    if cfg.family != bert.NAME:
        raise BadInput(f"{cfg.name or 'the model'} is a {cfg.family} model: the masked-LM head is BERT's",
                       "train GPT-2 with its tied LM head (causal LM)")
    return dataclasses.replace(cfg, head="mlm")


def seeded_mlm_head(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """The head's tensors for cfg (head or not), float32, drawn from default_rng([seed, HEAD_STREAM])."""
    rng = np.random.default_rng([seed, HEAD_STREAM])
    std = np.float32(cfg.initializer_range)
    out = {}
    for name, shape in bert.head_shapes(cfg).items():
        if name.endswith(".bias"):
            out[name] = np.zeros(shape, np.float32)
        elif name.startswith(bert.TIED_HEAD_NORM):
            out[name] = np.ones(shape, np.float32)
        else:
            out[name] = rng.standard_normal(shape, dtype=np.float32) * std
    return out


def add_mlm_head(state: dict[str, np.ndarray], cfg: ModelConfig, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """(state of with_mlm_head(cfg), in table order; a note saying what was done, "" if nothing).
    A state that has the head keeps it; one without gets the seeded head and loses its pooler."""
    head_cfg = with_mlm_head(cfg)
    head = bert.head_shapes(head_cfg)
    if all(n in state for n in head):
        note = ""
    else:
        state = {**state, **seeded_mlm_head(head_cfg, seed)}
        note = f"masked-LM head seeded (seed {seed}): the source has none" + (
            "; its pooler dropped (BertForMaskedLM has none)" if "pooler.dense.weight" in state else "")
    return {n: state[n] for n in param_shapes(head_cfg)}, note
