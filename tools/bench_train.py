"""Training-step benchmark: seconds per pre-training step (loss, gradients, global-norm clip,
AdamWeightDecay) per framework and mode: PyTorch eager, MindSpore compiled (ms.jit) and PyNative;
and, in the same run, one float32 MatMul of the same shape in torch and in MindSpore (the floor
of the MindSpore / PyTorch ratio: both call their CPU GEMM).

Weights are drawn from the seed, batches from the English text (harness.core.batches), the
step is models_*.train.Trainer: what the train cases run. Each framework: `--warmup` steps (the
first compiles under jit), then `--steps` timed steps; the median is reported.

    python tools/bench_train.py [--family gpt2] [--preset tiny] [--batch 8] [--length 128]
                                [--steps 5] [--warmup 2] [--modes pt,ms_jit,ms_pynative]
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from harness.core.batches import draw_batches  # noqa: E402
from harness.core.config import preset  # noqa: E402
from harness.core.optim import TrainSetup, schedule  # noqa: E402
from harness.core.seeded_init import init_state  # noqa: E402
from harness.suite import frameworks  # noqa: E402
from harness.suite.corpus import english_ids  # noqa: E402

MODES = {"pt": ("pt", False), "ms_jit": ("ms", True), "ms_pynative": ("ms", False)}


def step_times(mode: str, cfg, state, data, setup, warmup: int) -> tuple[float, float]:
    """(median seconds per step after the warm-up, seconds of the first step)."""
    framework, compiled = MODES[mode]
    fw = frameworks.load(framework)
    model = fw.train.trainable(cfg, state)
    trainer = fw.train.Trainer(model, setup, schedule(setup), compiled=compiled)
    times = []
    for batch in data:
        start = time.perf_counter()
        trainer.step(batch.input_ids, batch.labels, batch.weights)
        times.append(time.perf_counter() - start)
    del trainer, model
    gc.collect()
    return statistics.median(times[warmup:]), times[0]


def matmul_times(m: int, k: int, n: int, repeats: int = 5) -> dict[str, float]:
    """Median seconds of one (m, k) @ (k, n) float32 MatMul in each framework."""
    import torch
    frameworks.load("ms")   # MindSpore's context first
    from mindspore import Tensor, ops
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    ta, tb, ma, mb = torch.from_numpy(a), torch.from_numpy(b), Tensor(a), Tensor(b)
    out = {}
    for name, run in (("pt", lambda: torch.matmul(ta, tb)), ("ms", lambda: ops.matmul(ma, mb).asnumpy())):
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="gpt2")
    ap.add_argument("--preset", default="tiny_text")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (jit compiles in the first)")
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    cfg = preset(args.family, args.preset)
    state = init_state(cfg, 0)
    n = args.warmup + args.steps
    setup = TrainSetup(steps=n, warmup=1)
    data = draw_batches(english_ids(), args.family, steps=n, batch=args.batch, length=args.length, seed=0,
                        vocab=cfg.vocab)
    print(f"{args.family} {args.preset}: {cfg.n_params() / 1e6:.1f} M parameters, batch {args.batch} x "
          f"{args.length}, median of {args.steps} steps after {args.warmup}")
    print(f"{'mode':<12} {'step s':>8} {'first s':>8} {'tokens/s':>10} {'/ torch':>8}")
    rows = {}
    for mode in args.modes.split(","):
        median, first = step_times(mode, cfg, state, data, setup, args.warmup)
        rows[mode] = median
        ratio = median / rows["pt"] if "pt" in rows else float("nan")
        print(f"{mode:<12} {median:8.3f} {first:8.2f} {args.batch * args.length / median:10.0f} {ratio:8.2f}")
    m, k, f = args.batch * args.length, cfg.hidden, cfg.ffn
    mm = matmul_times(m, k, f)
    print(f"MatMul {m}x{k}x{f} float32: torch {mm['pt'] * 1e3:.1f} ms, MindSpore {mm['ms'] * 1e3:.1f} ms, "
          f"ratio {mm['ms'] / mm['pt']:.2f} (the floor of the step ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
