"""Recipes vs. the plain reference, and the properties growth.md promises."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.core.config import ModelConfig, preset
from harness.core.families import layer_prefix, param_shapes
from harness.core.plan import GrowthPlan, build_plan, counts
from harness.core.recipe import compile_recipes, provenance
from harness.core.reference import execute_recipes_numpy, reference_expand

FAMILIES = ("bert", "gpt2")
GROWTHS = {"width": "tiny_w", "width2x": "tiny2x", "depth": "tiny_d", "width+depth": "tiny_wd"}


# -- helpers ---------------------------------------------------------------------------------
def init_state(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 source state: weights N(0, 0.02), LN gamma 1 + noise, biases small noise."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in param_shapes(cfg).items():
        is_ln = "LayerNorm" in name or ".ln_" in name
        if is_ln and name.endswith(".weight"):
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            x = 0.01 * rng.standard_normal(shape)
        else:
            x = 0.02 * rng.standard_normal(shape)
        state[name] = x.astype(np.float32)
    return state


def max_ulp(a: np.ndarray, b: np.ndarray) -> int:
    def ordered(x):
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return int(np.abs(ordered(a) - ordered(b)).max()) if a.size else 0


def assert_bit_identical(got: dict, want: dict, what: str = ""):
    assert set(got) == set(want), f"{what}: key sets differ: {sorted(set(got) ^ set(want))[:5]}"
    for name in want:
        a, b = got[name], want[name]
        assert a.shape == b.shape, f"{what}: {name}: shape {a.shape} vs {b.shape}"
        assert a.dtype == b.dtype, f"{what}: {name}: dtype {a.dtype} vs {b.dtype}"
        assert np.array_equal(a, b), f"{what}: {name}: not bit-identical, max ULP {max_ulp(a, b)}"


def expand_heads(g: np.ndarray, dh: int) -> np.ndarray:
    return (g[:, None] * dh + np.arange(dh)).reshape(-1)


def element_map(plan, kind: str, s: int) -> tuple[np.ndarray, int]:
    """Target element -> source element (within one layer) and the source size, for map kind
    h (hidden), H (heads), F (FFN), H3 (heads of each fused q|k|v part)."""
    src = plan.src
    if kind == "h":
        return plan.hidden_map, src.hidden
    if kind == "H":
        return expand_heads(plan.head_maps[s], src.head_size), src.hidden
    if kind == "F":
        return plan.ffn_maps[s], src.ffn
    el = expand_heads(plan.head_maps[s], src.head_size)
    return np.concatenate([p * src.hidden + el for p in range(3)]), 3 * src.hidden


def element_counts(plan, kind: str, s: int) -> np.ndarray:
    g, n = element_map(plan, kind, s)
    return counts(g, n).astype(np.float32)


# Which axis of each tensor is the in-dim (divided) and which the out-dim, with its map kind.
# (in_axis, in_kind, out_axis, out_kind); None where absent.
BERT_TABLE = {
    **{f"attention.self.{x}.weight": (1, "h", 0, "H") for x in ("query", "key", "value")},
    **{f"attention.self.{x}.bias": (None, None, 0, "H") for x in ("query", "key", "value")},
    "attention.output.dense.weight": (1, "H", 0, "h"),
    "intermediate.dense.weight": (1, "h", 0, "F"),
    "intermediate.dense.bias": (None, None, 0, "F"),
    "output.dense.weight": (1, "F", 0, "h"),
    "pooler.dense.weight": (1, "h", 0, "h"),
    "embeddings.word_embeddings.weight": (None, None, 1, "h"),
    "embeddings.position_embeddings.weight": (None, None, 1, "h"),
    "embeddings.token_type_embeddings.weight": (None, None, 1, "h"),
}
GPT2_TABLE = {
    "attn.c_attn.weight": (0, "h", 1, "H3"),
    "attn.c_attn.bias": (None, None, 0, "H3"),
    "attn.c_proj.weight": (0, "H", 1, "h"),
    "mlp.c_fc.weight": (0, "h", 1, "F"),
    "mlp.c_fc.bias": (None, None, 0, "F"),
    "mlp.c_proj.weight": (0, "F", 1, "h"),
    "transformer.wte.weight": (None, None, 1, "h"),
    "transformer.wpe.weight": (None, None, 1, "h"),
    "transformer.ln_f.weight": (0, "h", None, None),
    "transformer.ln_f.bias": (0, "h", None, None),
}


def split_name(family, name):
    """(suffix relative to the layer prefix, target layer) or (name, None) for non-layer tensors."""
    m = re.match(r"^(?:encoder\.layer|transformer\.h)\.(\d+)\.(.+)$", name)
    return (m.group(2), int(m.group(1))) if m else (name, None)


def rule_of(family, name):
    suffix, _ = split_name(family, name)
    table = BERT_TABLE if family == "bert" else GPT2_TABLE
    return table.get(suffix, (None, None, 0, "h"))      # LayerNorms and hidden biases: out by g_h


def fpi_formula(plan, src_state, name):
    """growth.md's FPI formula, vectorised: W'[i, k] = W[g_out(i), g_in(k)] / c_in[g_in(k)]."""
    family = plan.src.family
    suffix, t = split_name(family, name)
    s = int(plan.depth_map[t]) if t is not None else None
    x = src_state[layer_prefix(family, s) + suffix if t is not None else name]
    in_axis, in_kind, out_axis, out_kind = rule_of(family, name)
    if out_axis is not None:
        x = np.take(x, element_map(plan, out_kind, s)[0], axis=out_axis)
    if in_axis is not None:
        g, _ = element_map(plan, in_kind, s)
        c = element_counts(plan, in_kind, s)[g]
        shape = [1] * x.ndim
        shape[in_axis] = -1
        x = np.take(x, g, axis=in_axis) / c.reshape(shape)
    return x


def grow(plan, state):
    recipes = compile_recipes(plan)
    return recipes, execute_recipes_numpy(recipes, state)


# -- the full matrix: recipes == reference, bit for bit ----------------------------------------
@pytest.mark.parametrize("growth", list(GROWTHS))
@pytest.mark.parametrize("sampling", ["paper", "balanced"])
@pytest.mark.parametrize("method", ["fpi", "aki"])
@pytest.mark.parametrize("family", FAMILIES)
def test_recipes_match_reference(family, method, sampling, growth):
    src, dst = preset(family, "tiny"), preset(family, GROWTHS[growth])
    plan = build_plan(src, dst, method, sampling, seed=17)
    state = init_state(src, seed=4)
    recipes, got = grow(plan, state)
    want = reference_expand(plan, state)
    assert_bit_identical(got, want, f"{family} {method} {sampling} {growth}")
    shapes = param_shapes(dst)
    assert [r.name for r in recipes] == list(shapes)
    assert {k: v.shape for k, v in got.items()} == shapes
    assert all(v.dtype == np.float32 for v in got.values())


@pytest.mark.parametrize("growth", list(GROWTHS))
@pytest.mark.parametrize("family", FAMILIES)
def test_fpi_formula_sums_and_copies(family, growth):
    src, dst = preset(family, "tiny"), preset(family, GROWTHS[growth])
    plan = build_plan(src, dst, "fpi", "paper", seed=5)
    state = init_state(src, seed=1)
    _, got = grow(plan, state)
    check_fpi(plan, state, got)


def check_fpi(plan, state, got):
    family = plan.src.family
    for name, x in got.items():
        # every element is its growth.md formula, exactly
        assert np.array_equal(x, fpi_formula(plan, state, name)), name
        suffix, t = split_name(family, name)
        s = int(plan.depth_map[t]) if t is not None else None
        source = state[layer_prefix(family, s) + suffix if t is not None else name]
        in_axis, in_kind, out_axis, out_kind = rule_of(family, name)
        if out_axis is not None:
            # out-dim copies equal their source rows exactly (before the in-dim step: 1-D / no in-dim)
            g, _ = element_map(plan, out_kind, s)
            if in_axis is None:
                assert np.array_equal(x, np.take(source, g, axis=out_axis)), name
            # every copy is bit-identical to the original unit's slice
            first = {}
            for i, j in enumerate(g.tolist()):
                first.setdefault(j, i)
            orig = np.array([first[j] for j in g.tolist()])
            assert np.array_equal(x, np.take(x, orig, axis=out_axis)), name
        if in_axis is not None:
            # in-dim groups sum back to the source column
            g, n = element_map(plan, in_kind, s)
            moved = np.moveaxis(x, in_axis, 0).astype(np.float64)
            summed = np.zeros((n,) + moved.shape[1:])
            np.add.at(summed, g, moved)
            want = np.moveaxis(source, in_axis, 0).astype(np.float64)
            if out_axis is not None:
                og, _ = element_map(plan, out_kind, s)
                want = np.take(want, og, axis=1)      # 2-D: the out axis is axis 1 after the move
            # float32 division by a count c then a float64 sum of c parts: a few float32 ulps (~6e-8 each)
            np.testing.assert_allclose(summed, want, rtol=1e-6, atol=1e-9, err_msg=name)


# -- AKI ---------------------------------------------------------------------------------------
BERT_INNER = {  # suffix -> (axis, kind, role)
    **{f"attention.self.{x}.{p}": (0, "H", "out") for x in ("query", "key", "value")
       for p in ("weight", "bias")},
    "attention.output.dense.weight": (1, "H", "in"),
    "intermediate.dense.weight": (0, "F", "out"),
    "intermediate.dense.bias": (0, "F", "out"),
    "output.dense.weight": (1, "F", "in"),
}
GPT2_INNER = {
    "attn.c_attn.weight": (1, "H3", "out"),
    "attn.c_attn.bias": (0, "H3", "out"),
    "attn.c_proj.weight": (0, "H", "in"),
    "mlp.c_fc.weight": (1, "F", "out"),
    "mlp.c_fc.bias": (0, "F", "out"),
    "mlp.c_proj.weight": (0, "F", "in"),
}


def new_mask(plan, kind, s):
    src, dst = plan.src, plan.dst
    if kind == "F":
        return np.arange(dst.ffn) >= src.ffn
    m = np.repeat(np.arange(dst.heads) >= src.heads, src.head_size)
    return np.tile(m, 3) if kind == "H3" else m


def target_pos_of_old(plan, kind, s):
    """Target element -> position, in a grown layer, of the old unit it was drawn from."""
    g, _ = element_map(plan, kind, s)
    if kind != "H3":
        return g
    d, D = plan.src.hidden, plan.dst.hidden
    part = g // d
    return part * D + g % d


def check_aki(plan, state, got):
    """AKI vs. an FPI plan of the same maps: old units and all hidden-dim tensors as FPI;
    new units from layer l+1 (after the in-dim step); top layer FPI."""
    family, src = plan.src.family, plan.src
    fpi_plan = build_plan(src, plan.dst, "fpi", plan.sampling, plan.seed)
    _, fpi = grow(fpi_plan, state)
    inner = BERT_INNER if family == "bert" else GPT2_INNER
    for name, x in got.items():
        suffix, t = split_name(family, name)
        if t is None or int(plan.depth_map[t]) == src.layers - 1 or suffix not in inner:
            assert np.array_equal(x, fpi[name]), f"{name} should be FPI"
            continue
        s = int(plan.depth_map[t])
        axis, kind, role = inner[suffix]
        new = new_mask(plan, kind, s)
        old_x, old_f = np.compress(~new, x, axis=axis), np.compress(~new, fpi[name], axis=axis)
        assert np.array_equal(old_x, old_f), f"{name}: old units differ from FPI"
        if not new.any():
            continue
        new_x = np.compress(new, x, axis=axis)
        pos = target_pos_of_old(plan, kind, s)[new]
        if role == "out":
            # new unit k = unit g(k) of layer l+1, grown on the hidden dim like FPI
            upper_fpi = fpi[layer_prefix(family, s + 1) + suffix]
            assert np.array_equal(new_x, np.take(upper_fpi, pos, axis=axis)), f"{name}: new units"
        else:
            upper = state[layer_prefix(family, s + 1) + suffix]
            upper = np.take(upper, plan.hidden_map, axis=1 - axis)
            c = element_counts(plan, kind, s)[pos]
            shape = [1, 1]
            shape[axis] = -1
            want = np.take(upper, pos, axis=axis) / c.reshape(shape)
            assert np.array_equal(new_x, want), f"{name}: new in-dim units"


@pytest.mark.parametrize("pair", [("tiny", "tiny2x"), ("tiny", "tiny_wd"), ("tiny_d", "tiny_wd")])
@pytest.mark.parametrize("sampling", ["paper", "balanced"])
@pytest.mark.parametrize("family", FAMILIES)
def test_aki_new_units_from_next_layer(family, sampling, pair):
    src, dst = preset(family, pair[0]), preset(family, pair[1])
    plan = build_plan(src, dst, "aki", sampling, seed=9)
    state = init_state(src, seed=2)
    recipes, got = grow(plan, state)
    check_aki(plan, state, got)
    # AKI really differs from FPI below the top layer when widths grow
    _, fpi = grow(build_plan(src, dst, "fpi", sampling, seed=9), state)
    suffix = "attention.self.query.weight" if family == "bert" else "attn.c_attn.weight"
    q = layer_prefix(family, 0) + suffix
    assert not np.array_equal(got[q], fpi[q])
    r = next(r for r in recipes if r.name == q)
    assert r.sources == (q, layer_prefix(family, 1) + suffix) and "AKI" in r.rule
    top = layer_prefix(family, src.layers - 1) + suffix
    assert np.array_equal(got[top], fpi[top])


# -- depth stacking ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fpi", "aki"])
@pytest.mark.parametrize("family", FAMILIES)
def test_same_as_tensors_equal_their_referent(family, method):
    src, dst = preset(family, "tiny"), preset(family, "tiny_wd")
    plan = build_plan(src, dst, method, "paper", seed=3)
    state = init_state(src)
    recipes, got = grow(plan, state)
    seen = {}
    n_same = 0
    for r in recipes:
        if r.same_as is not None:
            n_same += 1
            ref = seen[r.same_as]                      # referent is earlier
            assert ref.same_as is None
            assert np.array_equal(got[r.name], got[r.same_as])
            assert r.sources == ref.sources and r.rule == ref.rule
            assert all((a is None and b is None) or np.array_equal(a, b)
                       for a, b in zip(r.index, ref.index, strict=True))
            # the referent is the first target layer using the same source layer
            _, t = split_name(family, r.name)
            _, t0 = split_name(family, r.same_as)
            s = plan.depth_map[t]
            assert plan.depth_map[t0] == s and t0 == int(np.flatnonzero(plan.depth_map == s)[0])
        seen[r.name] = r
    # 2 -> 5 layers: target layers 2, 3, 4 are stacked copies
    per_layer = sum(1 for n in param_shapes(src) if n.startswith(layer_prefix(family, 0)))
    assert n_same == 3 * per_layer


# -- recipe structure -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fpi", "aki"])
@pytest.mark.parametrize("family", FAMILIES)
def test_recipe_structure(family, method):
    src, dst = preset(family, "tiny"), preset(family, "tiny_wd")
    plan = build_plan(src, dst, method, "balanced", seed=1)
    recipes = compile_recipes(plan)
    src_shapes, dst_shapes = param_shapes(src), param_shapes(dst)
    for r in recipes:
        assert all(s in src_shapes for s in r.sources)
        assert (r.cat_axis is None) == (len(r.sources) == 1)
        assert len(r.index) == len(dst_shapes[r.name])
        size = list(src_shapes[r.sources[0]])
        if r.cat_axis is not None:
            size[r.cat_axis] *= 2
        for axis, idx in enumerate(r.index):
            if idx is not None:
                assert idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < size[axis]
                assert not idx.flags.writeable
        assert (r.div_axis is None) == (r.divisor is None)
        if r.divisor is not None:
            assert r.divisor.dtype == np.float32 and r.divisor.shape == (size[r.div_axis],)
            assert np.all(r.divisor >= 1) and np.all(r.divisor == np.round(r.divisor))
    # determinism of the compiled recipes
    again = compile_recipes(build_plan(src, dst, method, "balanced", seed=1))
    assert len(again) == len(recipes)
    for a, b in zip(recipes, again, strict=True):
        assert (a.name, a.sources, a.cat_axis, a.div_axis, a.same_as, a.rule) == \
               (b.name, b.sources, b.cat_axis, b.div_axis, b.same_as, b.rule)
        assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a.index, b.index, strict=True))


def test_aki_in_dim_divisor_repeats_counts_for_both_halves():
    src, dst = preset("bert", "tiny"), preset("bert", "tiny2x")
    plan = build_plan(src, dst, "aki", "paper", seed=0)
    r = {r.name: r for r in compile_recipes(plan)}["encoder.layer.0.output.dense.weight"]
    c = plan.ffn_counts(0).astype(np.float32)
    assert r.cat_axis == 1 and r.div_axis == 1
    assert np.array_equal(r.divisor, np.concatenate([c, c]))
    F = src.ffn
    g = plan.ffn_maps[0]
    assert np.array_equal(r.index[1], np.where(np.arange(dst.ffn) < F, np.arange(dst.ffn), F + g))
    assert np.array_equal(r.index[0], plan.hidden_map)


def test_identity_growth_changes_nothing():
    for family in FAMILIES:
        cfg = preset(family, "tiny_wd")
        plan = build_plan(cfg, cfg, "aki", "paper", seed=0)
        recipes = compile_recipes(plan)
        assert all(r.divisor is None and r.same_as is None and len(r.sources) == 1
                   and all(i is None for i in r.index) for r in recipes)
        assert all(r.rule == "unchanged" for r in recipes)
        state = init_state(cfg)
        assert_bit_identical(execute_recipes_numpy(recipes, state), state, family)


def test_provenance_is_json_and_names_scales():
    for family, checks in [
        ("bert", {"encoder.layer.0.attention.self.query.weight": "/ c_h",
                  "encoder.layer.1.attention.output.dense.weight": "/ c_H[1]",
                  "encoder.layer.0.output.dense.weight": "/ c_F[0]",
                  "pooler.dense.weight": "/ c_h",
                  "embeddings.word_embeddings.weight": "",
                  "encoder.layer.0.output.LayerNorm.weight": ""}),
        ("gpt2", {"transformer.ln_f.weight": "/ c_h", "transformer.ln_f.bias": "/ c_h",
                  "transformer.h.0.attn.c_proj.weight": "/ c_H[0]",
                  "transformer.h.1.mlp.c_proj.weight": "/ c_F[1]",
                  "transformer.h.0.ln_1.weight": "", "transformer.wte.weight": ""}),
    ]:
        src, dst = preset(family, "tiny"), preset(family, "tiny_wd")
        plan = build_plan(src, dst, "aki", "paper", seed=0)
        recipes = compile_recipes(plan)
        prov = json.loads(json.dumps(provenance(plan, recipes)))
        assert list(prov["tensors"]) == list(param_shapes(dst))
        assert prov["plan"]["method"] == "aki" and prov["plan"]["depth_map"] == [0, 1, 0, 1, 1]
        for name, scale in checks.items():
            assert prov["tensors"][name]["scale"] == scale, name
        stacked = layer_prefix(family, 2) + ("output.dense.weight" if family == "bert" else "mlp.c_fc.weight")
        assert prov["tensors"][stacked]["same_as"] == stacked.replace(layer_prefix(family, 2),
                                                                      layer_prefix(family, 0))
        assert len(prov["tensors"][layer_prefix(family, 0) + (
            "attention.self.key.weight" if family == "bert" else "attn.c_attn.weight")]["sources"]) == 2


# -- GPT-2 fused c_attn: q, k, v each grown head-wise, never mixed --------------------------------
@pytest.mark.parametrize("method", ["fpi", "aki"])
def test_c_attn_parts_grow_separately(method):
    src, dst = preset("gpt2", "tiny"), preset("gpt2", "tiny_wd")
    plan = build_plan(src, dst, method, "paper", seed=21)
    state = init_state(src, seed=8)
    _, got = grow(plan, state)
    d, D, H, dh = src.hidden, dst.hidden, src.heads, src.head_size
    g_h, c_h = plan.hidden_map, plan.hidden_counts().astype(np.float32)
    for t, s in enumerate(plan.depth_map.tolist()):
        W = got[f"transformer.h.{t}.attn.c_attn.weight"]
        b = got[f"transformer.h.{t}.attn.c_attn.bias"]
        aki = method == "aki" and s < src.layers - 1
        for p in range(3):
            part, bpart = W[:, p * D:(p + 1) * D], b[p * D:(p + 1) * D]
            for k, j in enumerate(plan.head_maps[s].tolist()):
                layer = s + 1 if (aki and k >= H) else s
                Ws = state[f"transformer.h.{layer}.attn.c_attn.weight"][:, p * d:(p + 1) * d]
                bs = state[f"transformer.h.{layer}.attn.c_attn.bias"][p * d:(p + 1) * d]
                want = Ws[g_h][:, j * dh:(j + 1) * dh] / c_h[g_h][:, None]
                assert np.array_equal(part[:, k * dh:(k + 1) * dh], want), (t, p, k)
                assert np.array_equal(bpart[k * dh:(k + 1) * dh], bs[j * dh:(j + 1) * dh]), (t, p, k)


# -- random sizes and maps (hypothesis) ----------------------------------------------------------
@st.composite
def growth_cases(draw):
    family = draw(st.sampled_from(FAMILIES))
    dh = draw(st.integers(1, 3))
    H = draw(st.integers(1, 3))
    H2 = draw(st.integers(H, H + 4))
    F = draw(st.integers(1, 5))
    F2 = draw(st.integers(F, F + 9))
    L = draw(st.integers(1, 3))
    L2 = draw(st.integers(L, 3 * L + 2))
    common = dict(family=family, vocab=5, positions=4, type_vocab=2 if family == "bert" else 0,
                  eps=1e-5, act="gelu" if family == "bert" else "gelu_new")
    src = ModelConfig(hidden=H * dh, layers=L, heads=H, ffn=F, name="hyp-src", **common)
    dst = ModelConfig(hidden=H2 * dh, layers=L2, heads=H2, ffn=F2, name="hyp-dst", **common)
    method = draw(st.sampled_from(["fpi", "aki"]))
    sampling = draw(st.sampled_from(["paper", "balanced"]))
    seed = draw(st.integers(0, 2**31))
    return build_plan(src, dst, method, sampling, seed), seed


@settings(max_examples=60, deadline=None)
@given(case=growth_cases())
def test_random_growth_properties(case):
    plan, seed = case
    state = init_state(plan.src, seed=seed % 1000)
    recipes, got = grow(plan, state)
    assert_bit_identical(got, reference_expand(plan, state), "hypothesis")
    assert {k: v.shape for k, v in got.items()} == param_shapes(plan.dst)
    for r in recipes:
        if r.same_as is not None:
            assert np.array_equal(got[r.name], got[r.same_as])
    if plan.method == "fpi":
        check_fpi(plan, state, got)
    else:
        check_aki(plan, state, got)


# -- lossless (docs/lossless.md) ------------------------------------------------------------------
LOSSLESS = {"gpt2": ["tiny_w", "tiny_w80", "tiny_w112", "tiny_d", "tiny_wd", "tiny2x"],
            "bert": ["tiny2x", "tiny_d", "tiny2x_d"]}


@pytest.mark.parametrize("family,dst", [(f, d) for f, ds in LOSSLESS.items() for d in ds])
def test_lossless_recipes_match_reference(family, dst):
    src, dst_cfg = preset(family, "tiny"), preset(family, dst)
    plan = build_plan(src, dst_cfg, "lossless", "balanced", seed=17)
    state = init_state(src, seed=4)
    recipes, got = grow(plan, state)
    assert_bit_identical(got, reference_expand(plan, state), f"{family} lossless {dst}")
    assert {k: v.shape for k, v in got.items()} == param_shapes(plan.dst)
    for r in recipes:
        if r.same_as is not None:
            assert np.array_equal(got[r.name], got[r.same_as])


def test_lossless_gpt2_tensors_hold_the_old_values_the_mean_and_zeros():
    """GPT-2 64 -> 112 (7 heads, FFN 450), 2 -> 3 layers: every rule of docs/lossless.md, element by element."""
    src, dst = preset("gpt2", "tiny"), preset("gpt2", "tiny_w112")
    plan = build_plan(src, dst, "lossless", "paper", seed=2)
    state = init_state(src, seed=6)
    _, got = grow(plan, state)
    d, D, F = src.hidden, dst.hidden, src.ffn
    assert plan.dst.eps == src.eps * d / D and list(plan.depth_map) == [0, 1, 1]
    wte = got["transformer.wte.weight"]
    assert np.array_equal(wte[:, :d], state["transformer.wte.weight"])
    assert np.all(wte[:, d:] == wte[:, d:d + 1])                       # every new coordinate: the same mean
    np.testing.assert_allclose(wte[:, d], state["transformer.wte.weight"].astype(np.float64).mean(1), rtol=0,
                               atol=1e-9)
    scale = np.float32(np.sqrt(D / d))
    for t, s in enumerate(plan.depth_map.tolist()):
        p, q = f"transformer.h.{s}.", f"transformer.h.{t}."
        assert np.array_equal(got[q + "ln_1.weight"], state[p + "ln_1.weight"][plan.hidden_map] / scale)
        assert np.array_equal(got[q + "ln_1.bias"][d:], np.zeros(D - d, np.float32))
        W = got[q + "attn.c_attn.weight"]
        old = state[p + "attn.c_attn.weight"]
        for part in range(3):                                          # old heads of q, k, v: the source's
            assert np.array_equal(W[:d, part * D:part * D + d], old[:, part * d:(part + 1) * d])
        assert np.array_equal(got[q + "mlp.c_fc.weight"][:d, :F], state[p + "mlp.c_fc.weight"])
        inserted = t == 1                                              # layer 1's run: 1 (inserted), 2 (original)
        for proj, units in (("attn.c_proj", d), ("mlp.c_proj", F)):
            w, b = got[q + proj + ".weight"], got[q + proj + ".bias"]
            if inserted:
                assert not w.any() and not b.any(), f"{q}{proj}: an inserted block adds nothing"
                continue
            assert np.array_equal(w[:units, :d], state[p + proj + ".weight"]) and not w[units:].any()
            assert np.all(w[:units, d:] == w[:units, d:d + 1]) and np.all(b[d:] == b[d])


def test_lossless_bert_moves_the_block_affine_to_the_last_inserted_block():
    src, dst = preset("bert", "tiny"), preset("bert", "tiny2x_d")
    plan = build_plan(src, dst, "lossless", "balanced", seed=3)
    state = init_state(src, seed=1)
    rng = np.random.default_rng(0)
    for value in state.values():
        if value.ndim == 1:
            value += rng.standard_normal(value.shape).astype(np.float32)
    _, got = grow(plan, state)
    g_h = plan.hidden_map
    assert list(plan.depth_map) == [0, 0, 1, 1, 1] and plan.dst.eps == src.eps     # copies keep the variance
    ones, zeros = np.ones(dst.hidden, np.float32), np.zeros(dst.hidden, np.float32)
    assert np.array_equal(got["embeddings.LayerNorm.weight"], ones)                 # layer 0 has an inserted block
    want = {0: "embeddings.LayerNorm", 1: None, 2: None, 3: "encoder.layer.0.output.LayerNorm",
            4: "encoder.layer.1.output.LayerNorm"}                                   # None: identity affine
    for t, source in want.items():
        w, b = got[f"encoder.layer.{t}.output.LayerNorm.weight"], got[f"encoder.layer.{t}.output.LayerNorm.bias"]
        if source is None:
            assert np.array_equal(w, ones) and np.array_equal(b, zeros), t
        else:
            assert np.array_equal(w, state[source + ".weight"][g_h]) and np.array_equal(b, state[source + ".bias"][g_h])
        if t in (0, 2, 3):                                                            # inserted blocks
            assert not got[f"encoder.layer.{t}.output.dense.weight"].any()
            assert not got[f"encoder.layer.{t}.attention.output.dense.bias"].any()


@st.composite
def lossless_cases(draw):
    family = draw(st.sampled_from(FAMILIES))
    dh, H, F, L = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    H2 = draw(st.integers(H, H + 5)) if family == "gpt2" else H * draw(st.integers(1, 3))
    common = dict(family=family, vocab=5, positions=4, type_vocab=2 if family == "bert" else 0,
                  eps=1e-5, act="gelu" if family == "bert" else "gelu_new")
    src = ModelConfig(hidden=H * dh, layers=L, heads=H, ffn=F, name="hyp-src", **common)
    dst = ModelConfig(hidden=H2 * dh, layers=draw(st.integers(L, 3 * L + 2)), heads=H2,
                      ffn=draw(st.integers(F, F + 9)), name="hyp-dst", **common)
    sampling = "balanced" if family == "bert" else draw(st.sampled_from(["paper", "balanced"]))
    seed = draw(st.integers(0, 2**31))
    return build_plan(src, dst, "lossless", sampling, seed), seed


@settings(max_examples=60, deadline=None)
@given(case=lossless_cases())
def test_random_lossless_growth_matches_reference(case):
    plan, seed = case
    state = init_state(plan.src, seed=seed % 1000)
    recipes, got = grow(plan, state)
    assert_bit_identical(got, reference_expand(plan, state), "hypothesis lossless")
    assert {k: v.shape for k, v in got.items()} == param_shapes(plan.dst)
    again = GrowthPlan.from_json(plan.to_json())            # the scaled eps survives its own validation
    assert again == plan and again.dst.eps == plan.dst.eps
