"""The cost curve of streamed growth (make bench-scale): seconds and peak memory against parameters,
up to GPT-2 at 6.7e9 parameters (26.9 GB in float32, more than this machine's memory).

Steps (--steps; default below): bert small -> base -> large; gpt2 base -> medium -> large -> xl, then
xl -> 2.7b and xl -> 6.7b (both from xl: the last row is the command line's xl -> 6.7b). The first
source of a family is drawn from the seed into a file, tensor by tensor; each later step grows the
previous target (PyTorch's file). For each step and framework, in a child process of its own:

- seconds: harness/kinds/growth/stream.py's grow(), from opening the weights writer to the file
  renamed into place (read source tensors, expand, write; fsync included);
- peak RSS from the OS (/proc/self/status VmHWM) of that child, and its RSS after the interpreter,
  the harness and the framework were imported (and MindSpore's kernel built): "beyond" is the
  difference, what growing itself held;
- every run reads its source from a cold page cache (evicted first: the guest's cache; the VM's host
  may still cache the disk);
- the write floor: the same number of bytes in the same layout, written straight by the same writer
  class (safetensors for PyTorch, MindSpore's .ckpt framing for MindSpore) from one buffer already
  in memory: what any grower must pay to put the file on this disk. time / floor is the overhead of
  everything else (1.0 = as fast as the disk);
- the source read floor: the source file read once front to back from a cold page cache. One disk
  both reads the source and writes the target here, so time / (read + write floor) is the overhead
  over what the disk alone must do; time / floor can only approach 1 where the source is cached or
  on another disk.

Disk: at most one step's source and one target at a time (each framework's file is deleted once
measured; PyTorch's is kept as the next step's source, then deleted). A step that would not fit the
free disk is refused before it writes. --memory also times today's in-memory path (pipeline.expand +
save: the whole target in memory) where the target fits in memory, for the peak-RSS baseline.

Writes reports/bench_scale.{json,md,png}.

    python tools/bench_scale.py [--steps bert:small:base,...] [--frameworks pt,ms] [--memory]
    python tools/bench_scale.py --one gpt2:medium:large --frameworks pt --json   # one step, JSON rows
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_v", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.core.config import preset  # noqa: E402
from harness.core.families import param_shapes  # noqa: E402
from harness.core.formats.writers import CkptStream, SafetensorsStream  # noqa: E402
from harness.kinds.growth import stream  # noqa: E402

STEPS = ("bert:small:base,bert:base:large,"
         "gpt2:base:medium,gpt2:medium:large,gpt2:large:xl,gpt2:xl:2.7b,gpt2:xl:6.7b")
TITLES = {"pt": "PyTorch", "ms": "MindSpore"}
REPORTS = Path(os.environ.get("PARITY_REPORTS", ROOT / "reports"))


# -- one framework, one step: a child process ------------------------------------------------
def child(spec: dict) -> dict:
    """Import, measure RSS, grow (streamed, or in memory with spec["memory"]), measure again."""
    from harness.core.plan import build_plan
    from harness.core.recipe import compile_recipes
    from harness.suite import frameworks
    fw = frameworks.load(spec["framework"])
    executor, _ = fw.expand.choose_executor(None)          # builds MindSpore's kernel: part of the baseline
    src_cfg, dst_cfg = preset(spec["family"], spec["src"]), preset(spec["family"], spec["dst"])
    recipes = compile_recipes(build_plan(src_cfg, dst_cfg, spec["method"], "paper", spec["seed"]))
    gc.collect()
    baseline = stream.current_rss()
    import_peak = stream.peak_rss()
    stream.reset_peak_rss()
    out = Path(spec["out"])
    start = time.perf_counter()
    if spec.get("memory"):
        from harness.kinds.growth import pipeline
        state, load_s = pipeline.load_source(spec["framework"], src_cfg, Path(spec["source"]), 0)
        result = pipeline.expand(spec["framework"], recipes, state, executor=executor)
        path = pipeline.save(result, dst_cfg, out)
        seconds = {"load": load_s, **result.seconds}
        del state, result
    else:
        source = stream.Source.open(Path(spec["source"]), src_cfg, 0, scratch=out)
        try:
            result = stream.grow(spec["framework"], recipes, source, dst_cfg, out, executor=executor)
        finally:
            source.close()
        path, seconds = result.weights_path, dict(result.seconds)
    seconds["wall"] = time.perf_counter() - start
    return {"framework": spec["framework"], "executor": executor, "seconds": seconds, "path": str(path),
            "bytes": path.stat().st_size, "baseline_rss": baseline, "import_peak_rss": import_peak,
            "peak_rss": stream.peak_rss()}


def drop_cache(path: Path) -> None:
    """Evict a file from the page cache (posix_fadvise DONTNEED), so that every run reads its source
    as cold as the first one did (the first framework would otherwise pay for the second's cache)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_child(spec: dict) -> dict:
    drop_cache(Path(spec["source"]))
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({spec['framework']} {spec['src']} -> {spec['dst']}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the write floor ---------------------------------------------------------------------------
def write_floor(cfg, path: Path, fmt: str) -> float:
    """Seconds to write cfg's tensor table (float32) straight from one buffer in memory, as fmt
    ("safetensors" | "ckpt") with the savers' writer (O_DIRECT where the file system allows)."""
    shapes = param_shapes(cfg)
    largest = max(int(np.prod(s)) for s in shapes.values())
    buffer = np.random.default_rng(0).standard_normal(largest, dtype=np.float32)   # touched before the clock
    layout = [(name, shape, np.dtype(np.float32)) for name, shape in shapes.items()]
    os.sync()
    start = time.perf_counter()
    try:
        writer = SafetensorsStream(path, layout) if fmt == "safetensors" else CkptStream(path)
        with writer:
            for name, shape in shapes.items():
                writer.write(name, buffer[:int(np.prod(shape))].reshape(shape))
        return time.perf_counter() - start
    finally:
        path.unlink(missing_ok=True)


def read_floor(path: Path) -> float:
    """Seconds to read a file once, front to back, from a cold page cache into one reused buffer: the
    least a grower pays to read its source from this disk (which reads and writes share)."""
    drop_cache(path)
    buffer = memoryview(bytearray(64 << 20))
    fd = os.open(path, os.O_RDONLY)
    start = time.perf_counter()
    try:
        while os.readv(fd, [buffer]):
            pass
        return time.perf_counter() - start
    finally:
        os.close(fd)


# -- the curve ----------------------------------------------------------------------------------
def _gb(n: float) -> str:
    return f"{n / 1e9:.2f}"


def bench_step(family: str, src: str, dst: str, source: Path, workdir: Path, fws: list[str], floor: bool,
               memory: bool, method: str, keep: bool) -> tuple[list[dict], Path | None]:
    """Rows of one step (one per framework, and per framework in memory with --memory) and, with
    keep, the path of PyTorch's target (a later step's source; the caller deletes it)."""
    dst_cfg = preset(family, dst)
    target_bytes = dst_cfg.n_params() * 4
    keep = keep and "pt" in fws
    stream.check_disk(workdir, target_bytes * (2 if keep else 1), f"the step {family} {src} -> {dst}")
    rows, kept = [], None
    for name in fws:
        modes = ["streamed"] + (["memory"] if memory and target_bytes * 1.6 < _available() else [])
        for mode in modes:
            out = workdir / f"{name}-{mode}-{dst}"
            spec = {"framework": name, "family": family, "src": src, "dst": dst, "method": method, "seed": 0,
                    "source": str(source), "out": str(out), "memory": mode == "memory"}
            got = run_child(spec)
            row = {"family": family, "step": f"{src} -> {dst}", "src": src, "dst": dst, "mode": mode,
                   "params": dst_cfg.n_params(), "target_bytes": target_bytes, **got}
            row["time_s"] = got["seconds"]["total"] if mode == "streamed" else \
                got["seconds"]["load"] + got["seconds"]["expand"] + got["seconds"]["save"]
            row["rss_beyond_bytes"] = got["peak_rss"] - got["baseline_rss"]
            if floor:
                fmt = "safetensors" if name == "pt" else "ckpt"
                row["floor_s"] = write_floor(dst_cfg, workdir / f"floor.{fmt}", fmt)
                row["time_over_floor"] = row["time_s"] / row["floor_s"]
                row["read_floor_s"] = read_floor(source)
                row["time_over_io"] = row["time_s"] / (row["floor_s"] + row["read_floor_s"])
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "path"}), file=sys.stderr, flush=True)
            if keep and name == "pt" and mode == "streamed":
                kept = Path(got["path"])
            else:
                shutil.rmtree(out, ignore_errors=True)
    return rows, kept


def _available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def render_table(rows: list[dict]) -> str:
    """The curve as a Markdown table."""
    head = ("| family | step | parameters | GB | framework | mode | seconds | write floor s | time / floor "
            "| source read s | time / (read + write) | peak RSS GB | after import GB | beyond GB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def cell(r: dict, key: str) -> str:
        return f"{r[key]:.2f}" if key in r else ""

    for r in rows:
        lines.append(f"| {r['family']} | {r['step']} | {r['params'] / 1e9:.3f}e9 | {_gb(r['target_bytes'])} | "
                     f"{TITLES[r['framework']]} ({r['executor']}) | {r['mode']} | {r['time_s']:.2f} "
                     f"| {cell(r, 'floor_s')} | {cell(r, 'time_over_floor')} | {cell(r, 'read_floor_s')} "
                     f"| {cell(r, 'time_over_io')} | {_gb(r['peak_rss'])} | {_gb(r['baseline_rss'])} "
                     f"| {_gb(r['rss_beyond_bytes'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> Path | None:
    """Seconds and peak RSS against parameters, log-log, one line per framework (and the write floor,
    and the target's size): a PNG drawn with Pillow (MindSpore's own dependency)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        print("no Pillow here: the plot is skipped", file=sys.stderr)
        return None
    streamed = [r for r in rows if r["mode"] == "streamed"]
    if not streamed:
        return None
    font = ImageFont.load_default(size=14) if hasattr(ImageFont, "load_default") else None
    small = ImageFont.load_default(size=12)
    width, height = 1400, 620
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    colours = {"pt": (200, 60, 30), "ms": (30, 90, 200), "floor": (110, 110, 110), "size": (40, 150, 60)}
    panels = [("seconds (streamed growth, and the write floor)", "time_s", "floor_s", "seconds"),
              ("peak RSS, GB (the process; dashed: beyond the imports)", "peak_rss", "target_bytes", "GB")]
    xs = [r["params"] for r in streamed]
    for p, (title, key, ref_key, unit) in enumerate(panels):
        left, top, w, h = 90 + p * 700, 60, 560, 460
        values = [r[key] for r in streamed] + [r[ref_key] for r in streamed if ref_key in r]
        if unit == "GB":
            values = [v / 1e9 for v in values] + [r["rss_beyond_bytes"] / 1e9 for r in streamed] + \
                [r["peak_rss"] / 1e9 for r in rows if r["mode"] == "memory"]
        lo_x, hi_x = np.log10(min(xs)) - 0.1, np.log10(max(xs)) + 0.1
        lo_y, hi_y = np.log10(max(min(v for v in values if v > 0), 1e-3)) - 0.1, np.log10(max(values)) + 0.1

        def at(x, y, lo_x=lo_x, hi_x=hi_x, lo_y=lo_y, hi_y=hi_y, left=left, top=top, w=w, h=h):
            return (left + (np.log10(x) - lo_x) / (hi_x - lo_x) * w,
                    top + h - (np.log10(max(y, 1e-6)) - lo_y) / (hi_y - lo_y) * h)

        draw.rectangle([left, top, left + w, top + h], outline="black")
        draw.text((left, top - 40), title, fill="black", font=font)
        for e in range(int(np.floor(lo_y)), int(np.ceil(hi_y)) + 1):
            for m in (1, 2, 5):
                v = m * 10.0 ** e
                if lo_y <= np.log10(v) <= hi_y:
                    _, y = at(10 ** lo_x, v)
                    draw.line([left, y, left + w, y], fill=(225, 225, 225))
                    draw.text((left - 50, y - 7), f"{v:g}", fill="black", font=small)
        for e in range(int(np.floor(lo_x)), int(np.ceil(hi_x)) + 1):
            for m in (1, 2, 5):
                v = m * 10.0 ** e
                if lo_x <= np.log10(v) <= hi_x:
                    x, _ = at(v, 10 ** lo_y)
                    draw.line([x, top, x, top + h], fill=(225, 225, 225))
                    draw.text((x - 14, top + h + 6), f"{v / 1e9:g}", fill="black", font=small)
        draw.text((left + w / 2 - 110, top + h + 26), "parameters, billions (log)", fill="black", font=font)
        series = []   # (label, colour, [(family, x, y)], dashed, hollow)
        for name in ("pt", "ms"):
            mine = sorted((r for r in streamed if r["framework"] == name), key=lambda r: r["params"])
            if not mine:
                continue
            scale = 1e9 if unit == "GB" else 1
            series.append((TITLES[name], colours[name], [(r["family"], r["params"], r[key] / scale) for r in mine],
                           False, False))
            if unit == "GB":
                series.append((f"{TITLES[name]} beyond imports", colours[name],
                               [(r["family"], r["params"], r["rss_beyond_bytes"] / 1e9) for r in mine], True, False))
                held = sorted((r for r in rows if r["framework"] == name and r["mode"] == "memory"),
                              key=lambda r: r["params"])
                if held:
                    series.append((f"{TITLES[name]} in memory (today's path)", colours[name],
                                   [(r["family"], r["params"], r["peak_rss"] / 1e9) for r in held], False, True))
            elif all("floor_s" in r for r in mine):
                series.append((f"write floor ({'safetensors' if name == 'pt' else '.ckpt'})",
                               tuple(int(c * 0.5 + 128) for c in colours[name]),
                               [(r["family"], r["params"], r["floor_s"]) for r in mine], True, False))
        if unit == "GB":
            first = sorted({r["params"]: r for r in streamed}.values(), key=lambda r: r["params"])
            series.append(("target size (float32)", colours["size"],
                           [(r["family"], r["params"], r["target_bytes"] / 1e9) for r in first], False, False))
        for i, (label, colour, points, dashed, hollow) in enumerate(series):
            for family in dict.fromkeys(f for f, _, _ in points):   # a line per family, none across
                xy = [at(x, y) for f, x, y in points if f == family]
                for a, b in zip(xy, xy[1:], strict=False):
                    if hollow:
                        continue
                    if dashed:
                        for t in np.linspace(0, 1, 24)[::2]:
                            s = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                            e = (a[0] + (b[0] - a[0]) * (t + 1 / 23), a[1] + (b[1] - a[1]) * (t + 1 / 23))
                            draw.line([s, e], fill=colour, width=2)
                    else:
                        draw.line([a, b], fill=colour, width=3)
                for x, y in xy:
                    box = [x - 5, y - 5, x + 5, y + 5]
                    shape = draw.rectangle if family == "bert" else draw.ellipse
                    shape(box, outline=colour, width=2) if hollow else shape(box, fill=colour)
            ly = top + 10 + i * 18
            if hollow:
                draw.ellipse([left + 21, ly + 2, left + 31, ly + 12], outline=colour, width=2)
            elif dashed:
                for x0 in range(left + 12, left + 40, 6):
                    draw.line([x0, ly + 7, x0 + 3, ly + 7], fill=colour, width=2)
            else:
                draw.line([left + 12, ly + 7, left + 40, ly + 7], fill=colour, width=3)
            draw.text((left + 46, ly), label, fill="black", font=small)
        draw.text((left + w - 190, top + h - 22), "circles: gpt2, squares: bert", fill="black", font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default=STEPS, help="family:src:dst,... (a step whose src is the previous dst grows "
                    "that file; otherwise src is drawn from seed 0, or grown from an earlier step's target)")
    ap.add_argument("--one", help="a single step family:src:dst (src drawn); with --json prints its rows")
    ap.add_argument("--frameworks", default="pt,ms")
    ap.add_argument("--method", default="aki")
    ap.add_argument("--memory", action="store_true", help="also time the in-memory path where the target fits")
    ap.add_argument("--no-floor", dest="floor", action="store_false", help="skip the write floor")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON (last line)")
    ap.add_argument("--replot", type=Path, help="render the table and plot again from a bench_scale.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.replot:
        rows = json.loads(args.replot.read_text())
        print(render_table(rows))
        print(plot(rows, args.replot.with_suffix(".png")))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # `kill`: the scratch folder is removed, the child too
    fws = args.frameworks.split(",")
    steps = [tuple(s.split(":")) for s in (args.one or args.steps).split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    rows: list[dict] = []
    sources: dict[tuple[str, str], Path] = {}   # (family, preset) -> file, the last one or two kept
    try:
        for family, src, dst in steps:
            source = sources.get((family, src))
            if source is None:
                start = time.perf_counter()
                cfg = preset(family, src)
                stream.check_disk(workdir, cfg.n_params() * 4, f"drawing {family} {src}")
                source = stream.draw_source(cfg, 0, workdir / f"drawn-{family}-{src}" / "model.safetensors")
                (source.parent / "config.json").write_text(json.dumps(cfg.to_hf()))
                print(f"drew {family} {src}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
                sources[(family, src)] = source
            later = steps[steps.index((family, src, dst)) + 1:]
            step_rows, target = bench_step(family, src, dst, source, workdir, fws, args.floor, args.memory,
                                           args.method, keep=any((f, s) == (family, dst) for f, s, _ in later))
            rows.extend(step_rows)
            for key, path in list(sources.items()):   # sources no later step grows from: deleted
                if not any((f, s) == key for f, s, _ in later):
                    shutil.rmtree(path.parent, ignore_errors=True)
                    del sources[key]
            if target is not None and any((f, s) == (family, dst) for f, s, _ in later):
                sources[(family, dst)] = target
            elif target is not None:
                shutil.rmtree(target.parent, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(rows))
        return 0
    table = render_table(rows)
    print(table)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench_scale.json").write_text(json.dumps(rows, indent=1) + "\n")
    (REPORTS / "bench_scale.md").write_text(
        f"# make bench-scale\n\n{os.cpu_count()} cores; seconds = streamed growth of one framework (read, expand, "
        "write, fsync); write floor = the same layout written straight from memory by the same writer; peak RSS "
        "from /proc/self/status VmHWM of the framework's own child process.\n\n" + table)
    png = plot(rows, REPORTS / "bench_scale.png")
    print(f"reports: {REPORTS / 'bench_scale.md'}, bench_scale.json" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
