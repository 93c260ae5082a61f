"""Lossless growth (docs/lossless.md): the grown model computes the source's function, in both frameworks,
at widths that are no multiple; its free values break the symmetry; planted faults fail the gate; and
what the maths does not allow is refused before any work.

The one-step training test uses a plain torch SGD step on models_pt (a training loop of the project's
own is being built elsewhere; this needs only loss.backward() and one step).
"""
import dataclasses

import numpy as np
import pytest

from harness.core import lossless
from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.plan import build_plan
from harness.core.recipe import compile_recipes
from harness.core.reference import execute_recipes_numpy
from harness.core.seeded_init import init_state
from harness.core.steps import Append
from harness.kinds.growth.cases import Case
from harness.kinds.growth.preservation import compare_preservation
from harness.kinds.growth.runner import Hooks, run_case
from harness.kinds.registry import load_tolerances
from harness.suite import frameworks
from harness.suite.inputs import make_inputs
from harness.suite.metrics import relative

LIMIT = 1e-6   # issue #17: logits relative error, grown vs source
GROWTHS = [("gpt2", "tiny", "tiny_w"), ("gpt2", "tiny", "tiny_w80"), ("gpt2", "tiny", "tiny_w112"),
           ("gpt2", "tiny", "tiny_d"), ("gpt2", "tiny", "tiny_wd"), ("gpt2", "tiny_w", "tiny_w112"),
           ("bert", "tiny", "tiny2x"), ("bert", "tiny", "tiny_d"), ("bert", "tiny", "tiny2x_d")]


def _source(cfg, seed=3):
    """Seeded weights with LayerNorms and biases far from 1 / 0, so every rule moves real values."""
    state = init_state(cfg, seed)
    rng = np.random.default_rng(seed + 1)
    for value in state.values():
        if value.ndim == 1:
            value += rng.standard_normal(value.shape, dtype=np.float32) * np.float32(0.3)
    return state


def _forward(fw, cfg, state, inputs):
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, state)
    return fw.models.run_forward(model, inputs.ids, inputs.mask)


def _preservation_rows(family, src, dst, framework, recipes_edit=None, state_edit=None, plan_edit=None):
    """Grow src -> dst losslessly with `framework`'s expander (after planting a fault, if any), run both
    models on the same ids and return the harness's preservation rows (gated at the lossless limit)."""
    case = Case(family, src, dst, "lossless", "balanced")
    plan = build_plan(case.src_cfg, case.dst_cfg, "lossless", "balanced", seed=7)
    plan = plan_edit(plan) if plan_edit else plan
    recipes = compile_recipes(plan)
    recipes = recipes_edit(recipes) if recipes_edit else recipes
    source = _source(plan.src)
    fw = frameworks.load(framework)
    grown = fw.expand.expand({k: fw.io.to_tensor(v.copy()) for k, v in source.items()}, recipes)
    grown = {k: np.array(fw.io.to_numpy(v)) for k, v in grown.items()}
    grown = state_edit(plan, grown) if state_edit else grown
    inputs = make_inputs(0, plan.dst)
    out_src, out_grown = _forward(fw, plan.src, source, inputs), _forward(fw, plan.dst, grown, inputs)
    return compare_preservation(case, plan, framework, out_grown, out_src, inputs.unpadded, load_tolerances())


def _gated(rows):
    return {r.metric: r for r in rows if r.limit is not None}


# -- the function is kept ----------------------------------------------------------------------------
@pytest.mark.parametrize("framework", ["pt", "ms"])
@pytest.mark.parametrize("family,src,dst", GROWTHS, ids=[f"{f}-{s}2{d}" for f, s, d in GROWTHS])
def test_lossless_growth_preserves_outputs_and_every_hidden_state(family, src, dst, framework):
    gated = _gated(_preservation_rows(family, src, dst, framework))
    assert any(m.endswith("logits.relative") or m.endswith("last_hidden_state.relative") for m in gated)
    assert f"{framework}.layers.worst.relative" in gated
    for metric, r in gated.items():
        assert r.limit == LIMIT, (metric, r.limit)    # cases/tolerances.toml: lossless cases at 1e-6
        assert r.status == "pass" and r.value <= LIMIT, f"{metric} = {r.value:.3g}: {r.detail}"


def test_lossless_weights_are_exact_in_float64():
    """The residual in float32 is evaluation noise: in float64 the grown GPT-2 is its source to the
    rounding of its float32 weights (base -> medium measured 6.2e-8 this way, 1.2e-6 in float32)."""
    import torch

    import models_pt
    import models_pt.layers
    src_cfg, dst_cfg = preset("gpt2", "tiny"), preset("gpt2", "tiny_w112")
    plan = build_plan(src_cfg, dst_cfg, "lossless", "paper", seed=1)
    source = _source(src_cfg)
    grown = execute_recipes_numpy(compile_recipes(plan), source)
    inputs = make_inputs(0, dst_cfg)

    def logits64(cfg, state):
        model = models_pt.build_model(cfg)
        models_pt.load_numpy_state(model, state)
        return models_pt.run_forward(model.double(), inputs.ids, inputs.mask)["logits"][inputs.unpadded]

    # the models' causal mask multiplies a float32 0/1 by the dtype's lowest value: float64's overflows
    # float32 (0 * -inf = NaN); float32's lowest masks as well in float64
    lowest = models_pt.layers.lowest
    models_pt.layers.lowest = lambda dtype: float(np.finfo(np.float32).min)
    try:
        err = relative(logits64(plan.dst, grown), logits64(src_cfg, source))
    finally:
        models_pt.layers.lowest = lowest
    assert torch.get_default_dtype() == torch.float32
    assert err <= 1e-7, f"float64 grown vs source: {err:.3g}"


# -- symmetry breaking ---------------------------------------------------------------------------
def _distinct_rows(x: np.ndarray) -> bool:
    return len(np.unique(x, axis=0)) == len(x)


@pytest.mark.parametrize("family,dst", [("gpt2", "tiny_w112"), ("bert", "tiny2x_d")])
def test_no_two_units_or_heads_of_a_layer_have_the_same_input_weights(family, dst):
    src_cfg, dst_cfg = preset(family, "tiny"), preset(family, dst)
    plan = build_plan(src_cfg, dst_cfg, "lossless", "balanced", seed=4)
    grown = execute_recipes_numpy(compile_recipes(plan), _source(src_cfg))
    D, dh = dst_cfg.hidden, dst_cfg.head_size
    for t in range(dst_cfg.layers):
        if family == "gpt2":
            p = f"transformer.h.{t}."
            units = grown[p + "mlp.c_fc.weight"].T                                     # (F', D): unit inputs
            qkv = grown[p + "attn.c_attn.weight"]
            heads = np.stack([np.concatenate([qkv[:, part * D + h * dh:part * D + (h + 1) * dh].ravel()
                                              for part in range(3)]) for h in range(dst_cfg.heads)])
        else:
            p = f"encoder.layer.{t}."
            units = grown[p + "intermediate.dense.weight"]
            heads = np.stack([np.concatenate([grown[f"{p}attention.self.{x}.weight"][h * dh:(h + 1) * dh].ravel()
                                              for x in ("query", "key", "value")]) for h in range(dst_cfg.heads)])
        assert _distinct_rows(units), f"{p}: two FFN units share their input weights"
        assert _distinct_rows(heads), f"{p}: two heads share their q, k, v weights"


@pytest.mark.parametrize("family,dst", [("gpt2", "tiny_w80"), ("bert", "tiny2x")])
def test_one_training_step_moves_the_new_stream_coordinates_apart(family, dst):
    """The new stream coordinates start as equal copies (GPT-2: each holds the mean; BERT: each copies an
    old coordinate), and so do the weights that write them; one plain torch SGD step on models_pt
    separates them (what reads them differs: GPT-2 seeded rows, BERT zeros where the original has weights)."""
    import torch

    import models_pt
    src_cfg, dst_cfg = preset(family, "tiny"), preset(family, dst)
    plan = build_plan(src_cfg, dst_cfg, "lossless", "balanced", seed=2)
    grown = execute_recipes_numpy(compile_recipes(plan), _source(src_cfg))
    model = models_pt.build_model(plan.dst)
    models_pt.load_numpy_state(model, {k: v.copy() for k, v in grown.items()})
    params = dict(model.named_parameters())
    d, D = src_cfg.hidden, dst_cfg.hidden
    if family == "gpt2":   # Conv1D (in, out): the stream is the columns of both
        writers = ("transformer.wte.weight", "transformer.h.1.mlp.c_proj.weight")
    else:                  # word embeddings: columns; Linear (out, in): the stream is the rows
        writers = ("embeddings.word_embeddings.weight", "encoder.layer.1.output.dense.weight")

    def written(name):     # (D, ...): the weights that write each stream coordinate
        w = params[name].detach().numpy()
        return w if family == "bert" and name.endswith("dense.weight") else w.T

    def copies(name):      # new coordinates equal to their twin (GPT-2: the first new one; BERT: the copied one)
        w = written(name)
        twin = plan.hidden_map[d:] if family == "bert" else np.full(D - d, d)
        return [j for j in range(d, D) if np.array_equal(w[j], w[twin[j - d]]) and (family == "bert" or j > d)]

    for name in writers:
        assert len(copies(name)) == (D - d if family == "bert" else D - d - 1), f"{name}: not copies at the start"
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, dst_cfg.vocab, (4, 16)))
    out = model(ids, torch.ones_like(ids))
    if family == "gpt2":   # the language model's next-token loss
        logits = out[0]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    else:                  # a loss that reads the pooled output
        loss = (out[1] * torch.from_numpy(np.random.default_rng(1).standard_normal(D).astype(np.float32))).sum()
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for name in writers:
        assert copies(name) == [], f"{name}: new coordinates {copies(name)} still equal their twin after one step"


@pytest.mark.parametrize("framework", ["pt", "ms"])
def test_one_step_of_the_training_loop_moves_the_new_stream_coordinates_apart(framework):
    """The same, through the project's own training step (harness.kinds.train: AdamWeightDecay with
    clipping, on real text; one step, so MindSpore eager) in each framework: GPT-2 64 -> 80, the new
    columns of the token embedding and of an MLP's output start as 15 equal copies of the mean and
    are no longer equal after one step. Control: with the learning rate 0 they stay copies."""
    from harness.core.batches import draw_batches
    from harness.core.optim import TrainSetup
    from harness.kinds.train.runner import train_run
    from harness.suite.corpus import english_ids

    src_cfg, dst_cfg = preset("gpt2", "tiny"), preset("gpt2", "tiny_w80")
    plan = build_plan(src_cfg, dst_cfg, "lossless", "balanced", seed=2)
    grown = execute_recipes_numpy(compile_recipes(plan), _source(src_cfg))
    data = draw_batches(english_ids(), "gpt2", steps=1, batch=2, length=16, seed=0, vocab=dst_cfg.vocab)
    d, D = src_cfg.hidden, dst_cfg.hidden
    writers = ("transformer.wte.weight", "transformer.h.1.mlp.c_proj.weight")   # (.., D): stream = columns

    def equal_new_columns(state, name):
        w = state[name]
        return [j for j in range(d + 1, D) if np.array_equal(w[:, j], w[:, d])]

    for name in writers:
        assert len(equal_new_columns(grown, name)) == D - d - 1, f"{name}: not copies at the start"
    for lr, moved in ((1e-3, True), (0.0, False)):
        curve = train_run(framework, dst_cfg, {k: v.copy() for k, v in grown.items()}, data,
                          TrainSetup(steps=1, lr=lr, warmup=0), keep=(1,), ms_mode="pynative")
        after = curve.params[1]
        for name in writers:
            still = equal_new_columns(after, name)
            if moved:
                assert still == [], f"{framework} {name}: new columns {still} still equal after one step"
            else:
                assert len(still) == D - d - 1, f"{framework} {name}: lr 0 moved the copies apart"


# -- planted faults fail the gate -------------------------------------------------------------------
def _no_ln_rescale(recipes):
    """The LayerNorm weights copied but not scaled by sqrt(d / D)."""
    return [dataclasses.replace(r, divisor=None, div_axis=None) if r.divisor is not None else r for r in recipes]


def _zeros_not_mean(recipes):
    """Every layer that writes the stream fills the new coordinates with zeros instead of its mean."""
    return [dataclasses.replace(r, steps=tuple(dataclasses.replace(s, kind="zeros")
                                               if isinstance(s, Append) and s.kind == "mean" else s for s in r.steps))
            for r in recipes]


def _eps_not_scaled(plan):
    return dataclasses.replace(plan, dst=dataclasses.replace(plan.dst, eps=plan.src.eps))


def _bert_affine_not_moved(plan, grown):
    """The inserted blocks' last LayerNorm left identity-affine: the affine of the norm in front is lost."""
    for t in np.flatnonzero(~lossless.originals(plan.depth_map)):
        grown[f"encoder.layer.{t}.output.LayerNorm.weight"][:] = 1
        grown[f"encoder.layer.{t}.output.LayerNorm.bias"][:] = 0
    return grown


FAULTS = {
    "layernorm_not_rescaled": ("gpt2", "tiny_w80", dict(recipes_edit=_no_ln_rescale)),
    "writer_zeros_not_mean": ("gpt2", "tiny_w80", dict(recipes_edit=_zeros_not_mean)),
    "eps_not_scaled": ("gpt2", "tiny_w80", dict(plan_edit=_eps_not_scaled)),
    "bert_affine_not_moved": ("bert", "tiny_d", dict(state_edit=_bert_affine_not_moved)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_planted_fault_fails_the_preservation_gate(fault, capsys):
    family, dst, edit = FAULTS[fault]
    gated = _gated(_preservation_rows(family, "tiny", dst, "pt", **edit))
    failed = {m: r.value for m, r in gated.items() if r.status == "fail"}
    output = "pt.logits.relative" if family == "gpt2" else "pt.last_hidden_state.relative"
    with capsys.disabled():
        print(f"\n{fault}: {', '.join(f'{m} {v:.3g}' for m, v in failed.items())}")
    assert output in failed and failed[output] > 10 * LIMIT
    assert "pt.layers.worst.relative" in failed


def test_a_planted_fault_in_a_parity_case_names_the_first_state_that_departs(tmp_path):
    """End to end: new embedding coordinates zeroed (instead of the mean) in both frameworks' grown state."""
    def zero_new_embedding_coordinates(framework, state):
        state = dict(state)
        for name in ("transformer.wte.weight", "transformer.wpe.weight"):
            state[name] = state[name].copy()
            state[name][:, 64:] = 0
        return state

    rows = run_case(Case("gpt2", "tiny", "tiny_w", "lossless"), tmp_path,
                    hooks=Hooks(grown=zero_new_embedding_coordinates), tolerances=load_tolerances())
    worst = {r.metric: r for r in rows if r.quantity == "preservation" and r.metric.endswith("layers.worst.relative")}
    assert set(worst) == {f"{fw}{precision}.layers.worst.relative"
                          for fw in ("pt", "ms") for precision in ("", ".float64")}
    for r in worst.values():   # float32 and the float64 judge alike
        assert r.status == "fail" and "first state that departs: embeddings" in r.detail, r.detail
    logits64 = {r.metric: r for r in rows if r.metric.endswith("float64.logits.relative")}
    assert set(logits64) == {"pt.float64.logits.relative", "ms.float64.logits.relative"}
    assert all(r.status == "fail" and r.value > 10 * LIMIT for r in logits64.values()), logits64


def test_the_float64_judge_passes_a_lossless_case_and_reports_no_float64_rows_for_approximate_growth(tmp_path):
    """A clean lossless case: every float64 preservation row is gated at tolerances.toml's float64_relative and
    far under it (the float32 rounding of the grown weights); an AKI case (not function preserving) has none."""
    tol = load_tolerances()
    rows = run_case(Case("gpt2", "tiny", "tiny_w", "lossless"), tmp_path, tolerances=tol)
    gated64 = [r for r in rows if ".float64." in r.metric and r.limit is not None]
    assert {r.metric for r in gated64} == {f"{fw}.float64.{what}.relative" for fw in ("pt", "ms")
                                            for what in ("logits", "layers.worst")}
    for r in gated64:
        assert r.limit == tol.limit(r.case, "preservation", "float64_relative", "fp32").value
        assert r.status == "pass" and r.value < r.limit / 5, (r.metric, r.value)
    rows = run_case(Case("gpt2", "tiny", "tiny_wd", "aki"), tmp_path, tolerances=tol)
    assert not [r for r in rows if ".float64." in r.metric]


# -- what the maths does not allow is refused ---------------------------------------------------------
def test_bert_widening_to_no_multiple_is_refused_naming_the_sizes_and_what_works():
    with pytest.raises(BadInput) as e:
        build_plan(preset("bert", "tiny"), preset("bert", "tiny_w"), "lossless", "balanced")
    text = str(e.value)
    for words in ("64 -> 96", "multiple", "hidden 128 (heads 8)", "keep hidden 64", "fpi"):
        assert words in text, (words, text)
    with pytest.raises(BadInput, match="balanced"):
        build_plan(preset("bert", "tiny"), preset("bert", "tiny2x"), "lossless", "paper")
    for src, dst in (("base", "large"), ("small", "base")):   # BERT's seed widths are no multiples
        with pytest.raises(BadInput, match="multiple"):
            build_plan(preset("bert", src), preset("bert", dst), "lossless", "balanced")


@pytest.mark.parametrize("d,D", [(512, 768), (768, 1024), (1024, 1280), (1280, 1600)])
def test_lossless_takes_the_seed_widths_gpt2_and_refuses_them_for_bert(d, D):
    """The issue's widths (none a multiple), heads of 64 and FFN 4 x hidden, depth 2 -> 3: GPT-2 compiles
    to the target's every tensor; BERT is refused before any work."""
    from harness.core.families import param_shapes
    for family in ("gpt2", "bert"):
        base = preset(family, "tiny")
        src = dataclasses.replace(base, hidden=d, heads=d // 64, ffn=4 * d, layers=2, name=f"{d}")
        dst = dataclasses.replace(base, hidden=D, heads=D // 64, ffn=4 * D, layers=3, name=f"{D}")
        if family == "bert":
            with pytest.raises(BadInput, match=f"{d} -> {D} is not"):
                build_plan(src, dst, "lossless", "balanced")
            continue
        plan = build_plan(src, dst, "lossless", "paper")
        recipes = compile_recipes(plan)   # each recipe checks its result shape against the target's
        assert [r.name for r in recipes] == list(param_shapes(plan.dst)) and plan.dst.eps == 1e-5 * d / D


def test_lossless_plan_scales_eps_keeps_runs_together_and_round_trips():
    from harness.core.plan import GrowthPlan
    src, dst = preset("gpt2", "tiny"), preset("gpt2", "tiny_wd")
    plan = build_plan(src, dst, "lossless", "paper", seed=3)
    assert plan.dst.eps == pytest.approx(1e-5 * 64 / 96) and plan.dst.hidden == 96
    assert plan.depth_map.tolist() == [0, 0, 1, 1, 1]
    assert lossless.originals(plan.depth_map).tolist() == [False, True, False, False, True]
    assert GrowthPlan.from_json(plan.to_json()) == plan
    assert build_plan(src, plan.dst, "lossless", "paper", seed=3) == plan      # the grown config as a target
    with pytest.raises(BadInput, match="eps"):                                   # but not under another method
        build_plan(src, plan.dst, "fpi", "paper", seed=3)
    assert build_plan(preset("bert", "tiny"), preset("bert", "tiny2x"), "lossless", "balanced").dst.eps == 1e-12
    seeds = {plan.fill_seed(s, "mlp.c_fc.weight", a) for s in range(2) for a in range(2)}
    assert len(seeds) == 4


def test_state_pairs_skip_only_the_post_ln_states_whose_affine_moved():
    gpt2 = build_plan(preset("gpt2", "tiny"), preset("gpt2", "tiny_wd"), "lossless", "paper")
    assert lossless.state_pairs(gpt2) == [(0, 0), (1, 0), (2, 1), (3, 1), (4, 1), (5, 2)]
    bert = build_plan(preset("bert", "tiny"), preset("bert", "tiny_d"), "lossless", "paper")
    assert lossless.state_pairs(bert) == [(0, None), (1, 0), (2, None), (3, None), (4, 1), (5, 2)]
