"""Fuzz: seeded corruptions of tiny checkpoints fed to both frameworks' loaders.

The cases run in a child process (tests/fuzz_checkpoints.py) under a watchdog: a
segfault or hang in a native parser (MindSpore's .ckpt reader segfaulted on a changed
tensor_type before harness/core/formats/ckpt_framing.py checked files first) becomes a failure naming
the case, and the child is restarted after it so every bad case is reported.
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "fuzz_checkpoints.py"
SEED = 20261122
COUNT = 640              # safetensors, .ckpt, .bin and config.json (3 : 3 : 1 : 1), BERT and GPT-2 alternately
CASE_DEADLINE_S = 30     # a case takes milliseconds; the slack is for a loaded machine
START_DEADLINE_S = 180   # importing torch and MindSpore, writing the pristine files


def _lines(pipe, out: queue.Queue) -> None:
    for line in pipe:
        out.put(line)
    out.put(None)


def run_fuzz(workdir: Path, seed: int, count: int, worker: Path = WORKER, case_deadline_s: float = CASE_DEADLINE_S,
             start_deadline_s: float = START_DEADLINE_S) -> tuple[dict[int, dict], list[str]]:
    """Results by case, and failures (crashes, hangs) naming the case; the child restarts after one."""
    results: dict[int, dict] = {}
    failures: list[str] = []
    env = dict(os.environ, HF_HUB_OFFLINE="1", GLOG_v="3")
    next_case = 0
    while next_case < count and len(failures) < 20:
        with open(workdir / f"stderr_from_{next_case}.txt", "w+") as err:
            child = subprocess.Popen([sys.executable, str(worker), str(workdir), str(seed), str(count),
                                      str(next_case)], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
            current, deadline, stuck = None, time.monotonic() + start_deadline_s, None
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    child.kill()
                    child.wait()
                    stuck = f"no answer within {case_deadline_s if current else start_deadline_s} s (hang)"
                    break
                if line is None:                                    # the child ended
                    child.wait()
                    err.seek(0)
                    stuck = f"the process died (exit {child.returncode}): {err.read()[-800:]}"
                    break
                try:
                    record = json.loads(line)
                except ValueError:
                    continue                                        # stray output of a library
                if "start" in record:
                    current = record
                elif "outcome" in record:
                    results[record["i"]] = record
                    current = None
                deadline = time.monotonic() + case_deadline_s
        if child.returncode == 0:
            break
        if current is None:             # died between cases (heap damage shows late): go on after the last
            failures.append(f"the loader process, after case {max(results, default=None)}: {stuck}")
            if max(results, default=-1) < next_case:
                break                   # it died before its first case: restarting would not help
            next_case = max(results) + 1
        else:
            failures.append(f"case {current['i']} ({current['start']}): {stuck}")
            next_case = current["i"] + 1
    return results, failures


def test_corrupted_checkpoints_end_in_bad_input_or_a_faithful_load(tmp_path):
    started = time.monotonic()
    results, failures = run_fuzz(tmp_path, SEED, COUNT)
    seconds = time.monotonic() - started
    wrong = [f"case {i} ({r['description']}): {r['detail']}" for i, r in sorted(results.items())
             if r["outcome"] == "wrong"]
    assert not failures and not wrong, "\n".join(failures + wrong)
    assert len(results) == COUNT, f"{COUNT - len(results)} cases never ran"
    outcomes = Counter(r["outcome"] for r in results.values())
    by_format = Counter((r["description"].split(":")[0].rsplit(".", 1)[1], r["outcome"]) for r in results.values())
    print(f"\nfuzz: {COUNT} cases in {seconds:.1f} s: {dict(outcomes)}; {dict(sorted(by_format.items()))}")
    # both outcomes must occur in every format, or the oracle went unused
    for fmt in ("safetensors", "ckpt", "bin", "config"):
        assert by_format[fmt, "bad_input"] > 0 and by_format[fmt, "loaded"] > 0, by_format


FAKE_WORKER = """
import json, os, signal, sys, time
workdir, seed, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("library chatter", flush=True)
for i in range(start, count):
    print(json.dumps({"i": i, "start": f"fake case {i}"}), flush=True)
    if i == 2:
        time.sleep(600)
    if i == 4:
        os.kill(os.getpid(), signal.SIGSEGV)
    print(json.dumps({"i": i, "description": f"fake case {i}", "outcome": "loaded", "detail": ""}), flush=True)
    if i == 5:
        os.abort()                     # damage that shows after the case's answer
"""


def test_watchdog_names_the_case_that_hangs_or_crashes_and_goes_on(tmp_path):
    worker = tmp_path / "fake_worker.py"
    worker.write_text(FAKE_WORKER)
    results, failures = run_fuzz(tmp_path, 0, 7, worker=worker, case_deadline_s=2, start_deadline_s=60)
    assert sorted(results) == [0, 1, 3, 5, 6]
    assert len(failures) == 3, failures
    assert failures[0].startswith("case 2 (fake case 2): no answer within 2 s (hang)")
    assert failures[1].startswith("case 4 (fake case 4): the process died (exit -11)")
    assert failures[2].startswith("the loader process, after case 5: the process died (exit -6)")
