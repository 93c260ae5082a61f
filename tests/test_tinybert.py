"""TinyBERT distillation steps, MindSpore vs PyTorch: one test per quantity per case of
cases/distill.toml, then the case file's validation and planted faults.

`distill_case` is parametrised by the root conftest.py (harness/suite/kind.py, kind "distill"); each
case is computed once by harness.kinds.distill.runner.run_distill_case, and these tests gate its rows:
    pytest -k tinybert                     every distillation check (seed sizes are marked slow)
    pytest -k "tinybert_td_step and grad"  one check

A planted fault is a known difference injected on ONE side through the runner's seams
(DistillHooks, the public compare functions): the harness must fail the right check and name
where (the loss term; the first parameter, in model order, whose gradient diverges).
"""
import dataclasses
import textwrap

import numpy as np
import pytest

from harness.core.config import preset
from harness.core.distill_step import StepSetup, adam_weight_decay_reference
from harness.core.errors import BadInput
from harness.core.seeded_init import init_state
from harness.kinds.distill.cases import load_distill_cases
from harness.kinds.distill.runner import DistillHooks, compare_grads, run_distill_case
from harness.kinds.registry import KINDS, load_tolerances
from harness.suite import frameworks
from harness.suite.metrics import relative
from harness.suite.rows import failure_message


def test_loss(distill_case, parity):
    parity.check(distill_case, "loss")


def test_grad(distill_case, parity):
    parity.check(distill_case, "grad")


def test_update(distill_case, parity):
    parity.check(distill_case, "update")


# -- distill.toml -------------------------------------------------------------------------
def _case(case_id):
    return next(c for c in load_distill_cases() if c.id == case_id)


def test_case_ids_and_layer_maps():
    cases = {c.id: c for c in load_distill_cases()}
    assert {"tinybert_gd_step", "tinybert_td_step", "tinybert_zh_gd_step", "tinybert_zh_td_step"} <= set(cases)
    assert cases["tinybert_zh_td_step"].layer_map == (3, 6, 9, 12)   # derived: g(m) = 3m
    assert not cases["tinybert_zh_td_step"].layer_map_given and cases["tinybert_gd_step"].layer_map_given
    assert cases["tinybert_gd_step"].num_labels == 0 and cases["tinybert_td_step"].num_labels == 2
    assert all(("slow" in c.marks) == (c.teacher != "minilm") for c in cases.values())


def test_each_kind_is_parametrised_with_its_own_cases_from_the_first_call():
    """conftest loads every kind on the first call; that call must still answer for the kind asked
    (it once answered with the last kind's cases, so test_param ran the TinyBERT cases)."""
    import types

    import conftest
    from harness.kinds.distill.cases import DistillCase
    from harness.kinds.registry import DISTILL, GROWTH
    config = types.SimpleNamespace(stash=pytest.Stash())
    growth = conftest._cases(config, GROWTH)
    assert growth and not any(isinstance(c, DistillCase) for c in growth)
    assert [c.id for c in conftest._cases(config, DISTILL)] == [c.id for c in load_distill_cases()]


ROW = 'stage = "gd"\nteacher = "base"\nstudent = "tinybert_zh"\n'


@pytest.mark.parametrize("row, words", [
    (ROW + 'colour = "red"\n', ["case #1", "unknown key 'colour'"]),
    (ROW.replace('"gd"', '"kd"'), ["case #1", "'stage'", "'kd'"]),
    (ROW.replace('"tinybert_zh"', '"tinybert"'), ["case #1", "vocab 21128", "30522"]),
    (ROW + "layer_map = [3, 6, 9]\n", ["case #1", "'layer_map'", "4 teacher layers in 1..12"]),
    (ROW + "layer_map = [3, 6, 9, 13]\n", ["case #1", "'layer_map'", "1..12"]),
    (ROW.replace('"base"', '"minilm"').replace('"tinybert_zh"', '"tinybert"'),
     ["case #1", "6 are not a multiple of student layers 4", "layer_map"]),
    (ROW + "temperature = 2.0\n", ["case #1", "'temperature' is used only by task distillation"]),
    (ROW.replace('"gd"', '"td"') + "temperature = 0\n", ["case #1", "'temperature' must be a positive number"]),
    (ROW.replace('"gd"', '"td"') + "num_labels = 1\n", ["case #1", "'num_labels' must be >= 2"]),
    (ROW + 'weights = "minilm"\n', ["case #1", "'weights'", "teacher = \"minilm\""]),
    (ROW + "lr = true\n", ["case #1", "'lr' must be a number"]),
])
def test_malformed_distill_toml_names_file_row_and_key(tmp_path, row, words, expect_bad_input):
    path = tmp_path / "distill.toml"
    path.write_text("[[case]]\n" + row)
    expect_bad_input(load_distill_cases, path, words)


def test_duplicate_distill_id_names_both_rows(tmp_path):
    path = tmp_path / "distill.toml"
    path.write_text(textwrap.dedent(f"[[case]]\n{ROW}\n[[case]]\n{ROW}seed = 0\n"))
    with pytest.raises(BadInput, match=r"case #2: duplicate id 'tinybert_zh_gd_step' \(also case #1\)"):
        load_distill_cases(path)


# -- the models ---------------------------------------------------------------------------
def test_classification_head_is_transformers_bert_for_sequence_classification():
    """Same names, order and shapes as transformers' BertForSequenceClassification, and the same
    logits and attention on its (random) weights with padded ids."""
    import torch
    import transformers
    cfg = preset("bert", "tiny")
    hf = transformers.BertForSequenceClassification(
        transformers.BertConfig(**cfg.to_hf(), num_labels=3, attn_implementation="eager")).eval()
    state = {n: p.detach().numpy().copy() for n, p in hf.named_parameters()}
    ours = frameworks.load("pt").distill.BertForSequenceClassification(cfg, 3)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [(n, a.shape) for n, a in state.items()]
    frameworks.load("pt").models.load_numpy_state(ours, state)
    ids = np.random.default_rng(0).integers(1, cfg.vocab, (2, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        want = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_attentions=True)
        logits, _, scores = ours(torch.from_numpy(ids), torch.from_numpy(mask).float())
    assert relative(logits.numpy(), want.logits.numpy()) < 1e-6
    # the scores TinyBERT distils are the ones each layer attends with: softmax(scores + mask) = its attention
    from models_pt.layers import padding_mask
    assert len(scores) == len(want.attentions) == cfg.layers
    for s, a in zip(scores, want.attentions, strict=True):
        assert relative(torch.softmax(s + padding_mask(torch.from_numpy(mask)), -1).numpy(), a.numpy()) < 1e-6


# -- the optimizer rule -------------------------------------------------------------------
def test_reference_rule_is_not_bias_corrected_adamw():
    """The rule both sides are checked against is AdamWeightDecay's, and a bias-corrected AdamW
    step (torch.optim.AdamW) is far outside the update limit from it."""
    import torch
    setup = StepSetup("gd", (1,), 1.0, lr=1e-4, weight_decay=0.01)
    rng = np.random.default_rng(0)
    params = {"w.weight": rng.standard_normal((8, 4), dtype=np.float32) * np.float32(0.02),   # as initialised
              "w.bias": np.zeros(4, np.float32)}
    grads = {n: rng.standard_normal(p.shape, dtype=np.float32) * np.float32(1e-2) for n, p in params.items()}
    ours = adam_weight_decay_reference(params, grads, setup)
    for name, decay in (("w.weight", 0.01), ("w.bias", 0.0)):   # no decay on biases
        p, g = params[name].astype(np.float64), grads[name].astype(np.float64)
        step = -1e-4 * (0.1 * g / (1e-6 + np.sqrt(1e-3 * g * g)) + decay * p)   # m = 0.1 g, v = 0.001 g^2
        assert relative(ours[name] - params[name], step) < 1e-5, name
    tensors = {n: torch.nn.Parameter(torch.from_numpy(p.copy())) for n, p in params.items()}
    adamw = torch.optim.AdamW(tensors.values(), lr=1e-4, eps=1e-6, weight_decay=0.01)
    for n, t in tensors.items():
        t.grad = torch.from_numpy(grads[n])
    adamw.step()
    limit = load_tolerances().limit("tinybert_gd_step", "update", "relative").value
    adamw_step = tensors["w.weight"].detach().numpy() - params["w.weight"]
    assert relative(adamw_step, ours["w.weight"] - params["w.weight"]) > 100 * limit


@pytest.mark.parametrize("framework", ["pt", "ms"])
def test_each_frameworks_optimizer_applies_the_reference_rule_where_every_term_shows(framework):
    """In a case step (lr 1e-4, wd 0.01) the decay moves a parameter by 1e-6 of itself: float32
    barely resolves it. Here lr 0.1 and wd 0.1 make the decay, the no-decay groups (biases,
    LayerNorm) and eps (tiny gradients) show far above rounding, on a tiny BERT's parameters."""
    fw = frameworks.load(framework)
    cfg = preset("bert", "tiny")
    rng = np.random.default_rng(3)
    state = init_state(cfg, 0)
    grads = {n: rng.standard_normal(p.shape, dtype=np.float32) * np.float32(1e-3) for n, p in state.items()}
    grads["encoder.layer.0.attention.self.query.weight"][:4] *= np.float32(1e-5)   # |g| near eps / sqrt(1 - b2)
    setup = StepSetup("gd", (1,), 1.0, lr=0.1, weight_decay=0.1)
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, {n: p.copy() for n, p in state.items()})
    fw.distill.AdamWeightDecay(fw.distill._parameters(model), setup).step(
        {n: fw.io.to_tensor(g) for n, g in grads.items()})
    after = fw.models.model_state(model)
    expected = adam_weight_decay_reference(state, grads, setup)
    for name in state:
        assert relative(after[name] - state[name], expected[name] - state[name]) < 1e-5, name
    no_decay = dataclasses.replace(setup, weight_decay=0.0)   # what the rule would be without decay
    decay_shows = relative(after["encoder.layer.0.output.dense.weight"] - state["encoder.layer.0.output.dense.weight"],
                           adam_weight_decay_reference(state, grads, no_decay)["encoder.layer.0.output.dense.weight"]
                           - state["encoder.layer.0.output.dense.weight"])
    assert decay_shows > 1e-3


# -- planted faults -----------------------------------------------------------------------
def _first_over(pt, ms, limit):
    """The first name, in PyTorch's (model) order, whose gradient differs by more than `limit`."""
    return next((n for n in pt if relative(ms[n], pt[n]) > limit), None)


def _observe(seen):
    def grads(framework, g):
        seen[framework] = g
    return grads


def _run_with(case_id, change, seen):
    """Run the case with `change` applied to MindSpore's step setup only."""
    hooks = DistillHooks(setup=lambda fw, s: change(s) if fw == "ms" else None, grads=_observe(seen))
    return run_distill_case(_case(case_id), hooks=hooks, tolerances=load_tolerances())


def test_temperature_on_one_side_fails_prediction_and_names_first_diverging_gradient():
    seen = {}
    rows = _run_with("tinybert_td_step", lambda s: dataclasses.replace(s, temperature=2.0), seen)
    loss = {r.metric: r for r in rows if r.quantity == "loss"}
    assert loss["prediction.relative"].status == "fail" and loss["total.relative"].status == "fail"
    assert "temperature: 2.0 vs 1.0" in loss["prediction.relative"].detail
    intermediate = [m for m in loss if m.startswith(("embedding", "hidden", "attention"))]
    assert len(intermediate) == 9 and all(loss[m].status == "pass" for m in intermediate)
    message = failure_message("tinybert_td_step", "loss", rows)
    assert "tinybert_td_step loss prediction.relative = " in message

    limit = load_tolerances().limit("tinybert_td_step", "grad", "relative").value
    first = _first_over(seen["pt"], seen["ms"], limit)
    assert first is not None and not first.startswith("fit_dense")   # the prediction never reaches fit_dense
    assert all(relative(seen["ms"][n], seen["pt"][n]) <= limit for n in ("fit_dense.weight", "fit_dense.bias"))
    grad_message = failure_message("tinybert_td_step", "grad", rows)
    assert f"first gradient over limit (model parameter order): {first} (" in grad_message
    assert failure_message("tinybert_td_step", "update", rows) is not None


def test_layer_map_on_one_side_fails_that_layers_terms_and_names_first_diverging_gradient():
    """MindSpore's student layer 4 learns from teacher layer 5 instead of 6: only hidden.4 and
    attention.4 change; every gradient below layer 4 (and fit_dense's) follows."""
    seen = {}
    rows = _run_with("tinybert_gd_step", lambda s: dataclasses.replace(s, layer_map=(1, 3, 4, 5)), seen)
    loss = {r.metric: r.status for r in rows if r.quantity == "loss" and r.metric.endswith(".relative")}
    assert {m for m, status in loss.items() if status == "fail"} == {"hidden.4.relative", "attention.4.relative",
                                                                    "total.relative"}
    message = failure_message("tinybert_gd_step", "loss", rows)
    assert "hidden.4.relative" in message and "attention.4.relative" in message and "layer_map" in message

    limit = load_tolerances().limit("tinybert_gd_step", "grad", "relative").value
    first = _first_over(seen["pt"], seen["ms"], limit)
    assert first is not None and relative(seen["ms"]["fit_dense.weight"], seen["pt"]["fit_dense.weight"]) > limit
    assert f"first gradient over limit (model parameter order): {first} (" in failure_message(
        "tinybert_gd_step", "grad", rows)


def test_grad_compare_names_the_first_diverging_parameter_in_model_order_not_the_worst():
    tol = load_tolerances()
    rng = np.random.default_rng(1)
    names = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.key.bias",
             "bert.encoder.layer.1.output.dense.weight", "fit_dense.weight"]
    pt = {n: rng.standard_normal((6, 5), dtype=np.float32) for n in names}
    ms = {n: g.copy() for n, g in pt.items()}
    ms[names[1]][2, 3] += np.float32(1e-3) * np.abs(pt[names[1]]).max()   # just over 1e-4
    ms[names[3]] *= np.float32(2.0)                                       # far over
    ms.pop(names[2])
    rows = compare_grads("c", pt, ms, tol)
    status = {r.metric: r for r in rows}
    assert status["names"].status == "fail" and names[2] in status["names"].detail
    worst = status["worst.relative"]
    assert worst.status == "fail" and worst.value == pytest.approx(1.0)
    assert f"over limit (model parameter order): {names[1]} (" in worst.detail and f"worst: {names[3]} " in worst.detail
    assert "2 of 3 over" in worst.detail


# -- reports ------------------------------------------------------------------------------
def test_reports_summarise_distill_cases(tmp_path):
    from harness.suite import report
    from harness.suite.rows import Row
    rows = [Row("tinybert_x", "loss", "setup", "td", None, "info", "teacher ...", "distill"),
            Row("tinybert_x", "loss", "hidden.1.relative", 1e-7, 1e-5, "pass", "", "distill"),
            Row("tinybert_x", "loss", "prediction.relative", 2e-3, 1e-5, "fail", "MindSpore 0.3 vs PyTorch 0.2",
                "distill"),
            Row("tinybert_x", "grad", "worst.relative", 8e-7, 1e-4, "pass", "first gradient over limit: none",
                "distill"),
            Row("tinybert_x", "update", "params.relative", 9e-7, 1e-5, "pass", "", "distill"),
            Row("tinybert_x", "update", "from_zero.relative", 6e-5, 3e-4, "pass", "", "distill"),
            Row("tinybert_x", "update", "pt.rule.relative", 2e-7, 1e-5, "pass", "", "distill"),
            Row("tinybert_x", "update", "ms.rule.relative", 1.9e-7, 1e-5, "pass", "", "distill"),
            Row("tinybert_x", "update", "pt.step_s", 0.5, None, "info", "", "distill"),
            Row("tinybert_x", "update", "ms.step_s", 2.25, None, "info", "", "distill")]
    report.write_reports(rows, tmp_path, KINDS)
    assert report.read_csv(tmp_path / "parity.csv") == rows
    md = (tmp_path / "parity.md").read_text()
    assert ("| tinybert_x | td | 0.002 (prediction) | 8e-07 | 9e-07 / 6e-05 | 2e-07 / 1.9e-07 | 2.25 / 0.50 | "
            "FAIL (loss) |") in md
    assert "## grad" in md and "## update" in md
    assert "tinybert_x: FAIL (loss)" in report.render_console(rows, KINDS)
