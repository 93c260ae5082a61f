"""The ONNX Runtime backend, the inference case kind, and planted faults in it.

A planted fault is a known bug injected on ONE backend through the inference runner's
seams (InferHooks.onnx rewrites the exported graph, InferHooks.state swaps one backend's
weights): the right check must fail and say where. Tiny presets only.
"""
import textwrap

import numpy as np
import pytest

from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.seeded_init import init_state
from harness.kinds.inference.cases import InferCase, load_infer_cases
from harness.kinds.inference.runner import InferHooks, run_infer_case
from harness.kinds.registry import KINDS, load_tolerances
from harness.suite import report
from harness.suite.lm_metrics import first_divergence, greedy, next_token_nll
from harness.suite.rows import failure_message

TINY = preset("gpt2", "tiny_text")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    from harness.kinds.inference.onnx_backend import export_cached
    state = init_state(TINY, 0)
    return state, export_cached(TINY, state, tmp_path_factory.mktemp("onnx") / "tiny")[0]


# -- the backend ---------------------------------------------------------------------------
def test_exported_model_has_dynamic_batch_and_sequence(tiny_export):
    import models_pt
    from harness.kinds.inference.onnx_backend import OrtModel
    state, path = tiny_export
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]
    assert sorted(p.name for p in path.parent.parent.iterdir()) == ["tiny"]   # no temporary folder left beside it
    ort_model = OrtModel(path, TINY, threads=1)
    pt_model = models_pt.build_model(TINY)
    models_pt.load_numpy_state(pt_model, state)
    for shape in ((1, 1), (3, 17), (2, TINY.positions)):
        ids = np.random.default_rng(sum(shape)).integers(0, TINY.vocab, shape)
        got, ref = ort_model.run_forward(ids)["logits"], models_pt.run_forward(pt_model, ids)["logits"]
        assert got.shape == ref.shape == (*shape, TINY.vocab)
        assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-5, shape
    assert ort_model.threads == 1 and ort_model.dtype == "float32"


def test_export_cache_hands_out_copies(tiny_export, tmp_path, monkeypatch):
    from harness.kinds.inference import onnx_backend
    from harness.kinds.inference.onnx_backend import export_cached
    state, first = tiny_export
    # the stub's entries and kept files end with this test (the cache is process-wide)
    monkeypatch.setattr(onnx_backend, "_exports", dict(onnx_backend._exports))
    monkeypatch.setattr(onnx_backend, "_kept", [tmp_path / "kept"])
    path, reused = export_cached(TINY, state, tmp_path / "again")
    assert reused and path.read_bytes() == first.read_bytes()
    path.write_bytes(b"edited")   # a caller's edit stays in its copy
    assert export_cached(TINY, state, tmp_path / "third")[0].read_bytes() == first.read_bytes()
    other = {**state, "transformer.ln_f.bias": state["transformer.ln_f.bias"] + np.float32(1e-3)}
    third = {**state, "transformer.ln_f.bias": state["transformer.ln_f.bias"] + np.float32(2e-3)}
    labels = {onnx_backend._digest(w): label for w, label in
              ((other, b"other weights"), (third, b"third weights"))}

    def fake_export(cfg, state, out_dir, dtype="float32"):   # exported anew (stub: fast, bytes name the weights)
        out_dir.mkdir(parents=True)
        (out_dir / onnx_backend.MODEL_NAME).write_bytes(labels[onnx_backend._digest(state)])
        return out_dir / onnx_backend.MODEL_NAME

    monkeypatch.setattr(onnx_backend, "export_gpt2", fake_export)
    path, reused = export_cached(TINY, other, tmp_path / "other")
    assert not reused and path.read_bytes() == b"other weights"
    assert export_cached(TINY, other, tmp_path / "other2") == (tmp_path / "other2" / "model.onnx", True)
    assert export_cached(TINY, state, tmp_path / "fourth")[0].read_bytes() == first.read_bytes()   # its own entry still
    # a kept file gone: exported again, and a later key must not take over its folder
    onnx_backend._exports[(TINY, "float32", onnx_backend._digest(other))].unlink()
    assert export_cached(TINY, other, tmp_path / "fifth") == (tmp_path / "fifth" / "model.onnx", False)
    assert export_cached(TINY, third, tmp_path / "sixth")[0].read_bytes() == b"third weights"
    path, reused = export_cached(TINY, other, tmp_path / "seventh")
    assert reused and path.read_bytes() == b"other weights"


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import torch

    from harness.kinds.inference.onnx_backend import export_gpt2

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_gpt2(TINY, init_state(TINY, 0), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_ort_model_rejects_bad_input(tmp_path):   # bad forward inputs: the test of every backend below
    from harness.kinds.inference.onnx_backend import OrtModel, export_gpt2
    with pytest.raises(BadInput, match="ONNX model not found"):
        OrtModel(tmp_path / "missing.onnx", TINY)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a protobuf")
    with pytest.raises(BadInput, match="onnxruntime cannot load the model"):
        OrtModel(corrupt, TINY)
    with pytest.raises(BadInput, match="only GPT-2 exports"):
        export_gpt2(preset("bert", "tiny"), {}, tmp_path / "bert")
    with pytest.raises(BadInput, match="dtype 'bfloat16' cannot be exported"):
        export_gpt2(TINY, {}, tmp_path / "bf16", "bfloat16")


def test_models_reject_an_unknown_dtype():
    import models_pt
    model = models_pt.build_model(TINY)
    with pytest.raises(BadInput, match="parameters are float32 or float16 or float64"):
        models_pt.load_numpy_state(model, init_state(TINY, 0), "bfloat16")


# -- language-model measurements -----------------------------------------------------------
def test_next_token_nll_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 5, 7)).astype(np.float32) * 3
    ids = rng.integers(0, 7, (2, 5))
    total, count = next_token_nll(logits, ids)
    p = np.exp(logits.astype(np.float64))
    direct = [-np.log(p[b, t][ids[b, t + 1]] / p[b, t].sum()) for b in range(2) for t in range(4)]
    assert count == 8
    assert total == pytest.approx(sum(direct), rel=1e-12)


def test_greedy_and_first_divergence():
    vocab = 5

    def forward(ids, mask):   # the next token is (last + 1) mod vocab, by a margin of 2
        logits = np.zeros((*ids.shape, vocab))
        logits[np.arange(ids.shape[0])[:, None], np.arange(ids.shape[1])[None], (ids + 1) % vocab] = 2.0
        return {"logits": logits}

    gen = greedy(forward, np.array([[0, 1], [3, 3]]), 4)
    assert gen.tokens.tolist() == [[2, 3, 4, 0], [4, 0, 1, 2]]
    assert np.all(gen.margins == 2.0)
    other = gen.tokens.copy()
    other[1, 2:] = 0
    assert first_divergence(other, gen.tokens) == [(1, 2)]
    assert first_divergence(gen.tokens, gen.tokens) == []


# -- cases/inference.toml ------------------------------------------------------------------
def test_inference_case_ids_select_with_onnx_and_seed_presets_are_slow():
    cases = load_infer_cases()
    ids = [c.id for c in cases]
    assert all(i.endswith("_onnx") for i in ids)
    assert {"gpt2_tiny_text_onnx", "gpt2_base_onnx", "gpt2_chinese_onnx"} <= set(ids)
    by_id = {c.id: c for c in cases}
    assert "slow" in by_id["gpt2_base_onnx"].marks and "slow" in by_id["gpt2_chinese_onnx"].marks
    assert "slow" not in by_id["gpt2_tiny_text_onnx"].marks
    assert any(c.grown_from for c in cases if "slow" not in c.marks)   # a grown model in make test
    chinese = preset("gpt2", "chinese")
    assert (chinese.vocab, chinese.positions) == (21128, 512)


@pytest.mark.parametrize("row, words", [
    ('preset = "huge"\n', ["case #1", "'preset'", "unknown gpt2 preset 'huge'"]),
    ('preset = "tiny_text"\nlength = 129\n', ["'length'", "129 tokens exceed", "128 positions"]),
    ('preset = "tiny_text"\ndtypes = ["fp8"]\n', ["'dtypes'", "fp8"]),
    ('preset = "tiny"\n', ["'text'", "vocabulary of 30522", 'text = "ids"']),
    ('preset = "tiny_text"\nprompt = 100\ngreedy = 40\n', ["'prompt' + 'greedy' = 140"]),
    ('preset = "tiny_text"\nbatch = 5\nwindows = 4\n', ["'batch' (5) exceeds 'windows' (4)"]),
    ('preset = "tiny_text"\ngrown_from = "tiny_text_wd"\n', ["case #1", "shrinks"]),
    ('preset = "tiny_text"\ncolour = 1\n', ["unknown key 'colour'"]),
])
def test_malformed_inference_toml_names_file_row_and_key(tmp_path, row, words, expect_bad_input):
    path = tmp_path / "inference.toml"
    path.write_text("[[case]]\n" + textwrap.dedent(row))
    expect_bad_input(load_infer_cases, path, words)


# -- planted faults -------------------------------------------------------------------------
FAST = InferCase(preset="tiny_text", length=32, windows=2, batch=2, prompt=8, greedy=6, dtypes=("fp32",))


def _rewrite_onnx(path, edit):
    import onnx
    model = onnx.load(str(path))
    edit(model)
    onnx.save(model, str(path))


def _rows(rows, quantity, metric):
    return next(r for r in rows if r.quantity == quantity and r.metric == metric)


def test_wrong_layernorm_eps_in_onnx_and_scaled_weights_in_mindspore_fail(tmp_path):
    """ONNX graph with every LayerNorm eps 1e-1 (GPT-2's is 1e-5): logits and hidden states fail
    for ONNX Runtime from the first block on. MindSpore's ln_f scaled x3: its logits and its
    perplexity fail, its greedy tokens do not (scaling keeps the argmax)."""
    def wrong_eps(model):
        for node in model.graph.node:
            if node.op_type == "LayerNormalization":
                next(a for a in node.attribute if a.name == "epsilon").f = 0.1

    def scaled_ln_f(backend, dtype, state):
        if backend == "ms":
            return {**state, "transformer.ln_f.weight": state["transformer.ln_f.weight"] * 3}
        return None

    hooks = InferHooks(onnx=lambda dtype, path: _rewrite_onnx(path, wrong_eps), state=scaled_ln_f)
    rows = run_infer_case(FAST, tmp_path, hooks=hooks, tolerances=load_tolerances())
    ort_logits = _rows(rows, "logits", "fp32.ort_vs_pt.relative")
    assert ort_logits.status == "fail" and ort_logits.value > 1e-3
    ort_hidden = _rows(rows, "logits", "fp32.ort_vs_pt.hidden_relative")
    assert ort_hidden.status == "fail"
    assert "first over limit: transformer.h.0 (" in ort_hidden.detail   # embeddings agree, block 0 does not
    assert _rows(rows, "logits", "fp32.ms_vs_pt.relative").status == "fail"
    ms_ppl = _rows(rows, "perplexity", "fp32.ms_vs_pt.relative")
    assert ms_ppl.status == "fail" and ms_ppl.value > 1e-3
    assert _rows(rows, "greedy", "fp32.ms_vs_pt.diverged").status == "pass"
    message = failure_message(FAST.id, "perplexity", rows)
    assert message and "fp32.ms_vs_pt.relative" in message and "MindSpore" in message
    summary = report.summaries(rows, KINDS)["inference_summary"]
    assert [d["case"] for d in summary] == [FAST.id]
    status = summary[0]["status"]
    assert status.startswith("FAIL (") and {"logits", "perplexity"} <= set(status[6:-1].split(", "))


def test_late_position_fault_in_onnx_reports_the_first_greedy_divergence(tmp_path):
    """Position embeddings from position prompt + 2 on perturbed in the ONNX graph only: the
    first two generated tokens agree, the greedy check fails at generated token 3 at the
    earliest, and says where."""
    from onnx import numpy_helper

    start = FAST.prompt + 2

    def late_positions(model):
        init = next(i for i in model.graph.initializer if i.name.endswith("transformer.wpe.weight"))
        wpe = numpy_helper.to_array(init).copy()
        wpe[start:] += np.random.default_rng(0).standard_normal(wpe[start:].shape).astype(np.float32) * 5
        init.CopyFrom(numpy_helper.from_array(wpe, init.name))

    hooks = InferHooks(onnx=lambda dtype, path: _rewrite_onnx(path, late_positions))
    rows = run_infer_case(FAST, tmp_path, hooks=hooks, tolerances=load_tolerances())
    row = _rows(rows, "greedy", "fp32.ort_vs_pt.diverged")
    assert row.status == "fail" and row.value >= 1
    step = int(row.detail.split("at generated token ")[1].split(" ")[0])
    assert 3 <= step < FAST.greedy   # the token at step 3 is the first one read from position prompt + 2
    assert _rows(rows, "greedy", "fp32.ms_vs_pt.diverged").status == "pass"
    message = failure_message(FAST.id, "greedy", rows)
    assert message and f"at generated token {step}" in message



@pytest.mark.parametrize("ids, mask, words", [
    (np.zeros((2, 0), np.int64), None, "found (2, 0)"),                       # no tokens
    (np.zeros((1, TINY.positions + 1), np.int64), None, "expected shape (batch, tokens <="),  # past the positions
    (np.array([[0, TINY.vocab]]), None, f"ids must lie in [0, {TINY.vocab}), found 0..{TINY.vocab}"),  # vocabulary
    (np.zeros((1, 3), np.int64), np.ones((1, 4)), "attention_mask: expected shape (1, 3)"),
])
def test_every_backend_refuses_the_same_bad_inputs(tiny_export, ids, mask, words):
    import models_ms
    import models_pt
    from harness.kinds.inference.onnx_backend import OrtModel
    state, path = tiny_export
    forwards = {"ort": OrtModel(path, TINY, threads=1).run_forward}
    for name, module in (("pt", models_pt), ("ms", models_ms)):
        model = module.build_model(TINY)
        module.load_numpy_state(model, state)
        forwards[name] = lambda i, m, module=module, model=model: module.run_forward(model, i, m)
    for name, forward in forwards.items():
        with pytest.raises(BadInput) as e:
            forward(ids, mask)
        assert words in e.value.what, (name, e.value.what)
