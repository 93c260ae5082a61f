"""The growth plan: determinism, JSON, map properties, depth map, input errors."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.plan import GrowthPlan, build_plan, counts, depth_map, draw_map

SAMPLINGS = ("paper", "balanced")


def _pair(family="bert", a="tiny", b="tiny_wd"):
    return preset(family, a), preset(family, b)


# -- determinism and JSON -------------------------------------------------------------
@pytest.mark.parametrize("family", ["bert", "gpt2"])
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_same_inputs_same_plan(family, sampling):
    src, dst = _pair(family)
    p1 = build_plan(src, dst, "aki", sampling, seed=7)
    p2 = build_plan(src, dst, "aki", sampling, seed=7)
    assert p1 == p2
    assert p1.to_json() == p2.to_json()
    p3 = build_plan(src, dst, "aki", sampling, seed=8)
    assert not np.array_equal(p1.hidden_map, p3.hidden_map)


@pytest.mark.parametrize("family", ["bert", "gpt2"])
@pytest.mark.parametrize("method", ["fpi", "aki"])
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_json_round_trip_identical(family, method, sampling):
    src, dst = _pair(family)
    plan = build_plan(src, dst, method, sampling, seed=3)
    text = plan.to_json()
    back = GrowthPlan.from_json(text)
    assert back == plan
    assert back.to_json() == text
    assert back.src == src and back.dst == dst
    for a, b in [(back.hidden_map, plan.hidden_map), (back.depth_map, plan.depth_map),
                 *zip(back.head_maps, plan.head_maps, strict=True), *zip(back.ffn_maps, plan.ffn_maps, strict=True)]:
        assert a.dtype == np.int64 and np.array_equal(a, b)
    data = json.loads(text)
    assert data["hidden_map"] == plan.hidden_map.tolist()
    assert data["src"]["hidden"] == src.hidden and data["dst"]["eps"] == dst.eps


def test_from_json_revalidates():
    src, dst = _pair("gpt2")
    data = json.loads(build_plan(src, dst, seed=1).to_json())
    bad = json.loads(json.dumps(data))
    bad["head_maps"][0][-1] = src.heads                # out of range
    with pytest.raises(BadInput, match="head map of layer 0"):
        GrowthPlan.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(data))
    bad["hidden_map"][0] = 1                           # not identity on the old units
    with pytest.raises(BadInput, match="identity"):
        GrowthPlan.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(data))
    bad["depth_map"] = list(range(dst.layers))[::-1]
    with pytest.raises(BadInput, match="depth map"):
        GrowthPlan.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(data))
    bad["dst"]["hidden"], bad["dst"]["heads"] = 32, 2  # shrinks
    with pytest.raises(BadInput, match="hidden 64 -> 32 shrinks"):
        GrowthPlan.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(data))
    bad["method"] = "magic"
    with pytest.raises(BadInput, match="magic"):
        GrowthPlan.from_json(json.dumps(bad))
    with pytest.raises(BadInput, match="not a growth plan"):
        GrowthPlan.from_json(json.dumps({"hello": 1}))
    with pytest.raises(BadInput, match="not valid JSON"):
        GrowthPlan.from_json("{")


# -- the maps ---------------------------------------------------------------------------
def test_documented_draw_order():
    src, dst = _pair("bert", "tiny", "tiny_wd")
    for sampling in SAMPLINGS:
        plan = build_plan(src, dst, "fpi", sampling, seed=11)
        rng = np.random.default_rng(11)
        assert np.array_equal(plan.hidden_map, draw_map(rng, src.hidden, dst.hidden, sampling))
        for layer in range(src.layers):
            assert np.array_equal(plan.head_maps[layer], draw_map(rng, src.heads, dst.heads, sampling))
            assert np.array_equal(plan.ffn_maps[layer], draw_map(rng, src.ffn, dst.ffn, sampling))


def test_maps_do_not_depend_on_method():
    src, dst = _pair("gpt2")
    a, b = build_plan(src, dst, "fpi", seed=5), build_plan(src, dst, "aki", seed=5)
    assert a.to_dict() | {"method": None} == b.to_dict() | {"method": None}


def test_per_layer_maps_are_independent_draws():
    src, dst = _pair("bert", "tiny", "tiny2x")
    plan = build_plan(src, dst, seed=0)
    assert len(plan.head_maps) == len(plan.ffn_maps) == src.layers
    assert not np.array_equal(plan.ffn_maps[0], plan.ffn_maps[1])


def test_counts_match_maps():
    src, dst = _pair("gpt2", "tiny", "tiny_wd")
    plan = build_plan(src, dst, "fpi", "paper", seed=2)
    for g, n, c in [(plan.hidden_map, src.hidden, plan.hidden_counts()),
                    *[(plan.head_maps[i], src.heads, plan.head_counts(i)) for i in range(src.layers)],
                    *[(plan.ffn_maps[i], src.ffn, plan.ffn_counts(i)) for i in range(src.layers)]]:
        manual = np.array([sum(1 for v in g if v == j) for j in range(n)])
        assert np.array_equal(c, manual)
        assert np.array_equal(GrowthPlan.counts(g, n), manual)
        assert c.sum() == len(g) and c.min() >= 1


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), extra=st.integers(0, 120), sampling=st.sampled_from(SAMPLINGS),
       seed=st.integers(0, 2**32))
def test_map_properties(n, extra, sampling, seed):
    N = n + extra
    g = draw_map(np.random.default_rng(seed), n, N, sampling)
    assert g.dtype == np.int64 and g.shape == (N,)
    assert np.array_equal(g[:n], np.arange(n))             # g(i) = i for i < n
    assert g.min() >= 0 and g.max() < n                    # drawn from [0, n)
    c = counts(g, n)
    assert c.sum() == N and c.min() >= 1
    if sampling == "balanced":
        assert c.max() - c.min() <= 1
        if N % n == 0:
            assert np.all(c == N // n)
    assert np.array_equal(g, draw_map(np.random.default_rng(seed), n, N, sampling))


def test_balanced_exact_multiple_and_paper_with_replacement():
    g = draw_map(np.random.default_rng(0), 384, 768, "balanced")
    assert np.all(counts(g, 384) == 2)
    g = draw_map(np.random.default_rng(0), 16, 64, "balanced")
    assert np.all(counts(g, 16) == 4)
    # paper draws with replacement: uneven counts appear
    g = draw_map(np.random.default_rng(0), 512, 768, "paper")
    c = counts(g, 512)
    assert c.max() >= 3 and (c == 1).sum() > 0


def test_plan_sizes():
    src, dst = _pair("bert", "tiny", "tiny_wd")
    plan = build_plan(src, dst, "aki", "balanced", seed=1)
    assert plan.hidden_map.shape == (96,)
    assert all(g.shape == (6,) for g in plan.head_maps)
    assert all(g.shape == (320,) for g in plan.ffn_maps)
    assert plan.depth_map.tolist() == [0, 1, 0, 1, 1]
    assert plan.method == "aki" and plan.sampling == "balanced" and plan.seed == 1


# -- depth ------------------------------------------------------------------------------
@pytest.mark.parametrize("L, L_new, expected", [
    (4, 12, [0, 1, 2, 3] * 3),
    (24, 36, list(range(24)) + list(range(12, 24))),
    (36, 48, list(range(36)) + list(range(24, 36))),
    (12, 24, list(range(12)) * 2),
    (2, 5, [0, 1, 0, 1, 1]),
    (6, 6, list(range(6))),
    (1, 3, [0, 0, 0]),
])
def test_depth_map(L, L_new, expected):
    assert depth_map(L, L_new).tolist() == expected


def test_depth_map_of_seed_presets():
    plan = build_plan(preset("gpt2", "medium"), preset("gpt2", "large"))
    assert plan.depth_map.tolist() == list(range(24)) + list(range(12, 24))
    plan = build_plan(preset("bert", "base"), preset("bert", "base"))
    assert plan.depth_map.tolist() == list(range(12))
    assert np.array_equal(plan.hidden_map, np.arange(768))


# -- errors -----------------------------------------------------------------------------
def _msg(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("key, value", [("hidden", None), ("layers", 1), ("heads", None), ("ffn", 128)])
def test_shrinking_target_is_an_error(key, value):
    src = preset("bert", "tiny")                           # 64 hidden, 2 layers, 4 heads, ffn 256
    if key in ("hidden", "heads"):
        dst = dataclasses.replace(src, hidden=48, heads=3, name="small")
    else:
        dst = dataclasses.replace(src, **{key: value}, name="small")
    with pytest.raises(BadInput) as e:
        build_plan(src, dst)
    msg = _msg(e)
    a = getattr(src, key)
    b = getattr(dst, key)
    assert f"{key} {a} -> {b} shrinks" in msg
    assert f"{key} >= {a}" in e.value.fix
    assert "bert tiny" in msg and "small" in msg


def test_different_head_size_is_an_error():
    src = preset("bert", "tiny")                           # heads of 16
    dst = dataclasses.replace(src, hidden=128, heads=4, ffn=512, name="wide heads")
    with pytest.raises(BadInput) as e:
        build_plan(src, dst)
    assert "head size 16" in _msg(e) and "32" in _msg(e)
    assert "keep head size 16" in e.value.fix


def test_vocab_mismatch_is_an_error():
    src = preset("bert", "tiny")
    dst = dataclasses.replace(preset("bert", "tiny2x"), vocab=2000)
    with pytest.raises(BadInput) as e:
        build_plan(src, dst)
    assert "vocab 1000 -> 2000 differs" in _msg(e)
    assert "same vocab" in e.value.fix


def test_other_equal_fields_are_checked():
    src = preset("gpt2", "tiny")
    for key, value in [("positions", 128), ("eps", 1e-6)]:
        dst = dataclasses.replace(preset("gpt2", "tiny2x"), **{key: value})
        with pytest.raises(BadInput, match=f"{key} .* differs"):
            build_plan(src, dst)


def test_several_problems_reported_together():
    src = preset("bert", "tiny_wd")
    dst = dataclasses.replace(preset("bert", "tiny"), vocab=5)
    with pytest.raises(BadInput) as e:
        build_plan(src, dst)
    for part in ("hidden 96 -> 64", "layers 5 -> 2", "heads 6 -> 4", "ffn 320 -> 256", "vocab 1000 -> 5"):
        assert part in _msg(e)


def test_family_mismatch_is_an_error():
    with pytest.raises(BadInput) as e:
        build_plan(preset("bert", "tiny"), preset("gpt2", "tiny2x"))
    assert "bert" in _msg(e) and "gpt2" in _msg(e) and "families differ" in _msg(e)


def test_unknown_method_or_sampling_is_an_error():
    src, dst = _pair()
    with pytest.raises(BadInput) as e:
        build_plan(src, dst, method="ligo")
    assert "'ligo'" in _msg(e) and "fpi, aki" in e.value.fix
    with pytest.raises(BadInput) as e:
        build_plan(src, dst, sampling="stratified")
    assert "'stratified'" in _msg(e) and "paper, balanced" in e.value.fix
    with pytest.raises(BadInput, match="seed"):
        build_plan(src, dst, seed=-1)
