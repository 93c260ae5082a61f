"""Expansion benchmark: seconds per stage, per seed case and framework.

For each case the source is drawn from the seed and written once as safetensors;
each framework then loads it, runs the shared plan's recipes, and saves its own
format (PyTorch: HF folder with model.safetensors; MindSpore: model.ckpt).
"write" is the floor: the target's bytes written as safetensors from memory.
Prints one table; the MindSpore / PyTorch ratio is given for expand and for the
whole load + expand + save.

    python tools/bench_expand.py [--cases bert_small2base_aki,...] [--frameworks pt,ms]
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import frameworks, pipeline  # noqa: E402
from harness.checkpoint import write_safetensors  # noqa: E402
from harness.config import preset  # noqa: E402
from harness.init import init_state  # noqa: E402
from harness.plan import build_plan  # noqa: E402
from harness.recipe import compile_recipes  # noqa: E402

SEED_CASES = {
    "bert_small2base_aki": ("bert", "small", "base"),
    "bert_base2large_aki": ("bert", "base", "large"),
    "gpt2_base2medium_aki": ("gpt2", "base", "medium"),
    "gpt2_medium2large_aki": ("gpt2", "medium", "large"),
    "gpt2_large2xl_aki": ("gpt2", "large", "xl"),
}


def bench_case(case: str, fws: list[str], workdir: Path) -> list[dict]:
    family, src, dst = SEED_CASES[case]
    src_cfg, dst_cfg = preset(family, src), preset(family, dst)
    src_path = workdir / "src" / "model.safetensors"
    write_safetensors(src_path, init_state(src_cfg, 0))
    rows = []
    for name in fws:
        fw = frameworks.load(name)
        t0 = time.perf_counter()
        _, src_state = fw.io.load(src_path, src_cfg)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recipes = compile_recipes(build_plan(src_cfg, dst_cfg, "aki", "paper", 0))
        plan_s = time.perf_counter() - t0
        out = workdir / name
        result = pipeline.expand(name, recipes, src_state)
        pipeline.save(result, dst_cfg, out)
        arrays = pipeline.to_numpy_state(name, result.state)
        t0 = time.perf_counter()
        write_safetensors(workdir / "floor.safetensors", arrays)
        floor_s = time.perf_counter() - t0
        rows.append({"case": case, "framework": fw.title, "load": load_s, "plan": plan_s,
                     "expand": result.seconds["expand"], "save": result.seconds["save"], "write": floor_s,
                     "bytes": result.weights_bytes})
        del src_state, result, arrays
        gc.collect()
        shutil.rmtree(out, ignore_errors=True)
        (workdir / "floor.safetensors").unlink(missing_ok=True)
    shutil.rmtree(workdir / "src", ignore_errors=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(SEED_CASES))
    ap.add_argument("--frameworks", default="pt,ms")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table
    table = Table(title="expansion benchmark (seconds; ratio = MindSpore / PyTorch)")
    for col in ("case", "framework", "load", "plan", "expand", "save", "total", "write floor",
                "total / floor", "MB", "ratio expand", "ratio total"):
        table.add_column(col, justify="left" if col in ("case", "framework") else "right")
    console = Console(width=200)
    for case in args.cases.split(","):
        if case not in SEED_CASES:
            print(f"error: unknown case {case!r}\n  fix: use one of {', '.join(SEED_CASES)}", file=sys.stderr)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir))
        try:
            rows = bench_case(case, args.frameworks.split(","), workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        by_fw = {r["framework"]: r for r in rows}
        for r in rows:
            total = r["load"] + r["expand"] + r["save"]
            ratio_e = ratio_t = ""
            if r["framework"] == "MindSpore" and "PyTorch" in by_fw:
                pt = by_fw["PyTorch"]
                ratio_e = f"{r['expand'] / pt['expand']:.2f}"
                ratio_t = f"{total / (pt['load'] + pt['expand'] + pt['save']):.2f}"
            table.add_row(r["case"], r["framework"], f"{r['load']:.2f}", f"{r['plan']:.2f}", f"{r['expand']:.2f}",
                          f"{r['save']:.2f}", f"{total:.2f}", f"{r['write']:.2f}", f"{total / r['write']:.2f}",
                          f"{r['bytes'] / 1e6:.0f}", ratio_e, ratio_t)
            console.print(f"{r['case']} {r['framework']}: load {r['load']:.2f} plan {r['plan']:.2f} "
                          f"expand {r['expand']:.2f} save {r['save']:.2f} (floor {r['write']:.2f})")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
