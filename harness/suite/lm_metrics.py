"""Language-model measurements on numpy logits, the same for every backend (float64 math).

- NLL: summed next-token negative log-likelihood, loss = mean NLL, perplexity = exp(loss);
- greedy decoding without a cache (the whole sequence again each step), with the
  top-1 / top-2 logit margin of every step, to tell a near tie from a real divergence;
- the first position where two generated sequences differ.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

Forward = Callable[[np.ndarray, np.ndarray], dict]   # (ids (B, T), mask (B, T)) -> {"logits": (B, T, V), ...}


def next_token_nll(logits: np.ndarray, ids: np.ndarray) -> tuple[float, int]:
    """(sum of -log p(ids[:, t+1] | ids[:, :t+1]), number of predicted tokens) of unpadded windows.

    One sequence at a time in float64, so a (T, vocab) float64 copy is the peak."""
    total, count = 0.0, 0
    for row, seq in zip(logits, ids, strict=True):
        x = row[:-1].astype(np.float64)                                    # (T-1, V)
        top = x.max(-1, keepdims=True)
        log_z = np.log(np.exp(x - top).sum(-1)) + top[:, 0]                # (T-1,)
        total += float(np.sum(log_z - x[np.arange(len(x)), seq[1:]]))
        count += len(x)
    return total, count


@dataclasses.dataclass
class Generation:
    tokens: np.ndarray       # (B, n) generated ids
    margins: np.ndarray      # (B, n) top-1 minus top-2 logit at each step (float64)


def greedy(forward: Forward, prompts: np.ndarray, n: int) -> Generation:
    """n greedy steps from unpadded prompts (B, P); ties go to the lower id (numpy argmax)."""
    ids = np.asarray(prompts, dtype=np.int64)
    tokens, margins = [], []
    for _ in range(n):
        last = np.asarray(forward(ids, np.ones_like(ids))["logits"][:, -1], dtype=np.float64)   # (B, V)
        top2 = np.partition(last, -2, axis=-1)[:, -2:]
        nxt = last.argmax(-1)
        tokens.append(nxt)
        margins.append(top2[:, 1] - top2[:, 0])
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    return Generation(np.stack(tokens, 1), np.stack(margins, 1))


def first_divergence(got: np.ndarray, ref: np.ndarray) -> list[tuple[int, int]]:
    """[(sequence, first differing step)] for every sequence whose tokens differ."""
    out = []
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        differ = np.flatnonzero(g != r)
        if differ.size:
            out.append((i, int(differ[0])))
    return out
