"""The kernel's arguments from a recipe: for each target row and column, which source element, and its divisor.

A recipe (harness.core.recipe) is concat -> divide -> gather per axis, so every target
element is one source element divided by one divisor:

    y[i, j] = source_k[ridx[i], cidx[j]] / dv[.]      k = rsel[i] (cat axis 0) or csel[j] (cat axis 1)
                                                      dv[i] (div axis 0), dv[j] (div axis 1), or none

which is what the MindSpore kernel models_ms/kernel.cc computes in one pass,
with the same bits as the recipe's own order (the same value divided by the same
float32 divisor). A 1-D recipe is one row: its axis 0 becomes the column axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.core.errors import BadInput

NO_AXIS = -1


@dataclass(frozen=True)
class KernelArgs:
    rsel: np.ndarray       # int32[R]: source of each target row (0 or 1; meaningful when cat == 0)
    ridx: np.ndarray       # int64[R]: row within that source
    csel: np.ndarray       # int32[C]: source of each target column (meaningful when cat == 1)
    cidx: np.ndarray       # int64[C]: column within that source
    dv: np.ndarray         # float32[R] (div == 0), float32[C] (div == 1), or [1.0] (no division)
    cat: int               # 0, 1, or NO_AXIS (one source)
    div: int               # 0, 1, or NO_AXIS


def _axis(index: np.ndarray | None, sizes: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(full index into the concatenation, source of each entry, index within that source)."""
    full = np.arange(sum(sizes), dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    bounds = np.cumsum(sizes)
    if len(full) and (full.min() < 0 or full.max() >= bounds[-1]):
        raise BadInput(f"a recipe index runs outside its source axis of {bounds[-1]}",
                       "rebuild the plan; the recipe does not match the source shapes")
    sel = np.searchsorted(bounds, full, side="right").astype(np.int32)
    return full, sel, full - np.concatenate(([0], bounds[:-1]))[sel]


def _off_axis(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1:]


def kernel_args(recipe, source_shapes: dict[str, tuple[int, ...]]) -> KernelArgs:
    """The one-pass form of `recipe` (1-D or 2-D, one or two sources of the same shape off the cat axis)."""
    if recipe.steps or recipe.fill is not None:
        raise BadInput(f"{recipe.name}: the one-pass kernel takes no lossless steps or constants",
                       "run this recipe with the framework-ops executor")
    shapes = [tuple(source_shapes[s]) for s in recipe.sources]
    ndim = len(recipe.index)
    if ndim not in (1, 2) or len(shapes) > 2 or any(len(s) != ndim for s in shapes):
        raise BadInput(f"{recipe.name}: the one-pass kernel takes 1-D or 2-D tensors from 1 or 2 sources",
                       "run this recipe with the framework-ops executor")
    if len(shapes) == 2 and _off_axis(shapes[0], recipe.cat_axis) != _off_axis(shapes[1], recipe.cat_axis):
        raise BadInput(f"{recipe.name}: sources {', '.join(recipe.sources)} differ off the concatenation axis "
                       f"({shapes})", "check the source checkpoint's shapes")
    per_axis = []
    for axis in range(ndim):
        sizes = [s[axis] for s in shapes] if axis == recipe.cat_axis else [shapes[0][axis]]
        per_axis.append(_axis(recipe.index[axis], sizes))
    dv = np.ones(1, dtype=np.float32)
    div = NO_AXIS
    if recipe.divisor is not None:
        dv = np.ascontiguousarray(np.asarray(recipe.divisor, dtype=np.float32)[per_axis[recipe.div_axis][0]])
        div = recipe.div_axis
    cat = NO_AXIS if recipe.cat_axis is None else recipe.cat_axis
    if ndim == 1:   # one row: the only axis is the column axis
        _, csel, cidx = per_axis[0]
        zero = np.zeros(1, dtype=np.int64)
        return KernelArgs(zero.astype(np.int32), zero, csel, cidx, dv,
                       NO_AXIS if cat == NO_AXIS else 1, NO_AXIS if div == NO_AXIS else 1)
    (_, rsel, ridx), (_, csel, cidx) = per_axis
    return KernelArgs(rsel, ridx, csel, cidx, dv, cat, div)

