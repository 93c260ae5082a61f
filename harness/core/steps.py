"""The steps a lossless recipe runs after its base (concat -> divide -> gather): new values that are not copies.

A recipe (harness.core.recipe) may end with a few steps, run in order on its result x:

    Append(axis, kind, size)   x = concat(x, block, axis), the block shaped like x but `size` along axis:
        "zeros"    zeros
        "normal"   seeded N(0, std^2) values: normal_block(step, shape), numpy, the same bits everywhere
        "mean"     the mean of x along axis, repeated `size` times, summed in ONE order (below)
    Gather(axis, index)        x = take(x, index, axis)

The mean of n slices along an axis is a pairwise sum by elementwise adds, then one division:

    while n > 1:  h = n // 2
                  x = concat(x[:h] + x[h:2h], x[2h:])      (the odd last slice, if any, kept as it is)
    mean = x / float32(n0)

Every add and the division are single IEEE float32 operations on the same operands in the
same order, so numpy, PyTorch and MindSpore give the same bits (a float32 matmul or sum
kernel would not: their summation orders differ). `apply_steps` is the executable
definition; the framework executors (models_*/expand.py) repeat it with their own ops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

APPEND_KINDS = ("zeros", "normal", "mean")


@dataclass(frozen=True)
class Append:
    axis: int
    kind: str                                  # one of APPEND_KINDS
    size: int                                  # elements appended along axis
    seed: tuple[int, ...] = ()                 # "normal": numpy SeedSequence entropy (GrowthPlan.fill_seed)
    std: float = 0.0                           # "normal": standard deviation


@dataclass(frozen=True)
class Gather:
    axis: int
    index: np.ndarray                          # int64, read-only


Step = Append | Gather


def block_shape(shape: tuple[int, ...], step: Append) -> tuple[int, ...]:
    """The shape of the block `step` appends to a tensor of `shape`."""
    out = list(shape)
    out[step.axis] = step.size
    return tuple(out)


def normal_block(step: Append, shape: tuple[int, ...]) -> np.ndarray:
    """The values of a "normal" step's block for a tensor of `shape`: float32 standard normals of
    default_rng(step.seed), times float32(std); every executor takes exactly these numbers."""
    rng = np.random.default_rng(list(step.seed))
    block = rng.standard_normal(block_shape(shape, step), dtype=np.float32)
    block *= np.float32(step.std)
    return block


def new_block(step: Append, shape: tuple[int, ...]) -> np.ndarray:
    """The block of a "zeros" or "normal" step (a "mean" block depends on the tensor: see mean)."""
    if step.kind == "zeros":
        return np.zeros(block_shape(shape, step), dtype=np.float32)
    if step.kind == "normal":
        return normal_block(step, shape)
    raise ValueError(f"a {step.kind!r} block is computed from the tensor, not drawn")


def constant(shape: tuple[int, ...], value: float) -> np.ndarray:
    """A recipe's constant tensor (float32); zeros lazily allocated (an inserted block's zero output)."""
    return np.zeros(shape, np.float32) if value == 0 else np.full(shape, value, dtype=np.float32)


def divisor(n: int, ndim: int) -> np.ndarray:
    """float32(n), shaped to broadcast over a tensor of ndim axes: the mean's one division."""
    return np.full((1,) * ndim, n, dtype=np.float32)


def cut(ndim: int, axis: int, start: int, stop: int) -> tuple[slice, ...]:
    """The index of x[start:stop] along axis (basic slicing: numpy, torch and MindSpore alike)."""
    return (slice(None),) * axis + (slice(start, stop),)


def mean(x: np.ndarray, axis: int) -> np.ndarray:
    """The mean along axis, kept as a size-1 axis, in the module's pairwise order."""
    n0 = x.shape[axis]
    while x.shape[axis] > 1:
        n, h = x.shape[axis], x.shape[axis] // 2
        head = x[cut(x.ndim, axis, 0, h)] + x[cut(x.ndim, axis, h, 2 * h)]
        x = head if n == 2 * h else np.concatenate([head, x[cut(x.ndim, axis, 2 * h, n)]], axis=axis)
    return x / divisor(n0, x.ndim)


def apply_steps(x: np.ndarray, steps: tuple[Step, ...]) -> np.ndarray:
    """x after `steps`, as defined in the module docstring (numpy)."""
    for step in steps:
        if isinstance(step, Gather):
            x = np.take(x, step.index, axis=step.axis)
        elif step.kind == "mean":
            x = np.concatenate([x, np.repeat(mean(x, step.axis), step.size, axis=step.axis)], axis=step.axis)
        else:
            x = np.concatenate([x, new_block(step, x.shape)], axis=step.axis)
    return x


def result_shape(shape: tuple[int, ...], steps: tuple[Step, ...]) -> tuple[int, ...]:
    """The shape after `steps` of a tensor of `shape`."""
    out = list(shape)
    for step in steps:
        out[step.axis] = len(step.index) if isinstance(step, Gather) else out[step.axis] + step.size
    return tuple(out)


def describe(steps: tuple[Step, ...], ndim: int) -> str:
    """Short text of the steps, for a recipe's rule."""
    words = {"zeros": "zeros", "normal": "seeded normals", "mean": "the mean"}
    side = {0: "rows", 1: "cols"} if ndim == 2 else {0: "by"}
    parts = []
    for s in steps:
        where = side.get(s.axis, f"axis {s.axis}")
        parts.append(f"{where}: reorder q|k|v parts" if isinstance(s, Gather)
                     else f"{where} +{s.size} {words[s.kind]}")
    return "; ".join(parts)
