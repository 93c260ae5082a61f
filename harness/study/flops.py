"""Training FLOPs, estimated as the papers do (Kaplan et al. 2020, C = 6 N D), stated in full:

    FLOPs per training token = 6 x N + 6 x L x T x d

- N: the parameters a token's forward pass multiplies by: every weight of the layers, and the output
  projection (vocab x hidden: the decoder tied to the word embeddings is a matmul per token, which at
  vocabulary 4096 and hidden 128 is 40% of the study target's N), BERT's MLM transform and bias;
  NOT the embedding tables (word, position, token type: a lookup, no multiply) nor BERT's pooler (the
  masked-LM loss does not reach it; Hugging Face's BertForMaskedLM has none);
- 6 L T d: attention's scores and weighted sums (2 x 2 L T d forward, x 3 with the backward) over a
  window of T tokens;
- 6 = 2 (multiply-add) x 3 (forward, and a backward twice as costly).
Every position of a window is computed (BERT's loss scores 15% of them, its forward runs on all), so
a step costs batch x length tokens for both families. Biases and LayerNorms count in N (they are few).
"""
from __future__ import annotations

from harness.core.config import ModelConfig
from harness.core.families import param_shapes

STATEMENT = ("training FLOPs = tokens x (6 N + 6 L T d) (Kaplan et al.'s C = 6 N D, with attention's "
             "6 L T d per token over windows of T tokens); N = every weight of the layers, biases and LayerNorms, "
             "plus the output projection (vocab x hidden: the decoder tied to the word embeddings is a matmul per "
             "token) and BERT's MLM transform; the embedding tables (word, position, token type: lookups) and "
             "BERT's pooler (the MLM loss does not reach it) are NOT counted. BERT's forward runs on every position "
             "(its loss scores 15%), so a step is batch x length tokens for both families.")

_LOOKUPS = ("wte.", "wpe.", "word_embeddings.", "position_embeddings.", "token_type_embeddings.")


def flops_params(cfg: ModelConfig) -> int:
    """N: the parameters multiplied per token (see the module's docstring)."""
    n = 0
    for name, shape in param_shapes(cfg).items():
        if name.startswith("pooler.") or any(part in name for part in _LOOKUPS):
            continue
        size = 1
        for s in shape:
            size *= s
        n += size
    return n + cfg.vocab * cfg.hidden   # the output projection (tied decoder)


def flops_per_token(cfg: ModelConfig, length: int) -> int:
    return 6 * flops_params(cfg) + 6 * cfg.layers * length * cfg.hidden


def flops_per_step(cfg: ModelConfig, batch: int, length: int) -> int:
    return batch * length * flops_per_token(cfg, length)
