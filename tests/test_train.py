"""Training parity (cases/train.toml): the parity checks of every case, the numpy rules both frameworks
are held to (schedule, clipping, AdamWeightDecay), planted faults, and reruns."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.core.batches import IGNORE, draw_batches
from harness.core.optim import AdamState, TrainSetup, adam_weight_decay_step, clip_by_global_norm, schedule
from harness.kinds.registry import load_tolerances
from harness.kinds.train.cases import load_train_cases
from harness.kinds.train.compare import null_gradient
from harness.kinds.train.runner import TrainHooks, run_train_case, train_run
from harness.kinds.train.state import batches, initial_state
from harness.suite import frameworks
from harness.suite.metrics import relative
from harness.suite.rows import failure_message


def test_train_loss(train_case, parity):
    parity.check(train_case, "train_loss")


def test_grad_norm(train_case, parity):
    parity.check(train_case, "grad_norm")


def test_lr(train_case, parity):
    parity.check(train_case, "lr")


def test_train_params(train_case, parity):
    parity.check(train_case, "train_params")


def test_drift(train_case, parity):
    parity.check(train_case, "drift")


# -- the numpy rules ----------------------------------------------------------------------
def test_schedule_warms_up_linearly_then_decays_to_zero():
    lrs = schedule(TrainSetup(steps=10, lr=1e-3, warmup=4))
    assert lrs.dtype == np.float32 and lrs.size == 10
    np.testing.assert_allclose(lrs[:4], [2.5e-4, 5e-4, 7.5e-4, 1e-3], rtol=1e-7)
    np.testing.assert_allclose(lrs[4:], 1e-3 * np.array([6, 5, 4, 3, 2, 1]) / 6, rtol=1e-6)


def _grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return {f"t{i}": rng.standard_normal(s, dtype=np.float32) * np.float32(scale) for i, s in
            enumerate([(7, 5), (5,), (300,)])}


@pytest.mark.parametrize("scale", [0.01, 3.0])   # below the clip (untouched) and above it
def test_both_clipping_functions_compute_the_numpy_rule(scale):
    """MindSpore's ops.clip_by_global_norm and models_pt's written-out rule give the numpy rule's
    gradients to float32 rounding; torch's own clip_grad_norm_ (clip / (norm + 1e-6)) is further off."""
    import torch
    grads = _grads(scale=scale)
    want = clip_by_global_norm(grads, 1.0)
    pt_clip = frameworks.load("pt").train.clip_by_global_norm
    got_pt, norm = pt_clip([torch.from_numpy(g.copy()) for g in grads.values()], 1.0)
    frameworks.load("ms")   # sets MindSpore's context (CPU, PyNative) before any kernel runs
    from mindspore import Tensor, ops
    got_ms = ops.clip_by_global_norm(tuple(Tensor(g) for g in grads.values()), 1.0)
    for (name, w), p, m in zip(want.items(), got_pt, got_ms, strict=True):
        assert relative(p.numpy(), w) < 2e-7 and relative(m.asnumpy(), w) < 2e-7, name
    copies = [torch.from_numpy(g.copy()) for g in grads.values()]
    torch.nn.utils.clip_grad_norm_(copies, 1.0)
    torch_gap = max(relative(c.numpy(), w) for c, w in zip(copies, want.values(), strict=True))
    if scale > 1:   # clipping: torch's epsilon shows as 1e-6 / norm
        assert torch_gap > 1e-7
    assert float(norm) == pytest.approx(np.sqrt(sum(float(np.square(g.astype(np.float64)).sum())
                                                   for g in grads.values())), rel=1e-6)


def test_torch_optimizer_follows_the_numpy_rule_over_steps():
    """Three steps at different learning rates, decay on weights only, tiny gradients where eps shows."""
    import torch
    setup = TrainSetup(steps=3, lr=0.1, weight_decay=0.1)
    rng = np.random.default_rng(2)
    params = {"w.weight": rng.standard_normal((6, 4), dtype=np.float32), "w.bias": np.zeros(4, np.float32),
              "h.0.ln_1.weight": np.ones(4, np.float32)}
    tensors = {n: torch.nn.Parameter(torch.from_numpy(p.copy())) for n, p in params.items()}
    opt = frameworks.load("pt").train.AdamWeightDecay(tensors, setup)
    state, want = AdamState.zeros(params), params
    for lr, seed in zip([0.1, 0.05, 0.01], range(3), strict=True):
        grads = {n: rng.standard_normal(p.shape, dtype=np.float32) * np.float32(10.0 ** -(4 + seed))
                 for n, p in params.items()}
        opt.step([torch.from_numpy(g) for g in grads.values()], torch.tensor(lr, dtype=torch.float32))
        want = adam_weight_decay_step(want, grads, state, lr, setup)
    for n in params:
        assert relative(tensors[n].detach().numpy() - params[n], want[n] - params[n]) < 1e-5, n


def test_mlm_masks_are_15_percent_80_10_10_and_clm_labels_the_next_token():
    stream = np.arange(5000) % 700
    bert = draw_batches(stream, "bert", steps=50, batch=8, length=42, seed=0, vocab=500)
    specials = {"cls": 497, "sep": 498, "mask": 499}   # 700 ids do not fit 500: compact ids, specials last
    assert all((b.input_ids[:, 0] == specials["cls"]).all() and (b.input_ids[:, -1] == specials["sep"]).all()
               for b in bert)
    weights = np.stack([b.weights for b in bert])
    assert (weights[..., 0] == 0).all() and (weights[..., -1] == 0).all()   # specials are never picked
    assert (weights.sum(-1) == 6).all()              # round(0.15 x 40 non-special positions) per window
    labels = np.stack([b.labels for b in bert])
    assert ((labels == IGNORE) == (weights == 0)).all()   # Hugging Face's -100 wherever the loss does not score
    picked = weights > 0
    inputs = np.stack([b.input_ids for b in bert])[picked]
    mask_share = (inputs == specials["mask"]).mean()
    kept = (inputs == labels[picked]).mean()
    assert 0.75 < mask_share < 0.85 and 0.07 < kept < 0.14
    gpt = draw_batches(stream, "gpt2", steps=2, batch=4, length=16, seed=0, vocab=1000)
    assert (gpt[0].labels[:, :-1] == gpt[0].input_ids[:, 1:]).all() and (gpt[0].weights == 1).all()
    again = draw_batches(stream, "bert", steps=50, batch=8, length=42, seed=0, vocab=500)
    assert all((a.input_ids == b.input_ids).all() and (a.labels == b.labels).all() for a, b in zip(bert, again,
                                                                                                  strict=True))
    other = draw_batches(stream, "bert", steps=50, batch=8, length=42, seed=1, vocab=500)
    assert not all((a.weights == b.weights).all() for a, b in zip(bert, other, strict=True))


@pytest.mark.parametrize("fw", ["pt", "ms"])
def test_mlm_loss_is_transformers_bert_for_masked_lm_loss(fw):
    """Our masked-LM loss on a drawn batch (labels -100 where unscored) = BertForMaskedLM(labels=...).loss."""
    import torch
    import transformers

    from harness.core.config import preset
    from harness.core.lm_head import with_mlm_head
    from harness.core.seeded_init import init_state
    from harness.suite.corpus import english_ids
    cfg = with_mlm_head(preset("bert", "tiny"))
    state = init_state(cfg, 0)
    batch = draw_batches(english_ids(), "bert", steps=1, batch=4, length=24, seed=3, vocab=cfg.vocab)[0]
    hf = transformers.BertForMaskedLM(transformers.BertConfig(**cfg.to_hf(), attn_implementation="eager"))
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.copy_(torch.from_numpy(state[name.removeprefix("bert.")]))
    hf.eval()
    with torch.no_grad():
        want = float(hf(input_ids=torch.from_numpy(batch.input_ids), labels=torch.from_numpy(batch.labels)).loss)
    f = frameworks.load(fw)
    trainer = f.train.Trainer(f.train.trainable(cfg, state), TrainSetup(steps=1), np.zeros(1, np.float32))
    loss, _, _ = trainer.step(batch.input_ids, batch.labels, batch.weights)   # lr 0: the loss before the step
    print(f"\n{fw} masked-LM loss {loss!r} vs transformers {want!r}")
    assert loss == pytest.approx(want, rel=1e-6)


def test_key_biases_left_out_of_the_parameter_gates_have_no_gradient_in_float64():
    """The claim behind NULL_GRADIENT (harness.core.families.bert): in float64 the key biases' gradient is
    rounding noise (< 1e-12 of the global norm), while every other tensor's is real (> 1e-8 of it)."""
    case = _short("bert_tiny_mlm", steps=1)
    state, _ = initial_state(case)
    pt = frameworks.load("pt")
    trainer = pt.train.Trainer(pt.train.trainable(case.cfg, state, "float64"), case.setup, np.zeros(1, np.float32))
    batch = batches(case)[0]
    _, norm, _ = trainer.step(batch.input_ids, batch.labels, batch.weights)
    share = {n: float(p.grad.abs().max()) / norm for n, p in trainer.params.items()}
    null = {n for n in share if null_gradient("bert", n)}
    assert null == {f"encoder.layer.{i}.attention.self.key.bias" for i in range(case.cfg.layers)}
    assert max(share[n] for n in null) < 1e-12, {n: share[n] for n in null}
    assert min(v for n, v in share.items() if n not in null) > 1e-8


# -- planted faults: each caught, and named by step (and tensor) ----------------------------
def _short(case_id="gpt2_tiny_clm", steps=40):
    case = next(c for c in load_train_cases() if c.id == case_id)
    return dataclasses.replace(case, setup=dataclasses.replace(case.setup, steps=steps, warmup=steps // 10),
                               checkpoints=(1, steps // 2))


def _on_ms(change):
    return lambda run, value: change(value) if run == "ms" else None


@pytest.fixture
def fault_reports(monkeypatch, tmp_path):
    """A planted-fault run writes its curves and plot under tmp_path, never over the real case's in reports/."""
    monkeypatch.setenv("PARITY_REPORTS", str(tmp_path))
    return tmp_path / "train"


def _run(hooks, case=None):
    case = case or _short()
    rows = run_train_case(case, tolerances=load_tolerances(), hooks=hooks)
    return case, {(r.quantity, r.metric): r for r in rows}, rows


def _failed(by_metric):
    return {k for k, r in by_metric.items() if r.status == "fail"}


def test_schedule_one_step_late_on_one_side_is_caught_at_step_one(fault_reports):
    late = _on_ms(lambda lrs: np.concatenate([[0.0], lrs[:-1]]).astype(np.float32))
    case, got, rows = _run(TrainHooks(lrs=late))
    assert got[("lr", "worst.relative")].status == "fail"
    assert "first step over limit: 1 " in got[("lr", "worst.relative")].detail
    assert got[("train_loss", "first_step_over")].value == 1
    print(failure_message(case.id, "lr", rows))


def test_clipping_on_one_side_only_is_caught_and_named(fault_reports):
    case, got, rows = _run(TrainHooks(setup=_on_ms(lambda s: dataclasses.replace(s, clip=0.0))))
    assert "SETUPS DIFFER" in got[("train_loss", "first.relative")].detail and "clip: 0.0 vs 1.0" in \
        got[("train_loss", "first.relative")].detail
    assert _failed(got) & {("train_params", "step1.relative"), ("drift", "loss.excess")}
    print(got[("train_loss", "first_step_over")].detail)
    print(failure_message(case.id, "train_params", rows))


def test_adam_eps_1e8_on_one_side_is_caught_at_step_one_with_its_tensor(fault_reports):
    case, got, rows = _run(TrainHooks(setup=_on_ms(lambda s: dataclasses.replace(s, eps=1e-8))))
    step1 = got[("train_params", "step1.relative")]
    assert step1.status == "fail" and "first over limit (model order): transformer." in step1.detail
    assert got[("train_loss", "first_step_over")].value == 1
    print(failure_message(case.id, "train_params", rows))


def test_weight_decay_on_layernorm_and_bias_on_one_side_is_caught_and_names_a_norm_or_bias(fault_reports):
    case = _short()
    case = dataclasses.replace(case, setup=dataclasses.replace(case.setup, weight_decay=0.1))
    case, got, rows = _run(TrainHooks(setup=_on_ms(lambda s: dataclasses.replace(s, exempt_norms_and_biases=False))),
                           case)
    assert _failed(got), "not caught"
    worst = got[("train_params", f"step{case.setup.steps // 2}.relative")].detail.split("worst: ")[1].split(" ")[0]
    assert worst.endswith(".bias") or ".ln_" in worst   # the tensors the fault decays
    first = got[("train_loss", "first_step_over")]
    assert first.value != "none"
    print(first.detail)
    print(failure_message(case.id, "train_params", rows) or failure_message(case.id, "drift", rows))


def _one_mask_moved(batch):
    """The batch with one masked position of its first window moved to an unmasked one (as a collator
    drawing its own masks on one side would do): everything else the same."""
    inputs, labels, weights = batch.input_ids.copy(), batch.labels.copy(), batch.weights.copy()
    was = int(np.flatnonzero(weights[0] > 0)[0])
    now = int(np.flatnonzero(weights[0, 1:-1] == 0)[0]) + 1       # not [CLS] or [SEP]
    inputs[0, now], labels[0, now], weights[0, now] = inputs[0, was], inputs[0, now], 1.0
    inputs[0, was], labels[0, was], weights[0, was] = labels[0, was], IGNORE, 0.0
    return dataclasses.replace(batch, input_ids=inputs, labels=labels, weights=weights)


def test_one_mlm_mask_position_differing_is_caught_at_its_step(fault_reports):
    moved = lambda run, step, batch: _one_mask_moved(batch) if run == "ms" and step == 5 else None  # noqa: E731
    case, got, rows = _run(TrainHooks(batch=moved), _short("bert_tiny_mlm", steps=12))
    worst = got[("train_loss", "worst.relative")]
    assert worst.status == "fail" and "first step over limit: 5 " in worst.detail
    assert got[("train_loss", "first_step_over")].value == 5
    assert got[("lr", "worst.relative")].status == "pass"   # the schedule is not what differs
    print(got[("train_loss", "first_step_over")].detail)
    print(failure_message(case.id, "train_loss", rows))


# -- reruns ----------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["pt", "ms"])
def test_same_seed_gives_the_same_curve_on_a_rerun(run):
    case = _short(steps=12)
    state, _ = initial_state(case)
    data = batches(case)
    first = train_run(run, case.cfg, state, data, case.setup, (12,), case.ms_mode)
    second = train_run(run, case.cfg, state, data, case.setup, (12,), case.ms_mode)
    assert (first.loss == second.loss).all() and (first.norm == second.norm).all()
    assert all((first.params[12][n] == second.params[12][n]).all() for n in first.params[12])


# -- train.toml --------------------------------------------------------------------------
ROW = 'family = "gpt2"\nmodel = "tiny"\nsteps = 20\n'


@pytest.mark.parametrize("row, words", [
    (ROW + 'colour = "red"\n', ["case #1", "unknown key 'colour'"]),
    (ROW + 'grown = "gpt2_tiny2tiny_wd_aki"\n', ["case #1", "exactly one of 'model'"]),
    (ROW.replace('"tiny"', '"huge"'), ["case #1", "unknown gpt2 preset 'huge'"]),
    (ROW + "length = 64\n", ["case #1", "'length' 64 needs 65 positions"]),
    (ROW + "checkpoints = [0]\n", ["case #1", "'checkpoints'"]),
    (ROW + 'ms_mode = "graph"\n', ["case #1", "'ms_mode'"]),
    ('family = "gpt2"\ngrown = "bert_tiny2tiny2x_fpi_balanced"\nsteps = 5\n', ["case #1", "no gpt2 growth case"]),
])
def test_malformed_train_toml_names_file_row_and_key(tmp_path, row, words, expect_bad_input):
    path = tmp_path / "train.toml"
    path.write_text("[[case]]\n" + row)
    expect_bad_input(load_train_cases, path, words)


def test_case_ids():
    assert {"gpt2_tiny_clm", "gpt2_tiny2tiny_wd_aki_clm"} <= {c.id for c in load_train_cases()}
