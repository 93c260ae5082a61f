"""Run one TinyBERT distillation-step case: the same step in each framework, compared by name.

    rows = run_distill_case(case, workdir)          # list[Row], free of pytest

Per framework, one after the other (PyTorch first): build the frozen teacher (MiniLM's weights or
drawn from the seed, plus a seeded classifier for task distillation) and the seeded student
(TinyBERT with its classifier and fit_dense), then one step (models_*.distill.distill_step):
teacher forward, student forward, the loss terms, gradients of their sum (autograd /
ms.value_and_grad), one AdamWeightDecay step. Both sides start from the same numpy weights.
Quantities (one test each):
- loss: every term (embedding, hidden.m, attention.m, prediction) and the total, |MS - PT| / |PT|;
- grad: every student parameter's gradient (fit_dense and classifier included; the teacher is
  frozen), max |MS - PT| / max |PT| per tensor: the worst, and the FIRST in model parameter order
  over its limit;
- update: the parameters after the step, MS vs PT; and each side against the rule applied in numpy
  to its own gradients (harness.core.distill_step.RULE), so both provably apply the same rule.

Seams for planted faults, so tests need not edit product code:
- DistillHooks.setup(framework, StepSetup) -> StepSetup | None: what one side's step is told
  (temperature, layer map, ...);
- DistillHooks.grads(framework, {name: gradient}): sees the gradients that are compared (observe
  only: the step has already used them, so a replaced gradient would make the update-vs-rule
  check blame the optimizer);
- compare_losses / compare_grads / compare_updates are public and take plain numpy data.
"""
from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from harness.core.distill_step import RULE, StepSetup, adam_weight_decay_reference
from harness.core.seeded_init import init_state
from harness.core.vocab import FRAMEWORKS, TITLES
from harness.kinds.distill.cases import DistillCase
from harness.suite import frameworks
from harness.suite.inputs import make_inputs
from harness.suite.metrics import max_abs, relative
from harness.suite.rows import Row, first_and_worst, guarded, limited, names_rows, row
from harness.suite.tolerances import Tolerances

_TEACHER_STREAM, _HEADS_STREAM = 1, 2   # numpy streams of the case seed (the student's bert uses the seed itself)


@dataclasses.dataclass
class DistillHooks:
    setup: Callable[[str, StepSetup], StepSetup | None] | None = None
    grads: Callable[[str, dict], None] | None = None


@dataclasses.dataclass
class _Stepped:
    setup: StepSetup
    losses: dict[str, float]
    grads: dict[str, np.ndarray]
    params: dict[str, np.ndarray]      # after the step
    seconds: float


# -- weights ------------------------------------------------------------------------------
def _normal(rng, shape, std: float) -> np.ndarray:
    value = rng.standard_normal(shape, dtype=np.float32)
    value *= np.float32(std)
    return value


def _classifier(rng, cfg, num_labels: int) -> dict[str, np.ndarray]:
    if not num_labels:
        return {}
    return {"classifier.weight": _normal(rng, (num_labels, cfg.hidden), cfg.initializer_range),
            "classifier.bias": np.zeros(num_labels, np.float32)}


def teacher_state(case: DistillCase) -> dict[str, np.ndarray]:
    """bert.* from MiniLM's checkpoint or drawn from the seed; classifier.* drawn (task distillation:
    no fine-tuned teacher is at hand offline, so its head is seeded)."""
    cfg = case.teacher_cfg
    if case.weights == "minilm":
        from harness.core.formats.checkpoint import load_checkpoint
        from harness.suite.tokenizer import minilm_dir
        _, bert = load_checkpoint(minilm_dir(), cfg)
    else:
        bert = init_state(cfg, [case.seed, _TEACHER_STREAM])
    rng = np.random.default_rng([case.seed, _HEADS_STREAM, 0])
    return {**{f"bert.{k}": v for k, v in bert.items()}, **_classifier(rng, cfg, case.num_labels)}


def student_state(case: DistillCase) -> dict[str, np.ndarray]:
    """bert.* drawn from the seed as `python -m harness init` draws it, then classifier.* and
    fit_dense.* (Linear student hidden -> teacher hidden), in model parameter order."""
    cfg, teacher = case.student_cfg, case.teacher_cfg
    rng = np.random.default_rng([case.seed, _HEADS_STREAM, 1])
    state = {f"bert.{k}": v for k, v in init_state(cfg, case.seed).items()}
    state.update(_classifier(rng, cfg, case.num_labels))
    state["fit_dense.weight"] = _normal(rng, (teacher.hidden, cfg.hidden), cfg.initializer_range)
    state["fit_dense.bias"] = np.zeros(teacher.hidden, np.float32)
    return state


# -- comparisons (public: planted-fault tests call them with perturbed data) ---------------
def _setup_note(setups: Mapping[str, StepSetup] | None) -> str:
    if not setups or setups["ms"] == setups["pt"]:
        return ""
    return "; SETUPS DIFFER (MindSpore vs PyTorch): " + ", ".join(setups["ms"].differences(setups["pt"]))


def _term_note(term: str, layer_map: tuple[int, ...]) -> str:
    kind, _, m = term.partition(".")
    if kind == "hidden":
        return f"MSE(fit_dense(student hidden {m}), teacher hidden {layer_map[int(m) - 1]})"
    if kind == "attention":
        return (f"MSE(student layer {m} attention scores, teacher layer {layer_map[int(m) - 1]}'s), "
                "raw q k^T / sqrt(hs), padded keys zeroed")
    return {"embedding": "MSE(fit_dense(student embedding output), teacher embedding output)",
            "prediction": "soft cross-entropy of the logits at the temperature, mean over batch x labels",
            "total": "the sum of the terms: what the step differentiates"}.get(term, term)


def compare_losses(case_id: str, pt: Mapping[str, float], ms: Mapping[str, float], tol: Tolerances,
                   layer_map: tuple[int, ...], setups: Mapping[str, StepSetup] | None = None) -> list[Row]:
    """One row per loss term, |MS - PT| / |PT| (the values in the detail)."""
    rows = []
    missing = sorted(set(pt) ^ set(ms))
    if missing:
        rows.append(row(case_id, "loss", "terms", len(missing), 0,
                         f"terms on one side only: {missing} (MindSpore {sorted(ms)}, PyTorch {sorted(pt)})"))
    limit, why = limited(tol, case_id, "loss", "relative")
    note = _setup_note(setups)
    for term in [t for t in pt if t in ms]:
        a, b = np.float64(ms[term]), np.float64(pt[term])
        err = relative(np.array([a]), np.array([b]))
        rows.append(row(case_id, "loss", f"{term}.relative", err, limit,
                         f"MindSpore {a:.9g} vs PyTorch {b:.9g}; {_term_note(term, layer_map)}{note}{why}"))
    return rows


def _per_tensor(got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray],
                order: list[str]) -> tuple[dict, list[str]]:
    """name -> relative error for the names both sides hold, in `order`; and shape mismatches."""
    errors, shapes = {}, []
    for name in order:
        if name not in got or name not in ref:
            continue
        a, b = np.asarray(got[name]), np.asarray(ref[name])
        if a.shape != b.shape:
            shapes.append(f"{name} MindSpore {a.shape} vs PyTorch {b.shape}")
            continue
        errors[name] = relative(a, b)
    return errors, shapes


def _worst_and_first(case_id: str, quantity: str, metric: str, errors: dict[str, float], limit: float | None,
                     what: str, why: str) -> Row:
    """The worst tensor's error as the row value; the detail names it and the FIRST tensor (in the
    order of `errors`) over the limit. NaN counts as over."""
    if not errors:
        return row(case_id, quantity, metric, float("nan"), limit, f"no {what} compared{why}", "fail")
    worst, first, n_over = first_and_worst(errors, limit)
    return row(case_id, quantity, metric, errors[worst], limit,
                f"first {what} over limit (model parameter order): {first}; worst: {worst} ({errors[worst]:.3g}); "
                f"{n_over} of {len(errors)} over; max |MS - PT| / max |PT| per tensor{why}")


def compare_grads(case_id: str, pt: Mapping[str, np.ndarray], ms: Mapping[str, np.ndarray], tol: Tolerances,
                  order: list[str] | None = None, setups: Mapping[str, StepSetup] | None = None) -> list[Row]:
    """Every gradient, joined by name; `order` is the model's parameter order (default: PyTorch's)."""
    order = list(order or pt)
    rows = names_rows(case_id, "grad", ms, pt)
    errors, shapes = _per_tensor(ms, pt, order)
    if shapes:
        rows.append(row(case_id, "grad", "shapes", len(shapes), 0, "; ".join(shapes[:5])))
    limit, why = limited(tol, case_id, "grad", "relative")
    rows.append(_worst_and_first(case_id, "grad", "worst.relative", errors, limit, "gradient",
                                 f"; gradient of the total loss, teacher frozen{_setup_note(setups)}{why}"))
    abs_errors = {n: max_abs(np.asarray(ms[n]), np.asarray(pt[n])) for n in errors}
    if abs_errors:
        worst = max(abs_errors, key=abs_errors.get)
        rows.append(row(case_id, "grad", "worst.max_abs", abs_errors[worst], None, f"{worst}"))
    zero = [n for n in order if n in pt and not np.any(pt[n])]
    rows.append(row(case_id, "grad", "pt.zero_tensors", len(zero), None,
                     f"PyTorch gradients that are exactly 0 (parameters the loss does not reach): {zero or 'none'}"))
    for name, grads in (("pt", pt), ("ms", ms)):
        norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads.values())))
        rows.append(row(case_id, "grad", f"{name}.norm", norm, None, f"{TITLES[name]}: L2 norm of all gradients"))
    return rows


def compare_updates(case_id: str, before: Mapping[str, np.ndarray], sides: Mapping[str, _Stepped], tol: Tolerances,
                    order: list[str] | None = None) -> list[Row]:
    """Parameters after the step, MS vs PT, in two rows: tensors that start at zero (biases: after one
    step they ARE the step, lr m / (eps + sqrt v), which near g = 0 has slope lr (1 - b1) / eps in g,
    so it carries each small gradient element's own relative difference) and the others; then each
    side against RULE applied to its own gradients."""
    order = list(order or before)
    pt, ms = sides["pt"], sides["ms"]
    errors, shapes = _per_tensor(ms.params, pt.params, order)
    rows = [row(case_id, "update", "shapes", len(shapes), 0, "; ".join(shapes[:5]))] if shapes else []
    common = f"; after one step, MindSpore vs PyTorch{_setup_note({'pt': pt.setup, 'ms': ms.setup})}"
    from_zero = {n for n in errors if not np.any(before[n])}
    for metric, key, chosen, what in (
            ("params.relative", "relative", [n for n in errors if n not in from_zero], "parameter"),
            ("from_zero.relative", "from_zero.relative", [n for n in errors if n in from_zero],
             "zero-initialised parameter")):
        limit, why = limited(tol, case_id, "update", key)
        rows.append(_worst_and_first(case_id, "update", metric, {n: errors[n] for n in chosen}, limit, what,
                                     common + why))
    deltas = {n: relative(ms.params[n] - before[n], pt.params[n] - before[n]) for n in errors}
    if deltas:
        worst = max(deltas, key=deltas.get)
        rows.append(row(case_id, "update", "delta.relative", deltas[worst], None,
                         f"the step itself (after - before), MindSpore vs PyTorch; worst: {worst}"))
    how = {"pt": "written out in models_pt/distill.py (torch.optim.AdamW corrects the bias: another rule)",
           "ms": "MindSpore's nn.AdamWeightDecay"}
    limit, why = limited(tol, case_id, "update", "relative")
    for name in FRAMEWORKS:
        side = sides[name]
        expected = adam_weight_decay_reference({n: before[n] for n in order}, side.grads, side.setup)
        rule_errors, _ = _per_tensor(side.params, expected, order)
        rows.append(_worst_and_first(case_id, "update", f"{name}.rule.relative", rule_errors, limit, "parameter",
                                     f"; {TITLES[name]} after its step vs the rule in numpy on its own "
                                     f"gradients; {how[name]}; rule: {RULE}{why}"))
        rows.append(row(case_id, "update", f"{name}.step_s", side.seconds, None,
                         f"{TITLES[name]}: seconds of the whole step (teacher forward, student forward "
                         "and backward, optimizer), one run", "info"))
    return rows


# -- one framework ------------------------------------------------------------------------
def _run_side(name: str, case: DistillCase, setup: StepSetup, teacher: dict, student: dict, inputs) -> _Stepped:
    fw = frameworks.load(name)
    tcfg, scfg = case.teacher_cfg, case.student_cfg
    teacher_model = fw.distill.BertForSequenceClassification(tcfg, case.num_labels)
    fw.models.load_numpy_state(teacher_model, teacher)   # frozen: read, never written
    student_model = fw.distill.TinyBertForSequenceClassification(scfg, case.num_labels, tcfg.hidden)
    # the model shares its arrays' memory and the step writes into them: each side gets its own copy
    fw.models.load_numpy_state(student_model, {k: v.copy() for k, v in student.items()})
    start = time.perf_counter()
    losses, grads, params = fw.distill.distill_step(teacher_model, student_model, inputs.ids, inputs.mask, setup)
    seconds = time.perf_counter() - start
    del teacher_model, student_model
    gc.collect()
    return _Stepped(setup, losses, grads, params, seconds)


# -- the case -------------------------------------------------------------------------------
def run_distill_case(case: DistillCase, workdir: Path | None = None, keep: bool = False,
                     hooks: DistillHooks | None = None, *, tolerances: Tolerances) -> list[Row]:
    """All rows of one case (nothing is written: workdir and keep exist for the kind's signature).
    Raises CaseFailed (carrying the rows so far) on an error."""
    hooks = hooks or DistillHooks()
    tol = tolerances
    return guarded("distill", case.id, lambda rows: _step_and_compare(case, hooks, tol, rows))


def _step_and_compare(case: DistillCase, hooks: DistillHooks, tol: Tolerances, rows: list[Row]) -> None:
    cid = case.id
    inputs = make_inputs(case.seed, case.student_cfg)
    teacher, student = teacher_state(case), student_state(case)
    order = list(student)
    sides: dict[str, _Stepped] = {}
    for name in FRAMEWORKS:
        setup = case.setup
        if hooks.setup:
            setup = hooks.setup(name, setup) or setup
        side = _run_side(name, case, setup, teacher, student, inputs)
        if hooks.grads:
            hooks.grads(name, side.grads)
        sides[name] = side
    del teacher
    pt, ms = sides["pt"], sides["ms"]
    setups = {n: sides[n].setup for n in FRAMEWORKS}
    rows.append(row(cid, "loss", "setup", case.stage, None, f"{case.describe()}; {inputs.detail}", "info"))
    rows.extend(compare_losses(cid, pt.losses, ms.losses, tol, case.layer_map, setups))
    rows.extend(compare_grads(cid, pt.grads, ms.grads, tol, order, setups))
    rows.extend(compare_updates(cid, student, sides, tol, order))
