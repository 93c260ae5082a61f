"""Training batches drawn once by numpy from a seed, fed identically to every framework.

    batches = draw_batches(stream, family, steps=200, batch=8, length=32, seed=0, vocab=cfg.vocab)

- Windows: `batch` windows per step at offsets drawn from default_rng([seed, 0]) over the token
  stream (GPT-2 reads length + 1 tokens: inputs and next-token labels; BERT reads length - 2 and
  wraps them as [CLS] ... [SEP], as BERT's pre-training inputs are).
- GPT-2 (causal LM): labels = the next token, weight 1 at every position.
- BERT (masked LM, BERT's create_pretraining_data / Hugging Face's DataCollatorForLanguageModeling):
  round(15%) of each window's non-special positions (at least 1), drawn from default_rng([seed, 1]);
  of those, 80% become [MASK], 10% a random token, 10% stay; labels = the original tokens at the
  chosen positions and IGNORE (-100, Hugging Face's convention) elsewhere; weight 1 at the chosen
  positions, 0 elsewhere (the loss is the weighted mean, so both frameworks sum the same terms).
- A model whose vocabulary cannot hold the tokenizer's ids (tiny presets: 1000) reads the stream
  in `compact` ids: the vocab - 4 most frequent tokens by rank, then [UNK] (every other token),
  [CLS], [SEP] and [MASK] (the last id). Otherwise ids are the tokenizer's ([CLS] 101, [SEP] 102,
  [MASK] 103).
"""
from __future__ import annotations

import dataclasses

import numpy as np

CLS_ID, SEP_ID, MASK_ID = 101, 102, 103   # BERT's vocabularies (MiniLM's English one and the seed's Chinese one)
MLM_FRACTION, MASK_SHARE, RANDOM_SHARE = 0.15, 0.8, 0.1
IGNORE = -100          # the label of a position the loss does not score (Hugging Face's ignore_index)


@dataclasses.dataclass(frozen=True)
class Batch:
    input_ids: np.ndarray    # (B, T) int64
    labels: np.ndarray       # (B, T) int64: the token to predict at each position (IGNORE where not scored)
    weights: np.ndarray      # (B, T) float32: 1 where the loss scores a position


@dataclasses.dataclass(frozen=True)
class Specials:
    cls: int
    sep: int
    mask: int


def compact(stream: np.ndarray, vocab: int) -> tuple[np.ndarray, Specials]:
    """(stream in ids < vocab, the special ids): the tokenizer's ids when they fit, else frequency ranks."""
    if int(stream.max()) < vocab and vocab > MASK_ID:
        return stream, Specials(CLS_ID, SEP_ID, MASK_ID)
    tokens, inverse, counts = np.unique(stream, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")          # most frequent first; ties by token id
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    unk = vocab - 4
    return np.minimum(rank[inverse], unk).astype(np.int64), Specials(vocab - 3, vocab - 2, vocab - 1)


def draw_batches(stream: np.ndarray, family: str, *, steps: int, batch: int, length: int, seed: int,
                 vocab: int) -> list[Batch]:
    ids, special = compact(np.asarray(stream, dtype=np.int64), vocab)
    span = length + 1 if family == "gpt2" else length - 2
    if span < 1:
        raise ValueError(f"a masked-LM window of {length} tokens has no room between [CLS] and [SEP]")
    if ids.size <= span:
        raise ValueError(f"the text has {ids.size} tokens, a window needs {span + 1}")
    starts = np.random.default_rng([seed, 0]).integers(0, ids.size - span, (steps, batch))
    windows = ids[starts[..., None] + np.arange(span)]   # (steps, B, span)
    if family == "gpt2":
        ones = np.ones((batch, length), np.float32)
        return [Batch(w[:, :-1].copy(), w[:, 1:].copy(), ones) for w in windows]
    rng = np.random.default_rng([seed, 1])
    n_pick = max(1, round(MLM_FRACTION * span))
    out = []
    for w in windows:
        w = np.concatenate([np.full((batch, 1), special.cls), w, np.full((batch, 1), special.sep)], axis=1)
        inputs, labels = w.copy(), np.full_like(w, IGNORE)
        weights = np.zeros(w.shape, np.float32)
        for b in range(batch):
            picked = 1 + rng.permutation(span)[:n_pick]    # never [CLS] (0) or [SEP] (length - 1)
            roll = rng.random(n_pick)
            randoms = rng.integers(0, vocab, n_pick)
            labels[b, picked], weights[b, picked] = w[b, picked], 1.0
            inputs[b, picked] = np.where(roll < MASK_SHARE, special.mask,
                                         np.where(roll < MASK_SHARE + RANDOM_SHARE, randoms, w[b, picked]))
        out.append(Batch(inputs, labels, weights))
    return out
