"""Tensors compared by name: the one per-tensor comparison of the project.

The growth cases' MindSpore vs PyTorch parameter rows (harness/kinds/growth/compare.py) and
`python -m harness compare` (harness/suite/checkpoints.py) both call compare_states. Bit-identical
tensors take the fast path (a byte comparison); others get their max ULP and max abs, and, with
full=True, relative error, cosine and a sha256 of each side's bytes. explain() guesses why two
tensors that should be equal are not: the other's transpose, the other side's tensor of another
name, or the same parts in another order (a fused q | k | v split wrongly).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from harness.suite.metrics import cosine, max_abs, max_ulp, relative


@dataclasses.dataclass
class TensorDiff:
    name: str
    shape_got: tuple[int, ...]
    shape_ref: tuple[int, ...]
    dtype_got: str
    dtype_ref: str
    identical: bool = False              # same dtype, shape and bytes
    max_ulp: int | None = None           # None: the shapes differ
    max_abs: float | None = None
    relative: float | None = None        # full only: max |got - ref| / max |ref|
    cosine: float | None = None          # full only
    sha_got: str = ""                    # full only: sha256 of the bytes (C order)
    sha_ref: str = ""
    hint: str = ""                       # full only, for tensors that differ: explain()

    @property
    def same_shape(self) -> bool:
        return self.shape_got == self.shape_ref


@dataclasses.dataclass
class StateDiff:
    """Every tensor of `ref` found in `got`, compared, in ref's order; names on one side only."""
    tensors: list[TensorDiff]
    missing_got: list[str]               # in ref, not in got
    missing_ref: list[str]               # in got, not in ref

    @property
    def shape_errors(self) -> list[TensorDiff]:
        return [t for t in self.tensors if not t.same_shape]

    def worst(self) -> tuple[str, int, float, int, int]:
        """(worst tensor or "none", its max ULP, its max abs, tensors whose max ULP > 0, tensors compared
        with equal shapes). Worst: the highest (max ULP, max abs), the first of equals."""
        worst, worst_ulp, worst_abs, differing, compared = "none", 0, 0.0, 0, 0
        for t in self.tensors:
            if not t.same_shape:
                continue
            compared += 1
            if t.identical:
                continue
            differing += t.max_ulp > 0
            if (t.max_ulp, t.max_abs) > (worst_ulp, worst_abs):
                worst_ulp, worst_abs, worst = t.max_ulp, t.max_abs, t.name
        return worst, worst_ulp, worst_abs, differing, compared


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def compare_tensor(name: str, got: np.ndarray, ref: np.ndarray, full: bool = False,
                   sha_ref: str | None = None) -> TensorDiff:
    """sha_ref: ref's sha256 where the caller has it already (full only)."""
    got, ref = np.asarray(got), np.asarray(ref)
    d = TensorDiff(name, tuple(got.shape), tuple(ref.shape), str(got.dtype), str(ref.dtype))
    if full:
        d.sha_got, d.sha_ref = sha256(got), sha_ref or sha256(ref)
    if not d.same_shape:
        return d
    d.identical = got.dtype == ref.dtype and np.array_equal(_bits(got), _bits(ref))
    if d.identical:   # the expected, fast path
        d.max_ulp, d.max_abs = 0, 0.0
        if full:
            d.relative, d.cosine = 0.0, 1.0
        return d
    d.max_ulp, d.max_abs = max_ulp(got, ref), max_abs(got, ref)
    if full:
        d.relative, d.cosine = relative(got, ref), cosine(got, ref)
    return d


def compare_states(got: Mapping[str, np.ndarray], ref_names: Iterable[str], get_ref: Callable[[str], np.ndarray],
                   full: bool = False,
                   explain_with: Callable[[TensorDiff, np.ndarray, np.ndarray], str] | None = None,
                   ref_sha: Mapping[str, str] | None = None) -> StateDiff:
    """Every tensor of ref (names, read one at a time by get_ref: the caller may stream a file) that
    got has too, joined by name; explain_with(diff, got, ref) fills the hint of a tensor that differs;
    ref_sha: ref's digests where the caller has them (full only)."""
    ref_names = list(ref_names)
    diffs = []
    for name in ref_names:
        if name not in got:
            continue
        a, b = got[name], get_ref(name)
        diff = compare_tensor(name, a, b, full, (ref_sha or {}).get(name))
        if explain_with is not None and not diff.identical:
            diff.hint = explain_with(diff, np.asarray(a), np.asarray(b))
        diffs.append(diff)
        del b
    known = set(ref_names)
    return StateDiff(diffs, [n for n in ref_names if n not in got], [n for n in got if n not in known])


# -- why two tensors that should be equal are not ----------------------------------------------------
def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bits(a), _bits(b))


def explain(diff: TensorDiff, got: np.ndarray, ref: np.ndarray, ref_by_sha: Mapping[str, list[str]],
            got_name: str = "A", ref_name: str = "B") -> str:
    """A hint for a tensor that differs, or "": (1) got is ref transposed (a map misses or adds a
    transpose: on a square matrix every shape check passes); (2) got's bytes are another tensor of
    ref (the maps pair names differently: swapped LayerNorm weight / bias, query / key ...); (3) got
    and ref hold the same equal parts along an axis in another order (a fused q | k | v split or
    fused in the wrong order)."""
    if got.ndim == 2 and got.shape == ref.shape[::-1] and _same(np.ascontiguousarray(got.T), ref):
        square = " (a square matrix: every shape check passes)" if got.shape[0] == got.shape[1] else ""
        return f"{got_name} holds {ref_name}'s tensor transposed: a map misses (or adds) a transpose{square}"
    others = [n for n in ref_by_sha.get(diff.sha_got or sha256(got), []) if n != diff.name]
    if others:
        return (f"{got_name}'s values are {ref_name}'s {others[0]}"
                + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
                + f": the maps pair {diff.name} with {others[0]} (a swapped pairing)")
    if got.shape == ref.shape and got.dtype == ref.dtype:
        for axis, n in itertools.product(range(got.ndim), (3, 2, 4)):
            if got.shape[axis] % n or got.shape[axis] == n:
                continue
            mine, theirs = np.split(got, n, axis), np.split(ref, n, axis)
            order = [next((k for k, t in enumerate(theirs) if _same(m, t)), None) for m in mine]
            if None not in order and order != list(range(n)):
                labels = "qkv" if n == 3 else "abcd"
                return (f"the same {n} parts along axis {axis} in another order: {got_name}'s "
                        f"({', '.join(labels[k] for k in range(n))}) are {ref_name}'s "
                        f"({', '.join(labels[k] for k in order)}): a fused tensor split (or fused) in the wrong order")
    if not diff.same_shape and diff.shape_got == diff.shape_ref[::-1]:
        return f"{got_name}'s shape is {ref_name}'s transposed: the maps disagree on the layout (a transpose)"
    return ""
