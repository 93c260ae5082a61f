"""Compile a growth plan into one framework-neutral recipe per target tensor.

A recipe says how to build one target tensor from source tensors with three
operations only, so that the PyTorch and MindSpore expanders are tiny executors
that produce bit-identical results:

    x = source                      (or concat(sources, axis=cat_axis) for AKI)
    if divisor is not None:
        x = x / divisor             (float32 true division, broadcast along div_axis)
    for axis in 0 .. ndim-1:
        if index[axis] is not None:
            x = take(x, index[axis], axis)

The division is applied to SOURCE elements before gathering: target column i
= source column g(i) / c[g(i)] is the same value, bit for bit, as dividing
source column j by c[j] and then gathering. For an AKI in-dim the divisor
covers both concatenated halves (the count vector repeated).

`same_as` marks depth stacking: the target tensor equals an earlier target
tensor built from the same source layer (widen first, then stack); executors
may simply reuse that tensor. Its other fields are the same as the referent's.

The lossless method (harness.core.recipe_lossless) needs values that are not
copies, so its recipes may end with `steps` (harness.core.steps: append zeros,
seeded normals or the mean along an axis; reorder an axis), and a tensor may be
a constant (`fill`, of `shape`, no source: an inserted block's zero output).

The rules are growth.md's FPI table, AKI rules and depth stacking, and
docs/lossless.md; see there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from harness.core import families, steps as steps_
from harness.core.families import layer_prefix, param_shapes
from harness.core.plan import GrowthPlan, counts
from harness.core.steps import Step
from harness.core.vocab import LOSSLESS


@dataclass(frozen=True)
class TensorRecipe:
    name: str                          # target tensor name (HF)
    sources: tuple[str, ...]           # 1 source tensor name, or 2 (AKI: layer l, l+1) concatenated along cat_axis
    cat_axis: int | None               # None when there is 1 source
    div_axis: int | None               # axis of the (concatenated) source `divisor` applies along; None: no division
    divisor: np.ndarray | None         # float32, length = size of the concatenated source along div_axis
    index: tuple[np.ndarray | None, ...]  # per axis: int64 indices into the divided, concatenated source; None: as is
    same_as: str | None = None         # depth stacking: equals this earlier target tensor (same source layer)
    rule: str = ""                     # short human text
    steps: tuple[Step, ...] = ()       # lossless: run after the gathers (harness.core.steps)
    fill: float | None = None          # lossless: the tensor is this constant (sources empty) ...
    shape: tuple[int, ...] = ()        # ... of this shape


# -- one axis of one tensor ------------------------------------------------------
@dataclass(frozen=True)
class _Axis:
    g: np.ndarray          # unit map (target unit -> source unit)
    n: int                 # source units
    label: str             # "g_h", "g_H[3]", "g_F[3]"
    clabel: str            # "c_h", "c_H[3]", "c_F[3]"
    unit: int = 1          # elements per unit (head size for head maps)
    parts: int = 1         # fused blocks along this axis (3 for GPT-2 c_attn: q|k|v)
    divide: bool = False   # in-dim: divide by the counts
    aki: bool = False      # new units from the next source layer


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _axis_name(ndim: int, axis: int) -> str:
    return "by" if ndim == 1 else ("rows:" if axis == 0 else "cols:")


def _make(name: str, sources: tuple[str, str | None], axes: tuple[_Axis | None, ...],
          upper_layer: int | None = None, extra: str = "") -> TensorRecipe:
    """Turn per-axis specs into a recipe. sources = (name in layer l, name in layer l+1 or None)."""
    ndim = len(axes)
    index: list[np.ndarray | None] = []
    cat_axis = div_axis = None
    divisor = None
    texts = []
    for a, ax in enumerate(axes):
        N = 0 if ax is None else len(ax.g)
        if ax is None or N == ax.n:        # identity map (validated: g = arange) -> unchanged
            index.append(None)
            continue
        unit, n, parts = ax.unit, ax.n, ax.parts
        el = (ax.g[:, None] * unit + np.arange(unit, dtype=np.int64)).reshape(-1)
        part_size = n * unit                   # source elements per part per layer
        per_layer = parts * part_size          # source elements along this axis per layer
        if ax.aki:
            new = np.repeat(np.arange(N) >= n, unit)
            el = np.where(new, per_layer + el, el)
            cat_axis = a
        idx = np.concatenate([p * part_size + el for p in range(parts)]).astype(np.int64)
        index.append(_readonly(idx))
        text = f"{_axis_name(ndim, a)} {'heads ' if unit > 1 else ''}{ax.label}"
        if parts > 1:
            text += " per q/k/v part"
        if ax.divide:
            c = counts(ax.g, n).astype(np.float32)
            div = np.tile(np.repeat(c, unit), parts)
            if ax.aki:
                div = np.tile(div, 2)
            divisor, div_axis = _readonly(div.astype(np.float32)), a
            text += f" / {ax.clabel}"
        if ax.aki:
            text += f" (AKI: new units from layer {upper_layer})"
        texts.append(text)
    if cat_axis is None:
        srcs: tuple[str, ...] = (sources[0],)
    else:
        assert sources[1] is not None
        srcs = (sources[0], sources[1])
    rule = "; ".join(texts) if texts else "unchanged"
    if extra and texts:
        rule += f" {extra}"
    return TensorRecipe(name=name, sources=srcs, cat_axis=cat_axis, div_axis=div_axis,
                        divisor=divisor, index=tuple(index), rule=rule)


# -- the axes a family's growth specs (harness.core.families) are made of ----------------
def _hidden(plan: GrowthPlan, divide: bool = False) -> _Axis:
    return _Axis(g=plan.hidden_map, n=plan.src.hidden, label="g_h", clabel="c_h", divide=divide)


def _layer_specs(plan: GrowthPlan, s: int) -> dict[str, tuple[_Axis | None, ...]]:
    """Per-axis specs of every tensor of (widened) source layer s, by name suffix."""
    src = plan.src
    aki = plan.method == "aki" and s < src.layers - 1
    dh = src.head_size
    hid = _hidden(plan)
    hid_in = _hidden(plan, divide=True)

    def heads(divide: bool = False, parts: int = 1) -> _Axis:
        return _Axis(g=plan.head_maps[s], n=src.heads, label=f"g_H[{s}]", clabel=f"c_H[{s}]",
                     unit=dh, parts=parts, divide=divide, aki=aki)

    def ffn(divide: bool = False) -> _Axis:
        return _Axis(g=plan.ffn_maps[s], n=src.ffn, label=f"g_F[{s}]", clabel=f"c_F[{s}]",
                     divide=divide, aki=aki)

    return families.get(src.family).layer_growth(hid, hid_in, heads, ffn)


def _global_specs(plan: GrowthPlan) -> dict[str, tuple[tuple[_Axis | None, ...], str]]:
    return families.get(plan.src.family).global_growth(_hidden(plan), _hidden(plan, divide=True))


def compile_recipes(plan: GrowthPlan) -> list[TensorRecipe]:
    """One recipe per target tensor, in param_shapes(dst) order."""
    if plan.method == LOSSLESS:
        from harness.core.recipe_lossless import compile_lossless  # it builds on this module
        return compile_lossless(plan)
    src, dst = plan.src, plan.dst
    family = src.family
    globals_ = _global_specs(plan)
    widened: dict[int, dict[str, TensorRecipe]] = {}   # source layer -> suffix -> recipe (first use)
    first_target: dict[int, int] = {}                   # source layer -> first target layer using it
    by_target: dict[int, dict[str, TensorRecipe]] = {}
    for t, s in enumerate(plan.depth_map.tolist()):
        if s not in widened:
            first_target[s] = t
            p_t, p_s = layer_prefix(family, t), layer_prefix(family, s)
            upper = s + 1 if s + 1 < src.layers else None
            p_u = layer_prefix(family, upper) if upper is not None else None
            widened[s] = {}
            for suffix, axes in _layer_specs(plan, s).items():
                widened[s][suffix] = _make(p_t + suffix,
                                           (p_s + suffix, p_u + suffix if p_u else None),
                                           axes, upper_layer=upper)
            by_target[t] = widened[s]
        else:
            p_t, p_first = layer_prefix(family, t), layer_prefix(family, first_target[s])
            by_target[t] = {
                suffix: TensorRecipe(name=p_t + suffix, sources=r.sources, cat_axis=r.cat_axis,
                                     div_axis=r.div_axis, divisor=r.divisor, index=r.index,
                                     same_as=p_first + suffix, rule=r.rule)
                for suffix, r in widened[s].items()
            }

    src_shapes = param_shapes(src)
    recipes = []
    for name, shape in param_shapes(dst).items():
        if name in globals_:
            axes, extra = globals_[name]
            r = _make(name, (name, None), axes, extra=extra)
        else:
            t, suffix = _split_layer_name(family, name)
            r = by_target[t][suffix]
        _check_shape(r, src_shapes, shape)
        recipes.append(r)
    return recipes


def _split_layer_name(family: str, name: str) -> tuple[int, str]:
    m = re.match(rf"^{re.escape(families.get(family).LAYER_PREFIX)}\.(\d+)\.(.+)$", name)
    if m is None:
        raise AssertionError(f"tensor {name!r} of {family} has no growth rule")
    return int(m.group(1)), m.group(2)


def _check_shape(r: TensorRecipe, src_shapes: dict[str, tuple[int, ...]],
                 shape: tuple[int, ...]) -> None:
    """Internal consistency: the recipe's result shape is the target shape."""
    if r.fill is not None:
        got = tuple(r.shape)
    else:
        base = list(src_shapes[r.sources[0]])
        if r.cat_axis is not None:
            base[r.cat_axis] *= len(r.sources)
        if r.divisor is not None:
            assert len(r.divisor) == base[r.div_axis], (r.name, len(r.divisor), base)
        got = tuple(len(i) if i is not None else b for i, b in zip(r.index, base, strict=False))
        got = steps_.result_shape(got, r.steps)
    if got != tuple(shape) or len(r.index) != len(shape):
        raise AssertionError(f"recipe for {r.name} gives shape {got}, target is {shape}")


_SCALE = re.compile(r"/ (c_[hHF](?:\[\d+\])?)")


def provenance(plan: GrowthPlan, recipes: list[TensorRecipe]) -> dict:
    """JSON-able record of where every target tensor came from (maps are in the plan)."""
    tensors = {}
    for r in recipes:
        scales = _SCALE.findall(r.rule)
        tensors[r.name] = {
            "sources": list(r.sources),
            "scale": " ".join(f"/ {c}" for c in scales),
            "same_as": r.same_as,
            "rule": r.rule,
        }
    return {
        "plan": {"src": plan.src.name, "dst": plan.dst.name, "method": plan.method,
                 "sampling": plan.sampling, "seed": int(plan.seed),
                 "depth_map": [int(v) for v in plan.depth_map]},
        "tensors": tensors,
    }
