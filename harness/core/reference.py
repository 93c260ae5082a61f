"""A third opinion: growth.md's rules written out plainly in numpy.

`reference_expand` deliberately does not use harness.core.recipe: it walks the
tensors kind by kind with explicit loops over units (hidden units, heads,
FFN units), splits GPT-2's fused c_attn into q, k, v, grows each and re-fuses,
and spells out AKI's "old unit from layer l, new unit from layer l+1" branch.
Tests require it to be bit-identical to executing the compiled recipes
(`execute_recipes_numpy`, the executable definition of the recipe semantics).
Divisions are float32 true divisions of the same values in both, so their
order relative to gathering does not change a bit.

Small models only (tests); it is slow by design, not for seed sizes.
"""
from __future__ import annotations

import numpy as np

from harness.core.errors import BadInput
from harness.core.families import layer_prefix, param_shapes
from harness.core.plan import GrowthPlan, counts
from harness.core.reference_lossless import reference_lossless
from harness.core.steps import apply_steps, constant
from harness.core.vocab import LOSSLESS


# -- the spec's executor ------------------------------------------------------------
def execute_recipes_numpy(recipes, src_state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute recipes exactly as specified in harness.core.recipe (concat, divide, gather, then
    a lossless recipe's steps; a constant for a fill)."""
    missing = sorted({s for r in recipes for s in r.sources} - set(src_state))
    if missing:
        raise BadInput(f"source state lacks {len(missing)} tensor(s): {', '.join(missing[:5])}",
                       "pass the complete source checkpoint")
    out: dict[str, np.ndarray] = {}
    for r in recipes:
        if r.same_as is not None:
            out[r.name] = out[r.same_as].copy()
            continue
        if r.fill is not None:
            out[r.name] = constant(r.shape, r.fill)
            continue
        xs = [np.asarray(src_state[s]) for s in r.sources]
        x = xs[0] if len(xs) == 1 else np.concatenate(xs, axis=r.cat_axis)
        if r.divisor is not None:
            shape = [1] * x.ndim
            shape[r.div_axis] = -1
            x = x / r.divisor.reshape(shape)
        for axis, idx in enumerate(r.index):
            if idx is not None:
                x = np.take(x, idx, axis=axis)
        out[r.name] = np.array(apply_steps(x, r.steps), copy=True)
    return out


# -- building blocks, one unit at a time ---------------------------------------------
def _unit(x: np.ndarray, axis: int, j: int, size: int) -> np.ndarray:
    """Unit j (elements j*size .. j*size+size-1) of x along axis."""
    sl = [slice(None)] * x.ndim
    sl[axis] = slice(j * size, (j + 1) * size)
    return x[tuple(sl)]


def _out_units(x, axis, g, size, upper=None, n_old=None):
    """Out-dim: new unit k <- unit g(k), unscaled; with `upper` (AKI) new units k >= n_old
    come from the upper layer at g(k)."""
    blocks = []
    for k, j in enumerate(g.tolist()):
        if upper is not None and k >= n_old:
            blocks.append(_unit(upper, axis, j, size))      # new unit: layer l+1
        else:
            blocks.append(_unit(x, axis, j, size))          # old unit (or FPI copy): layer l
    return np.concatenate(blocks, axis=axis)


def _in_units(x, axis, g, c, size, upper=None, n_old=None):
    """In-dim: new unit k <- unit g(k) / c[g(k)]; with `upper` (AKI) new units k >= n_old
    come from the upper layer at g(k), also divided by c[g(k)]."""
    c = c.astype(np.float32)
    blocks = []
    for k, j in enumerate(g.tolist()):
        if upper is not None and k >= n_old:
            blocks.append(_unit(upper, axis, j, size) / c[j])
        else:
            blocks.append(_unit(x, axis, j, size) / c[j])
    return np.concatenate(blocks, axis=axis)


# -- the expansion ----------------------------------------------------------------------
def reference_expand(plan: GrowthPlan, src_state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    src, dst = plan.src, plan.dst
    for name, shape in param_shapes(src).items():
        if name not in src_state:
            raise BadInput(f"source state lacks {name}", "pass the complete source checkpoint")
        if tuple(src_state[name].shape) != tuple(shape):
            raise BadInput(f"source tensor {name} has shape {tuple(src_state[name].shape)}, "
                           f"expected {shape}", "pass a checkpoint of the plan's source config")
    S = {k: np.asarray(v) for k, v in src_state.items()}
    if plan.method == LOSSLESS:
        return reference_lossless(plan, S)
    d, H, dh, L = src.hidden, src.heads, src.head_size, src.layers
    g_h = plan.hidden_map
    c_h = counts(g_h, d)

    def hid_out(x, axis):      # out by g_h
        return _out_units(x, axis, g_h, 1)

    def hid_in(x, axis):       # in by g_h / c_h
        return _in_units(x, axis, g_h, c_h, 1)

    out: dict[str, np.ndarray] = {}

    # embeddings / final modules
    if src.family == "bert":
        for e in ("word", "position", "token_type"):
            n = f"embeddings.{e}_embeddings.weight"
            out[n] = hid_out(S[n], 1)
        for p in ("weight", "bias"):
            out[f"embeddings.LayerNorm.{p}"] = hid_out(S[f"embeddings.LayerNorm.{p}"], 0)
        if src.head == "mlm":   # BertForMaskedLM: the transform like the pooler; the tied decoder sums
            h = "cls.predictions"   # duplicated units, so the LayerNorm before it is divided by c_h
            out[f"{h}.transform.dense.weight"] = hid_out(hid_in(S[f"{h}.transform.dense.weight"], 1), 0)
            out[f"{h}.transform.dense.bias"] = hid_out(S[f"{h}.transform.dense.bias"], 0)
            for p in ("weight", "bias"):
                out[f"{h}.transform.LayerNorm.{p}"] = hid_in(S[f"{h}.transform.LayerNorm.{p}"], 0)
            out[f"{h}.bias"] = S[f"{h}.bias"].copy()
        else:
            out["pooler.dense.weight"] = hid_out(hid_in(S["pooler.dense.weight"], 1), 0)
            out["pooler.dense.bias"] = hid_out(S["pooler.dense.bias"], 0)
    else:
        out["transformer.wte.weight"] = hid_out(S["transformer.wte.weight"], 1)
        out["transformer.wpe.weight"] = hid_out(S["transformer.wpe.weight"], 1)
        # tied lm_head: ln_f gamma and beta divided by c_h[g_h(i)]
        out["transformer.ln_f.weight"] = hid_in(S["transformer.ln_f.weight"], 0)
        out["transformer.ln_f.bias"] = hid_in(S["transformer.ln_f.bias"], 0)

    # widen every source layer once
    widened: dict[int, dict[str, np.ndarray]] = {}
    for s in range(L):
        p = layer_prefix(src.family, s)
        aki = plan.method == "aki" and s < L - 1
        q = layer_prefix(src.family, s + 1) if aki else None
        gH, cH = plan.head_maps[s], counts(plan.head_maps[s], H)
        gF, cF = plan.ffn_maps[s], counts(plan.ffn_maps[s], src.ffn)
        w: dict[str, np.ndarray] = {}

        def up(suffix, q=q, aki=aki):   # this layer's upper neighbour (AKI), bound now
            return S[q + suffix] if aki else None

        if src.family == "bert":
            for name in ("query", "key", "value"):
                suf = f"attention.self.{name}"
                W = hid_in(S[p + suf + ".weight"], 1)
                W_up = hid_in(up(suf + ".weight"), 1) if aki else None
                w[suf + ".weight"] = _out_units(W, 0, gH, dh, W_up, H)
                w[suf + ".bias"] = _out_units(S[p + suf + ".bias"], 0, gH, dh, up(suf + ".bias"), H)
            suf = "attention.output.dense"
            W = _in_units(S[p + suf + ".weight"], 1, gH, cH, dh, up(suf + ".weight"), H)
            w[suf + ".weight"] = hid_out(W, 0)
            w[suf + ".bias"] = hid_out(S[p + suf + ".bias"], 0)
            suf = "intermediate.dense"
            W = hid_in(S[p + suf + ".weight"], 1)
            W_up = hid_in(up(suf + ".weight"), 1) if aki else None
            w[suf + ".weight"] = _out_units(W, 0, gF, 1, W_up, src.ffn)
            w[suf + ".bias"] = _out_units(S[p + suf + ".bias"], 0, gF, 1, up(suf + ".bias"), src.ffn)
            suf = "output.dense"
            W = _in_units(S[p + suf + ".weight"], 1, gF, cF, 1, up(suf + ".weight"), src.ffn)
            w[suf + ".weight"] = hid_out(W, 0)
            w[suf + ".bias"] = hid_out(S[p + suf + ".bias"], 0)
            for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
                for par in ("weight", "bias"):
                    w[f"{ln}.{par}"] = hid_out(S[f"{p}{ln}.{par}"], 0)
        else:
            for ln in ("ln_1", "ln_2"):
                for par in ("weight", "bias"):
                    w[f"{ln}.{par}"] = hid_out(S[f"{p}{ln}.{par}"], 0)
            # fused c_attn (d, 3d): split q | k | v, grow each head-wise with the same g_H, re-fuse
            Wc, bc = S[p + "attn.c_attn.weight"], S[p + "attn.c_attn.bias"]
            Wc_up = up("attn.c_attn.weight")
            bc_up = up("attn.c_attn.bias")
            wparts, bparts = [], []
            for part in range(3):
                Wp = hid_in(_unit(Wc, 1, part, d), 0)
                Wp_up = hid_in(_unit(Wc_up, 1, part, d), 0) if aki else None
                wparts.append(_out_units(Wp, 1, gH, dh, Wp_up, H))
                bp = _unit(bc, 0, part, d)
                bp_up = _unit(bc_up, 0, part, d) if aki else None
                bparts.append(_out_units(bp, 0, gH, dh, bp_up, H))
            w["attn.c_attn.weight"] = np.concatenate(wparts, axis=1)
            w["attn.c_attn.bias"] = np.concatenate(bparts, axis=0)
            # attn.c_proj (d in = heads, d out): rows heads g_H / c_H, cols g_h
            W = _in_units(S[p + "attn.c_proj.weight"], 0, gH, cH, dh, up("attn.c_proj.weight"), H)
            w["attn.c_proj.weight"] = hid_out(W, 1)
            w["attn.c_proj.bias"] = hid_out(S[p + "attn.c_proj.bias"], 0)
            # mlp.c_fc (d, F): rows g_h / c_h, cols g_F
            W = hid_in(S[p + "mlp.c_fc.weight"], 0)
            W_up = hid_in(up("mlp.c_fc.weight"), 0) if aki else None
            w["mlp.c_fc.weight"] = _out_units(W, 1, gF, 1, W_up, src.ffn)
            w["mlp.c_fc.bias"] = _out_units(S[p + "mlp.c_fc.bias"], 0, gF, 1, up("mlp.c_fc.bias"),
                                            src.ffn)
            # mlp.c_proj (F, d): rows g_F / c_F, cols g_h
            W = _in_units(S[p + "mlp.c_proj.weight"], 0, gF, cF, 1, up("mlp.c_proj.weight"), src.ffn)
            w["mlp.c_proj.weight"] = hid_out(W, 1)
            w["mlp.c_proj.bias"] = hid_out(S[p + "mlp.c_proj.bias"], 0)
        widened[s] = w

    # then stack: target layer t is widened source layer depth_map[t]
    for t, s in enumerate(plan.depth_map.tolist()):
        p = layer_prefix(src.family, t)
        for suffix, x in widened[s].items():
            out[p + suffix] = x.copy()

    shapes = param_shapes(dst)
    return {name: out[name] for name in shapes}
