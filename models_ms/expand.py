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
import os
from pathlib import Path

import mindspore as ms
from mindspore import Tensor, ops
from mindspore.graph.api import _pynative_executor

from harness.core.execution import kernel_build
from harness.core.execution.kernel import kernel_args


def _concat(parts: list[Tensor], axis: int) -> Tensor:
    return ops.cat(parts, axis=axis)


_real_div = ops.RealDiv()   # the primitive: 4-10x faster on CPU than ops.div / Tensor.div_ (measured), same bits


def _divide(x: Tensor, divisor: np.ndarray) -> Tensor:
    return _real_div(x, Tensor.from_numpy(divisor))


def _divide_in_place(x: Tensor, divisor: np.ndarray) -> Tensor:
    return _real_div(x, Tensor.from_numpy(divisor))   # a new buffer: MindSpore's pool reuses the freed one


def _gather(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    return ops.gather(x, Tensor.from_numpy(index), axis)


def _gather_after_whole(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """x[index] along axis where index starts with all of x in order: x copied as a block and only
    the rest gathered (MindSpore's column Gather is the slow step here; measured faster)."""
    return _concat([x, _gather(x, index[x.shape[axis]:], axis)], axis)


def _tensor(a: np.ndarray) -> Tensor:
    return Tensor.from_numpy(a)


def _tile(x: Tensor, n: int, axis: int) -> Tensor:
    reps = [1] * x.ndim
    reps[axis] = n
    return ops.tile(x, tuple(reps))


def _to_front(x: Tensor, axis: int) -> Tensor:
    """x with `axis` first, contiguous (values moved, not computed): numpy moves them, as MindSpore's strided
    copy and its adds on strided views are 10-20x slower (measured: 0.5 s and 1 s for half a GPT-2 wte)."""
    return x if axis == 0 else Tensor.from_numpy(np.ascontiguousarray(np.moveaxis(x.asnumpy(), axis, 0)))
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
# kernel: one pass per tensor, models_ms/kernel.cc as a MindSpore custom operator (ops.Custom,
#   "aot"), fed harness.core.execution.kernel's index arrays; 2.1-3.3x faster than MindSpore's own ops (make bench).
# ops: MindSpore's Gather / Concat / RealDiv in harness.core.execution.schedule's order.
# Both give the same bits (tests/test_expand.py); the kernel is built with the C++ compiler on first use.
EXECUTORS = ("kernel", "ops")
KERNEL_SOURCE = Path(__file__).with_name("kernel.cc")
_THREADS = max(1, min(8, len(os.sched_getaffinity(0))))
_kernel: dict[str, object] = {}     # "op" once built, or "error": why it could not be


def _kernel_op():
    """The custom operator, built and loaded on first use; None (and _kernel["error"]) if it cannot be."""
    if not _kernel:
        try:
            library = kernel_build.build(KERNEL_SOURCE)
            if ":" in str(library):   # ops.Custom reads "path:function"
                raise kernel_build.KernelUnavailable(f"{library}: a ':' in the path (fix: clone elsewhere)")
            _kernel["op"] = _smoke_test(library)
        except kernel_build.KernelUnavailable as exc:
            _kernel["error"] = str(exc)
    return _kernel.get("op")


def _smoke_test(library: Path):
    """The custom operator of `library`, after one tiny call with a known answer: a library MindSpore
    refuses, or one that loads but fails to run (a C++ runtime MindSpore's own shadows, say), makes
    the kernel unavailable now, not a crash mid-growth."""
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    arrays = (np.zeros(1, np.int32), np.array([1], np.int64), np.ones(2, np.int32), np.array([1, 0], np.int64),
              np.array([2.0, 4.0], np.float32), np.array([1, 1, 1], np.int64))   # row 1 of source 1, reversed, / dv
    try:
        op = ops.Custom(f"{library}:Kernel", out_shape=_kernel_shape, out_dtype=lambda *dtypes: ms.float32,
                        func_type="aot")
        got = op(x, x, *(Tensor.from_numpy(a) for a in arrays)).asnumpy()
    except Exception as exc:   # any failure to load or run: recorded as the reason, and MindSpore's ops run
        raise kernel_build.KernelUnavailable(f"the built kernel did not run here: {exc}".splitlines()[0]) from exc
    if not np.array_equal(got, [[2.0, 0.75]]):
        raise kernel_build.KernelUnavailable(f"the built kernel gave {got.tolist()} for [[2.0, 0.75]]")
    return op


def _kernel_shape(s0, s1, rsel, ridx, csel, cidx, dv, meta):
    return [ridx[0], cidx[0]] if len(s0) == 2 else [cidx[0]]


def _by_kernel(src_state: dict[str, Tensor], recipe, shapes: dict[str, tuple[int, ...]]) -> Tensor:
    sources = [src_state[name] for name in recipe.sources]
    if (recipe.steps or recipe.fill is not None or len(sources) > 2 or len(recipe.index) not in (1, 2)
            or any(s.dtype != ms.float32 for s in sources)):   # lossless steps and constants: by ops
        return _by_ops(src_state, recipe, shapes)   # outside the kernel's reach: same values, by ops
    p = kernel_args(recipe, shapes)
    s0, s1 = (s if s.is_contiguous() else s.contiguous() for s in (sources[0], sources[-1]))
    meta = np.array([p.cat, p.div, _THREADS], dtype=np.int64)
    return _kernel["op"](s0, s1, *(Tensor.from_numpy(a) for a in (p.rsel, p.ridx, p.csel, p.cidx, p.dv, meta)))


_EXECUTE = {"kernel": _by_kernel, "ops": _by_ops}


def _wait() -> None:
    """Return once every queued operation is done: PyNative queues CPU operations and returns at once
    (20 multiplies of 4000x4000: 0.5 ms queued, 620 ms to finish), so a clock stopped without this
    would miss work. mindspore.runtime.synchronize() refuses the CPU device ("CPU device is not
    supported"); the PyNative executor's own sync waits for the queue (measured above)."""
    _pynative_executor.sync()


def choose_executor(name: str | None = None) -> tuple[str, str]:
    """(executor, note): `name` if given and valid, else the kernel, or MindSpore ops when the kernel
    cannot be built here (the note says why). Asking for the kernel where it cannot be built is an error."""
    if name not in (None, *EXECUTORS):
        raise BadInput(f"unknown MindSpore executor {name!r}", f"use one of: {', '.join(EXECUTORS)}")
    if name == "ops" or _kernel_op() is not None:
        return name or "kernel", ""
    if name == "kernel":
        raise BadInput(f"the MindSpore kernel executor is unavailable: {_kernel['error']}",
                       "fix the compiler, or use the ops executor")
    return "ops", f"kernel unavailable, MindSpore ops used: {_kernel['error']}"
# mirror: end
