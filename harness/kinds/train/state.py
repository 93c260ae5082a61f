"""The weights a training case starts from, and its batches, in numpy: the same arrays go to every run.

- a seeded preset: harness.core.seeded_init.init_state(cfg, seed) (as `python -m harness init`; BERT
  with the masked-LM head, drawn after the encoder from the same generator, as `init --head mlm`);
- the real MiniLM: its checkpoint, with a masked-LM head drawn from the seed (harness.core.lm_head:
  it has none; its pooler is dropped), which the case's setup row says;
- a grown model: the growth case's plan, built for the models with the head (the head grows with
  the model) and executed in numpy (execute_recipes_numpy, bit-identical to both frameworks'
  expanders: the growth kind's param rows and tests/test_expand.py), on its seeded or real source.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.core.batches import Batch, draw_batches
from harness.core.families import param_shapes
from harness.core.seeded_init import init_state
from harness.kinds.train.cases import TrainCase
from harness.suite.corpus import english_ids


def _source_state(cfg, weights: str, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """(state of cfg, a note): seeded, or MiniLM's checkpoint (with a seeded head where cfg has one)."""
    if weights != "minilm":
        return init_state(cfg, seed), f"seeded (seed {seed})"
    from harness.core.formats.checkpoint import load_checkpoint
    from harness.core.lm_head import add_mlm_head
    from harness.suite.tokenizer import minilm_dir
    _, state = load_checkpoint(minilm_dir(), dataclasses.replace(cfg, head="none"))
    if cfg.head == "none":
        return state, "MiniLM's checkpoint"
    state, note = add_mlm_head(state, cfg, seed)
    return state, f"MiniLM's checkpoint; {note}"


def initial_state(case: TrainCase) -> tuple[dict[str, np.ndarray], str]:
    """(state of case.cfg's every tensor, in model order; a note on where it came from)."""
    if case.grown:
        from harness.core.plan import build_plan
        from harness.core.recipe import compile_recipes
        from harness.core.reference import execute_recipes_numpy
        from harness.kinds.growth.cases import load_cases
        growth = next(c for c in load_cases() if c.id == case.model)
        src_cfg = dataclasses.replace(growth.src_cfg, head=case.cfg.head)
        plan = build_plan(src_cfg, case.cfg, growth.method, growth.sampling, growth.seed)
        source, how = _source_state(src_cfg, growth.weights, growth.seed)
        state = execute_recipes_numpy(compile_recipes(plan), source)
        note = f"grown by growth case {growth.id} (numpy plan, {growth.method}, {growth.sampling}) from {how}"
        if case.cfg.head == "mlm":
            note += "; the masked-LM head grown with the model"
    else:
        state, note = _source_state(case.cfg, case.weights, case.seed)
    return {n: np.ascontiguousarray(state[n], dtype=np.float32) for n in param_shapes(case.cfg)}, note


def batches(case: TrainCase) -> list[Batch]:
    return draw_batches(english_ids(), case.family, steps=case.setup.steps, batch=case.batch,
                        length=case.length, seed=case.seed, vocab=case.cfg.vocab)
