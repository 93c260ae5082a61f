"""What each arm of the study starts from, in numpy (the same arrays go to PyTorch and MindSpore):

- scratch: the target's seeded initialisation (harness.core.seeded_init, as `python -m harness init`);
- fpi_paper, fpi_balanced, aki, lossless: the study's pre-trained source grown into the target by the
  growth plan (harness.core.plan, seeded by the arm's seed), compiled to recipes and executed in numpy,
  bit-identical to both frameworks' expanders (the growth kind proves it); lossless with balanced
  sampling (BERT's post-LN needs it, docs/lossless.md; GPT-2 allows either);
- depth: the depth-only source (the target's width) stacked to the target's depth (FPI depth map,
  paper Algorithm 1: target layer t takes source layer t mod L);
- minilm: the real MiniLM (its checkpoint) grown into the MiniLM target by FPI (paper sampling).
BERT trains as BertForMaskedLM (head "mlm"): the study's sources have the head and the plan grows it
with the model; MiniLM, which has none, gets a seeded one first (harness.core.lm_head, as the train kind).
"""
from __future__ import annotations

import numpy as np

from harness.core.config import ModelConfig
from harness.core.families import param_shapes
from harness.core.seeded_init import init_state

# arm -> (which source, growth method, sampling)
GROWTH = {"fpi_paper": ("source", "fpi", "paper"), "fpi_balanced": ("source", "fpi", "balanced"),
          "aki": ("source", "aki", "paper"), "depth": ("source_deep", "fpi", "paper"),
          "lossless": ("source", "lossless", "balanced"), "minilm": ("minilm", "fpi", "paper")}


def _complete(cfg: ModelConfig, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: np.ascontiguousarray(state[n], dtype=np.float32) for n in param_shapes(cfg)}


def scratch_state(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    return _complete(cfg, init_state(cfg, seed))


def minilm_state(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """MiniLM's checkpoint as cfg (BertForMaskedLM): its encoder, and a masked-LM head seeded (it has none)."""
    import dataclasses

    from harness.core.formats.checkpoint import load_checkpoint
    from harness.core.lm_head import add_mlm_head
    from harness.suite.tokenizer import minilm_dir
    _, state = load_checkpoint(minilm_dir(), dataclasses.replace(cfg, head="none"))
    state, _ = add_mlm_head(state, cfg, seed)
    return _complete(cfg, state)


def grown_config(arm: str, src: ModelConfig, dst: ModelConfig) -> ModelConfig:
    """The target as grown (a lossless target's LayerNorm epsilon is scaled: harness.core.lossless)."""
    from harness.core.plan import build_plan
    _, method, sampling = GROWTH[arm]
    return build_plan(src, dst, method, sampling, 0).dst


def grown_state(arm: str, src: ModelConfig, source: dict[str, np.ndarray], dst: ModelConfig,
                seed: int) -> dict[str, np.ndarray]:
    from harness.core.plan import build_plan
    from harness.core.recipe import compile_recipes
    from harness.core.reference import execute_recipes_numpy
    _, method, sampling = GROWTH[arm]
    plan = build_plan(src, dst, method, sampling, seed)
    src_state = {n: source[n] for n in param_shapes(src)}
    return _complete(plan.dst, execute_recipes_numpy(compile_recipes(plan), src_state))
