"""Execution order of a recipe: the same values as the recipe's definition, less memory traffic.

This is the order of the "ops" executors (each framework's own operations, models_*/expand.py);
MindSpore's "kernel" executor runs each recipe in one pass instead (harness.core.execution.kernel).

A recipe (harness.core.recipe) is defined as concat -> divide -> gather per axis. Gathers
only copy values and the division is elementwise by a per-unit divisor, so the
order can change without changing one bit. The schedule:

    parts  = [take(source_k, index_k, whole_first_k, part_axis)]   per run of one source, in target order
    x      = concat(parts, part_axis)                          (or the only part)
    x      = x / divisor  along div_axis                       (in place when x is a fresh buffer)
    for axis, index, whole_first in gathers:
        x = take(x, index, whole_first, axis)

    take(x, None, 0, axis)  = x
    take(x, index, whole_first, axis) = x[index] along axis   (whole_first = 1: index starts with all of x in order)

part_axis is the AKI concatenation axis, else the first grown axis that is not
divided; so AKI halves are gathered before they are joined (no full-size
concatenation), and the division runs once on an owned buffer, before the last gather.
An index that starts with every position of its axis in order (the hidden map: the
source's coordinates first) is marked whole_first = 1, and each executor takes it its fastest
way (MindSpore: copy x whole and gather only the rest; PyTorch: one index_select over
the whole index); the values are the same. A 1-D recipe with several
parts runs as defined (the sources concatenated whole, then one gather): two operations
instead of one per part, which is what a bias or a LayerNorm vector costs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    parts: tuple[tuple[str, np.ndarray | None, int], ...]   # (source name, index or None, whole_first) along part_axis
    part_axis: int | None
    divisor: np.ndarray | None                          # float32, shaped to broadcast along div_axis
    gathers: tuple[tuple[int, np.ndarray, int], ...]   # remaining (axis, index, whole_first), in order (module doc)

    @property
    def fresh(self) -> bool:
        """True when concat/gather of the parts makes a new buffer the executor may divide in place."""
        return len(self.parts) > 1 or self.parts[0][1] is not None


def _is_identity(index: np.ndarray, size: int) -> bool:
    return len(index) == size and bool(np.array_equal(index, np.arange(size)))


def schedule(recipe, source_shapes: dict[str, tuple[int, ...]]) -> Schedule:
    """The execution order of one recipe; source_shapes gives each source tensor's shape."""
    ndim = len(recipe.index)
    if recipe.cat_axis is not None:
        part_axis = recipe.cat_axis
    else:
        part_axis = next((a for a, idx in enumerate(recipe.index) if idx is not None and a != recipe.div_axis), None)

    parts: list[tuple[str, np.ndarray | None, int]] = []
    if part_axis is None:
        parts.append((recipe.sources[0], None, 0))
    else:
        full = recipe.index[part_axis]
        sizes = [source_shapes[s][part_axis] for s in recipe.sources]
        if full is None:  # concatenated whole (no gather on that axis)
            parts = [(s, None, 0) for s in recipe.sources]
        else:
            owner = np.searchsorted(np.cumsum(sizes), full, side="right")  # source of each index
            # runs of consecutive indices from one source, in target order
            starts = np.flatnonzero(np.diff(owner, prepend=-1))
            if ndim == 1 and len(starts) > 1 and recipe.divisor is None:   # as defined: concat whole, one gather
                return Schedule(tuple((name, None, 0) for name in recipe.sources), 0, None,
                                ((0, *_take(full, sum(sizes))),))
            for begin, end in zip(starts, list(starts[1:]) + [len(full)], strict=True):
                k = int(owner[begin])
                local = full[begin:end] - sum(sizes[:k])
                parts.append((recipe.sources[k], *_take(local, sizes[k])))

    divisor = None
    if recipe.divisor is not None:
        d = np.array(recipe.divisor, dtype=np.float32)
        if recipe.div_axis == part_axis and recipe.index[part_axis] is not None:
            d = d[recipe.index[part_axis]]
        shape = [1] * ndim
        shape[recipe.div_axis] = -1
        divisor = np.array(d.reshape(shape))

    size = source_shapes[recipe.sources[0]]
    gathers = tuple((a, *_take(idx, size[a])) for a, idx in enumerate(recipe.index)
                    if idx is not None and a != part_axis)
    return Schedule(tuple(parts), part_axis, divisor, gathers)


def _take(index: np.ndarray, size: int) -> tuple[np.ndarray | None, int]:
    """(index, whole_first) of take() for `index` into an axis of `size`: (None, 0) for all of it in
    order, else (index, 1 when it starts with all of it in order, else 0)."""
    index = np.array(index, dtype=np.int64)
    if _is_identity(index, size):
        return None, 0
    return index, int(len(index) > size and _is_identity(index[:size], size))
