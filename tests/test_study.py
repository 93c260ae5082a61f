"""The growth study (harness/study/, `python -m harness study`): the savings formula on synthetic curves,
the FLOPs estimate against a hand count, the corpus and its tokenizer, the config's errors, the quick
profile end to end (files, table, plots, cache), and a planted fault in MindSpore's learning rate."""
from __future__ import annotations

import csv
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core.config import preset
from harness.core.errors import BadInput
from harness.core.paths import ROOT
from harness.kinds.registry import load_tolerances
from harness.kinds.train.runner import TrainHooks
from harness.study.config import load_study
from harness.study.flops import flops_params, flops_per_step
from harness.study.parity import parity_rows
from harness.study.runs import RunResult
from harness.study.savings import arm_saving, mean_spread, reach, saving
from harness.study.study import Reporter, run_study
from harness.suite.corpus import STUDY_SPLITS, STUDY_TOKENIZER, study_ids


# -- the measure -------------------------------------------------------------------------
def test_reach_interpolates_linearly_between_evaluations():
    steps = np.array([0, 10, 20, 30])
    loss = np.array([5.0, 4.0, 3.0, 2.0])
    assert reach(steps, loss, 2.5) == pytest.approx(25.0)       # halfway between 3.0 (step 20) and 2.0 (step 30)
    assert reach(steps, loss, 3.0) == pytest.approx(20.0)       # exactly at an evaluation
    assert reach(steps, loss, 6.0) == 0.0                       # below the target from the start
    assert reach(steps, loss, 1.9) is None                      # never reached
    assert reach(steps, np.array([5.0, np.nan, 3.0, 2.0]), 3.5) == pytest.approx(20.0)   # NaN: never below
    assert reach(steps, np.array([5.0, 2.0, 4.0, 1.0]), 3.0) == pytest.approx(10 * 2 / 3)   # the FIRST crossing


def test_savings_without_and_with_the_source_cost():
    assert saving(60.0, 100.0) == pytest.approx(40.0)
    assert saving(150.0, 100.0) == pytest.approx(-50.0)
    steps = np.array([0, 10, 20])
    curves = [(steps, np.array([3.0, 2.0, 1.0])),        # reaches 2.0 at step 10
              (steps, np.array([3.0, 2.5, 1.5])),        # at 15
              (steps, np.array([3.0, 2.9, 2.8]))]        # never
    s = arm_saving(curves, target=2.0, flops_per_step=1e9, reference_steps=20.0, source_flops=2e9)
    assert s.steps == (10.0, 15.0, None) and s.reached == 2
    assert s.flops == (1e10, 1.5e10, None)
    assert s.saved == pytest.approx((50.0, 25.0))                        # 1 - 10/20, 1 - 15/20
    assert s.saved_with_source == pytest.approx((40.0, 15.0))            # 1 - (10 + 2)/20, 1 - (15 + 2)/20
    mean, spread = mean_spread(s.saved)
    assert mean == pytest.approx(37.5) and spread == pytest.approx(np.std([50.0, 25.0], ddof=1))
    assert np.isnan(mean_spread([None])[0])


def test_flops_count_the_layers_and_the_output_projection_not_the_lookups():
    cfg = preset("gpt2", "study_tgt")
    d, f, v, L = cfg.hidden, cfg.ffn, cfg.vocab, cfg.layers
    per_layer = (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d   # qkv, proj, fc, proj, 2 LN
    assert flops_params(cfg) == L * per_layer + 2 * d + v * d                            # + ln_f + decoder
    assert flops_per_step(cfg, 8, 64) == 8 * 64 * (6 * flops_params(cfg) + 6 * L * 64 * d)


# -- the corpus ----------------------------------------------------------------------------
def test_corpus_is_split_by_novel_and_large_enough():
    assert not set(STUDY_SPLITS["train"]) & set(STUDY_SPLITS["validation"])
    train, val = study_ids("train"), study_ids("validation")
    assert train.size > 800_000 and val.size > 100_000      # several MB of prose: no run repeats it
    assert train.max() < 4096 and 100 not in set(np.unique(train[:50_000]))   # the BPE's ids, no [UNK]


def test_the_committed_tokenizer_is_what_its_tool_trains():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from train_study_tokenizer import train
    finally:
        sys.path.remove(str(ROOT / "tools"))
    tok = train(4096)
    assert tok.get_vocab() == _committed_vocab()
    assert tok.token_to_id("[MASK]") == 103 and tok.token_to_id("[UNK]") == 100


def _committed_vocab():
    from harness.suite.tokenizer import load_tokenizer
    return load_tokenizer(STUDY_TOKENIZER).get_vocab()


# -- the config ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ("[profile.full]\nbatch = 8\n", "missing key"),
    ("[profile.quick]\n", "no [profile.full]"),
    ("[profile.full]\nbatch = 8\nlength = 16\nsteps = 10\nsource_steps = 10\neval_every = 5\neval_batches = 1\n"
     "seeds = [0]\nlrs = [1e-3]\nsource_lr = 1e-3\nms_steps = 20\nfamilies = [\"gpt2\"]\n"
     "[profile.full.gpt2]\nsource = \"study_q_src\"\nsource_deep = \"study_q_src_d\"\ntarget = \"study_q_tgt\"\n",
     "ms_steps"),
    ("[profile.full]\nbatch = 8\nlength = 16\nsteps = 10\nsource_steps = 10\neval_every = 5\neval_batches = 1\n"
     "seeds = [0]\nlrs = [1e-3]\nsource_lr = 1e-3\nms_steps = 2\nfamilies = [\"gpt2\"]\n"
     "[profile.full.gpt2]\nsource = \"study_q_src\"\nsource_deep = \"study_q_src_d\"\ntarget = \"study_q_tgt\"\n",
     "no multiple of eval_every"),
    ("[profile.full]\nbatch = 8\nlength = 16\nsteps = 10\nsource_steps = 10\neval_every = 5\neval_batches = 1\n"
     "seeds = [0]\nlrs = [1e-3]\nsource_lr = 1e-3\nms_steps = 5\nfamilies = [\"gpt2\"]\n"
     "[profile.full.gpt2]\nsource = \"study_q_src\"\nsource_deep = \"nope\"\ntarget = \"study_q_tgt\"\n",
     "unknown gpt2 preset 'nope'"),
])
def test_a_bad_study_file_is_named_with_its_key(tmp_path, text, says):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        load_study(path, "full")
    assert str(path) in e.value.what and says in e.value.what and e.value.fix


def test_the_command_refuses_a_bad_file_with_two_lines_and_exit_2(tmp_path, capsys):
    from harness.cli import main
    path = tmp_path / "study.toml"
    path.write_text("[profile.full]\nbatch = 0\n")
    out = tmp_path / "out"
    assert main(["study", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: ") and str(path) in err[0] and err[1].startswith("  fix: ")
    assert not out.exists()


# -- the quick profile, end to end ---------------------------------------------------------------
def _study(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GLOG_v": "3"}
    return subprocess.run([sys.executable, "-m", "harness", "study", "--quick", "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, _study(out, "--jobs", "2")


def test_quick_study_writes_curves_table_and_plots(quick):
    out, done = quick
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = load_study(profile="quick")
    for name in ("curves.csv", "summary.md", "loss_vs_steps.png", "loss_vs_flops.png"):
        assert (out / name).is_file(), name
    for png in ("loss_vs_steps.png", "loss_vs_flops.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    runs = {(r["family"], r["arm"], r["seed"], r["framework"], r["lr"]) for r in rows}
    for family in cfg.families:
        for arm in ("fpi_paper", "fpi_balanced", "aki", "depth", "lossless"):
            seeds = {s for (fam, a, s, fw, _) in runs if fam == family and a == arm and fw == "pt"}
            assert seeds == {str(s) for s in cfg.seeds}, (family, arm)
        sweep = {lr for (fam, a, s, fw, lr) in runs if fam == family and a == "scratch" and s == "0"}
        assert len(sweep) == len(cfg.lrs)
        assert any(fam == family and fw == "ms" for (fam, a, s, fw, _) in runs)
    last = [r for r in rows if r["family"] == "gpt2" and r["arm"] == "scratch" and r["step"] == str(cfg.steps)]
    assert all(r["val_loss"] and r["train_loss"] for r in last)
    assert float(last[0]["flops"]) == cfg.steps * flops_per_step(preset("gpt2", "study_q_tgt"), cfg.batch, cfg.length)
    summary = (out / "summary.md").read_text()
    for family in cfg.families:   # each family's section holds a row per arm
        section = summary.split(f"## {family.upper()} ")[1].split("\n## ")[0]
        for title in ("FPI, paper sampling", "FPI, balanced (exact)", "AKI", "depth-only stacking", "lossless"):
            line = next(x for x in section.splitlines() if x.startswith(f"| {title} |"))
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[1] == str(len(cfg.seeds))
            # a saving ("21.7 ± 0.0 %", "(k of n seeds reached it)" may follow), or why there is none
            assert re.match(r"-?[\d.]+ ± [\d.]+ %", cells[5]) or cells[5] == "-" and cells[3] == "not reached", line
    assert "Not run" not in summary
    bert = summary.split("## BERT ")[1].split("\n## ")[0]    # the arm grown from the real MiniLM, and its scratch
    assert f"| FPI from real MiniLM | {len(cfg.seeds)} |" in bert and "| scratch at MiniLM's grown size |" in bert
    assert "| study_quick_gpt2_fpi_paper | worst.relative |" in summary and "| fail |" not in summary
    assert "| study_quick_gpt2_fpi_paper | loss.ms_dev |" in summary   # the float64 judge's row
    assert "[gpt2] " in done.stderr and "[bert] " in done.stderr        # --jobs 2: a process per family
    assert "bert2BERT" in summary and "6 N" in summary


def test_cached_only_lists_the_runs_it_lacks(quick, tmp_path):
    out, first = quick
    assert first.returncode == 0
    partial = tmp_path / "partial"
    (partial / "runs").mkdir(parents=True)
    for path in (out / "runs").glob("gpt2_*"):   # every GPT-2 run but the lossless arm's
        if "_lossless_" not in path.name:
            (partial / "runs" / path.name).write_bytes(path.read_bytes())
    done = _study(partial, "--families", "gpt2", "--cached-only")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (partial / "summary.md").read_text()
    seeds = len(load_study(profile="quick").seeds)
    assert f"**Not run** ({seeds} runs" in summary and "lossless seed 0 (pt" in summary
    assert "| lossless |" not in summary and f"| FPI, paper sampling | {seeds} |" in summary
    assert "(cached)" in done.stderr and "0 computed now" in summary   # every run read back, none trained


# -- MindSpore's curve against PyTorch's: the gate and a planted fault ---------------------------
class _Quiet(Reporter):
    def start(self, spec):
        return None


def _arm_runs(tmp_path, hooks=None) -> tuple[RunResult, RunResult, RunResult]:
    """GPT-2 scratch, 20 steps; MindSpore (PyNative) and PyTorch float64 its first 10: (ms, pt, pt64),
    kept in tmp_path/runs (a second call reads them back)."""
    cfg = dataclasses.replace(load_study(profile="quick"), families=("gpt2",), arms=("scratch",), lrs=(1e-3,),
                              seeds=(0,), ms_arms=("scratch",), steps=20, ms_steps=10)
    results = run_study(cfg, tmp_path / "runs", _Quiet(), hooks=hooks, ms_mode="pynative")
    fam = results["gpt2"]
    ms = fam.select("scratch", framework="ms")[0]
    pt = fam.select("scratch", framework="pt")[0]
    return ms, pt, fam.select("scratch", framework="pt64")[0]


def _one_arm(tmp_path, hooks=None):
    ms, pt, judge = _arm_runs(tmp_path, hooks)
    return {r.metric: r for r in parity_rows(ms, pt, load_tolerances(), "quick", judge=judge)}


def test_planted_fault_a_different_lr_on_the_mindspore_side_fails(tmp_path):
    """The unfaulted twin of this check is in the quick study (its MindSpore rows pass)."""
    faulty = TrainHooks(setup=lambda run, s: dataclasses.replace(s, lr=s.lr * 1.02) if run == "ms" else None)
    rows = _one_arm(tmp_path, faulty)
    assert rows["first.relative"].status == "pass"     # step 1's loss is computed before any update
    assert rows["worst.relative"].status == "fail" and "worst at step" in rows["worst.relative"].detail
    assert rows["step.relative"].status == "fail"
    # the float64 judge: MindSpore left the float64 run by more than k x PyTorch's deviation + floor
    assert rows["loss.ms_dev"].status == "fail" and rows["loss.ratio"].value > 4, rows["loss.ratio"]
    assert rows["loss.excess"].status == "fail" and "first step over limit: " in rows["loss.excess"].detail


def test_without_its_float64_run_the_judge_row_fails(tmp_path):
    """The same arm unfaulted: every row passes, the judge's included; without the float64 run, a failed row."""
    rows = _one_arm(tmp_path)
    assert {m: r.status for m, r in rows.items() if r.limit is not None} == dict.fromkeys(
        ["first.relative", "worst.relative", "step.relative", "loss.ms_dev", "loss.excess"], "pass")
    assert rows["loss.pt_dev"].value > 0 and 0.25 < rows["loss.ratio"].value < 4   # both float32 runs leave float64
    ms, pt, _ = _arm_runs(tmp_path)
    (judge,) = [r for r in parity_rows(ms, pt, load_tolerances(), "quick") if r.quantity == "drift"]
    assert judge.status == "fail" and "no PyTorch float64 run" in judge.detail


def test_a_mindspore_run_without_its_pytorch_twin_is_a_failed_row():
    ms = RunResult(key="k", family="gpt2", arm="scratch", seed=0, framework="ms", lr=1e-3, steps=2,
                   train_loss=np.ones(2), lrs=np.ones(2), eval_steps=np.array([0, 2]), val_loss=np.ones(2), seconds=0)
    (r,) = parity_rows(ms, None, load_tolerances(), "quick")
    assert r.status == "fail" and "no PyTorch run" in r.detail


@pytest.mark.parametrize("args, says", [(["--jobs", "0"], "--jobs must be >= 1"),
                                        (["--runs-only", "--cached-only"], "contradict")])
def test_bad_options_get_two_lines_and_exit_2(tmp_path, capsys, args, says):
    from harness.cli import main
    assert main(["study", "--quick", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: ") and says in err[0] and err[1].startswith("  fix: ")


def test_a_family_process_that_fails_is_named_and_no_report_is_written(tmp_path, capsys, monkeypatch):
    """Planted fault: each --jobs process ends in failure at once (its interpreter replaced by `false`)."""
    from harness.cli import main
    monkeypatch.setattr(sys, "executable", "/bin/false")
    out = tmp_path / "out"
    assert main(["study", "--quick", "--jobs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "gpt2 (exit 1)" in err and "bert (exit 1)" in err and "fix: " in err
    assert not (out / "summary.md").exists()
