"""The inputs of a forward, checked once for every backend (models_pt, models_ms, onnx_backend)."""
from __future__ import annotations

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput


def check_forward_inputs(cfg: ModelConfig, input_ids, attention_mask=None) -> tuple[np.ndarray, np.ndarray | None]:
    """(input_ids as int64 (B, T), attention_mask as given or None) after checking: 2-D, 1 <= T <=
    positions, every id in [0, vocab), the mask one entry per token. BadInput otherwise."""
    input_ids = np.asarray(input_ids, dtype=np.int64)
    if input_ids.ndim != 2 or not 0 < input_ids.shape[1] <= cfg.positions:
        raise BadInput(f"input_ids: expected shape (batch, tokens <= {cfg.positions}), found {input_ids.shape}",
                       "pass a 2-D batch no longer than the model's positions")
    if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= cfg.vocab):
        raise BadInput(f"input_ids: ids must lie in [0, {cfg.vocab}), found {input_ids.min()}..{input_ids.max()}",
                       "tokenise with the model's own vocabulary")
    if attention_mask is not None:
        attention_mask = np.asarray(attention_mask)
        if attention_mask.shape != input_ids.shape:
            raise BadInput(f"attention_mask: expected shape {input_ids.shape}, found {attention_mask.shape}",
                           "pass one 0/1 entry per token")
    return input_ids, attention_mask
