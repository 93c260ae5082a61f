"""`python -m harness train SRC --steps N --out DIR`: continue pre-training a model this project wrote.

SRC is a grown, converted or initialised model (a folder with config.json and model.safetensors,
model.ckpt or pytorch_model.bin, or such a weights file with config.json beside it): BERT with the
masked-LM head (config "BertForMaskedLM": `init` / `expand --head mlm`) or GPT-2 (its tied head).
It trains N steps on the English text (data/english/) exactly as a train case does (harness.kinds.train:
numpy-drawn windows and MLM masks, AdamWeightDecay with warm-up and linear decay, global-norm clipping)
in PyTorch, MindSpore or both, with a progress bar (step, loss, tokens/s), and writes into DIR as one
unit (harness.core.formats.atomic.OutputSet, as `expand`): PyTorch's trained model.safetensors and/or
MindSpore's model.ckpt with config.json, train_curves.csv (per step: lr, loss, gradient norm, seconds)
and train_curves.png. With `both` a PyTorch float64 run of the same steps joins as the judge and the
train kind's MindSpore-vs-PyTorch rows are printed (reported; the exit code is 0 unless input is bad).
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

from harness.core.errors import BadInput

TITLES = {"pt64": "PyTorch float64", "pt": "PyTorch", "ms": "MindSpore"}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="continue pre-training a model this project wrote (BERT masked LM, GPT-2 "
                       "causal LM) on the English text, in PyTorch, MindSpore or both",
                       description=__doc__, formatter_class=_raw())
    p.add_argument("src", metavar="SRC", type=Path, help="model folder (config.json + model.safetensors, model.ckpt "
                   "or pytorch_model.bin) or a weights file with config.json beside it")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps (>= 1)")
    p.add_argument("--framework", default="both", help="pt | ms | both (default; adds a PyTorch float64 judge "
                   "run and prints the MindSpore-vs-PyTorch rows)")
    p.add_argument("--batch", type=int, default=8, help="windows per step (default 8)")
    p.add_argument("--length", type=int, default=32, help="tokens per window (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, help="linear warm-up steps, then linear decay to 0 (default steps / 10)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamWeightDecay's decay, not on biases and "
                   "LayerNorm (default 0.01)")
    p.add_argument("--clip", type=float, default=1.0, help="global-norm gradient clipping; 0: none (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="batch windows and MLM masks (default 0)")
    p.add_argument("--ms-mode", default="jit", help="MindSpore's step: jit (compiled, default) | pynative")
    p.add_argument("--out", required=True, type=Path, help="output folder")


def _raw():
    import argparse
    return argparse.RawDescriptionHelpFormatter


def _check_args(args) -> None:
    from harness.core.vocab import FRAMEWORKS, MS_MODES
    if args.framework not in FRAMEWORKS + ("both",):
        raise BadInput(f"unknown framework {args.framework!r}", f"use one of: {', '.join(FRAMEWORKS + ('both',))}")
    if args.ms_mode not in MS_MODES:
        raise BadInput(f"unknown MindSpore mode {args.ms_mode!r}", f"use one of: {', '.join(MS_MODES)}")
    for key in ("steps", "batch", "length"):
        if getattr(args, key) < 1:
            raise BadInput(f"--{key} must be >= 1, got {getattr(args, key)}", f"pass e.g. --{key} 8")
    if not args.lr > 0:
        raise BadInput(f"--lr must be > 0, got {args.lr}", "pass e.g. --lr 1e-3")
    if not (args.weight_decay >= 0 and args.clip >= 0):
        raise BadInput("--weight-decay and --clip must be >= 0", "pass e.g. --weight-decay 0.01 --clip 1.0")
    if args.seed < 0:
        raise BadInput(f"seed must be a non-negative integer, got {args.seed}", "pass e.g. --seed 0")
    if args.warmup is not None and not 0 <= args.warmup <= args.steps:
        raise BadInput(f"--warmup {args.warmup} must be in 0..{args.steps} (--steps)", "pass e.g. --warmup 10")


def _model(src: Path):
    """(config, numpy state, weights path) of SRC, which must have an LM head."""
    from harness.core.formats.checkpoint import load_checkpoint, resolve
    weights, _ = resolve(src)
    cfg, state = load_checkpoint(src)
    if cfg.family == "bert" and cfg.head != "mlm":
        raise BadInput(f"{weights}: a BERT model without the masked-LM head (config.json: BertModel); masked-LM "
                       "training needs BertForMaskedLM",
                       f"give it a head first: python -m harness expand --model bert --src-ckpt {src} --dst PRESET "
                       "--head mlm --out DIR (PRESET: its own size for a seeded head alone)")
    return cfg, state, weights


def _case(cfg, weights: Path, args):
    from harness.core.optim import TrainSetup
    from harness.kinds.train.cases import TrainCase
    if cfg.family == "gpt2" and args.length + 1 > cfg.positions or args.length > cfg.positions:
        raise BadInput(f"--length {args.length}: the model has {cfg.positions} positions"
                       + (" and GPT-2 reads one token more" if cfg.family == "gpt2" else ""),
                       f"pass --length {cfg.positions - 1 if cfg.family == 'gpt2' else cfg.positions} or less")
    if cfg.family == "bert" and args.length < 3:
        raise BadInput(f"--length {args.length}: a masked-LM window is [CLS] ... [SEP] with text between",
                       "pass --length 3 or more")
    setup = TrainSetup(steps=args.steps, lr=args.lr, warmup=max(1, args.steps // 10) if args.warmup is None
                       else args.warmup, weight_decay=args.weight_decay, clip=args.clip)
    name = re.sub(r"[^0-9A-Za-z]+", "_", weights.parent.name if weights.parent.name else weights.stem).strip("_")
    return TrainCase(family=cfg.family, cfg=cfg, model=name or "model", grown=False, setup=setup, batch=args.batch,
                     length=args.length, checkpoints=(1, max(1, args.steps // 2)), weights="checkpoint",
                     ms_mode=args.ms_mode, seed=args.seed)


class _Progress:
    """A rich bar per run on a terminal (step, loss, tokens/s); a line every tenth of the steps elsewhere."""

    def __init__(self, steps: int, tokens: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.steps, self.tokens = steps, tokens
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} tokens/s"),
                            TimeElapsedColumn(), console=self.console, disable=not self.console.is_terminal)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def run(self, title: str):
        import time
        task = self.bar.add_task(title, total=self.steps, loss="-", rate="-")
        last = [time.perf_counter()]
        every = max(1, self.steps // 10)

        def on_step(step: int, loss: float) -> None:
            now = time.perf_counter()
            rate = self.tokens / max(now - last[0], 1e-9)
            last[0] = now
            self.bar.update(task, advance=1, loss=f"{loss:.4f}", rate=f"{rate:,.0f}")
            if not self.console.is_terminal and (step % every == 0 or step in (1, self.steps)):
                print(f"{title}: step {step}/{self.steps} loss {loss:.4f} {rate:,.0f} tokens/s", file=sys.stderr,
                      flush=True)
        return on_step


def _write_csv(curves: dict, path: Path) -> None:
    from harness.core.formats.checkpoint import atomic_path
    runs = list(curves)
    n = curves[runs[0]].loss.size
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step"] + [f"{what}_{run}" for run in runs for what in ("lr", "loss", "grad_norm", "seconds")])
        for t in range(n):
            out.writerow([t + 1] + [repr(float(getattr(curves[r], k)[t])) for r in runs
                                    for k in ("lr", "loss", "norm", "step_s")])


def run(args) -> int:
    from harness.core.families import param_shapes
    from harness.core.vocab import FRAMEWORKS
    from harness.kinds.registry import load_tolerances
    from harness.kinds.train import compare, plots
    from harness.kinds.train.runner import train_run
    from harness.kinds.train.state import batches
    from harness.suite import frameworks

    _check_args(args)
    cfg, state, weights = _model(args.src)
    case = _case(cfg, weights, args)
    data = batches(case)
    runs = ("pt64", "pt", "ms") if args.framework == "both" else (args.framework,)
    assert set(runs) <= set(FRAMEWORKS) | {"pt64"}
    print(f"train {weights}: {case.describe()}", file=sys.stderr, flush=True)
    curves = {}
    keep = case.steps_compared if args.framework == "both" else (args.steps,)
    with _Progress(args.steps, args.batch * args.length) as progress:
        for run_name in runs:
            curves[run_name] = train_run(run_name, cfg, state, data, case.setup, keep, args.ms_mode,
                                         on_step=progress.run(TITLES[run_name]))
    for run_name in ("pt", "ms"):
        if run_name in curves:
            fw = frameworks.load(run_name)
            trained = curves[run_name].params[args.steps]   # written in the tensor table's order, as `expand`
            path = fw.io.save(args.out, cfg, {n: fw.io.to_tensor(trained[n]) for n in param_shapes(cfg)})
            print(f"{fw.title}: trained {args.steps} steps, final loss {curves[run_name].loss[-1]:.6f}: wrote {path}")
    _write_csv(curves, args.out / "train_curves.csv")
    plots.plot_curves(f"{case.family} {case.task.upper()}: {weights.parent.name or weights.name}, {args.steps} steps",
                      curves, args.out / "train_curves.png")
    print(f"curves: {args.out / 'train_curves.csv'}, plot: {args.out / 'train_curves.png'}")
    if args.framework == "both":
        _print_rows(compare.rows(case, curves, load_tolerances(), f"from {weights}"))
    return 0


def _print_rows(rows) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.suite.summary import fmt
    table = Table(title="MindSpore vs PyTorch (and the float64 judge): the train kind's rows")
    for col in ("quantity", "metric", "value", "limit", "status", "detail"):
        table.add_column(col, overflow="fold")
    shown = [r for r in rows if r.metric not in ("setup", "steps")]
    for r in shown:
        table.add_row(r.quantity, r.metric, fmt(r.value), "-" if r.limit is None else fmt(r.limit), r.status,
                      r.detail[:200])
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)
    out.print(table)
    failed = [f"{r.quantity}.{r.metric}" for r in shown if r.status == "fail"]
    print(f"parity: {len(failed)} of {len(shown)} rows over their limits"
          + (f" ({', '.join(failed)}): reported, not an error; the limits are the train cases' "
             "(cases/tolerances.toml)" if failed else ""))
