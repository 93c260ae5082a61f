"""The lossless method's rules outside the recipes (docs/lossless.md derives them): which growths it
keeps exact, the grown model's LayerNorm epsilon, its depth order, and which hidden state of the
grown model equals which of the source's.

A family's residual stream grows one of two ways (its LOSSLESS_STREAM):
  "mean"    pre-LN (GPT-2): every new coordinate holds the mean of the old ones; any D >= d;
  "copies"  post-LN (BERT): every coordinate copied D / d times; D a multiple of d only.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.core import families
from harness.core.vocab import LOSSLESS

METHOD = LOSSLESS


def stream(family: str) -> str:
    return families.get(family).LOSSLESS_STREAM


def target_eps(src, dst) -> float:
    """The grown model's LayerNorm epsilon. Over [x, m(x) x k] a LayerNorm sees the same mean and the
    variance times d / D; the old coordinates' weights are scaled by sqrt(d / D), which gives the old
    output exactly when epsilon is scaled by d / D as well (GPT-2's 1e-5 is not negligible against
    the variance of a small model's residual stream). Copies keep the variance: epsilon unchanged."""
    if stream(src.family) == "mean" and dst.hidden != src.hidden:
        return src.eps * src.hidden / dst.hidden
    return src.eps


def target_config(src, dst):
    """`dst` as the lossless growth makes it: its epsilon is target_eps (every other size as asked)."""
    return dataclasses.replace(dst, eps=target_eps(src, dst))


def problems(src, dst, sampling: str) -> list[tuple[str, str]]:
    """(problem, fix) for every reason the growth src -> dst cannot be lossless; [] when it can."""
    if stream(src.family) != "copies" or dst.hidden == src.hidden:
        return []
    d, D, dh = src.hidden, dst.hidden, src.head_size
    if D % d:
        lo, hi = (D // d) * d, (D // d + 1) * d
        options = " or ".join(f"hidden {w} (heads {w // dh})" for w in (lo, hi) if w > d) or f"hidden {hi}"
        return [(f"lossless {src.family} growth needs the target hidden size to be a multiple of the "
                 f"source's: {d} -> {D} is not ({D / d:.4g} x); a post-LN LayerNorm keeps its output only "
                 f"when every coordinate is copied equally often",
                 f"choose {options}, keep hidden {d} (depth, heads and FFN may still grow), or grow by "
                 f"method fpi (approximate: its preservation row measures the residual)")]
    if sampling != "balanced":
        return [(f"lossless {src.family} widening {d} -> {D} needs every coordinate copied {D // d} times, "
                 f"which only sampling balanced does", "pass sampling balanced (--sampling balanced)")]
    return []


def depth_order(L: int, L_new: int) -> np.ndarray:
    """Target layer t -> source layer: the counts of growth.md's stacking (k = L'//L each, one more
    for the top r = L'%L), each source layer's run in place and ENDING with the original layer;
    the layers before it in its run are inserted blocks (identities when grown). 2 -> 5: 0 0 1 1 1."""
    k, r = divmod(L_new, L)
    runs = [k + (s >= L - r) for s in range(L)]
    return np.repeat(np.arange(L, dtype=np.int64), runs)


def originals(depth_map: np.ndarray) -> np.ndarray:
    """Per target layer: True for the original layer (the last of its run), False for an inserted block."""
    dm = np.asarray(depth_map)
    return np.append(dm[1:] != dm[:-1], True)


def state_pairs(plan) -> list[tuple[int, int | None]]:
    """(grown hidden state, source hidden state) for every hidden state of the grown model (0: the
    embeddings, t + 1: after target block t). An inserted block is the identity, so the state after
    it equals the state before its run's original, source state s. None: not comparable, a post-LN
    state whose LayerNorm affine moved to the last inserted block of the next run (it holds the
    normalised vector, the affine comes later)."""
    dm, orig = plan.depth_map.tolist(), originals(plan.depth_map)
    moved = stream(plan.src.family) == "copies"
    pairs: list[tuple[int, int | None]] = [(0, None if moved and not orig[0] else 0)]
    for t, s in enumerate(dm):
        if orig[t]:
            followed = t + 1 < len(dm) and not orig[t + 1]
            pairs.append((t + 1, None if moved and followed else s + 1))
        else:
            pairs.append((t + 1, s if not moved or orig[t + 1] else None))
    return pairs


def expected_state(plan, source: np.ndarray, normed: bool) -> np.ndarray:
    """The grown model's hidden state that equals `source` (..., d), in float64. copies: source[..., g_h].
    mean: [source, m x k] with m the mean of the source's coordinates; after the final LayerNorm
    (`normed`) [source, 0 x k]: the new coordinates normalise to 0 and their bias is 0."""
    x = np.asarray(source, dtype=np.float64)
    if stream(plan.src.family) == "copies":
        return x[..., plan.hidden_map]
    k = plan.dst.hidden - plan.src.hidden
    new = np.zeros(x.shape[:-1] + (k,)) if normed else np.repeat(x.mean(-1, keepdims=True), k, axis=-1)
    return np.concatenate([x, new], axis=-1)
