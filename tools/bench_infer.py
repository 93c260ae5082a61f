"""Inference throughput benchmark: tokens per second of a GPT-2 forward (logits for every
position, and every hidden state: run_forward's outputs, as the parity runs use them) on
PyTorch, MindSpore and ONNX Runtime, per batch size.

Weights are drawn from the seed (speed does not depend on their values); token ids are
seeded. Each backend in turn: build (ONNX Runtime: export first), one warm-up forward,
then per batch size `--repeats` timed forwards of (batch, seq) token ids; the median
is reported. A forward's output includes the (batch, seq, vocab) float32 logits, so
memory grows with batch x seq x vocab: a batch whose batch x seq exceeds --max-tokens
runs at a shorter sequence (halved until it fits), said so in the table.

    python tools/bench_infer.py [--preset chinese] [--batches 1,4,8,16,32,64] [--seq 512]
                                [--max-tokens 8192] [--backends pt,ms,ort] [--dtype fp32] [--repeats 1]
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core.config import preset  # noqa: E402
from harness.core.errors import BadInput  # noqa: E402
from harness.core.seeded_init import init_state  # noqa: E402
from harness.core.vocab import DTYPES, TITLES  # noqa: E402
from harness.kinds.inference.backends import BACKENDS, make_backend  # noqa: E402


def shapes(batches: list[int], seq: int, max_tokens: int) -> list[tuple[int, int]]:
    """(batch, seq) per batch size: seq halved until batch x seq <= max_tokens."""
    out = []
    for b in batches:
        s = seq
        while b * s > max_tokens and s > 1:
            s //= 2
        out.append((b, s))
    return out


def forward_fn(name: str, cfg, state: dict, dtype: str, workdir: Path):
    """(forward(ids, mask) -> outputs, seconds to build, note): the parity runner's backends."""
    start = time.perf_counter()
    onnx_path = None
    if name == "ort":
        from harness.kinds.inference.onnx_backend import export_gpt2
        # hidden states too: PyTorch's and MindSpore's run_forward return them, so all do the same work
        onnx_path = export_gpt2(cfg, state, workdir / "onnx", DTYPES[dtype], hidden_states=True)
    backend = make_backend(name, cfg, state, DTYPES[dtype], onnx_path)
    return backend.forward, time.perf_counter() - start, backend.note


def bench_backend(name: str, cfg, state: dict, dtype: str, plan: list[tuple[int, int]], repeats: int,
                  workdir: Path) -> tuple[dict, str]:
    import numpy as np
    forward, build_s, note = forward_fn(name, cfg, state, dtype, workdir)
    rng = np.random.default_rng(0)
    warm = rng.integers(0, cfg.vocab, (1, min(32, cfg.positions)))
    forward(warm, np.ones_like(warm))
    result = {}
    for batch, seq in plan:
        ids = rng.integers(0, cfg.vocab, (batch, seq))
        mask = np.ones_like(ids)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = forward(ids, mask)
            times.append(time.perf_counter() - start)
            del out
            gc.collect()
        result[(batch, seq)] = batch * seq / statistics.median(times)
        print(f"{TITLES[name]:>12} batch {batch:>3} x {seq:>3}: {result[(batch, seq)]:8.1f} tokens/s "
              f"(median of {repeats}: {statistics.median(times):.2f} s)", flush=True)
    del forward
    gc.collect()
    shutil.rmtree(workdir / "onnx", ignore_errors=True)
    return result, f"{TITLES[name]}: {note}; build {build_s:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="chinese", help="gpt2 preset of cases/sizes.toml (default: chinese)")
    ap.add_argument("--batches", default="1,4,8,16,32,64")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=8192,
                    help="largest batch x seq per forward (memory: logits are batch x seq x vocab floats)")
    ap.add_argument("--backends", default="pt,ms,ort")
    ap.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder for the ONNX export")
    args = ap.parse_args()
    try:
        cfg = preset("gpt2", args.preset)
        batches = [int(b) for b in args.batches.split(",")]
        backends = args.backends.split(",")
        bad = [b for b in backends if b not in BACKENDS]
        if bad or not backends:
            raise BadInput(f"unknown backend {bad[0] if bad else '(none)'!r}", f"use some of: {', '.join(BACKENDS)}")
        if min(batches) < 1 or not 1 <= args.seq <= cfg.positions or args.repeats < 1 or args.max_tokens < 1:
            raise BadInput(f"batches {batches}, seq {args.seq}, repeats {args.repeats}, max tokens {args.max_tokens}",
                           f"use positive batch sizes, repeats and max tokens, and 1 <= seq <= {cfg.positions}")
    except (BadInput, ValueError) as e:
        what, fix = (e.what, e.fix) if isinstance(e, BadInput) else (f"--batches {args.batches!r}: {e}",
                                                                     "write comma-separated integers, e.g. 1,4,8")
        print(f"error: {what}\n  fix: {fix}", file=sys.stderr)
        return 2
    plan = shapes(batches, args.seq, args.max_tokens)
    state = init_state(cfg, 0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-infer-", dir=args.workdir))
    results, notes = {}, []
    try:
        for name in backends:
            results[name], note = bench_backend(name, cfg, state, args.dtype, plan, args.repeats, workdir)
            notes.append(note)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    from rich.console import Console
    from rich.table import Table
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "CPU") if Path("/proc/cpuinfo").exists() else "CPU"
    table = Table(title=f"GPT-2 {cfg.name} ({cfg.layers} layers, hidden {cfg.hidden}, vocab {cfg.vocab}), "
                        f"{args.dtype}: tokens / s of a forward with logits and hidden states; {cpu}, "
                        f"{os.cpu_count()} cores")
    for col in ("batch", "seq", *(TITLES[b] for b in backends),
                *(f"{TITLES[b]} / PyTorch" for b in backends if b != "pt" and "pt" in backends)):
        table.add_column(col, justify="right")
    for batch, seq in plan:
        cut = "" if seq == args.seq else f" (not {args.seq}: batch x seq <= {args.max_tokens})"
        cells = [str(batch), f"{seq}{cut}"]
        cells += [f"{results[b][(batch, seq)]:.1f}" for b in backends]
        cells += [f"{results[b][(batch, seq)] / results['pt'][(batch, seq)]:.2f}"
                  for b in backends if b != "pt" and "pt" in backends]
        table.add_row(*cells)
    console = Console(width=200)
    console.print(table)
    for note in notes:
        console.print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
