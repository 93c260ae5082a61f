"""A state in any naming scheme -> canonical names and layouts (to_canonical), and back
(from_canonical); which scheme a state is in (detect).

Nothing is dropped silently: every stored name ends up a canonical tensor (renamed, transposed,
split or fused by its rule), a tied copy (checked equal to its canonical tensor), ignored by a
pattern of the map (with its reason), a problem (a rule whose parts are incomplete or whose shapes
do not fit what it tries), or unmapped. Arrays are not copied unless a rule fuses parts: a rename
is the same array, a transpose or a split a view.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Mapping

import numpy as np

from harness.core.errors import BadInput
from harness.core.naming.scheme import LAYER, Rule, Scheme, candidates, templates


@dataclasses.dataclass(frozen=True)
class Origin:
    stored: tuple[str, ...]      # the stored full names the canonical tensor came from
    how: str                     # Rule.describe()

    def text(self) -> str:
        return f"{' + '.join(self.stored)} ({self.how})"


@dataclasses.dataclass(frozen=True)
class TieCheck:
    canonical: str
    stored: str
    equal: bool                  # same shape, dtype and bytes
    note: str                    # how they differ ("" when equal)
    copy: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)   # the stored copy


@dataclasses.dataclass
class Canonical:
    """A state in canonical names, and what became of every stored name."""
    scheme: Scheme
    prefix: str
    tensors: dict[str, np.ndarray]
    origin: dict[str, Origin]
    unmapped: list[str]
    ignored: list[tuple[str, str]]       # (stored name, the map's reason)
    ties: list[TieCheck]
    problems: list[str]
    n_stored: int

    @property
    def broken_ties(self) -> list[TieCheck]:
        return [t for t in self.ties if not t.equal]

    def summary(self) -> str:
        parts = [f"{self.n_stored} stored tensors: {len(self.tensors)} canonical"]
        for what, n in (("tied copies", len(self.ties)), ("ignored", len(self.ignored)),
                        ("unmapped", len(self.unmapped)), ("map problems", len(self.problems))):
            if n:
                parts.append(f"{n} {what}")
        return ", ".join(parts)


# -- matching names against templates ----------------------------------------------------------------
def _regex(template: str) -> re.Pattern:
    return re.compile(r"(\d+)".join(re.escape(p) for p in template.split(LAYER)))


def _layer(index: str) -> str | None:
    return index if str(int(index)) == index else None   # "01" is no layer index: it would alias "1"


@dataclasses.dataclass(frozen=True)
class _Matcher:
    """Names (without prefix) -> (rule index, part index, layer index or None)."""
    exact: dict[str, tuple[int, int]]
    patterns: tuple[tuple[re.Pattern, int, int], ...]
    order: tuple[str, ...]               # the templates in order, for sorting names

    def match(self, name: str) -> tuple[int, int, str | None] | None:
        hit = self.exact.get(name)
        if hit is not None:
            return (*hit, None)
        for rx, r, j in self.patterns:
            m = rx.fullmatch(name)
            if m and _layer(m.group(1)) is not None:
                return r, j, m.group(1)
        return None


@functools.cache
def _matcher(scheme: Scheme, side: str) -> _Matcher:
    exact, patterns, order = {}, [], []
    for r, rule in enumerate(scheme.rules):
        for j, template in enumerate(getattr(rule, side)):
            order.append(template)
            if LAYER in template:
                patterns.append((_regex(template), r, j))
            else:
                exact[template] = (r, j)
    return _Matcher(exact, tuple(patterns), tuple(order))


def order_key(order: tuple[str, ...]):
    """Sort key over names built from `order` (templates): the global names before the first
    per-layer template, then layer by layer, then the global names after, as in a state dict."""
    layered = [n for n, t in enumerate(order) if LAYER in t]
    first, last = (layered[0], layered[-1]) if layered else (len(order), len(order))
    exact = {t: n for n, t in enumerate(order) if LAYER not in t}
    patterns = [(_regex(t), n) for n, t in enumerate(order) if LAYER in t]

    def key(name: str):
        if name in exact:
            n = exact[name]
            return (0 if n < first else 2, 0, n, name)
        for rx, n in patterns:
            m = rx.fullmatch(name)
            if m:
                return (1, int(m.group(1)), n, name)
        return (3, 0, 0, name)
    return key


@functools.cache
def canonical_key(family: str):
    return order_key(templates(family))


def _sub(template: str, layer: str | None) -> str:
    return template if layer is None else template.replace(LAYER, layer)


def _transpose(array: np.ndarray, rule: Rule, name: str) -> np.ndarray:
    if not rule.transpose:
        return array
    if array.ndim != 2:
        raise _Misfit(f"{name} has shape {tuple(array.shape)}: the rule transposes a matrix")
    return array.T


class _Misfit(Exception):
    """A rule whose tensors do not have the shapes it needs (reported as a problem)."""


def _fuse(parts: list[np.ndarray], axis: int, names: list[str]) -> np.ndarray:
    shapes = [tuple(p.shape) for p in parts]
    if any(len(s) <= axis for s in shapes) or len({s[:axis] + s[axis + 1:] for s in shapes}) != 1:
        raise _Misfit(f"parts {', '.join(f'{n} {s}' for n, s in zip(names, shapes, strict=True))} "
                      f"do not line up along axis {axis}")
    return np.concatenate(parts, axis=axis)


def _split(array: np.ndarray, n: int, axis: int, name: str) -> list[np.ndarray]:
    if array.ndim <= axis or array.shape[axis] % n:
        raise _Misfit(f"{name} {tuple(array.shape)} does not split into {n} equal parts along axis {axis}")
    return np.split(array, n, axis=axis)


# -- stored -> canonical ----------------------------------------------------------------------------
def to_canonical(scheme: Scheme, state: Mapping[str, np.ndarray], prefix: str | None = None) -> Canonical:
    """`state` (stored names) in canonical names, by `scheme` read with `prefix` (default: the one
    that maps the most names)."""
    if prefix is None:
        prefix = max(scheme.prefixes, key=lambda p: _score(scheme, p, list(state)))
    matcher = _matcher(scheme, "stored")
    ties = {name: tie for tie in scheme.ties for name in tie.stored}
    groups: dict[tuple[int, str | None], dict[int, str]] = {}
    tied, ignored, unmapped = [], [], []
    for name in state:
        hit = matcher.match(name[len(prefix):]) if name.startswith(prefix) else None
        if hit is not None:
            r, j, layer = hit
            groups.setdefault((r, layer), {})[j] = name
        elif name in ties:
            tied.append(name)
        elif (reason := next((g.reason for g in scheme.ignores if fnmatch.fnmatchcase(name, g.pattern)), None)):
            ignored.append((name, reason))
        else:
            unmapped.append(name)

    tensors: dict[str, np.ndarray] = {}
    origin: dict[str, Origin] = {}
    problems: list[str] = []
    for (r, layer), parts in groups.items():
        rule = scheme.rules[r]
        names = [parts.get(j) for j in range(len(rule.stored))]
        if None in names:
            absent = [prefix + _sub(t, layer) for t, n in zip(rule.stored, names, strict=True) if n is None]
            problems.append(f"{rule.where}: found {', '.join(n for n in names if n)} but not {', '.join(absent)}: "
                            f"the rule needs all {len(names)} parts")
            continue
        how = Origin(tuple(names), rule.describe())
        try:
            if len(rule.stored) > 1:
                fused = _fuse([_transpose(state[n], rule, n) for n in names], rule.axis, names)
                made = {rule.canonical[0]: fused}
            elif len(rule.canonical) > 1:
                pieces = _split(state[names[0]], len(rule.canonical), rule.axis, names[0])
                made = {c: _transpose(p, rule, names[0]) for c, p in zip(rule.canonical, pieces, strict=True)}
            else:
                made = {rule.canonical[0]: _transpose(state[names[0]], rule, names[0])}
        except _Misfit as e:
            problems.append(f"{rule.where}: {e} (the map tried: {rule.describe()} -> "
                            f"{', '.join(_sub(c, layer) for c in rule.canonical)})")
            continue
        for template, array in made.items():
            tensors[_sub(template, layer)] = array
            origin[_sub(template, layer)] = how

    key = canonical_key(scheme.family)
    order = sorted(tensors, key=key)
    checks = [_tie_check(scheme, name, state[name], tensors) for name in tied]
    return Canonical(scheme, prefix, {n: tensors[n] for n in order}, {n: origin[n] for n in order},
                     unmapped, ignored, checks, problems, len(state))


def _tie_check(scheme: Scheme, name: str, copy: np.ndarray, tensors: dict) -> TieCheck:
    tie = next(t for t in scheme.ties if name in t.stored)
    main = tensors.get(tie.canonical)
    if main is None:
        return TieCheck(tie.canonical, name, False, f"{tie.canonical}, which it is a copy of, is missing", copy)
    if main.shape != copy.shape:
        return TieCheck(tie.canonical, name, False,
                        f"shape {tuple(copy.shape)}, {tie.canonical} {tuple(main.shape)}", copy)
    if main.dtype == copy.dtype and np.array_equal(_bits(main), _bits(copy)):
        return TieCheck(tie.canonical, name, True, "", copy)
    diff = float(np.max(np.abs(copy.astype(np.float64) - main.astype(np.float64)))) if copy.size else 0.0
    return TieCheck(tie.canonical, name, False, f"differs from {tie.canonical}: max abs {diff:.3g}", copy)


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


# -- canonical -> stored ----------------------------------------------------------------------------
def from_canonical(scheme: Scheme, tensors: Mapping[str, np.ndarray],
                   prefix: str | None = None) -> dict[str, np.ndarray]:
    """Canonical `tensors` under `scheme`'s stored names (prefix: its first unless given), in the
    scheme's own order. BadInput names a tensor no rule takes, a missing part or a misfit shape."""
    prefix = scheme.write_prefix if prefix is None else prefix
    matcher = _matcher(scheme, "canonical")
    groups: dict[tuple[int, str | None], dict[int, str]] = {}
    for name in tensors:
        hit = matcher.match(name)
        if hit is None:
            raise BadInput(f"tensor {name}: the {scheme.label} map has no rule for it",
                           "convert from a checkpoint of the map's family, or extend the map")
        r, j, layer = hit
        groups.setdefault((r, layer), {})[j] = name
    out: dict[str, np.ndarray] = {}
    for (r, layer), parts in groups.items():
        rule = scheme.rules[r]
        names = [parts.get(j) for j in range(len(rule.canonical))]
        stored = [prefix + _sub(t, layer) for t in rule.stored]
        if None in names:
            absent = [_sub(t, layer) for t, n in zip(rule.canonical, names, strict=True) if n is None]
            raise BadInput(f"cannot write {stored[0]}: canonical tensor {absent[0]} is missing",
                           "convert a complete checkpoint")
        try:
            if len(rule.stored) > 1:
                pieces = _split(tensors[names[0]], len(rule.stored), rule.axis, names[0])
                made = dict(zip(stored, (_transpose(p, rule, names[0]) for p in pieces), strict=True))
            elif len(rule.canonical) > 1:
                made = {stored[0]: _fuse([_transpose(tensors[n], rule, n) for n in names], rule.axis, names)}
            else:
                made = {stored[0]: _transpose(tensors[names[0]], rule, names[0])}
        except _Misfit as e:
            raise BadInput(f"{rule.where}: {e}", "check the map's axis and transpose for this tensor") from None
        out.update(made)
    key = order_key(_matcher(scheme, "stored").order)
    return {n: out[n] for n in sorted(out, key=lambda n: key(n[len(prefix):]))}


# -- which scheme -----------------------------------------------------------------------------------
def _score(scheme: Scheme, prefix: str, names: list[str]) -> int:
    matcher = _matcher(scheme, "stored")
    return sum(1 for n in names if n.startswith(prefix) and matcher.match(n[len(prefix):]) is not None)


def detect(names: list[str], spec: str | None = None, family: str | None = None,
           what: str = "checkpoint") -> tuple[Scheme, str]:
    """(scheme, prefix) among `candidates(spec, family)` that maps the most of `names` (on a tie, the
    one that leaves the fewest unaccounted for, then the first listed)."""
    best, best_key = None, None
    for n, scheme in enumerate(candidates(spec, family)):
        for prefix in scheme.prefixes:
            matched = _score(scheme, prefix, names)
            handled = matched + sum(1 for x in names if any(x in t.stored for t in scheme.ties)
                                    or any(fnmatch.fnmatchcase(x, g.pattern) for g in scheme.ignores))
            key = (matched, handled, -n)
            if best_key is None or key > best_key:
                best, best_key = (scheme, prefix), key
    if best is None or best_key[0] == 0:
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        raise BadInput(f"{what}: none of its {len(names)} tensor names fits "
                       + (f"the naming scheme {spec}" if spec else "a known naming scheme") + f" ({shown})",
                       "name its scheme (--map-a / --map-b / --from: hf, ms-cells, ms-zoo) or write a map file "
                       "(docs/compare.md)")
    return best
