"""The lossless method (docs/lossless.md) compiled into recipes: the families' growth specs read as roles.

The per-axis specs of harness.core.families (the tables FPI and AKI compile) say which space an
axis indexes and which way it faces:
    hidden, not divided       the axis WRITES the residual stream        (an out-dim: wte, c_proj cols)
    hidden, divided           the axis READS the stream                  (an in-dim: c_attn rows)
    heads / ffn, not divided  the new units' inputs                       (q|k|v columns, c_fc columns, biases)
    heads / ffn, divided      the new units' outputs                      (c_proj rows)
and the family module says how its stream grows (LOSSLESS_STREAM), and names its LayerNorms,
branch outputs and block-output norm. With k = D - d new stream coordinates:

    stream "mean" (pre-LN)    writer: + k copies of the mean along the axis (harness.core.steps)
                              reader: + k seeded normal rows (those coordinates normalise to 0)
                              LayerNorm weight: by g_h, divided by float32(sqrt(D / d)); bias: + k zeros
    stream "copies" (post-LN) writer: by g_h (every count D / d); reader: + k zeros; LayerNorms: by g_h
    unit inputs               + seeded normals (weights), + zeros (biases); q|k|v parts reordered
    unit outputs              + zeros

Steps run the stream axis first, then the unit axis. Seeded blocks come from
GrowthPlan.fill_seed(source layer, tensor, axis), N(0, initializer_range^2).

Depth (harness.core.lossless.depth_order): each source layer's run ends with the original; the
blocks before it in its run are inserted ones, grown like the original (same_as) but with zero
branch outputs (BRANCH_OUTPUTS), so a pre-LN block is the identity. A post-LN block ends in a
LayerNorm, so an inserted run also gets identity-affine LayerNorms (weight 1, bias 0), the norm in
front of the run (BLOCK_NORM of the layer before, or INPUT_NORM) becomes identity-affine too, and
its affine moves to the last inserted block of the run (docs/lossless.md: exact up to eps / sigma^2).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.core import families, lossless
from harness.core.families import layer_prefix, param_shapes
from harness.core.plan import GrowthPlan
from harness.core.recipe import TensorRecipe, _Axis, _check_shape, _global_specs, _layer_specs, _make, _readonly
from harness.core.steps import Append, Gather, describe


def _norm_of(family, name: str) -> str | None:
    """The LayerNorm `name` (a layer suffix or a global name) belongs to, or None."""
    base, _, _ = name.rpartition(".")
    return base if base in families.get(family).NORMS else None


def _interleave(n_old: int, n_new: int, parts: int) -> np.ndarray:
    """[old part 0, new part 0, old part 1, new part 1, ...] from [old parts..., new parts...]."""
    return np.concatenate([np.concatenate([p * n_old + np.arange(n_old), parts * n_old + p * n_new + np.arange(n_new)])
                           for p in range(parts)]).astype(np.int64)


def _grow(plan: GrowthPlan, name: str, source: str, tensor: str, layer: int | None,
          axes: tuple[_Axis | None, ...]) -> TensorRecipe:
    """The lossless recipe of one tensor. tensor: its layer-relative name (seeds); layer: its source layer."""
    src, dst = plan.src, plan.dst
    k, ndim = dst.hidden - src.hidden, len(axes)
    mean_stream = lossless.stream(src.family) == "mean"
    index: list[np.ndarray | None] = [None] * ndim
    steps: list = []
    divisor = div_axis = None
    texts = []

    def normal(axis: int, size: int) -> Append:
        return Append(axis, "normal", size, plan.fill_seed(layer, tensor, axis), src.initializer_range)

    if _norm_of(src.family, tensor):
        if k and mean_stream and not tensor.endswith(".weight"):   # pre-LN bias: new coordinates output 0
            steps.append(Append(0, "zeros", k))
        elif k:                                # copied by g_h; a pre-LN weight also times sqrt(d / D)
            index[0] = _readonly(plan.hidden_map)
            texts.append("by g_h")
            if mean_stream:
                divisor, div_axis = _readonly(np.full(src.hidden, np.sqrt(dst.hidden / src.hidden), np.float32)), 0
                texts.append(f"/ sqrt({dst.hidden}/{src.hidden}) (LayerNorm over the wider stream)")
    else:
        for a, ax in enumerate(axes):          # the stream axis first
            if ax is None or ax.label != "g_h" or not k:
                continue
            if mean_stream:                    # writers append the mean, readers seeded rows
                steps.append(normal(a, k) if ax.divide else Append(a, "mean", k))
            elif ax.divide:                    # copies: readers read the copies with zero weights
                steps.append(Append(a, "zeros", k))
            else:                              # copies: writers write them by g_h
                index[a] = _readonly(plan.hidden_map)
                texts.append(f"{('rows', 'cols')[a] if ndim == 2 else 'by'}: g_h")
        for a, ax in enumerate(axes):          # then the units' axis
            if ax is None or ax.label == "g_h" or len(ax.g) == ax.n:
                continue
            n_new = (len(ax.g) - ax.n) * ax.unit
            if ax.divide:
                steps.append(Append(a, "zeros", n_new))
                continue
            steps.append(normal(a, n_new * ax.parts) if ndim == 2 else Append(a, "zeros", n_new * ax.parts))
            if ax.parts > 1:
                steps.append(Gather(a, _readonly(_interleave(ax.n * ax.unit, n_new, ax.parts))))
    if steps:
        texts.append(describe(tuple(steps), ndim))
    return TensorRecipe(name=name, sources=(source,), cat_axis=None, div_axis=div_axis, divisor=divisor,
                        index=tuple(index), rule="lossless: " + ("; ".join(texts) or "unchanged"),
                        steps=tuple(steps))


def _constant(name: str, shape: tuple[int, ...], value: float, why: str) -> TensorRecipe:
    return TensorRecipe(name=name, sources=(), cat_axis=None, div_axis=None, divisor=None,
                        index=(None,) * len(shape), rule=f"lossless: all {value:g} ({why})",
                        fill=float(value), shape=tuple(shape))


def _identity_norm(name: str, shape: tuple[int, ...], why: str) -> TensorRecipe:
    return _constant(name, shape, 1.0 if name.endswith(".weight") else 0.0, f"identity-affine LayerNorm: {why}")


def compile_lossless(plan: GrowthPlan) -> list[TensorRecipe]:
    """One recipe per target tensor, in param_shapes(dst) order."""
    src, dst = plan.src, plan.dst
    family = families.get(src.family)
    post_ln = lossless.stream(src.family) == "copies"
    dm, orig = plan.depth_map.tolist(), lossless.originals(plan.depth_map)
    shapes = param_shapes(dst)
    globals_ = _global_specs(plan)
    first: dict[tuple[int, str], int] = {}      # (source layer, suffix) -> first target layer grown from it
    recipes: dict[str, TensorRecipe] = {}

    for t, s in enumerate(dm):
        p_t, p_s = layer_prefix(src.family, t), layer_prefix(src.family, s)
        specs = _layer_specs(plan, s)
        last_inserted = not orig[t] and orig[t + 1]
        followed = orig[t] and t + 1 < len(dm) and not orig[t + 1]   # an original with a run after it
        for suffix, axes in specs.items():
            name, norm = p_t + suffix, _norm_of(src.family, suffix)
            if not orig[t] and suffix.rpartition(".")[0] in family.BRANCH_OUTPUTS:
                recipes[name] = _constant(name, shapes[name], 0.0, "inserted block: its branch adds nothing")
            elif post_ln and not orig[t] and norm == family.BLOCK_NORM and last_inserted:
                before = (layer_prefix(src.family, s - 1) + suffix if s
                          else f"{family.INPUT_NORM}.{suffix.rpartition('.')[2]}")
                r = _grow(plan, name, before, suffix if s else before, s - 1 if s else None,
                          specs[suffix] if s else globals_[before][0])
                recipes[name] = dataclasses.replace(r, rule=f"{r.rule} (the affine of {before}, moved here)")
            elif post_ln and norm is not None and (not orig[t] or (norm == family.BLOCK_NORM and followed)):
                recipes[name] = _identity_norm(name, shapes[name], "its affine moved to the run's last "
                                               "inserted block" if orig[t] else "inserted block")
            elif (s, suffix) in first:
                ref = recipes[layer_prefix(src.family, first[(s, suffix)]) + suffix]
                recipes[name] = dataclasses.replace(ref, name=name, same_as=ref.name)
            else:
                first[(s, suffix)] = t
                recipes[name] = _grow(plan, name, p_s + suffix, suffix, s, axes)

    for name, (axes, _) in globals_.items():
        if name not in shapes:
            continue
        if post_ln and _norm_of(src.family, name) == family.INPUT_NORM and not orig[0]:
            recipes[name] = _identity_norm(name, shapes[name], "its affine moved to layer 0's last inserted block")
        elif name.rpartition(".")[0] == family.TIED_HEAD_NORM:   # copies summed by the tied decoder: / c_h
            r = _make(name, (name, None), axes, extra="(tied decoder: logits sum the D / d copies)")
            recipes[name] = dataclasses.replace(r, rule="lossless: " + r.rule)
        else:
            recipes[name] = _grow(plan, name, name, name, None, axes)

    src_shapes = param_shapes(src)
    out = []
    for name, shape in shapes.items():
        _check_shape(recipes[name], src_shapes, shape)
        out.append(recipes[name])
    return out
