"""Grown parameters: MindSpore vs PyTorch vs the numpy reference, bit for bit, joined by name."""
import numpy as np
import pytest

from harness.core.config import preset
from harness.core.lm_head import with_mlm_head
from harness.core.plan import build_plan
from harness.core.recipe import compile_recipes
from harness.core.reference import reference_expand
from harness.core.seeded_init import init_state
from harness.kinds.growth import pipeline
from harness.suite import frameworks
from harness.suite.metrics import max_ulp

# (source preset, target preset) on tiny sizes: width only, depth only, width + depth
SHAPES = {"width": ("tiny", "tiny_w"), "depth": ("tiny", "tiny_d"), "width_depth": ("tiny", "tiny_wd")}


def _noisy_state(cfg, seed):
    """Seeded init with non-trivial LayerNorms and biases, so every rule moves real values."""
    state = init_state(cfg, seed)
    rng = np.random.default_rng(seed + 1)
    for value in state.values():
        if value.ndim == 1:
            value += rng.standard_normal(value.shape, dtype=np.float32) * np.float32(0.1)
    return state


# every executor of each framework (models_*/expand.py EXECUTORS): PyTorch's ops, MindSpore's kernel and ops
EXECUTORS = [(name, executor) for name in ("pt", "ms") for executor in frameworks.load(name).expand.EXECUTORS]


def _configs(family, src, dst):
    """family "bert_mlm": BERT with the masked-LM head (BertForMaskedLM), grown as one model."""
    if family == "bert_mlm":
        return with_mlm_head(preset("bert", src)), with_mlm_head(preset("bert", dst))
    return preset(family, src), preset(family, dst)


def _grown_and_reference(family, src, dst, method, sampling, name, executor):
    """(who, grown state by `name`'s expander, the numpy reference's), names and shapes already checked equal."""
    src_cfg, dst_cfg = _configs(family, src, dst)
    plan = build_plan(src_cfg, dst_cfg, method, sampling, seed=5)
    state = _noisy_state(src_cfg, 5)
    expected = reference_expand(plan, state)
    fw = frameworks.load(name)
    grown = pipeline.expand(name, compile_recipes(plan), {k: fw.io.to_tensor(v.copy()) for k, v in state.items()},
                            executor=executor)
    assert grown.executor == executor
    who = f"{fw.title} ({executor})"
    got = pipeline.to_numpy_state(name, grown.state)
    assert list(got) == list(expected), f"{who} tensor names differ from the reference's"
    for tensor, ref in expected.items():
        assert got[tensor].shape == ref.shape, f"{who} {tensor}: shape {got[tensor].shape} vs reference {ref.shape}"
    return who, got, expected


@pytest.mark.parametrize("name,executor", EXECUTORS, ids=[f"{n}-{e}" for n, e in EXECUTORS])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("sampling", ["paper", "balanced"])
@pytest.mark.parametrize("method", ["fpi", "aki"])
@pytest.mark.parametrize("family", ["bert", "bert_mlm", "gpt2"])
def test_frameworks_and_reference_agree_bit_for_bit(family, method, sampling, shape, name, executor, request):
    if executor == "kernel":
        request.getfixturevalue("needs_kernel")
    who, got, expected = _grown_and_reference(family, SHAPES[shape][0], SHAPES[shape][1], method, sampling,
                                              name, executor)
    for tensor, ref in expected.items():
        ulp = max_ulp(got[tensor], ref)
        assert ulp == 0, f"{who} {tensor} differs from the numpy reference by up to {ulp} ULP"


# lossless (docs/lossless.md) on tiny sizes: GPT-2 at widths that are no multiple (1.25x, 1.5x, 1.75x), depth,
# both, and a non-multiple source; BERT (post-LN) where it is exact: doubled width, depth, both (FFN 256 -> 520)
LOSSLESS = {"gpt2": [("tiny", "tiny_w"), ("tiny", "tiny_w80"), ("tiny", "tiny_w112"), ("tiny", "tiny_d"),
                     ("tiny", "tiny_wd"), ("tiny_w", "tiny_w112")],
            "bert": [("tiny", "tiny2x"), ("tiny", "tiny_d"), ("tiny", "tiny2x_d")],
            "bert_mlm": [("tiny", "tiny2x"), ("tiny", "tiny2x_d")]}
# BERT's widening needs balanced sampling (every coordinate copied D / d times); GPT-2 takes either
LOSSLESS_GROWTHS = [(family, src, dst, sampling) for family, pairs in LOSSLESS.items() for src, dst in pairs
                    for sampling in (("paper", "balanced") if family == "gpt2" else ("balanced",))]


@pytest.mark.parametrize("name,executor", EXECUTORS, ids=[f"{n}-{e}" for n, e in EXECUTORS])
@pytest.mark.parametrize("family,src,dst,sampling", LOSSLESS_GROWTHS,
                         ids=[f"{f}-{s}2{d}-{m}" for f, s, d, m in LOSSLESS_GROWTHS])
def test_lossless_frameworks_and_reference_agree_bit_for_bit(family, src, dst, sampling, name, executor, request):
    """0 ULP, MindSpore = PyTorch = the numpy reference: the new values (means, seeded normals, zeros)
    included; MindSpore's kernel hands lossless recipes to its ops."""
    if executor == "kernel":
        request.getfixturevalue("needs_kernel")
    who, got, expected = _grown_and_reference(family, src, dst, "lossless", sampling, name, executor)
    for tensor, ref in expected.items():
        assert np.array_equal(got[tensor].view(np.uint32), ref.view(np.uint32)), \
            f"{who} {tensor} differs from the numpy reference by up to {max_ulp(got[tensor], ref)} ULP (or -0 vs +0)"
