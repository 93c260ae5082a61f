"""Interrupted runs: SIGINT, SIGTERM and SIGKILL during expansion and saves.

The CLI runs in a subprocess on presets large enough for a save to be caught: `expand`
MiniLM -> MiniLM 2x (interrupted while expanding) and `init` BERT small (95 MB per
framework, interrupted while saving). The phase is detected, never guessed by a sleep:
the test polls for the writer's temporary file (or reads the stage line on stderr),
freezes the child with SIGSTOP (mid-save: checks the temporary file is its own), then sends
the signal and SIGCONT. After every interruption no partial file carries a final name (and no
file of an unfinished run does: the output folder changes as one set, harness.core.formats.atomic.OutputSet);
a rerun succeeds and writes the same bytes. (Byte-identical reruns of complete runs: test_robustness.)
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from harness.cli import main
from harness.core.formats.checkpoint import load_checkpoint, sha256

ROOT = Path(__file__).resolve().parent.parent
EXPAND = ["expand", "--model", "bert", "--src", "minilm", "--dst", "minilm2x", "--method", "aki", "--seed", "3"]
INIT = ["init", "--model", "bert", "--size", "small", "--seed", "3"]
DEADLINE_S = 240


class Child:
    """`python -m harness ARGS --out OUT`, its stderr read line by line."""

    def __init__(self, args: list[str], out: Path):
        env = dict(os.environ, HF_HUB_OFFLINE="1", GLOG_v="3")
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", *args, "--out", str(out)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def stop_when(self, seen) -> None:
        """Poll until seen() is true, then SIGSTOP; fails if the child ends first."""
        deadline = time.monotonic() + DEADLINE_S
        while not seen():
            assert self.proc.poll() is None, f"the run ended (exit {self.proc.returncode}) before the phase " \
                                             f"was seen:\n{''.join(self.stderr)}"
            assert time.monotonic() < deadline, "phase not reached in time"
            time.sleep(0.002)
        self.proc.send_signal(signal.SIGSTOP)

    def signal_and_wait(self, sig) -> int:
        self.proc.send_signal(sig)
        self.proc.send_signal(signal.SIGCONT)
        code = self.proc.wait(timeout=DEADLINE_S)
        self.reader.join(timeout=30)          # it ends at EOF: every line of stderr is taken
        return code


def _temps(out: Path, pid: int | None = None) -> list[str]:
    names = sorted(p.name for p in out.iterdir() if ".partial" in p.name)
    return [n for n in names if pid is None or f".{pid}." in n]


def _stderr_has(child: Child, text: str):
    def seen():
        while not child.lines.empty():
            if text in child.lines.get():
                return True
        return False
    return seen


def test_sigint_while_expanding_leaves_nothing(tmp_path):
    child = Child(EXPAND, tmp_path)
    child.stop_when(_stderr_has(child, "PyTorch: expanding"))
    assert child.signal_and_wait(signal.SIGINT) == 130
    err = "".join(child.stderr)
    assert err.endswith("error: interrupted (SIGINT): temporary files removed; no partial file was left under a "
                        "final name (files completed before the interrupt are whole)\n"
                        "  fix: rerun the same command: it writes the same files\n"), err
    assert os.listdir(tmp_path) == []


def test_killed_saves_leave_no_partial_file_and_a_rerun_writes_the_same_bytes(tmp_path):
    # SIGTERM (plain `kill`) while PyTorch writes model.safetensors: its temporary file removed
    child = Child(INIT, tmp_path)   # (not any temporary file: the --out check's probe file comes and goes first)
    child.stop_when(lambda: any(n.startswith(".model.safetensors.") for n in _temps(tmp_path)))
    assert _temps(tmp_path, child.proc.pid)[0].startswith(".model.safetensors.")     # frozen mid-save
    assert child.signal_and_wait(signal.SIGTERM) == 143
    assert "error: interrupted (SIGTERM)" in "".join(child.stderr) and "Traceback" not in "".join(child.stderr)
    assert os.listdir(tmp_path) == []

    # SIGKILL while MindSpore's model.ckpt is being written
    child = Child(INIT, tmp_path)
    child.stop_when(lambda: any(n.startswith(".model.ckpt.") for n in _temps(tmp_path)))
    assert child.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    stale = _temps(tmp_path)
    # SIGKILL's debris: the set's files written so far, staged (fsynced, never renamed: the set was not
    # complete), and the .ckpt being written; no file under a final name
    assert [n.split(".")[1] for n in stale] == ["config", "model", "model"], stale
    assert all(f".{child.proc.pid}." in n for n in stale) and sorted(os.listdir(tmp_path)) == stale, stale
    first = sha256(tmp_path / next(n for n in stale if n.startswith(".model.safetensors.")))   # staged whole

    # the same command again, to the end: the dead run's temporary files removed, the same bytes
    assert main(INIT + ["--out", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.ckpt", "model.safetensors"]
    assert sha256(tmp_path / "model.safetensors") == first
    _, from_ckpt = load_checkpoint(tmp_path / "model.ckpt")
    _, from_st = load_checkpoint(tmp_path / "model.safetensors")
    assert list(from_ckpt) == list(from_st)
    for name in from_st:
        assert np.array_equal(from_ckpt[name], from_st[name]), name
