"""Grow a model by executing the growth plan's recipes on this framework's tensors.

The plan (harness.core.plan) holds all randomness and harness.core.recipe compiles it into
one recipe per target tensor; this module only executes them, by one of EXECUTORS:

- "ops": the framework's own operations in harness.core.execution.schedule's order: at most one
  concatenation (AKI), one division (in-dims, on the source side) and one gather per
  grown axis (a gather that keeps the whole tensor first appends the rest); then a lossless
  recipe's steps (harness.core.steps: appended zeros, seeded normals drawn by numpy, or the
  mean by pairwise adds in the one order that gives every framework the same bits);
- "kernel" (MindSpore only, its default): each tensor in one pass by a custom
  operator (models_ms/kernel.cc, harness.core.execution.kernel), where MindSpore's own ops pay
  a fixed cost per call and per fresh buffer; same bits as "ops".

Depth copies reuse the tensor already grown for their source layer (expand); expand_one makes
one target tensor alone, a depth copy again from its sources.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.core.errors import BadInput
from harness.core.execution.schedule import Schedule, schedule
from harness.core.steps import Gather, constant, divisor, new_block
# mirror: framework
import torch

Tensor = torch.Tensor


def _concat(parts: list[Tensor], axis: int) -> Tensor:
    return torch.cat(parts, dim=axis)


def _divide(x: Tensor, divisor: np.ndarray) -> Tensor:
    return torch.div(x, torch.from_numpy(divisor))


def _divide_in_place(x: Tensor, divisor: np.ndarray) -> Tensor:
    return x.div_(torch.from_numpy(divisor))


def _gather(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    return torch.index_select(x, axis, torch.from_numpy(index))


def _gather_after_whole(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """x[index] along axis where index starts with all of x in order: one index_select over the
    whole index (measured faster here than copying x and concatenating the rest)."""
    return _gather(x, index, axis)


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(a)


def _tile(x: Tensor, n: int, axis: int) -> Tensor:
    reps = [1] * x.ndim
    reps[axis] = n
    return x.tile(tuple(reps))


def _to_front(x: Tensor, axis: int) -> Tensor:
    """x with `axis` first: a view (torch adds strided views fast; a contiguous copy first measured slower)."""
    return x.movedim(axis, 0)
# mirror: end


def _take(x: Tensor, index: np.ndarray | None, whole_first: int, axis: int) -> Tensor:
    if index is None:
        return x
    return _gather_after_whole(x, index, axis) if whole_first else _gather(x, index, axis)


def apply_schedule(src_state: dict[str, Tensor], step: Schedule) -> Tensor:
    """The target tensor of one scheduled recipe (harness.core.execution.schedule semantics)."""
    parts = [_take(src_state[name], index, whole_first, step.part_axis) for name, index, whole_first in step.parts]
    x = parts[0] if len(parts) == 1 else _concat(parts, step.part_axis)
    if step.divisor is not None:
        x = _divide_in_place(x, step.divisor) if step.fresh else _divide(x, step.divisor)
    for axis, index, whole_first in step.gathers:
        x = _take(x, index, whole_first, axis)
    return x


def _mean(x: Tensor, axis: int) -> Tensor:
    """harness.core.steps.mean with this framework's adds: the axis moved to the front first (a copy, so the
    pairwise adds read whole rows), the adds in its order, one division, and the size-1 axis put back."""
    shape = list(x.shape)
    n0 = n = shape[axis]
    x = _to_front(x, axis)
    while n > 1:
        h = n // 2
        head = x[:h] + x[h:2 * h]
        x = head if n == 2 * h else _concat([head, x[2 * h:n]], 0)
        n = h + n % 2
    shape[axis] = 1
    return _divide(x, divisor(n0, len(shape))).reshape(tuple(shape))


def apply_steps(x: Tensor, steps: tuple) -> Tensor:
    """x after a lossless recipe's steps (harness.core.steps semantics)."""
    for step in steps:
        if isinstance(step, Gather):
            x = _gather(x, np.array(step.index), step.axis)   # a writable copy: torch warns on a read-only one
        elif step.kind == "mean":
            x = _concat([x, _tile(_mean(x, step.axis), step.size, step.axis)], step.axis)
        else:
            x = _concat([x, _tensor(new_block(step, tuple(x.shape)))], step.axis)
    return x


def _by_ops(src_state: dict[str, Tensor], recipe, shapes: dict[str, tuple[int, ...]]) -> Tensor:
    if recipe.fill is not None:   # a constant tensor (lossless: an inserted block's zero output)
        return _tensor(constant(recipe.shape, recipe.fill))
    return apply_steps(apply_schedule(src_state, schedule(recipe, shapes)), recipe.steps)


def expand(src_state: dict[str, Tensor], recipes: list,
           on_tensor: Callable[[str], None] | None = None, executor: str | None = None) -> dict[str, Tensor]:
    """Target state (name -> tensor, target table order) from the source state; on_tensor(name)
    is called as each target tensor is made (progress). executor: one of EXECUTORS (default:
    the first that is available here, see choose_executor)."""
    make = _EXECUTE[choose_executor(executor)[0]]
    shapes = {name: tuple(t.shape) for name, t in src_state.items()}
    target: dict[str, Tensor] = {}
    for recipe in recipes:
        if recipe.same_as is not None:
            target[recipe.name] = target[recipe.same_as]
        else:
            target[recipe.name] = make(src_state, recipe, shapes)
        if on_tensor is not None:
            on_tensor(recipe.name)
    _wait()
    return target


def expand_one(src_state: dict[str, Tensor], recipe, executor: str | None = None) -> Tensor:
    """The target tensor of one recipe, made from its own fields: the streamed expander's step
    (harness/kinds/growth/stream.py). src_state needs only the recipe's sources. A depth copy
    (same_as) is made again from its sources: the same bits as the tensor it repeats."""
    make = _EXECUTE[choose_executor(executor)[0]]
    shapes = {name: tuple(src_state[name].shape) for name in recipe.sources}
    return make(src_state, recipe, shapes)


# mirror: framework
EXECUTORS = ("ops",)   # ops: torch.index_select / cat / div in harness.core.execution.schedule's order
_EXECUTE = {"ops": _by_ops}


def _wait() -> None:
    """Return once every queued operation is done: nothing to wait for (eager on CPU)."""


def choose_executor(name: str | None = None) -> tuple[str, str]:
    """(executor, note): `name` if given and valid, else the default; the note says why when the
    default is not the first of EXECUTORS (never, here)."""
    if name not in (None, *EXECUTORS):
        raise BadInput(f"unknown PyTorch executor {name!r}", f"use one of: {', '.join(EXECUTORS)}")
    return "ops", ""
# mirror: end
