"""Exact FPI (balanced sampling, widths doubled, depth unchanged) preserves the function.

The grown model's hidden states equal the source's gathered by the hidden map
(grown == source[..., g_h], so the first d coordinates are the source's), in both
frameworks; GPT-2's logits are equal directly (tied head with the ln_f fix), and its
last hidden state (after ln_f) is the source's gathered and divided by c_h.
"""
import numpy as np
import pytest

from harness.core.config import preset
from harness.core.plan import build_plan
from harness.core.recipe import compile_recipes
from harness.core.seeded_init import init_state
from harness.kinds.growth import pipeline
from harness.suite import frameworks
from harness.suite.metrics import relative
from harness.suite.tokenizer import encode, minilm_dir

LIMIT = 1e-5  # fp32 output relative error (parity.md)


def _forward(fw, cfg, arrays, ids, mask):
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, arrays)
    return fw.models.run_forward(model, ids, mask)


def _grow_and_compare(framework, src_cfg, dst_cfg, src_arrays, ids, mask):
    fw = frameworks.load(framework)
    plan = build_plan(src_cfg, dst_cfg, "fpi", "balanced", seed=1)
    grown = pipeline.expand(framework, compile_recipes(plan), {k: fw.io.to_tensor(v) for k, v in src_arrays.items()})
    dst_arrays = {k: np.array(v) for k, v in pipeline.to_numpy_state(framework, grown.state).items()}
    src_out = _forward(fw, src_cfg, src_arrays, ids, mask)
    dst_out = _forward(fw, dst_cfg, dst_arrays, ids, mask)
    keep = mask.astype(bool)
    g_h, d = plan.hidden_map, src_cfg.hidden
    errors = {}
    # every layer: grown == source[..., g_h]; with g_h the identity on its first d entries, the
    # first d coordinates are then the source's
    assert np.array_equal(g_h[:d], np.arange(d))
    # GPT-2's last entry is after ln_f, whose gamma and beta the tied-head fix divides by
    # c_h: there grown == source[..., g_h] / c_h[g_h] (the logits are then equal directly).
    last = len(dst_out["hidden_states"]) - 1
    ln_f_scale = plan.hidden_counts()[g_h].astype(np.float32)
    for layer, (got, ref) in enumerate(zip(dst_out["hidden_states"], src_out["hidden_states"], strict=True)):
        scale = ln_f_scale if src_cfg.family == "gpt2" and layer == last else np.ones_like(ln_f_scale)
        errors[f"hidden {layer}"] = relative(got[keep] * scale, ref[keep][:, g_h])
    if src_cfg.family == "bert":
        errors["pooler"] = relative(dst_out["pooler_output"], src_out["pooler_output"][:, g_h])
    else:
        errors["logits"] = relative(dst_out["logits"][keep], src_out["logits"][keep])
    return errors


def _report(framework, errors):
    worst = max(errors, key=errors.get)
    print(f"\n{framework}: worst {worst} rel {errors[worst]:.2e}")
    bad = {k: v for k, v in errors.items() if not v <= LIMIT}
    assert not bad, f"{framework}: exact FPI changed the function: {bad} (limit {LIMIT})"


@pytest.mark.parametrize("framework", ["pt", "ms"])
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_exact_fpi_preserves_tiny_model(family, framework):
    src_cfg, dst_cfg = preset(family, "tiny"), preset(family, "tiny2x")
    src = init_state(src_cfg, 2)
    rng = np.random.default_rng(2)
    for value in src.values():  # non-trivial LayerNorm and biases
        if value.ndim == 1:
            value += rng.standard_normal(value.shape, dtype=np.float32) * np.float32(0.1)
    ids = rng.integers(0, src_cfg.vocab, (3, 12))
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    _report(framework, _grow_and_compare(framework, src_cfg, dst_cfg, src, ids, mask))


@pytest.mark.parametrize("framework", ["pt", "ms"])
def test_exact_fpi_preserves_real_minilm(framework):
    """all-MiniLM-L6-v2, 384 -> 768 hidden, 12 -> 24 heads of 32, FFN 1536 -> 3072, on real sentences."""
    from harness.core.formats.checkpoint import load_checkpoint
    src_cfg, src = load_checkpoint(minilm_dir())
    dst_cfg = preset("bert", "minilm2x")
    ids, mask, _ = encode()
    _report(framework, _grow_and_compare(framework, src_cfg, dst_cfg, src, ids, mask))
