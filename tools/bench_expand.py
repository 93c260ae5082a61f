"""Expansion benchmark: seconds per stage, per seed case and framework.

For each case the source is drawn from the seed and written once as safetensors
(buffered, so that it stays in the page cache for both frameworks alike);
each framework then loads it, runs the shared plan's recipes, and saves its own
format (PyTorch: HF folder with model.safetensors; MindSpore: model.ckpt).
"write" is the floor: the target's bytes written as safetensors from memory, the
faster of a direct-I/O write (as the savers write) and a plain buffered one, each
after the saved file is deleted (every timed write starts after os.sync(), and each
ends with its own fsync).
Each is run --repeat times and the medians are printed, with the spread between
runs. First, the machine's free memory is touched once and released (--warm-memory): on a
VM whose host backs guest memory lazily (firecracker here), the first touch of each page
costs about 10x a later one (18 GB: 40.7 s, then 2.9 s; measured), and without this
whichever stage first reaches fresh memory (usually the save) pays for it. Prints one table; the
MindSpore / PyTorch ratio is given for expand and for load + expand + save, for each MindSpore
executor (kernel: the default; ops: MindSpore's own ops).

    python tools/bench_expand.py [--cases bert_small2base_aki,...] [--frameworks pt,ms] [--repeat 3]
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

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core.config import preset  # noqa: E402
from harness.core.formats.checkpoint import write_safetensors  # noqa: E402
from harness.core.plan import build_plan  # noqa: E402
from harness.core.recipe import compile_recipes  # noqa: E402
from harness.core.seeded_init import init_state  # noqa: E402
from harness.kinds.growth import pipeline  # noqa: E402
from harness.suite import frameworks  # noqa: E402

SEED_CASES = {
    "bert_small2base_aki": ("bert", "small", "base"),
    "bert_base2large_aki": ("bert", "base", "large"),
    "gpt2_base2medium_aki": ("gpt2", "base", "medium"),
    "gpt2_medium2large_aki": ("gpt2", "medium", "large"),
    "gpt2_large2xl_aki": ("gpt2", "large", "xl"),
}


def warm_memory(reserve_gib: float = 1.5) -> tuple[float, float]:
    """Touch all but reserve_gib of the available memory once, 1 GiB at a time, then release
    it; return (GiB touched, seconds)."""
    available = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    chunks = []
    start = time.perf_counter()
    try:
        for _ in range(max(0, int(available / 2**30 - reserve_gib))):
            chunks.append(np.ones(2**30 // 8))
    finally:
        touched = len(chunks)
        del chunks
    return touched, time.perf_counter() - start


def _floor(path: Path, arrays: dict, direct: bool) -> float:
    """Seconds to write `arrays` as safetensors (the file is removed after), with or without direct I/O."""
    os.sync()
    t0 = time.perf_counter()
    try:
        write_safetensors(path, arrays, direct=direct)
        return time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)


def bench_case(case: str, fws: list[str], workdir: Path, repeat: int, ms_executors: list[str]) -> list[dict]:
    """Per framework (MindSpore: per executor), `repeat` times: load; expand, save and the write floor,
    each alone. Medians."""
    family, src, dst = SEED_CASES[case]
    src_cfg, dst_cfg = preset(family, src), preset(family, dst)
    src_path = workdir / "src" / "model.safetensors"
    write_safetensors(src_path, init_state(src_cfg, 0), direct=False)   # buffered: it stays cached for both
    rows = []
    for name, executor in [(n, e) for n in fws for e in (ms_executors if n == "ms" else [None])]:
        fw = frameworks.load(name)
        executor = fw.expand.choose_executor(executor)[0]
        title = f"{fw.title} ({executor})"
        runs: dict[str, list[float]] = {k: [] for k in ("load", "plan", "expand", "save", "write")}
        for _ in range(repeat):
            t0 = time.perf_counter()
            _, src_state = fw.io.load(src_path, src_cfg)
            runs["load"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            recipes = compile_recipes(build_plan(src_cfg, dst_cfg, "aki", "paper", 0))
            runs["plan"].append(time.perf_counter() - t0)
            result = pipeline.expand(name, recipes, src_state, executor=executor)
            os.sync()   # before each timed write: no write pays for what earlier steps left dirty
            pipeline.save(result, dst_cfg, workdir / name)
            nbytes = result.weights_bytes
            runs["expand"].append(result.seconds["expand"])
            runs["save"].append(result.seconds["save"])
            arrays = pipeline.to_numpy_state(name, result.state)
            shutil.rmtree(workdir / name, ignore_errors=True)   # its page cache goes with it: the floor starts alike
            runs["write"].append(min(_floor(workdir / "floor.safetensors", arrays, direct) for direct in (True, False)))
            del result, arrays, src_state
            gc.collect()
        row = {"case": case, "framework": title, "name": name, "bytes": nbytes, "runs": repeat}
        row.update({k: float(statistics.median(v)) for k, v in runs.items()})
        row["spread"] = max(max(v) / min(v) for k, v in runs.items() if k != "plan" and min(v) > 0)
        rows.append(row)
        print(f"{case} {title}: " + ", ".join(f"{k} {' '.join(f'{x:.2f}' for x in v)}" for k, v in runs.items()),
              flush=True)
    shutil.rmtree(workdir / "src", ignore_errors=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(SEED_CASES))
    ap.add_argument("--frameworks", default="pt,ms")
    ap.add_argument("--ms-executors", default=None,
                    help="MindSpore executors to time, each its own row (models_ms/expand.py EXECUTORS); "
                         "default: kernel,ops (ops alone, said so, where the kernel cannot be built)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case and framework; medians are shown")
    ap.add_argument("--no-warm-memory", dest="warm_memory", action="store_false",
                    help="skip touching the free memory once before measuring")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if "ms" in args.frameworks.split(","):
        from harness.core.errors import BadInput
        ms_expand = frameworks.load("ms").expand
        if args.ms_executors is None:   # the default executor (the kernel where it builds), then ops
            default, note = ms_expand.choose_executor()
            args.ms_executors = ",".join(dict.fromkeys([default, "ops"]))
            if note:
                print(f"MindSpore: {note}", flush=True)
        try:   # before any work: builds the kernel if need be; a name it does not know is an error
            for executor in args.ms_executors.split(","):
                ms_expand.choose_executor(executor)
        except BadInput as exc:
            ap.error(str(exc))
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"expansion benchmark: seconds, median of {args.repeat} (ratio = MindSpore / PyTorch)")
    columns = ("case", "framework", "load", "plan", "expand", "save", "load+expand+save", "write floor",
               "total / floor", "MB", "spread", "ratio expand", "ratio load+expand+save")
    for col in columns:
        table.add_column(col, justify="left" if col in ("case", "framework") else "right")
    console = Console(width=240)
    if args.warm_memory:
        gib, seconds = warm_memory()
        print(f"memory warmed: {gib} GiB touched once and released, {seconds:.1f} s", flush=True)
    for case in args.cases.split(","):
        if case not in SEED_CASES:
            print(f"error: unknown case {case!r}\n  fix: use one of {', '.join(SEED_CASES)}", file=sys.stderr)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir))
        try:
            rows = bench_case(case, args.frameworks.split(","), workdir, args.repeat,
                              (args.ms_executors or "").split(","))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        pt = next((r for r in rows if r["name"] == "pt"), None)
        for r in rows:
            r["total"] = r["load"] + r["expand"] + r["save"]
        for r in rows:
            ratios = ["", ""]
            if r["name"] == "ms" and pt is not None:
                ratios = [f"{r[k] / pt[k]:.2f}" for k in ("expand", "total")]
            table.add_row(r["case"], r["framework"],
                          *(f"{r[k]:.2f}" for k in ("load", "plan", "expand", "save", "total", "write")),
                          f"{r['total'] / r['write']:.2f}", f"{r['bytes'] / 1e6:.0f}", f"{r['spread']:.1f}x", *ratios)
    console.print(table)
    console.print("spread = the largest max/min over the runs of one stage; resource: "
                  f"{os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
