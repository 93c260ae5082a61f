"""Run one parity case: grow with each framework in turn, compare, and return rows.

    rows = run_case(case, workdir)          # list[Row], free of pytest (CLI and tests share it)

Per framework, one after the other (so peak memory is about one model per framework):
load the source, forward it, expand, save, forward the grown model. PyTorch runs first
and writes its weights; the MindSpore state is then compared with that file tensor by
tensor. Quantities (one test each): param, output, layers, preservation, time, size, hash.

Seams for planted faults, so tests need not edit product code:
- Hooks.grown(framework, numpy_state) -> state: replaces the grown state that is
  compared and run (not the file already written);
- Hooks.model(framework, role, model): may patch a model ("source" | "grown") before
  its forward;
- compare_params / compare_outputs / compare_preservation are public and take plain
  numpy data.
"""
from __future__ import annotations

import dataclasses
import gc
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from harness import frameworks, pipeline
from harness.cases import Case
from harness.checkpoint import sha256
from harness.config import ModelConfig
from harness.kinds import GROWTH
from harness.metrics import cosine, max_abs, relative, ulp_distance
from harness.plan import GrowthPlan, build_plan
from harness.recipe import compile_recipes
from harness.tokenizer import TOKENIZER_VOCAB
from harness.tolerances import STAGES, Tolerances, load_tolerances

QUANTITIES = GROWTH.quantities   # param, output, layers, preservation, time, size, hash
FRAMEWORK_ORDER = ("pt", "ms")   # PyTorch first: its weights file is the reference the MindSpore state meets
BATCH, TOKENS = 4, 24            # inputs: small, because MindSpore PyNative forward is slow


@dataclasses.dataclass
class Row:
    case: str
    quantity: str
    metric: str
    value: float | str
    limit: float | None
    status: str            # "pass" | "fail" | "info"
    detail: str = ""


@dataclasses.dataclass
class Hooks:
    grown: Callable[[str, dict], dict | None] | None = None
    model: Callable[[str, str, object], None] | None = None


class CaseFailed(Exception):
    """run_case stopped early; `rows` holds what was measured before, plus an error row."""

    def __init__(self, case_id: str, rows: list[Row], cause: BaseException):
        self.rows = rows
        super().__init__(f"{case_id}: {type(cause).__name__}: {cause}")


@dataclasses.dataclass(frozen=True)
class Inputs:
    ids: np.ndarray        # (B, T) int64
    mask: np.ndarray       # (B, T) 0/1, right padding
    detail: str

    @property
    def keep(self) -> np.ndarray:
        return self.mask.astype(bool)


def gate(value: float, limit: float | None) -> str:
    if limit is None:
        return "info"
    return "pass" if value <= limit else "fail"   # NaN fails


def _row(case_id, quantity, metric, value, limit=None, detail="", status=None) -> Row:
    return Row(case_id, quantity, metric, value, limit, status or gate(value, limit), detail)


def failure_message(case_id: str, quantity: str, rows: list[Row]) -> str | None:
    """None if every `quantity` row of the case passes (or is info); else one line per failed row,
    naming the case, quantity, metric, value, limit and detail (worst tensor, first layer, ...)."""
    chosen = [r for r in rows if r.case == case_id and r.quantity == quantity]
    if not chosen:
        return f"{case_id}: {quantity}: no rows were measured"
    failed = [r for r in chosen if r.status == "fail"]
    if not failed:
        return None
    lines = [f"{r.case} {r.quantity} {r.metric} = {r.value!r}"
             + (f" exceeds limit {r.limit!r}" if r.limit is not None else "") + f": {r.detail}" for r in failed]
    return f"{len(failed)} {quantity} check(s) failed:\n" + "\n".join(lines)


def first_and_worst(errors: dict[str, float], limit: float | None) -> tuple[str, str, int]:
    """Over errors (name -> value, in a meaningful order): the worst name (NaN counts as worst),
    the first name over the limit as "name (value > limit)" or "none", and how many are over."""
    over = [(n, e) for n, e in errors.items() if gate(e, limit) == "fail"]
    worst = max(errors, key=lambda n: (bool(np.isnan(errors[n])), errors[n]))
    first = f"{over[0][0]} ({over[0][1]:.3g} > {limit:g})" if over else "none"
    return worst, first, len(over)


def _limited(tol: Tolerances, case_id: str, quantity: str, key: str,
             dtype: str = "fp32") -> tuple[float | None, str]:
    limit = tol.limit(case_id, quantity, key, dtype)
    return limit.value, (f" [limit: {limit.reason}]" if limit.reason else "")


# -- inputs -----------------------------------------------------------------------
def make_inputs(case: Case, cfg: ModelConfig) -> Inputs:
    """BERT with a vocabulary that holds MiniLM's tokenizer: real sentences; otherwise fixed
    seeded token ids in [0, vocab). Always padded rows, so masking is exercised."""
    if cfg.family == "bert" and cfg.vocab >= TOKENIZER_VOCAB:
        from harness.tokenizer import SENTENCES, encode
        ids, mask, _ = encode(SENTENCES[:BATCH])
        detail = (f"inputs: {BATCH} sentences tokenised by MiniLM's tokenizer, {ids.shape[0]}x{ids.shape[1]} "
                  f"ids, {int(mask.sum())} unpadded")
        return Inputs(ids, mask, detail)
    tokens = min(TOKENS, cfg.positions)
    rng = np.random.default_rng([case.seed, 2024])
    ids = rng.integers(0, cfg.vocab, size=(BATCH, tokens), dtype=np.int64)
    lengths = [tokens, tokens, (2 * tokens) // 3, tokens // 2]
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    ids = ids * mask
    why = "" if cfg.family == "gpt2" else f" (vocab {cfg.vocab} is not the MiniLM tokenizer's {TOKENIZER_VOCAB})"
    detail = (f"inputs: seeded token ids in [0, {cfg.vocab}){why}, {BATCH}x{tokens}, "
              f"right-padded rows of {lengths}, {int(mask.sum())} unpadded")
    return Inputs(ids, mask, detail)


# -- comparisons (public: planted-fault tests call them with perturbed data) --------
def _iter_reference(ref: Mapping | Path):
    """(names, get, handle) over a state dict, or a safetensors file read one tensor at a time
    (the caller keeps `handle` alive while it calls `get`)."""
    if isinstance(ref, Mapping):
        return list(ref), ref.__getitem__, None
    from safetensors import safe_open
    handle = safe_open(str(ref), framework="numpy")
    return list(handle.keys()), handle.get_tensor, handle


def names_rows(case_id: str, quantity: str, got, ref, got_name: str = "MindSpore",
               ref_name: str = "PyTorch") -> list[Row]:
    """[a `names` row] when the tensor names of `got` and `ref` differ (each side's missing ones), else []."""
    missing_got, missing_ref = sorted(set(ref) - set(got)), sorted(set(got) - set(ref))
    if not (missing_got or missing_ref):
        return []
    detail = (f"{got_name} lacks {missing_got[:5] or 'none'}{' ...' if len(missing_got) > 5 else ''}; "
              f"{ref_name} lacks {missing_ref[:5] or 'none'}{' ...' if len(missing_ref) > 5 else ''}")
    return [_row(case_id, quantity, "names", len(missing_got) + len(missing_ref), 0, detail)]


def compare_params(case_id: str, got: Mapping[str, np.ndarray], ref: Mapping | Path, tol: Tolerances,
                   got_name: str = "MindSpore", ref_name: str = "PyTorch") -> list[Row]:
    """Every tensor of `got` against `ref` (a dict, or a safetensors file streamed), joined by name."""
    names, get, _handle = _iter_reference(ref)
    missing_got = set(names) - set(got)
    rows = names_rows(case_id, "param", got, names, got_name, ref_name)
    worst_ulp, worst_abs, worst, differing = 0, 0.0, "none", 0
    shape_errors = []
    for name in [n for n in names if n in got]:
        a, b = np.asarray(got[name]), get(name)
        if a.shape != b.shape:
            shape_errors.append(f"{name} {got_name} {a.shape} vs {ref_name} {b.shape}")
            continue
        if a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")):
            continue   # bit-identical: the expected, fast path
        ulp, diff = int(ulp_distance(a, b).max()), max_abs(a, b)
        differing += ulp > 0
        if (ulp, diff) > (worst_ulp, worst_abs):
            worst_ulp, worst_abs, worst = ulp, diff, name
        del b
    if shape_errors:
        rows.append(_row(case_id, "param", "shapes", len(shape_errors), 0, "; ".join(shape_errors[:5])))
    compared = len(names) - len(missing_got) - len(shape_errors)
    where = (f"worst tensor {worst} (max ULP {worst_ulp}, max abs {worst_abs:.3g}); "
             f"{differing} of {compared} tensors differ; {got_name} vs {ref_name}")
    for metric, value in (("max_ulp", worst_ulp), ("max_abs", worst_abs)):
        limit, why = _limited(tol, case_id, "param", metric)
        rows.append(_row(case_id, "param", metric, value, limit, where + why))
    return rows


def layer_names(family: str, n_layers: int) -> list[str]:
    """Names of the L + 1 hidden states: the embedding output, then every block's output."""
    if family == "bert":
        return ["embeddings"] + [f"encoder.layer.{i}" for i in range(n_layers)]
    return (["embeddings"] + [f"transformer.h.{i}" for i in range(n_layers - 1)]
            + [f"transformer.h.{n_layers - 1}+ln_f"])   # transformers reports ln_f's output last


def _token_outputs(family: str) -> tuple[str, ...]:
    return ("last_hidden_state", "pooler_output") if family == "bert" else ("last_hidden_state", "logits")


def _select(name: str, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return x if name == "pooler_output" else x[keep]   # pooler is per sequence, from the unpadded first token


def compare_outputs(case_id: str, family: str, ref: dict, got: dict, keep: np.ndarray, tol: Tolerances,
                    inputs_detail: str = "", got_name: str = "MindSpore", ref_name: str = "PyTorch") -> list[Row]:
    """output and layers rows: `got` (MindSpore) against `ref` (PyTorch), unpadded positions only."""
    rows = []
    for name in _token_outputs(family):
        g, r = _select(name, got[name], keep), _select(name, ref[name], keep)
        detail = f"{got_name} vs {ref_name}, {name}; {inputs_detail}"
        for metric, value in (("relative", relative(g, r)), ("max_abs", max_abs(g, r))):
            limit, why = _limited(tol, case_id, "output", metric)
            rows.append(_row(case_id, "output", f"{name}.{metric}", value, limit, detail + why))
        rows.append(_row(case_id, "output", f"{name}.cosine", cosine(g, r), None, detail))
    if family == "gpt2":
        agree = float(np.mean(got["logits"][keep].argmax(-1) == ref["logits"][keep].argmax(-1)))
        rows.append(_row(case_id, "output", "logits.argmax_agree", agree, None,
                         f"fraction of unpadded positions whose argmax token is the same; {inputs_detail}"))
    limit, why = _limited(tol, case_id, "layers", "relative")
    names = layer_names(family, len(ref["hidden_states"]) - 1)
    errors = [relative(g[keep], r[keep]) for g, r in zip(got["hidden_states"], ref["hidden_states"])]
    for name, err in zip(names, errors):
        rows.append(_row(case_id, "layers", f"{name}.relative", err, limit, f"{got_name} vs {ref_name}" + why))
    by_name = dict(zip(names, errors))
    worst, first, _ = first_and_worst(by_name, limit)
    rows.append(_row(case_id, "layers", "worst.relative", by_name[worst], limit,
                     f"first layer over limit: {first}; worst: {worst} ({by_name[worst]:.3g}) "
                     f"of {len(names)} hidden states" + why))
    return rows


def compare_preservation(case: Case, plan: GrowthPlan, framework: str, grown: dict, source: dict,
                         keep: np.ndarray, tol: Tolerances) -> list[Row]:
    """Grown vs source model of one framework on the same ids. BERT: grown hidden unit i
    against source unit g_h(i) (FPI copies coordinates by the hidden map); GPT-2: logits."""
    title = frameworks.NAMES[framework]
    if case.exact:
        limit, why = _limited(tol, case.id, "preservation", "relative")
        note = "exact growth: gated" + why
    else:
        limit, note = None, f"approximate growth ({case.method}/{case.sampling}, {plan.src.layers}->" \
                            f"{plan.dst.layers} layers): reported, not gated"
    names = ("last_hidden_state", "pooler_output") if case.family == "bert" else ("logits",)
    rows = []
    for name in names:
        s = source[name] if name == "logits" else source[name][..., plan.hidden_map]
        g, s = _select(name, grown[name], keep), _select(name, s, keep)
        detail = f"{title} grown vs {title} source, {name}" + ("" if name == "logits" else " by g_h")
        rows.append(_row(case.id, "preservation", f"{framework}.{name}.relative", relative(g, s), limit,
                         f"{detail}; {note}"))
        rows.append(_row(case.id, "preservation", f"{framework}.{name}.cosine", cosine(g, s), None, detail))
    return rows


def size_rows(case_id: str, n_params: int, files: dict[str, tuple[int, str]], tol: Tolerances) -> list[Row]:
    """Bytes and overhead of each framework's checkpoint; files: framework -> (bytes, file name)."""
    rows = []
    for name, (nbytes, filename) in files.items():
        overhead = nbytes / (n_params * 4) - 1
        limit, why = _limited(tol, case_id, "size", f"{name}.overhead")
        rows.append(_row(case_id, "size", f"{name}.bytes", nbytes, None, filename))
        # below 0 the file is smaller than its float32 tensors: something was not written
        rows.append(_row(case_id, "size", f"{name}.overhead", overhead, limit,
                         f"{filename}: bytes / (params x 4) - 1, must be >= 0" + why,
                         "fail" if overhead < 0 else None))
    return rows


# -- one framework ------------------------------------------------------------------
@dataclasses.dataclass
class _Side:
    seconds: dict
    grown_out: dict
    source_out: dict
    weights_path: Path
    weights_bytes: int
    sha256: str
    rerun_sha256: str | None = None
    executor: str = ""
    executor_rows: list = dataclasses.field(default_factory=list)


def _forward(fw, cfg: ModelConfig, state: dict, inputs: Inputs, hooks: Hooks, role: str) -> tuple[dict, float]:
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, state)
    if hooks.model:
        hooks.model(fw.name, role, model)
    start = time.perf_counter()
    out = fw.models.run_forward(model, inputs.ids, inputs.mask)
    return out, time.perf_counter() - start


def _source_ckpt(case: Case) -> Path | None:
    if case.source == "minilm":
        from harness.tokenizer import minilm_dir
        return minilm_dir()
    return None


def _run_side(name: str, case: Case, plan: GrowthPlan, recipes: list, inputs: Inputs, case_dir: Path,
              hooks: Hooks, compare: Callable[[dict], None], tol: Tolerances) -> _Side:
    """Load, forward the source, expand, save, compare (callback), forward the grown model; free all."""
    fw = frameworks.load(name)
    src_cfg, dst_cfg = plan.src, plan.dst
    src_state, load_s = pipeline.load_source(name, src_cfg, _source_ckpt(case), case.seed)
    source_out, fwd_src_s = _forward(fw, src_cfg, pipeline.to_numpy_state(name, src_state), inputs, hooks, "source")
    result = pipeline.expand(name, recipes, src_state)
    executor, executor_rows = result.executor, executor_check(case.id, name, recipes, src_state, result, tol)
    if name != "pt":   # only PyTorch expands again (hash check): free the source before saving
        del src_state
        gc.collect()
    path = pipeline.save(result, dst_cfg, case_dir / name)
    seconds = {"load": load_s, **result.seconds, "forward_source": fwd_src_s}
    digest = sha256(path)
    grown = pipeline.to_numpy_state(name, result.state)
    if hooks.grown:
        grown = hooks.grown(name, grown) or grown
    compare(grown)
    grown_out, seconds["forward"] = _forward(fw, dst_cfg, grown, inputs, hooks, "grown")
    del grown, result
    gc.collect()
    rerun = None
    if name == "pt":
        # same seed, plan rebuilt from scratch, expand + save again: the file must be the same bytes
        again_recipes = compile_recipes(build_plan(src_cfg, dst_cfg, case.method, case.sampling, case.seed))
        again = pipeline.expand(name, again_recipes, src_state)
        rerun = sha256(pipeline.save(again, dst_cfg, case_dir / "pt_rerun"))
        del again, again_recipes, src_state
        shutil.rmtree(case_dir / "pt_rerun", ignore_errors=True)
        gc.collect()
    return _Side(seconds, grown_out, source_out, path, path.stat().st_size, digest, rerun,
                 executor, executor_rows)


def executor_check(case_id: str, name: str, recipes: list, src_state: dict, result, tol: Tolerances) -> list[Row]:
    """Where the expander ran by a custom kernel (MindSpore's default), every tensor is made again by the
    framework's own ops and compared bit for bit (one tensor at a time: no second state is held),
    so each case also proves the framework's ops give the grown model the kernel gave."""
    fw = frameworks.load(name)
    if result.executor != "kernel":   # by the framework's own ops: nothing to check; say why if by fallback
        return [_row(case_id, "param", f"{name}.executor", result.executor, None, result.executor_note, "info")
                ] if result.executor_note else []
    worst, worst_name, differing, compared = 0, "none", 0, 0
    for recipe in recipes:
        if recipe.same_as is not None:
            continue
        by_ops = fw.io.to_numpy(fw.expand.expand(src_state, [recipe], executor="ops")[recipe.name])
        by_kernel = fw.io.to_numpy(result.state[recipe.name])
        compared += 1
        if by_ops.shape != by_kernel.shape:
            worst, worst_name, differing = np.iinfo(np.uint32).max, f"{recipe.name} (shape)", differing + 1
            continue
        if not np.array_equal(by_ops.view(np.uint32), by_kernel.view(np.uint32)):
            ulp = max(1, int(ulp_distance(by_kernel, by_ops).max()))   # -0 vs +0 (0 ULP apart) is a difference too
            differing += 1
            if ulp > worst:
                worst, worst_name = ulp, recipe.name
    limit, why = _limited(tol, case_id, "param", "max_ulp")
    return [_row(case_id, "param", f"{name}.kernel_vs_ops.max_ulp", worst, limit,
                 f"{fw.title}'s kernel executor vs its own ops: {differing} of {compared} tensors differ, "
                 f"worst {worst_name}" + why)]


def _resource() -> str:
    import torch   # the runner already runs both frameworks; this only reads a setting
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"


# -- the case -------------------------------------------------------------------------
def run_case(case: Case, workdir: Path, keep: bool = False, hooks: Hooks | None = None,
             tolerances: Tolerances | None = None) -> list[Row]:
    """All rows of one case. Grown checkpoints go to workdir/<case id>/{pt,ms} and are deleted
    after measuring unless keep. Raises CaseFailed (carrying the rows so far) on an error."""
    hooks = hooks or Hooks()
    tol = tolerances or load_tolerances()
    case_dir = Path(workdir) / case.id
    return guarded(case.id, lambda rows: _measure(case, case_dir, hooks, tol, rows), None if keep else case_dir)


def guarded(case_id: str, measure: Callable[[list], None], scratch: Path | None = None) -> list[Row]:
    """measure(rows) appends a case's rows; on an error, an error row is added and CaseFailed
    (carrying the rows so far) raised. `scratch` (a folder) is removed either way."""
    rows: list[Row] = []
    try:
        measure(rows)
    except Exception as e:
        rows.append(Row(case_id, "run", "error", type(e).__name__, None, "fail", str(e).splitlines()[0][:300]))
        raise CaseFailed(case_id, rows, e) from e
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        gc.collect()
    return rows


def _measure(case: Case, case_dir: Path, hooks: Hooks, tol: Tolerances, rows: list[Row]) -> None:
    cid = case.id
    start = time.perf_counter()
    plan = build_plan(case.src_cfg, case.dst_cfg, case.method, case.sampling, case.seed)
    recipes = compile_recipes(plan)
    plan_s = time.perf_counter() - start
    inputs = make_inputs(case, plan.dst)

    sides: dict[str, _Side] = {}

    def compare(name: str):
        def run(grown: dict) -> None:
            if name == "ms":   # MindSpore's state against PyTorch's file, streamed tensor by tensor
                rows.extend(compare_params(cid, grown, sides["pt"].weights_path, tol))
        return run

    for name in FRAMEWORK_ORDER:
        sides[name] = _run_side(name, case, plan, recipes, inputs, case_dir, hooks, compare(name), tol)
        rows.extend(sides[name].executor_rows)
    pt, ms = sides["pt"], sides["ms"]
    keep = inputs.keep

    rows.extend(compare_outputs(cid, case.family, pt.grown_out, ms.grown_out, keep, tol, inputs.detail))
    for name in FRAMEWORK_ORDER:
        rows.extend(compare_preservation(case, plan, name, sides[name].grown_out, sides[name].source_out, keep, tol))

    limit, why = _limited(tol, cid, "time", "plan_s")
    rows.append(_row(cid, "time", "plan_s", plan_s, limit, "plan + recipes, once for both frameworks" + why))
    for name in FRAMEWORK_ORDER:
        for stage in STAGES:
            limit, why = _limited(tol, cid, "time", f"{name}.{stage}_s")
            seconds = sides[name].seconds[stage]
            rows.append(_row(cid, "time", f"{name}.{stage}_s", seconds, limit,
                             f"{frameworks.NAMES[name]} {stage}, seconds" + why,
                             "fail" if not 0 <= seconds < float("inf") else None))   # a broken clock
    for stage in STAGES:
        ratio = ms.seconds[stage] / pt.seconds[stage] if pt.seconds[stage] > 0 else float("inf")
        limit, why = _limited(tol, cid, "time", f"ms_over_pt.{stage}")
        rows.append(_row(cid, "time", f"ms_over_pt.{stage}", ratio, limit,
                         f"MindSpore / PyTorch {stage} time" + why))
    rows.append(_row(cid, "time", "resource", _resource(), None, "where the times were taken", "info"))
    rows.append(_row(cid, "time", "executors", ", ".join(f"{frameworks.NAMES[n]} {sides[n].executor}"
                                                          for n in FRAMEWORK_ORDER), None,
                     "how each expander ran (models_*/expand.py EXECUTORS)", "info"))

    n_params = plan.dst.n_params()
    rows.append(_row(cid, "size", "params", n_params, None, f"target {plan.dst.name}"))
    rows.append(_row(cid, "size", "hidden", plan.dst.hidden, None,
                     f"target hidden size ({plan.src.hidden} -> {plan.dst.hidden})"))
    rows.extend(size_rows(cid, n_params, {n: (sides[n].weights_bytes, sides[n].weights_path.name)
                                          for n in FRAMEWORK_ORDER}, tol))

    same = pt.sha256 == pt.rerun_sha256
    rows.append(_row(cid, "hash", "pt.sha256", pt.sha256, None,
                     f"rerun with the same seed (plan rebuilt, expand + save again): {pt.rerun_sha256} "
                     f"{'equal' if same else 'DIFFERS'}", "pass" if same else "fail"))
    rows.append(_row(cid, "hash", "ms.sha256", ms.sha256, None, f"{ms.weights_path.name}, not rerun", "info"))


def _run_child(runner: str, case, workdir: Path, keep: bool) -> tuple[list[Row], str | None]:
    from harness.kinds import resolve
    try:
        return resolve(runner)(case, workdir, keep=keep), None
    except CaseFailed as e:  # rows travel back by value; the exception itself does not pickle
        return e.rows, str(e)


def run_isolated(runner: str, case, workdir: Path, keep: bool = False) -> tuple[list[Row], str | None]:
    """runner ("module:function", e.g. "harness.runner:run_case") on case in a fresh child process:
    (rows, error or None).

    MindSpore's CPU memory pool keeps what it once allocated, so seed-size cases run
    one after another in one process would stack their peaks; a child per case returns
    all of it to the system when the case ends.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_child, runner, case, workdir, keep).result()
