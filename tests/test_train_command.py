"""`python -m harness train`: continue pre-training a model this project wrote, on tiny models and few steps.

What it writes (each framework's trained checkpoint, curves csv and plot, as one unit), that the
trained weights are the train kind's steps (the same seed gives the same bytes), the rows it prints
with `both`, bad input (two lines, exit 2, nothing written) and Ctrl-C (130, nothing written)."""
import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.core.formats.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--batch", "2", "--length", "12"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny seeded folders: GPT-2, BERT with the masked-LM head, BERT without one."""
    root = tmp_path_factory.mktemp("models")
    for name, args in {"gpt2": ["--model", "gpt2"], "bert_mlm": ["--model", "bert", "--head", "mlm"],
                       "bert": ["--model", "bert"]}.items():
        assert main(["init", *args, "--size", "tiny", "--seed", "2", "--out", str(root / name)]) == 0
    return root


def _curves(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pytorch_training_writes_the_trained_folder_curves_and_plot(models, tmp_path, capsys):
    out = tmp_path / "trained"
    assert main(["train", str(models / "gpt2"), "--steps", "4", "--framework", "pt", *SMALL, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "train_curves.csv",
                                                     "train_curves.png"]
    cfg, trained = load_checkpoint(out)
    _, source = load_checkpoint(models / "gpt2")
    assert cfg.family == "gpt2" and not np.array_equal(trained["transformer.wte.weight"],
                                                       source["transformer.wte.weight"])
    rows = _curves(out / "train_curves.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and set(rows[0]) == {
        "step", "lr_pt", "loss_pt", "grad_norm_pt", "seconds_pt"}
    assert float(rows[-1]["loss_pt"]) < float(rows[0]["loss_pt"])
    assert (out / "train_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr()
    assert "PyTorch: step 4/4 loss" in printed.err and "tokens/s" in printed.err   # the progress, in a log
    # the same seed and steps again: the same bytes
    assert main(["train", str(models / "gpt2"), "--steps", "4", "--framework", "pt", *SMALL,
                 "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_trained_weights_are_the_train_kinds_steps(models, tmp_path, capsys):
    """The command's MindSpore checkpoint holds what harness.kinds.train's runner computes for the same
    setup, read from the MindSpore .ckpt the source folder has (a .ckpt source)."""
    from harness.core.batches import draw_batches
    from harness.core.optim import TrainSetup
    from harness.kinds.train.runner import train_run
    from harness.suite.corpus import english_ids
    out = tmp_path / "ms"
    assert main(["train", str(models / "bert_mlm" / "model.ckpt"), "--steps", "3", "--framework", "ms", *SMALL,
                 "--seed", "5", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.ckpt", "train_curves.csv",
                                                     "train_curves.png"]
    cfg, source = load_checkpoint(models / "bert_mlm" / "model.ckpt")
    data = draw_batches(english_ids(), "bert", steps=3, batch=2, length=12, seed=5, vocab=cfg.vocab)
    want = train_run("ms", cfg, source, data, TrainSetup(steps=3, warmup=1), (3,)).params[3]
    _, got = load_checkpoint(out / "model.ckpt")
    assert set(got) == set(want) and all(np.array_equal(got[n], want[n]) for n in want)


def test_both_frameworks_write_both_checkpoints_and_print_the_rows(models, tmp_path, capsys):
    out = tmp_path / "both"
    assert main(["train", str(models / "bert_mlm"), "--steps", "3", *SMALL, "--out", str(out)]) == 0
    assert {"model.safetensors", "model.ckpt", "config.json"} <= {p.name for p in out.iterdir()}
    rows = _curves(out / "train_curves.csv")
    assert {"loss_pt64", "loss_pt", "loss_ms"} <= set(rows[0])
    printed = capsys.readouterr().out
    for metric in ("first.relative", "worst.relative", "last.relative", "loss.ms_dev", "params.ratio"):
        assert metric in printed, metric
    assert "parity: " in printed and "rows over their limits" in printed
    _, pt = load_checkpoint(out / "model.safetensors")
    _, ms = load_checkpoint(out / "model.ckpt")
    assert max(float(np.abs(pt[n] - ms[n]).max()) for n in pt) < 1e-3   # two frameworks, 3 steps: close, not equal


@pytest.mark.parametrize("args, says", [
    (["{missing}", "--steps", "3"], "no such file or folder"),
    (["{bert}", "--steps", "3"], "a BERT model without the masked-LM head"),
    (["{gpt2}", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["{gpt2}", "--steps", "3", "--framework", "jax"], "unknown framework 'jax'"),
    (["{gpt2}", "--steps", "3", "--length", "64"], "--length 64: the model has 64 positions"),
    (["{gpt2}", "--steps", "3", "--ms-mode", "graph"], "unknown MindSpore mode 'graph'"),
])
def test_bad_input_is_two_lines_exit_2_and_writes_nothing(models, tmp_path, capsys, args, says):
    out = tmp_path / "out"
    args = [a.format(missing=tmp_path / "nowhere", bert=models / "bert", gpt2=models / "gpt2") for a in args]
    assert main(["train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and says in err[0] and err[1].startswith("  fix: "), err
    assert not out.exists()


def test_help_documents_the_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--steps", "--framework", "--batch", "--length", "--lr", "--warmup", "--clip", "--seed",
                   "--ms-mode", "--out", "BertForMaskedLM", "train_curves.csv"):
        assert option in text, option


def test_ctrl_c_while_training_leaves_nothing(models, tmp_path):
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "harness", "train", str(models / "gpt2"), "--steps", "100000",
                              "--framework", "pt", *SMALL, "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    lines = []
    for line in child.stderr:    # the progress lines: training has begun
        lines.append(line)
        if "PyTorch: step" in line or time.monotonic() > deadline:
            break
    assert any("PyTorch: step" in line for line in lines), "".join(lines)
    assert out.is_dir()          # the output set holds the folder while it runs
    child.send_signal(signal.SIGINT)
    rest = child.stderr.read()
    assert child.wait(timeout=120) == 130
    assert "error: interrupted (SIGINT)" in rest, rest
    assert not out.exists()      # the folder the run created is removed with its staged files
