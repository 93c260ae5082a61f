"""Training-step benchmark: seconds per step per framework and mode: PyTorch eager, MindSpore
compiled (ms.jit) and PyNative; and, in the same run, one float32 MatMul in torch and in MindSpore
of the model's own shape (batch x length, hidden, ffn) and of the shapes of --matmul (default
2048x768x3072, the issue's measurement): the floor of the MindSpore / PyTorch ratio, as both call
their CPU GEMM.

--family gpt2 | bert: a pre-training step (LM loss, gradients, global-norm clip, AdamWeightDecay;
models_*.train.Trainer, what the train cases run): GPT-2 CLM, BERT MLM with the masked-LM head
(harness.core.lm_head; 15% of positions masked, as the train cases). --family tinybert: a TinyBERT general
distillation step (frozen --teacher forward, student loss terms, gradients, clip, AdamWeightDecay;
models_*.distill.DistillTrainer, what the multi-step distillation cases run).
Weights are drawn from the seed, batches from the English text (harness.core.batches). Each mode:
`--warmup` steps (the first compiles under jit), then `--steps` timed steps; the median is reported.

    python tools/bench_train.py [--family gpt2|bert|tinybert] [--preset tiny_text] [--teacher base]
                                [--batch 8] [--length 128] [--steps 5] [--warmup 2]
                                [--modes pt,ms_jit,ms_pynative] [--matmul 2048x768x3072[,MxKxN...]]
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

from harness.core.batches import draw_batches, draw_text_batches  # noqa: E402
from harness.core.config import preset  # noqa: E402
from harness.core.distill_step import StepSetup  # noqa: E402
from harness.core.errors import BadInput  # noqa: E402
from harness.core.optim import TrainSetup, schedule  # noqa: E402
from harness.core.seeded_init import init_state  # noqa: E402
from harness.suite import frameworks  # noqa: E402
from harness.suite.corpus import english_ids  # noqa: E402

MODES = {"pt": ("pt", False), "ms_jit": ("ms", True), "ms_pynative": ("ms", False)}


def _timed(step, inputs, data, warmup: int) -> tuple[float, float]:
    """(median seconds per step(*inputs(batch)) after the warm-up, seconds of the first step)."""
    times = []
    for batch in data:
        start = time.perf_counter()
        step(*inputs(batch))
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:]), times[0]


def step_times(mode: str, cfg, state, data, setup, warmup: int) -> tuple[float, float]:
    """A pre-training step (models_*.train.Trainer): (median seconds after the warm-up, first step's)."""
    framework, compiled = MODES[mode]
    fw = frameworks.load(framework)
    model = fw.train.trainable(cfg, state)
    trainer = fw.train.Trainer(model, setup, schedule(setup), compiled=compiled)
    out = _timed(trainer.step, lambda b: (b.input_ids, b.labels, b.weights), data, warmup)
    del trainer, model
    gc.collect()
    return out


def distill_step_times(mode: str, teacher_cfg, student_cfg, states, data, setup, warmup: int) -> tuple[float, float]:
    """A general distillation step (models_*.distill.DistillTrainer): (median seconds, first step's)."""
    framework, compiled = MODES[mode]
    fw = frameworks.load(framework)
    teacher, student = fw.distill.distill_models(teacher_cfg, student_cfg, 0, *states)
    layer_map = tuple(m * teacher_cfg.layers // student_cfg.layers for m in range(1, student_cfg.layers + 1))
    step_setup = StepSetup("gd", layer_map, 1.0, setup.lr, setup.weight_decay)
    trainer = fw.distill.DistillTrainer(teacher, student, step_setup, setup, schedule(setup), compiled=compiled)
    out = _timed(trainer.step, lambda b: (b.input_ids, b.attention_mask), data, warmup)
    del trainer, teacher, student
    gc.collect()
    return out


def _lm_state(cfg) -> tuple:
    """(config, seeded weights) of the model trained: GPT-2 with its tied head; BERT with the masked-LM head
    (harness.core.lm_head, as the train cases), drawn from seed 0."""
    if cfg.family != "bert":
        return cfg, init_state(cfg, 0)
    from harness.core.lm_head import add_mlm_head, with_mlm_head
    state, _ = add_mlm_head(init_state(cfg, 0), with_mlm_head(cfg), 0)
    return with_mlm_head(cfg), state


def _distill_states(teacher: str, student: str) -> tuple[dict, dict]:
    """(teacher, student) numpy states of two bert presets, as the distillation cases draw them."""
    from harness.kinds.distill.cases import DistillCase
    from harness.kinds.distill.runner import student_state, teacher_state
    case = DistillCase("gd", teacher, student, (), False)
    return teacher_state(case), student_state(case)


def _shape(text: str) -> tuple[int, int, int]:
    try:
        m, k, n = (int(x) for x in text.lower().split("x"))
        return m, k, n
    except ValueError:
        raise argparse.ArgumentTypeError(f"--matmul {text!r}: write MxKxN, e.g. 2048x768x3072") from None


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
    ap.add_argument("--family", default="gpt2", choices=("gpt2", "bert", "tinybert"))
    ap.add_argument("--preset", default="tiny_text", help="the model (tinybert: the student's bert preset)")
    ap.add_argument("--teacher", default="base", help="tinybert: the teacher's bert preset")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (jit compiles in the first)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--matmul", type=_shape, nargs="*", default=[(2048, 768, 3072)],
                    help="more MatMul shapes MxKxN, timed in both frameworks (default: 2048x768x3072)")
    args = ap.parse_args()
    try:
        rows = _bench(args)
    except BadInput as e:
        print(f"error: {e.what}\n  fix: {e.fix}", file=sys.stderr)
        return 2
    return 0 if rows else 1


def _bench(args) -> dict[str, float]:
    n = args.warmup + args.steps
    setup = TrainSetup(steps=n, warmup=1)
    tinybert = args.family == "tinybert"
    cfg = preset("bert" if tinybert else args.family, args.preset)
    if tinybert:
        teacher = preset("bert", args.teacher)
        states = _distill_states(args.teacher, args.preset)
        data = draw_text_batches(english_ids(), steps=n, batch=args.batch, length=args.length, seed=0,
                                 vocab=cfg.vocab)
        what = (f"TinyBERT general distillation: teacher bert {args.teacher} ({teacher.n_params() / 1e6:.1f} M, "
                f"frozen), student bert {args.preset} ({cfg.n_params() / 1e6:.1f} M)")
    else:
        cfg, state = _lm_state(cfg)
        data = draw_batches(english_ids(), args.family, steps=n, batch=args.batch, length=args.length, seed=0,
                            vocab=cfg.vocab)
        what = f"{args.family} {args.preset} {'MLM' if args.family == 'bert' else 'CLM'}: {cfg.n_params() / 1e6:.1f} M"
    print(f"{what}; batch {args.batch} x {args.length}, median of {args.steps} steps after {args.warmup}")
    print(f"{'mode':<12} {'step s':>8} {'first s':>8} {'tokens/s':>10} {'/ torch':>8}")
    rows = {}
    for mode in args.modes.split(","):
        if tinybert:
            median, first = distill_step_times(mode, teacher, cfg, states, data, setup, args.warmup)
        else:
            median, first = step_times(mode, cfg, state, data, setup, args.warmup)
        rows[mode] = median
        ratio = median / rows["pt"] if "pt" in rows else float("nan")
        print(f"{mode:<12} {median:8.3f} {first:8.2f} {args.batch * args.length / median:10.0f} {ratio:8.2f}")
    own = (args.batch * args.length, cfg.hidden, cfg.ffn)
    for m, k, f in dict.fromkeys([own, *args.matmul]):
        mm = matmul_times(m, k, f)
        print(f"MatMul {m}x{k}x{f} float32: torch {mm['pt'] * 1e3:.1f} ms, MindSpore {mm['ms'] * 1e3:.1f} ms, "
              f"ratio {mm['ms'] / mm['pt']:.2f} (the floor of the step ratio)")
    return rows


if __name__ == "__main__":
    sys.exit(main())
