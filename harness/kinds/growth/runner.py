"""Run one parity case: grow with each framework in turn, compare, and return rows.

    rows = run_case(case, workdir)          # list[Row], free of pytest (CLI and tests share it)

Per framework, one after the other (so peak memory is about one model per framework):
load the source, forward it, expand, save, forward the grown model. PyTorch runs first
and writes its weights; the MindSpore state is then compared with that file tensor by
tensor. Quantities (one test each): param, output, layers, preservation, time, size, hash.
A language model (GPT-2) is also run on corpus windows, source and grown, for its loss.
PyTorch's grown weights are also run in float64 (read back from its file, after the float32 work
has freed everything else): each framework's float32 grown outputs against that forward are output
rows (reported; both sides hold the same bits, which the param rows gate, so this is one judge for
both). Function-preserving cases run source and grown in float64 in both frameworks (preservation).

Seams for planted faults, so tests need not edit product code:
- Hooks.grown(framework, numpy_state) -> state: replaces the grown state that is
  compared and run (not the file already written); a function-preserving case calls it once
  more on the state read back from that file for its float64 forwards, and consumes what it
  returns (widened to float64 array by array, popping each);
- Hooks.model(framework, role, model): may patch a model ("source" | "grown") before
  its forward;
- compare_params / compare_outputs / compare_preservation are public and take plain
  numpy data.
"""
from __future__ import annotations

import dataclasses
import gc
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core import families
from harness.core.config import ModelConfig
from harness.core.formats.checkpoint import read_tensors, sha256
from harness.core.plan import GrowthPlan, build_plan
from harness.core.recipe import compile_recipes
from harness.core.vocab import FRAMEWORKS, TITLES
from harness.kinds.growth import pipeline
from harness.kinds.growth.cases import Case
from harness.kinds.growth.compare import compare_float64, compare_outputs, compare_params, executor_check, size_rows
from harness.kinds.growth.preservation import compare_lm_loss, compare_preservation
from harness.suite import frameworks
from harness.suite.inputs import Inputs, lm_windows, make_inputs
from harness.suite.lm_metrics import next_token_nll
from harness.suite.resource import resource
from harness.suite.rows import Row, guarded, limited, row
from harness.suite.tolerances import Tolerances

TIMED_STAGES = ("load", "expand", "save", "forward", "forward_source")


@dataclasses.dataclass
class Hooks:
    grown: Callable[[str, dict], dict | None] | None = None
    model: Callable[[str, str, object], None] | None = None


# -- one framework ------------------------------------------------------------------
@dataclasses.dataclass
class _Grown:
    seconds: dict
    grown_out: dict
    source_out: dict
    weights_path: Path
    weights_bytes: int
    sha256: str
    rerun_sha256: str | None = None
    executor: str = ""
    executor_rows: list = dataclasses.field(default_factory=list)
    source_out64: dict | None = None   # function-preserving cases: the source's forward in float64
    grown_out64: dict | None = None    # PyTorch always (the output rows' judge), MindSpore if preserving


def _forward(fw, cfg: ModelConfig, state: dict, inputs: Inputs, hooks: Hooks, role: str,
             lm: np.ndarray | None) -> tuple[dict, float]:
    """The model's outputs on `inputs` (timed), and with lm windows its loss on them too (out["lm_loss"])."""
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, state)
    if hooks.model:
        hooks.model(fw.name, role, model)
    start = time.perf_counter()
    out = fw.models.run_forward(model, inputs.ids, inputs.mask)
    seconds = time.perf_counter() - start
    if lm is not None:
        total, count = next_token_nll(fw.models.run_forward(model, lm, np.ones_like(lm))["logits"], lm)
        out["lm_loss"] = total / count
    return out, seconds


def _forward64(fw, cfg: ModelConfig, state: dict, inputs: Inputs, hooks: Hooks, role: str) -> dict:
    """The model's outputs on `inputs` in float64, from `state`'s float32 weights. The state's arrays
    are popped as they are widened, so the float32 copy is released while the float64 one is built
    (GPT-2 xl: 6.2 GB float32 -> 12.5 GB float64, never both): the caller must not use `state` after."""
    wide = {}
    for name in list(state):
        wide[name] = state.pop(name).astype(np.float64)
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, wide, "float64")
    del wide
    if hooks.model:
        hooks.model(fw.name, role, model)
    return fw.models.run_forward(model, inputs.ids, inputs.mask)


def _source_ckpt(case: Case) -> Path | None:
    if case.weights == "minilm":
        from harness.suite.tokenizer import minilm_dir
        return minilm_dir()
    return None


def _run_side(name: str, case: Case, plan: GrowthPlan, recipes: list, inputs: Inputs, lm: np.ndarray | None,
              case_dir: Path, hooks: Hooks, compare: Callable[[dict], None], tol: Tolerances) -> _Grown:
    """Load, forward the source, expand, save, compare (callback), forward the grown model; free all."""
    fw = frameworks.load(name)
    src_cfg, dst_cfg = plan.src, plan.dst
    src_state, load_s = pipeline.load_source(name, src_cfg, _source_ckpt(case), case.seed)
    source_out, fwd_src_s = _forward(fw, src_cfg, pipeline.to_numpy_state(name, src_state), inputs, hooks, "source",
                                     lm)
    source_out64 = None
    if case.preserving:   # float64 judge of the function (compare_preservation precision="float64")
        source_out64 = _forward64(fw, src_cfg, pipeline.to_numpy_state(name, src_state), inputs, hooks,
                                  "source")
        gc.collect()
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
    grown_out, seconds["forward"] = _forward(fw, dst_cfg, grown, inputs, hooks, "grown", lm)
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
    grown_out64 = None
    if case.preserving or name == "pt":   # from the file just written, once nothing else is held (xl: 12.5 GB)
        written = read_tensors(path)   # safetensors memory-mapped, .ckpt read
        grown_out64 = _forward64(fw, dst_cfg, (hooks.grown and hooks.grown(name, written)) or written, inputs,
                                 hooks, "grown")
        gc.collect()
    return _Grown(seconds, grown_out, source_out, path, path.stat().st_size, digest, rerun,
                 executor, executor_rows, source_out64, grown_out64)


# -- the case -------------------------------------------------------------------------
def run_case(case: Case, workdir: Path, keep: bool = False, hooks: Hooks | None = None, *,
             tolerances: Tolerances) -> list[Row]:
    """All rows of one case. Grown checkpoints go to workdir/<case id>/{pt,ms} and are deleted
    after measuring unless keep. Raises CaseFailed (carrying the rows so far) on an error."""
    hooks = hooks or Hooks()
    tol = tolerances
    case_dir = Path(workdir) / case.id
    return guarded("growth", case.id, lambda rows: _grow_and_compare(case, case_dir, hooks, tol, rows),
                   None if keep else case_dir)


def _grow_and_compare(case: Case, case_dir: Path, hooks: Hooks, tol: Tolerances, rows: list[Row]) -> None:
    cid = case.id
    start = time.perf_counter()
    plan = build_plan(case.src_cfg, case.dst_cfg, case.method, case.sampling, case.seed)
    recipes = compile_recipes(plan)
    plan_s = time.perf_counter() - start
    inputs = make_inputs(case.seed, plan.dst)
    lm, lm_detail = None, ""
    if "logits" in families.get(case.family).TOKEN_OUTPUTS:   # a language model: its loss on corpus windows
        lm, lm_detail = lm_windows(case.seed, plan.dst)

    sides: dict[str, _Grown] = {}

    def compare(name: str):
        def run(grown: dict) -> None:
            if name == "ms":   # MindSpore's state against PyTorch's file, streamed tensor by tensor
                rows.extend(compare_params(cid, grown, sides["pt"].weights_path, tol))
        return run

    for name in FRAMEWORKS:
        sides[name] = _run_side(name, case, plan, recipes, inputs, lm, case_dir, hooks, compare(name), tol)
        rows.extend(sides[name].executor_rows)
    pt, ms = sides["pt"], sides["ms"]
    unpadded = inputs.unpadded

    rows.extend(compare_outputs(cid, case.family, pt.grown_out, ms.grown_out, unpadded, tol,
                                inputs.detail))
    rows.extend(compare_float64(cid, case.family, pt.grown_out64, {n: sides[n].grown_out for n in FRAMEWORKS},
                                unpadded))
    for name in FRAMEWORKS:
        side = sides[name]
        rows.extend(compare_preservation(case, plan, name, side.grown_out, side.source_out, unpadded, tol))
        if side.source_out64 is not None:   # function-preserving cases: both forwards again in float64
            rows.extend(compare_preservation(case, plan, name, side.grown_out64, side.source_out64, unpadded, tol,
                                             precision="float64"))
        if lm is not None:
            rows.extend(compare_lm_loss(case, plan, name, side.grown_out["lm_loss"], side.source_out["lm_loss"],
                                        lm_detail, tol))

    limit, why = limited(tol, cid, "time", "plan_s")
    rows.append(row(cid, "time", "plan_s", plan_s, limit, "plan + recipes, once for both frameworks" + why))
    for name in FRAMEWORKS:
        for stage in TIMED_STAGES:
            limit, why = limited(tol, cid, "time", f"{name}.{stage}_s")
            seconds = sides[name].seconds[stage]
            rows.append(row(cid, "time", f"{name}.{stage}_s", seconds, limit,
                             f"{TITLES[name]} {stage}, seconds" + why,
                             "fail" if not 0 <= seconds < float("inf") else None))   # a broken clock
    for stage in TIMED_STAGES:
        ratio = ms.seconds[stage] / pt.seconds[stage] if pt.seconds[stage] > 0 else float("inf")
        limit, why = limited(tol, cid, "time", f"ms_over_pt.{stage}")
        rows.append(row(cid, "time", f"ms_over_pt.{stage}", ratio, limit,
                         f"MindSpore / PyTorch {stage} time" + why))
    rows.append(row(cid, "time", "resource", resource(), None, "where the times were taken", "info"))
    rows.append(row(cid, "time", "executors", ", ".join(f"{TITLES[n]} {sides[n].executor}"
                                                          for n in FRAMEWORKS), None,
                     "how each expander ran (models_*/expand.py EXECUTORS)", "info"))

    n_params = plan.dst.n_params()
    rows.append(row(cid, "size", "params", n_params, None, f"target {plan.dst.name}"))
    rows.append(row(cid, "size", "hidden", plan.dst.hidden, None,
                     f"target hidden size ({plan.src.hidden} -> {plan.dst.hidden})"))
    rows.extend(size_rows(cid, n_params, {n: (sides[n].weights_bytes, sides[n].weights_path.name)
                                          for n in FRAMEWORKS}, tol))

    same = pt.sha256 == pt.rerun_sha256
    rows.append(row(cid, "hash", "pt.sha256", pt.sha256, None,
                     f"rerun with the same seed (plan rebuilt, expand + save again): {pt.rerun_sha256} "
                     f"{'equal' if same else 'DIFFERS'}", "pass" if same else "fail"))
    rows.append(row(cid, "hash", "ms.sha256", ms.sha256, None, f"{ms.weights_path.name}, not rerun", "info"))


