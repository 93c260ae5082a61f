"""TinyBERT distillation over N steps (cases/distill.toml rows with `steps`), MindSpore vs PyTorch and
each against PyTorch float64: one test per quantity per case, then the rows' file checks, planted
faults (each caught and named by step and term) and reruns.

`distill_train_case` is parametrised by the root conftest.py (kind "distill_train"):
    pytest -k 200steps                      the tiny multi-step case
    pytest -k "tinybert_zh_gd_100steps"     the seed-size one (slow: make parity)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.core.batches import draw_text_batches
from harness.kinds.distill.cases import load_distill_cases, load_distill_train_cases
from harness.kinds.distill.runner import student_state, teacher_state
from harness.kinds.distill_train.runner import DistillTrainHooks, batches, distill_run, run_distill_train_case
from harness.kinds.registry import load_tolerances
from harness.suite.rows import failure_message


def test_distill_loss(distill_train_case, parity):
    parity.check(distill_train_case, "distill_loss")


def test_distill_norm(distill_train_case, parity):
    parity.check(distill_train_case, "distill_norm")


def test_distill_lr(distill_train_case, parity):
    parity.check(distill_train_case, "distill_lr")


def test_distill_params(distill_train_case, parity):
    parity.check(distill_train_case, "distill_params")


def test_distill_drift(distill_train_case, parity):
    parity.check(distill_train_case, "distill_drift")


# -- the rows of distill.toml ----------------------------------------------------------------
def test_multi_step_rows_are_their_own_kinds_cases():
    multi = {c.id: c for c in load_distill_train_cases()}
    assert {"tiny_s_gd_200steps", "tinybert_zh_gd_100steps"} <= set(multi)
    assert multi["tiny_s_gd_200steps"].steps == 200 and "slow" not in multi["tiny_s_gd_200steps"].marks
    assert "slow" in multi["tinybert_zh_gd_100steps"].marks
    assert not {c.id for c in load_distill_cases()} & set(multi)   # one-step cases stay the distill kind's


ROW = 'stage = "gd"\nteacher = "tiny_d"\nstudent = "tiny"\nlayer_map = [2, 5]\n'


@pytest.mark.parametrize("row, words", [
    (ROW + "batch = 4\n", ["case #1", "'batch' is used only by multi-step rows", "steps = 200"]),
    (ROW + "steps = 1\n", ["case #1", "'steps' must be >= 2"]),
    (ROW + "steps = 20\nlength = 65\n", ["case #1", "'length' 65 exceeds the student's 64 positions"]),
    (ROW + "steps = 20\nwarmup = 21\n", ["case #1", "'warmup' must be in 0..20"]),
    (ROW + "steps = 20\ncheckpoints = [21]\n", ["case #1", "'checkpoints'"]),
    (ROW + 'steps = 20\nms_mode = "graph"\n', ["case #1", "'ms_mode'", "jit, pynative"]),
])
def test_malformed_multi_step_rows_name_file_row_and_key(tmp_path, row, words, expect_bad_input):
    path = tmp_path / "distill.toml"
    path.write_text("[[case]]\n" + row)
    expect_bad_input(load_distill_train_cases, path, words)
    expect_bad_input(load_distill_cases, path, words)   # either kind checks every row


def test_text_batches_are_padded_rows_of_the_stream_and_the_same_on_a_redraw():
    stream = np.arange(3000) % 700
    got = draw_text_batches(stream, steps=30, batch=6, length=20, seed=0, vocab=1000)
    assert all(b.attention_mask[0].all() for b in got)                          # the first row unpadded
    lengths = np.concatenate([b.attention_mask.sum(1) for b in got])
    assert lengths.min() >= 10 and (lengths < 20).any()
    assert all((b.input_ids[b.attention_mask == 0] == 0).all() for b in got)    # [PAD] after each row
    for b in got:
        row = b.input_ids[0]
        assert ((np.diff(row) % 700) == 1).all()   # a window of the stream
    again = draw_text_batches(stream, steps=30, batch=6, length=20, seed=0, vocab=1000)
    assert all((a.input_ids == b.input_ids).all() for a, b in zip(got, again, strict=True))


# -- planted faults: caught, and named by step and term ----------------------------------------
def _short(steps=12):
    case = next(c for c in load_distill_train_cases() if c.id == "tiny_s_gd_200steps")
    return dataclasses.replace(case, steps=steps, warmup=steps // 10, checkpoints=(1, steps // 2))


@pytest.fixture
def fault_reports(monkeypatch, tmp_path):
    """A planted-fault run writes its curves and plot under tmp_path, never over the real case's."""
    monkeypatch.setenv("PARITY_REPORTS", str(tmp_path))
    return tmp_path / "distill"


def _on_ms(change):
    return lambda run, value: change(value) if run == "ms" else None


def _run(hooks):
    case = _short()
    rows = run_distill_train_case(case, tolerances=load_tolerances(), hooks=hooks)
    return case, {(r.quantity, r.metric): r for r in rows}, rows


def test_layer_map_on_one_side_is_caught_at_step_one_naming_the_term(fault_reports):
    """MindSpore's student layer 2 learns from teacher layer 1 instead of 2: hidden.2 (and
    attention.2, and the total) differ from step 1; the layer-1 terms not at step 1."""
    case, got, rows = _run(DistillTrainHooks(setup=_on_ms(lambda s: dataclasses.replace(s, layer_map=(1, 1)))))
    first = {m.removesuffix(".first.relative"): r.status for (q, m), r in got.items()
             if q == "distill_loss" and m.endswith(".first.relative")}
    assert {t for t, s in first.items() if s == "fail"} == {"hidden.2", "attention.2", "total"}
    assert "layer_map: (1, 1) vs (1, 2)" in got[("distill_loss", "hidden.2.first.relative")].detail
    over = got[("distill_loss", "first_step_over")]
    assert over.value == 1 and over.detail.startswith("hidden.2 first over its limit at step 1")
    message = failure_message(case.id, "distill_loss", rows)
    assert "hidden.2.first.relative" in message and "embedding.first.relative" not in message
    (fault_reports / f"{case.id}.png").stat()   # the plot of the faulty run is written, under tmp_path


def test_schedule_one_step_late_on_one_side_is_caught_at_step_one(fault_reports):
    late = _on_ms(lambda lrs: np.concatenate([[0.0], lrs[:-1]]).astype(np.float32))
    case, got, rows = _run(DistillTrainHooks(lrs=late))
    lr = got[("distill_lr", "worst.relative")]
    assert lr.status == "fail" and "first step over limit: 1 " in lr.detail
    # step 1's losses are computed before any update: every term agrees there, and parts later
    assert all(r.status == "pass" for (q, m), r in got.items() if q == "distill_loss" and m.endswith(".first.relative"))
    assert got[("distill_params", "step1.relative")].status == "fail"
    assert got[("distill_loss", "first_step_over")].value == 1
    assert "lr" in failure_message(case.id, "distill_lr", rows)


# -- reruns --------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["pt", "ms"])
def test_same_seed_gives_the_same_curves_on_a_rerun(run):
    case = _short(steps=4)
    teacher, student = teacher_state(case), student_state(case)
    data = batches(case)
    first = distill_run(run, case, teacher, student, data)
    second = distill_run(run, case, teacher, student, data)
    assert all((first.terms[t] == second.terms[t]).all() for t in first.terms)
    assert (first.norm == second.norm).all()
    assert all((first.params[4][n] == second.params[4][n]).all() for n in first.params[4])
