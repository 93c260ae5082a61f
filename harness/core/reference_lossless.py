"""A third opinion on the lossless method: docs/lossless.md's rules written out plainly in numpy.

Like harness.core.reference it does not use the recipes: it builds every tensor of each family
by name, with concatenations of old values, zeros, means and seeded draws. The spec fixes what
must agree bit for bit with the recipes' executors: each seeded block is
default_rng(plan.fill_seed(layer, tensor, axis)).standard_normal(shape, float32) * float32(std),
drawn with the shape it has when it is appended (the stream axis is grown before the units'
axis), and a mean is a pairwise sum (slice i plus slice i + n//2, the odd last slice carried)
divided once by n. Small models only (tests).
"""
from __future__ import annotations

import numpy as np

from harness.core.families import layer_prefix, param_shapes


def _pairwise_mean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean along axis (kept, size 1): slices summed pairwise, [s_i + s_{i+h} for i < h] + [odd last]."""
    slices = list(np.split(x, x.shape[axis], axis=axis))
    n = len(slices)
    while len(slices) > 1:
        h = len(slices) // 2
        slices = [slices[i] + slices[i + h] for i in range(h)] + slices[2 * h:]
    return slices[0] / np.float32(n)


def _with_mean(x: np.ndarray, axis: int, k: int) -> np.ndarray:
    """x and k copies of its mean along axis."""
    return np.concatenate([x] + [_pairwise_mean(x, axis)] * k, axis=axis)


def _zeros_after(x: np.ndarray, axis: int, k: int) -> np.ndarray:
    shape = list(x.shape)
    shape[axis] = k
    return np.concatenate([x, np.zeros(shape, np.float32)], axis=axis)


def reference_lossless(plan, S: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    src, dst = plan.src, plan.dst
    d, D = src.hidden, dst.hidden
    k, nn, nf = D - d, (dst.heads - src.heads) * src.head_size, dst.ffn - src.ffn
    std = np.float32(src.initializer_range)

    def draw(layer, tensor, axis, shape):
        rng = np.random.default_rng(list(plan.fill_seed(layer, tensor, axis)))
        return rng.standard_normal(shape, dtype=np.float32) * std

    def rows_drawn(x, layer, tensor, n):      # n new rows drawn under x (with x's columns)
        return np.concatenate([x, draw(layer, tensor, 0, (n, x.shape[1]))], axis=0) if n else x

    def cols_drawn(x, layer, tensor, n):      # n new columns drawn right of x (with x's rows)
        return np.concatenate([x, draw(layer, tensor, 1, (x.shape[0], n))], axis=1) if n else x

    grow = _gpt2 if src.family == "gpt2" else _bert
    out = grow(plan, S, d, D, k, nn, nf, rows_drawn, cols_drawn)
    return {name: out[name] for name in param_shapes(dst)}


def _runs(depth_map) -> list[tuple[int, bool, bool]]:
    """(source layer, is the original, is the last inserted block of its run) per target layer."""
    dm = [int(s) for s in depth_map]
    last = {s: t for t, s in enumerate(dm)}
    return [(s, t == last[s], t + 1 == last[s]) for t, s in enumerate(dm)]


def _gpt2(plan, S, d, D, k, nn, nf, rows_drawn, cols_drawn):
    scale = np.float32(np.sqrt(D / d))
    g_h = plan.hidden_map
    out = {}
    for name in ("transformer.wte.weight", "transformer.wpe.weight"):
        out[name] = _with_mean(S[name], 1, k)

    def norm(prefix):
        return {f"{prefix}.weight": S[f"{prefix}.weight"][g_h] / scale,   # old: times sqrt(d / D)
                f"{prefix}.bias": _zeros_after(S[f"{prefix}.bias"], 0, k)}

    out.update(norm("transformer.ln_f"))
    for t, (s, original, _) in enumerate(_runs(plan.depth_map)):
        p, q = layer_prefix("gpt2", s), layer_prefix("gpt2", t)
        w = {}
        w.update({n[len(p):]: v for n, v in {**norm(p + "ln_1"), **norm(p + "ln_2")}.items()})
        # c_attn (d, 3d): k rows drawn, then each of q, k, v gets its nn new head columns
        W = rows_drawn(S[p + "attn.c_attn.weight"], s, "attn.c_attn.weight", k)
        new = cols_drawn(np.zeros((D, 0), np.float32), s, "attn.c_attn.weight", 3 * nn)
        b = S[p + "attn.c_attn.bias"]
        w["attn.c_attn.weight"] = np.concatenate(
            [np.concatenate([W[:, i * d:(i + 1) * d], new[:, i * nn:(i + 1) * nn]], axis=1) for i in range(3)], axis=1)
        w["attn.c_attn.bias"] = np.concatenate([_zeros_after(b[i * d:(i + 1) * d], 0, nn) for i in range(3)])
        W = rows_drawn(S[p + "mlp.c_fc.weight"], s, "mlp.c_fc.weight", k)
        w["mlp.c_fc.weight"] = cols_drawn(W, s, "mlp.c_fc.weight", nf)
        w["mlp.c_fc.bias"] = _zeros_after(S[p + "mlp.c_fc.bias"], 0, nf)
        for proj, new_rows in (("attn.c_proj", nn), ("mlp.c_proj", nf)):
            # writes the stream: the mean of its old columns into every new one; new units' rows zero
            w[proj + ".weight"] = _zeros_after(_with_mean(S[p + proj + ".weight"], 1, k), 0, new_rows)
            w[proj + ".bias"] = _with_mean(S[p + proj + ".bias"], 0, k)
            if not original:   # an inserted block adds nothing to the stream
                w[proj + ".weight"] = np.zeros_like(w[proj + ".weight"])
                w[proj + ".bias"] = np.zeros_like(w[proj + ".bias"])
        out.update({q + n: v for n, v in w.items()})
    return out


def _bert(plan, S, d, D, k, nn, nf, rows_drawn, cols_drawn):
    g_h = plan.hidden_map
    out = {f"embeddings.{e}_embeddings.weight": S[f"embeddings.{e}_embeddings.weight"][:, g_h]
           for e in ("word", "position", "token_type")}

    def norm(prefix):      # copies of every coordinate keep a post-LN LayerNorm's statistics
        return {f"{prefix}.weight": S[f"{prefix}.weight"][g_h], f"{prefix}.bias": S[f"{prefix}.bias"][g_h]}

    def identity(prefix):
        return {f"{prefix}.weight": np.ones(D, np.float32), f"{prefix}.bias": np.zeros(D, np.float32)}

    runs = _runs(plan.depth_map)
    out.update(norm("embeddings.LayerNorm") if runs[0][1] else identity("embeddings.LayerNorm"))
    if plan.src.head == "mlm":   # the transform reads one copy; the tied decoder sums D / d copies of every
        h = "cls.predictions"     # unit, so the LayerNorm in front of it is divided by D / d
        out[f"{h}.transform.dense.weight"] = _zeros_after(S[f"{h}.transform.dense.weight"][g_h], 1, k)
        out[f"{h}.transform.dense.bias"] = S[f"{h}.transform.dense.bias"][g_h]
        for p in ("weight", "bias"):
            out[f"{h}.transform.LayerNorm.{p}"] = S[f"{h}.transform.LayerNorm.{p}"][g_h] / np.float32(D // d)
        out[f"{h}.bias"] = S[f"{h}.bias"].copy()
    else:
        out["pooler.dense.weight"] = _zeros_after(S["pooler.dense.weight"][g_h], 1, k)
        out["pooler.dense.bias"] = S["pooler.dense.bias"][g_h]
    for t, (s, original, last_inserted) in enumerate(runs):
        p, q = layer_prefix("bert", s), layer_prefix("bert", t)
        w = {}
        for name in ("query", "key", "value"):
            n = f"attention.self.{name}"
            w[n + ".weight"] = rows_drawn(_zeros_after(S[p + n + ".weight"], 1, k), s, n + ".weight", nn)
            w[n + ".bias"] = _zeros_after(S[p + n + ".bias"], 0, nn)
        w["intermediate.dense.weight"] = rows_drawn(_zeros_after(S[p + "intermediate.dense.weight"], 1, k),
                                                    s, "intermediate.dense.weight", nf)
        w["intermediate.dense.bias"] = _zeros_after(S[p + "intermediate.dense.bias"], 0, nf)
        for dense, new_cols in (("attention.output.dense", nn), ("output.dense", nf)):
            w[dense + ".weight"] = _zeros_after(S[p + dense + ".weight"][g_h], 1, new_cols)
            w[dense + ".bias"] = S[p + dense + ".bias"][g_h]
            if not original:
                w[dense + ".weight"] = np.zeros_like(w[dense + ".weight"])
                w[dense + ".bias"] = np.zeros_like(w[dense + ".bias"])
        followed = original and t + 1 < len(runs) and not runs[t + 1][1]
        inner = "attention.output.LayerNorm"
        w.update({n[len(p):]: v for n, v in (norm(p + inner) if original else identity(p + inner)).items()})
        if original and not followed:
            block = norm(p + "output.LayerNorm")
        elif last_inserted:   # the affine of the norm in front of the run, moved to its end
            before = layer_prefix("bert", s - 1) + "output.LayerNorm" if s else "embeddings.LayerNorm"
            block = {p + "output.LayerNorm." + n.rpartition(".")[2]: v for n, v in norm(before).items()}
        else:
            block = identity(p + "output.LayerNorm")
        w.update({n[len(p):]: v for n, v in block.items()})
        out.update({q + n: v for n, v in w.items()})
    return out
