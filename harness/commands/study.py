"""`python -m harness study --config cases/study.toml [--quick]`: grown vs scratch continued pre-training,
measured as the papers do (harness/study/). Writes <reports>/study/: curves.csv, summary.md,
loss_vs_steps.png, loss_vs_flops.png; finished runs are kept in <reports>/study/runs/ (the same run is
not done twice: an interrupted study resumes; --fresh redoes them). --jobs N trains up to N families at once,
each in a `--runs-only` process of its own, then writes the reports from the runs they kept. Exit 0, or 1
when a MindSpore curve leaves PyTorch's (or the float64 run's, more than PyTorch's does) by more than its
limit (cases/tolerances.toml), 2 on bad input.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from harness.core.errors import BadInput


def default_out() -> Path:
    return Path(os.environ.get("PARITY_REPORTS", "reports")) / "study"


def add_parser(sub) -> None:
    from harness.study.config import STUDY_TOML
    p = sub.add_parser("study", help="grown vs scratch continued pre-training: validation loss against steps and "
                       "FLOPs, the saving of each growth method (reports/study/)")
    p.add_argument("--config", type=Path, default=STUDY_TOML, help="study file (default cases/study.toml)")
    p.add_argument("--quick", action="store_true", help="the quick profile (seconds; checks the machinery only)")
    p.add_argument("--profile", help="a profile of the file by name (default full; --quick: quick)")
    p.add_argument("--families", help="comma-separated subset of the profile's families, e.g. gpt2")
    p.add_argument("--out", type=Path, help="report folder (default reports/study, or $PARITY_REPORTS/study)")
    p.add_argument("--fresh", action="store_true", help="redo every run (ignore <out>/runs/)")
    p.add_argument("--cached-only", action="store_true",
                   help="train nothing: write the reports from the runs <out>/runs/ holds, listing the ones it lacks")
    p.add_argument("--jobs", type=int, default=1,
                   help="families trained at once, each in a process of its own (default 1; make study: 2, one per "
                   "core); the reports are then written from the runs they kept")
    p.add_argument("--runs-only", action="store_true",
                   help="train the runs into <out>/runs/ and write no report (what each --jobs process does)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads per framework (default 1: on a shared 2-core machine two threads measured "
                   "5x slower per step, spinning on oversubscribed cores)")


def limit_threads(n: int) -> None:
    """torch's intra-op threads and MindSpore's CPU kernel threads (25 by default), before any op runs."""
    import torch
    torch.set_num_threads(n)
    import mindspore as ms
    try:
        ms.device_context.cpu.op_tuning.threads_num(n)
    except RuntimeError:   # already set in this process (a second study in one process): it stays as set
        pass


class RichReporter:
    """A progress bar over the runs and one over the current run's steps (loss shown); in a log (not a
    terminal) one line per finished run."""

    def __init__(self, console, progress):
        self.console, self.progress = console, progress
        self.overall = progress.add_task("study", total=None)
        self.current = None
        self.started = 0.0

    def planned(self, total: int) -> None:
        self.progress.update(self.overall, total=total, description="runs")

    def start(self, spec):
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.started = time.perf_counter()
        self.current = self.progress.add_task(f"{spec.family} {spec.arm} seed {spec.seed} {spec.framework} "
                                              f"lr {spec.setup.lr:g}", total=spec.steps_run, loss="")

        def on_step(step: int, loss: float) -> None:
            self.progress.update(self.current, completed=step, loss=f"loss {loss:.3f}")
        return on_step

    def done(self, spec, result) -> None:
        self.progress.advance(self.overall)
        what = "cached" if result.cached else f"{time.perf_counter() - self.started:.0f} s"
        line = (f"{spec.family} {spec.arm} seed {spec.seed} {spec.framework} lr {spec.setup.lr:g}: {result.steps} "
                f"steps, validation loss {result.val_loss[0]:.3f} -> {result.val_loss[-1]:.3f} ({what})")
        if self.console.is_terminal:
            self.progress.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def run_families(args, families: tuple[str, ...], out: Path) -> None:
    """Each family's runs in a `study --families F --runs-only` process of its own, args.jobs at a time,
    their lines passed on prefixed with the family; BadInput naming the family whose process failed."""
    import subprocess
    import threading

    def command(family: str) -> list[str]:
        cmd = [sys.executable, "-m", "harness", "study", "--config", str(args.config), "--families", family,
               "--out", str(out), "--runs-only", "--threads", str(args.threads)]
        if args.profile or args.quick:
            cmd += ["--profile", args.profile or "quick"]
        return cmd + (["--fresh"] if args.fresh else [])

    def relay(family: str, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            print(f"[{family}] {line}", end="", file=sys.stderr, flush=True)

    waiting, running, failed = list(families), [], []
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                family = waiting.pop(0)
                proc = subprocess.Popen(command(family), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                reader = threading.Thread(target=relay, args=(family, proc), daemon=True)
                reader.start()
                running.append((family, proc, reader))
            time.sleep(0.5)
            for family, proc, reader in [r for r in running if r[1].poll() is not None]:
                reader.join(timeout=10)
                running.remove((family, proc, reader))
                if proc.returncode != 0:
                    failed.append(f"{family} (exit {proc.returncode})")
    finally:
        for _, proc, _ in running:   # an interrupt: the other families' processes end too (finished runs stay)
            proc.terminate()
            proc.wait()
    if failed:
        raise BadInput(f"the study's process for {', '.join(failed)} failed (its lines above say why)",
                       "fix what it printed and rerun: finished runs are kept and not done again")


def run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.study.config import load_study
    from harness.study.output import write_outputs
    from harness.study.study import run_study

    if args.fresh and args.cached_only:
        raise BadInput("--fresh and --cached-only contradict each other", "pass one of them")
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1, got {args.jobs}", "use e.g. --jobs 2")
    if args.runs_only and args.cached_only:
        raise BadInput("--runs-only and --cached-only contradict each other", "pass one of them")
    if args.threads < 1:
        raise BadInput(f"--threads must be >= 1, got {args.threads}", "use e.g. --threads 1")
    profile = args.profile or ("quick" if args.quick else "full")
    cfg = load_study(args.config, profile)
    if args.families:
        import dataclasses
        wanted = tuple(f.strip() for f in args.families.split(","))
        bad = [f for f in wanted if f not in cfg.families]
        if bad:
            raise BadInput(f"--families: {bad[0]!r} is not a family of profile {profile}",
                           f"use some of: {', '.join(cfg.families)}")
        cfg = dataclasses.replace(cfg, families=wanted)
    out = args.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise BadInput(f"{out}: the report folder is not writable", "pass --out with a writable folder")
    start = time.perf_counter()
    cached_only = args.cached_only
    if args.jobs > 1 and len(cfg.families) > 1 and not cached_only:
        run_families(args, cfg.families, out)
        cached_only = True   # every run is now in out/runs: the reports are read from there
    limit_threads(args.threads)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        reporter = RichReporter(console, progress)
        progress.update(reporter.overall, loss="")
        results = run_study(cfg, out / "runs", reporter, fresh=args.fresh and not cached_only,
                            cached_only=cached_only)
    if args.runs_only:
        return 0
    written, failed = write_outputs(cfg, results, out, time.perf_counter() - start, " ".join(sys.argv[1:]))
    for path in written:
        print(path)
    return 1 if failed else 0
