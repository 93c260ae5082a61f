"""An inference case's inputs: its weights (drawn, or grown by the numpy recipe executor) and its
token windows (English text through MiniLM's tokenizer, or seeded ids), and one padded batch."""
from __future__ import annotations

import numpy as np

from harness.core.seeded_init import init_state
from harness.kinds.inference.cases import InferCase
from harness.suite.corpus import TOKENIZER_NAME, english_ids, seeded_ids, windows

PAD_ID = 0                             # [PAD] of MiniLM's tokenizer


def case_state(case: InferCase) -> tuple[dict[str, np.ndarray], str]:
    """The case's float32 weights: drawn from its seed, or grown from a drawn source."""
    cfg = case.cfg
    if not case.grown_from:
        return init_state(cfg, case.seed), f"{cfg.name} drawn from seed {case.seed} (random weights)"
    from harness.core.plan import build_plan
    from harness.core.recipe import compile_recipes
    from harness.core.reference import execute_recipes_numpy
    src = case.src_cfg
    plan = build_plan(src, cfg, case.method, case.sampling, case.seed)
    state = execute_recipes_numpy(compile_recipes(plan), init_state(src, case.seed))
    return state, (f"{cfg.name} grown from {src.name} (seed {case.seed}, random weights) by "
                   f"{case.method}/{case.sampling}, numpy recipe executor")


def case_windows(case: InferCase) -> tuple[np.ndarray, str]:
    """(windows, length) token ids and what they are."""
    cfg = case.cfg
    if case.text == "english":
        ids = english_ids()
        what = f"English text (data/english/rust_book.txt), {TOKENIZER_NAME} tokenizer"
    else:
        ids = seeded_ids(cfg.vocab, case.windows * case.length, case.seed)
        what = f"seeded token ids in [0, {cfg.vocab}) (no offline tokenizer for this vocabulary)"
    return windows(ids, case.windows, case.length, case.id), f"{case.windows} x {case.length} tokens of {what}"


def padded_batch(wins: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `batch` windows; the last row is right-padded from its middle (PAD_ID, mask 0)."""
    ids = wins[:batch].copy()
    mask = np.ones_like(ids)
    if ids.shape[1] >= 2:
        mask[-1, ids.shape[1] // 2:] = 0
        ids[-1, ids.shape[1] // 2:] = PAD_ID
    return ids, mask
