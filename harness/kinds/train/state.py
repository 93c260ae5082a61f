"""The weights a training case starts from, and its batches, in numpy: the same arrays go to every run.

- a seeded preset: harness.core.seeded_init.init_state(cfg, seed) (as `python -m harness init`);
- the real MiniLM: its checkpoint;
- a grown model: the growth case's plan, compiled to recipes and executed in numpy
  (execute_recipes_numpy, bit-identical to both frameworks' expanders: the growth kind's param rows);
then, for BERT, the masked-LM head where the source had none (harness.core.lm_head.with_lm_head).
"""
from __future__ import annotations

import numpy as np

from harness.core.batches import Batch, draw_batches
from harness.core.families import param_shapes
from harness.core.seeded_init import init_state
from harness.kinds.train.cases import TrainCase
from harness.suite.corpus import english_ids


def _source_state(cfg, source: str, seed: int) -> dict[str, np.ndarray]:
    if source == "minilm":
        from harness.core.formats.checkpoint import load_checkpoint
        from harness.suite.tokenizer import minilm_dir
        _, state = load_checkpoint(minilm_dir(), cfg)
        return state
    return init_state(cfg, seed)


def initial_state(case: TrainCase) -> tuple[dict[str, np.ndarray], str]:
    """(state of case.cfg's every tensor, in model order; a note on where it came from)."""
    if case.grown:
        from harness.core.plan import build_plan
        from harness.core.recipe import compile_recipes
        from harness.core.reference import execute_recipes_numpy
        from harness.kinds.growth.cases import load_cases
        growth = next(c for c in load_cases() if c.id == case.model)
        plan = build_plan(growth.src_cfg, growth.dst_cfg, growth.method, growth.sampling, growth.seed)
        source = _source_state(growth.src_cfg, growth.weights, growth.seed)
        state = execute_recipes_numpy(compile_recipes(plan), source)
        note = f"grown by growth case {growth.id} (numpy plan, {growth.method}, {growth.sampling})"
    else:
        state = _source_state(case.cfg, case.weights, case.seed)
        note = "MiniLM's checkpoint" if case.weights == "minilm" else f"seeded (seed {case.seed})"
    missing = [n for n in param_shapes(case.cfg) if n not in state]
    if missing:
        from harness.core.lm_head import seeded_lm_head
        state.update(seeded_lm_head(case.cfg, case.seed))
        note += f"; masked-LM head seeded (seed {case.seed}): the source has none"
    return {n: np.ascontiguousarray(state[n], dtype=np.float32) for n in param_shapes(case.cfg)}, note


def batches(case: TrainCase) -> list[Batch]:
    return draw_batches(english_ids(), case.family, steps=case.setup.steps, batch=case.batch,
                        length=case.length, seed=case.seed, vocab=case.cfg.vocab)
