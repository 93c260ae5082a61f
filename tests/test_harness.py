"""The parity harness itself: case and tolerance files, reports, and planted faults.

A planted fault is a known bug injected on ONE side through the runner's seams
(Hooks, or the public compare functions on perturbed data): the harness must fail
the right check and name where. Tiny presets, plus real MiniLM weights where random
tiny weights are too small to show the fault (GELU variants agree near zero).
"""
import dataclasses
import textwrap

import numpy as np
import pytest

from harness.core.config import preset
from harness.core.errors import BadInput
from harness.kinds.growth import pipeline
from harness.kinds.growth.cases import Case, load_cases
from harness.kinds.growth.compare import compare_outputs, compare_params, size_rows
from harness.kinds.growth.runner import Hooks, run_case
from harness.kinds.registry import KINDS, load_tolerances
from harness.suite import frameworks, report
from harness.suite.rows import CaseFailed, Row, failure_message, guarded
from harness.suite.tokenizer import encode, minilm_dir


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _rows(rows, quantity, metric=None):
    return [r for r in rows if r.quantity == quantity and (metric is None or r.metric == metric)]


# -- cases.toml -------------------------------------------------------------------------
def test_case_ids_are_derived_unique_and_k_selectable():
    cases = load_cases()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    assert {"bert_small2base_aki", "bert_base2large_aki", "gpt2_large2xl_fpi",
            "bert_minilm2minilm2x_fpi_balanced"} <= set(ids)
    assert all(set(i) <= set("abcdefghijklmnopqrstuvwxyz0123456789_") for i in ids)
    case = Case("gpt2", "tiny", "tiny_w", "aki", "balanced", seed=3, suffix="x")
    assert case.id == "gpt2_tiny2tiny_w_aki_balanced_seed3_x"
    small = next(c for c in cases if c.id == "bert_small2base_aki")
    assert small.all_marks == ("bert", "aki", "slow")


ROW = 'family = "bert"\nsrc = "tiny"\ndst = "tiny_w"\nmethod = "fpi"\n'


@pytest.mark.parametrize("row, words", [
    (ROW + 'colour = "red"\n', ["case #1", "unknown key 'colour'"]),
    (ROW + 'seed = "0"\n', ["case #1", "'seed'", "int"]),
    (ROW + "seed = true\n", ["case #1", "'seed'", "int"]),
    (ROW + "exact = 1\n", ["case #1", "'exact'", "bool"]),
    (ROW.replace('"tiny_w"', '"huge"'), ["case #1", "'dst'", "unknown bert preset 'huge'"]),
    (ROW.replace('"fpi"', '"lora"'), ["case #1", "'method'", "'lora'"]),
    (ROW + 'sampling = "random"\n', ["case #1", "'sampling'", "'random'"]),
    (ROW + 'marks = ["fast"]\n', ["case #1", "'marks'", "'fast'"]),
    (ROW + "exact = true\n", ["case #1", "'exact'", "hidden 64 -> 96 is not a multiple"]),
    (ROW.replace('"tiny_w"', '"tiny2x"') + "exact = true\n", ["case #1", "'exact'", "paper sampling"]),
    (ROW.replace('"tiny_w"', '"tiny"').replace('"tiny"\nd', '"tiny_w"\nd', 1), ["case #1", "shrinks"]),
    (ROW.replace('"fpi"', '"lossless"') + 'sampling = "balanced"\n', ["case #1", "64 -> 96", "multiple"]),
    (ROW.replace('"bert"', '"gpt2"').replace('"fpi"', '"lossless"') + "exact = false\n",
     ["case #1", "'exact'", "lossless case is exact by its method"]),
])
def test_malformed_cases_toml_names_file_row_and_key(tmp_path, row, words, expect_bad_input):
    path = _write(tmp_path, "cases.toml", "[[case]]\n" + row)
    expect_bad_input(load_cases, path, words)


def test_duplicate_case_id_names_both_rows(tmp_path):
    path = _write(tmp_path, "cases.toml", f"[[case]]\n{ROW}\n[[case]]\n{ROW}seed = 0\n")
    with pytest.raises(BadInput, match=r"case #2: duplicate id 'bert_tiny2tiny_w_fpi' \(also case #1\)"):
        load_cases(path)


# -- tolerances.toml --------------------------------------------------------------------
def test_default_tolerances():
    tol = load_tolerances()
    assert tol.limit("any", "param", "max_ulp").value == 0
    assert tol.limit("any", "output", "relative").value == 1e-5
    assert tol.limit("any", "layers", "relative").value == 1e-5
    assert tol.limit("any", "output", "relative", dtype="fp16").value == 5e-3
    assert tol.limit("any", "time", "ms.expand_s").value is None   # reported, not gated


def test_override_matches_by_glob_last_wins_and_carries_reason(tmp_path):
    path = _write(tmp_path, "tol.toml", """
        [default.fp32]
        output = { relative = 1e-5 }
        [[override]]
        cases = "gpt2_*"
        quantity = "output"
        metric = "relative"
        limit = 3e-5
        reason = "first"
        [[override]]
        cases = "gpt2_large2xl_*"
        quantity = "output"
        metric = "relative"
        limit = 4e-5
        reason = "measured 3.1e-5"
        [[override]]
        cases = "*"
        quantity = "time"
        metric = "ms_over_pt.expand"
        limit = 10
        reason = "MindSpore PyNative gathers are slower"
    """)
    tol = load_tolerances(path)
    assert tol.limit("bert_small2base_aki", "output", "relative").value == 1e-5
    assert tol.limit("gpt2_base2medium_fpi", "output", "relative").value == 3e-5
    limit = tol.limit("gpt2_large2xl_aki", "output", "relative")
    assert limit.value == 4e-5 and "measured 3.1e-5" in limit.reason
    assert tol.limit("bert_tiny2tiny_w_fpi", "time", "ms_over_pt.expand").value == 10


OVERRIDE = 'cases = "*"\nquantity = "output"\nmetric = "relative"\nlimit = 2e-5\n'


@pytest.mark.parametrize("text, words", [
    ("[[override]]\n" + OVERRIDE, ["override #1", "missing key 'reason'"]),
    ("[[override]]\n" + OVERRIDE + 'reason = " "\n', ["override #1", "'reason' is empty"]),
    ("[[override]]\n" + OVERRIDE + 'reason = "r"\nwhy = "x"\n', ["override #1", "unknown key 'why'"]),
    ("[[override]]\n" + OVERRIDE.replace("2e-5", '"2e-5"') + 'reason = "r"\n', ["override #1", "'limit'", "number"]),
    ("[[override]]\n" + OVERRIDE.replace('"relative"', '"mean"') + 'reason = "r"\n', ["override #1", "'mean'"]),
    ("[default.fp32]\noutput = { relative = \"small\" }\n", ["default.fp32.output", "'relative'", "number"]),
    ("[default.fp32]\noutput = { rel = 1e-5 }\n", ["default.fp32.output.rel", "unknown output metric"]),
    ("[default.bf16]\noutput = { relative = 1e-2 }\n", ["default.bf16", "unknown dtype"]),
    ("[defaults.fp32]\n", ["unknown key 'defaults'"]),
])
def test_malformed_tolerances_toml_names_file_and_key(tmp_path, expect_bad_input, text, words):
    expect_bad_input(load_tolerances, _write(tmp_path, "tol.toml", text), words)


# -- reports ----------------------------------------------------------------------------
def _sample_rows():
    return [Row("bert_x", "param", "max_ulp", 0, 0.0, "pass", "worst tensor none", "growth"),
            Row("bert_x", "output", "last_hidden_state.relative", 6.4e-7, 1e-5, "pass", "a, b | c", "growth"),
            Row("bert_x", "time", "resource", "CPU z, 2 cores", None, "info", "", "growth"),
            Row("bert_x", "hash", "pt.sha256", "ab" * 32, None, "pass", "equal", "growth"),
            Row("gpt2_y", "layers", "worst.relative", 2e-3, 1e-5, "fail", "first layer over limit: transformer.h.2",
                "growth")]


def test_reports_render_from_the_csv_and_round_trip(tmp_path):
    rows = _sample_rows()
    paths = report.write_reports(rows, tmp_path, KINDS)
    assert [p.name for p in paths] == ["parity.csv", "parity.json", "parity.md"]
    assert report.read_csv(tmp_path / "parity.csv") == rows
    md = (tmp_path / "parity.md").read_text()
    assert "| bert_x | CPU z, 2 cores | 0 / - |" in md and "FAIL (layers)" in md and "a, b \\| c" in md
    console = report.render_console(rows, KINDS)
    assert "gpt2_y: FAIL (layers)" in console


def test_shards_merge_keeping_one_computation_per_case(tmp_path):
    rows = _sample_rows()
    report.write_shard(rows[:4], tmp_path / "gw0.json")
    report.write_shard(rows[4:] + [dataclasses.replace(rows[0], value=7)], tmp_path / "gw1.json")
    assert report.merge_shards(tmp_path) == {"bert_x": rows[:4], "gpt2_y": rows[4:]}


def test_failure_message_names_case_quantity_metric_value_limit_and_detail():
    message = failure_message("gpt2_y", "layers", _sample_rows())
    assert ("gpt2_y layers worst.relative = 0.002 exceeds limit 1e-05: first layer over limit: transformer.h.2"
            in message)
    assert failure_message("bert_x", "param", _sample_rows()) is None


# -- planted faults ---------------------------------------------------------------------
def test_one_ulp_in_one_grown_tensor_fails_param_naming_the_tensor(tmp_path):
    target = "encoder.layer.1.intermediate.dense.weight"

    def nudge(framework, state):
        if framework != "ms":
            return None
        state = dict(state)
        state[target] = state[target].copy()
        state[target][3, 5] = np.nextafter(state[target][3, 5], np.float32(np.inf))
        return state

    rows = run_case(Case("bert", "tiny", "tiny_w", "fpi"), tmp_path, hooks=Hooks(grown=nudge),
                    tolerances=load_tolerances())
    (ulp,) = _rows(rows, "param", "max_ulp")
    assert ulp.status == "fail" and ulp.value == 1
    assert f"worst tensor {target} (max ULP 1" in ulp.detail and "1 of " in ulp.detail
    message = failure_message(ulp.case, "param", rows)
    assert "bert_tiny2tiny_w_fpi param max_ulp = 1 exceeds limit 0.0" in message and target in message
    assert not list(tmp_path.iterdir()), "grown checkpoints are deleted unless keep"


def test_ms_kernel_and_ms_ops_are_compared_in_every_case(tmp_path, monkeypatch, needs_kernel):
    target = "encoder.layer.1.output.dense.weight"
    ms_expand = frameworks.load("ms").expand
    by_ops = ms_expand._EXECUTE["ops"]

    def nudged_ops(src_state, recipe, shapes):   # MindSpore's ops made to differ by 1 ULP in one element
        x = by_ops(src_state, recipe, shapes)
        if recipe.name != target:
            return x
        a = x.asnumpy().copy()
        a[0, 0] = np.nextafter(a[0, 0], np.float32(np.inf))
        return frameworks.load("ms").io.to_tensor(a)

    monkeypatch.setitem(ms_expand._EXECUTE, "ops", nudged_ops)
    rows = run_case(Case("bert", "tiny", "tiny_w", "aki"), tmp_path, hooks=Hooks(), tolerances=load_tolerances())
    (check,) = _rows(rows, "param", "ms.kernel_vs_ops.max_ulp")
    assert check.status == "fail" and check.value == 1
    assert "1 of " in check.detail and f"worst {target}" in check.detail
    assert not _rows(rows, "param", "pt.executor")   # PyTorch ran by its own ops, its only executor
    (executors,) = _rows(rows, "time", "executors")
    assert executors.value == "PyTorch ops, MindSpore kernel"
    (ulp,) = _rows(rows, "param", "max_ulp")     # the kernel's grown model itself still equals PyTorch's
    assert ulp.status == "pass" and ulp.value == 0


def test_a_case_without_the_ms_kernel_runs_by_ops_and_says_why(tmp_path, ms_kernel_without_compiler):
    rows = run_case(Case("gpt2", "tiny", "tiny_w", "aki"), tmp_path, hooks=Hooks(), tolerances=load_tolerances())
    (info,) = _rows(rows, "param", "ms.executor")
    assert info.value == "ops" and info.status == "info" and "no C++ compiler" in info.detail
    assert not _rows(rows, "param", "ms.kernel_vs_ops.max_ulp")
    assert _rows(rows, "time", "executors")[0].value == "PyTorch ops, MindSpore ops"
    assert failure_message(info.case, "param", rows) is None


def test_param_compare_names_missing_tensors_on_either_side():
    tol = load_tolerances()
    a = {"x": np.zeros(3, np.float32), "only_ms": np.zeros(1, np.float32)}
    b = {"x": np.zeros(3, np.float32), "only_pt": np.zeros(1, np.float32)}
    (names, *_) = compare_params("c", a, b, tol)
    assert names.status == "fail" and "MindSpore lacks ['only_pt']" in names.detail
    assert "PyTorch lacks ['only_ms']" in names.detail


def test_mindspore_layernorm_eps_default_in_one_block_fails_output_and_layers(tmp_path):
    def forget_eps(framework, role, model):
        if framework == "ms" and role == "grown":
            model.transformer.h[2].ln_1.eps = 1e-7   # MindSpore's default, where GPT-2 needs 1e-5

    rows = run_case(Case("gpt2", "tiny", "tiny_wd", "aki"), tmp_path, hooks=Hooks(model=forget_eps),
                    tolerances=load_tolerances())
    assert not [r for r in _rows(rows, "param") if r.status == "fail"]
    assert [r.status for r in _rows(rows, "output") if r.metric.endswith(".relative")] == ["fail", "fail"]
    (worst,) = _rows(rows, "layers", "worst.relative")
    assert worst.status == "fail" and "first layer over limit: transformer.h.2 " in worst.detail
    per_layer = {r.metric: r.status for r in _rows(rows, "layers")}
    assert per_layer["transformer.h.1.relative"] == "pass" and per_layer["transformer.h.2.relative"] == "fail"
    # the float64 judge names the side that drifted: MindSpore's logits far from float64, PyTorch's not
    (ratio,) = _rows(rows, "output", "logits.f64_ratio")
    (pt64,) = _rows(rows, "output", "logits.pt_vs_f64")
    assert ratio.status == pt64.status == "info" and ratio.value > 100 and pt64.value < 1e-5


def test_float64_forward_sits_within_float32_rounding_of_its_float32_forward():
    from harness.core.seeded_init import init_state
    from harness.kinds.growth.compare import compare_float64
    from harness.suite.inputs import make_inputs
    cfg = preset("gpt2", "tiny")
    state, inputs = init_state(cfg, 0), make_inputs(0, cfg)
    pt = frameworks.load("pt")
    out = {}
    for dtype in ("float32", "float64"):
        model = pt.models.build_model(cfg)
        pt.models.load_numpy_state(model, state, dtype)
        out[dtype] = pt.models.run_forward(model, inputs.ids, inputs.mask)
    out32, out64 = out["float32"], out["float64"]
    assert out64["logits"].dtype == np.float64 and out32["logits"].dtype == np.float32
    rows = {r.metric: r for r in compare_float64("c", "gpt2", out64, {"pt": out32, "ms": out32}, inputs.unpadded)}
    assert 0 < rows["logits.pt_vs_f64"].value < 1e-5 and rows["logits.f64_ratio"].value == 1.0


def test_torch_layernorm_eps_default_in_bert_embeddings_fails_output_and_layers(tmp_path):
    def torch_eps(framework, role, model):
        if framework == "ms" and role == "grown":
            model.embeddings.LayerNorm.eps = 1e-5   # torch's default, where BERT needs 1e-12

    rows = run_case(Case("bert", "tiny", "tiny_w", "fpi"), tmp_path, hooks=Hooks(model=torch_eps),
                    tolerances=load_tolerances())
    assert _rows(rows, "output", "last_hidden_state.relative")[0].status == "fail"
    (worst,) = _rows(rows, "layers", "worst.relative")
    assert worst.status == "fail" and "first layer over limit: embeddings " in worst.detail


def test_tanh_gelu_in_one_bert_layer_fails_output_and_layers_on_real_weights():
    """Real MiniLM weights and sentences: the GELU variant matters only where activations are large."""
    cfg = preset("bert", "minilm")
    ids, mask, _ = encode()
    outputs = {}
    for name in ("pt", "ms"):
        fw = frameworks.load(name)
        state, _ = pipeline.load_source(name, cfg, minilm_dir(), seed=0)
        model = fw.models.build_model(cfg)
        fw.models.load_numpy_state(model, pipeline.to_numpy_state(name, state))
        if name == "ms":
            import models_ms.layers
            model.encoder.layer[2].intermediate.act = models_ms.layers.gelu_tanh   # GPT-2's GELU in BERT
        outputs[name] = fw.models.run_forward(model, ids, mask)
    rows = compare_outputs("bert_minilm_gelu", "bert", outputs["pt"], outputs["ms"], mask.astype(bool),
                           load_tolerances())
    assert _rows(rows, "output", "last_hidden_state.relative")[0].status == "fail"
    (worst,) = _rows(rows, "layers", "worst.relative")
    assert worst.status == "fail" and "first layer over limit: encoder.layer.2 " in worst.detail
    assert _rows(rows, "layers", "encoder.layer.1.relative")[0].status == "pass"


def test_size_fails_for_a_file_missing_bytes_or_bloated():
    tol = load_tolerances()
    n_params = 1000
    ok = size_rows("c", n_params, {"pt": (4000 + 24, "model.safetensors"), "ms": (4000 + 30, "model.ckpt")}, tol)
    assert failure_message("c", "size", ok) is None
    short = size_rows("c", n_params, {"pt": (3996, "model.safetensors")}, tol)    # one float missing
    message = failure_message("c", "size", short)
    assert message and "pt.overhead" in message and "must be >= 0" in message
    bloated = size_rows("c", n_params, {"ms": (4000 * 2, "model.ckpt")}, tol)      # 100% overhead > 1e-2
    assert "ms.overhead" in (failure_message("c", "size", bloated) or "")


def test_a_case_that_failed_before_any_row_is_in_its_kinds_summary():
    """A runner that crashes before measuring leaves only its "run" row, stamped with its kind by
    `guarded`; each kind's summary lists that case, as failed."""
    ids = {"growth": load_cases()[0].id, "distill": "tinybert_gd_step", "inference": "gpt2_tiny_text_onnx",
           "train": "gpt2_tiny_clm", "distill_train": "tiny_s_gd_200steps"}
    rows = []
    for kind, cid in ids.items():
        def crash(_rows):
            raise RuntimeError("boom")
        with pytest.raises(CaseFailed) as failed:
            guarded(kind, cid, crash)
        rows += failed.value.rows
    tables = report.summaries(rows, KINDS)
    for kind in KINDS:
        table = tables[kind.summary.json_key]
        assert [d["case"] for d in table] == [ids[kind.name]], kind.name
        assert table[0]["status"] == "FAIL (run)"
