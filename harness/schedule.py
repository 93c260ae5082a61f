"""Execution order of a recipe: the same values as the recipe's definition, less memory traffic.

A recipe (harness.recipe) is defined as concat -> divide -> gather per axis. Gathers
only copy values and the division is elementwise by a per-unit divisor, so the
order can change without changing one bit. The schedule:

    parts  = [take(source_k, index_k, part_axis)]   per source (None index: the tensor itself)
    x      = concat(parts, part_axis)                 (or the only part)
    x      = x / divisor  along div_axis              (in place when x is a fresh buffer)
    for axis, index in gathers: x = take(x, index, axis)

part_axis is the AKI concatenation axis, else the first grown axis that is not
divided; so AKI halves are gathered before they are joined (no full-size
concatenation), and the division runs once on an owned buffer, before the last gather.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    name: str
    parts: tuple[tuple[str, np.ndarray | None], ...]   # (source name, index along part_axis or None)
    part_axis: int | None
    divisor: np.ndarray | None                          # float32, shaped to broadcast along div_axis
    gathers: tuple[tuple[int, np.ndarray], ...]        # remaining (axis, index), in order
    same_as: str | None = None

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

    parts: list[tuple[str, np.ndarray | None]] = []
    if part_axis is None:
        parts.append((recipe.sources[0], None))
    else:
        full = recipe.index[part_axis]
        sizes = [source_shapes[s][part_axis] for s in recipe.sources]
        if full is None:  # concatenated whole (no gather on that axis)
            parts = [(s, None) for s in recipe.sources]
        else:
            owner = np.searchsorted(np.cumsum(sizes), full, side="right")  # source of each index
            # runs of consecutive indices from one source, in target order
            starts = np.flatnonzero(np.diff(owner, prepend=-1))
            for begin, end in zip(starts, list(starts[1:]) + [len(full)]):
                k = int(owner[begin])
                local = full[begin:end] - sum(sizes[:k])
                parts.append((recipe.sources[k], None if _is_identity(local, sizes[k]) else
                              np.array(local, dtype=np.int64)))

    divisor = None
    if recipe.divisor is not None:
        d = np.array(recipe.divisor, dtype=np.float32)
        if recipe.div_axis == part_axis and recipe.index[part_axis] is not None:
            d = d[recipe.index[part_axis]]
        shape = [1] * ndim
        shape[recipe.div_axis] = -1
        divisor = np.array(d.reshape(shape))

    gathers = tuple((a, np.array(idx, dtype=np.int64)) for a, idx in enumerate(recipe.index)
                    if idx is not None and a != part_axis)
    return Schedule(recipe.name, tuple(parts), part_axis, divisor, gathers, recipe.same_as)

