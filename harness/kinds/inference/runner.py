"""Run one inference parity case: the same GPT-2 on PyTorch, MindSpore and ONNX Runtime.

    rows = run_infer_case(case, workdir)      # list[Row], free of pytest

Per dtype of the case (fp32, fp16): export the PyTorch model to ONNX (case folder,
deleted unless keep), load the same weights into all three backends, then
- logits: windows of tokens (no padding) and one padded batch through every backend;
  ONNX Runtime and MindSpore against PyTorch (relative error, argmax agreement, and per
  hidden state on the padded batch: the first layer over the limit);
- perplexity: next-token loss and perplexity of every backend over the windows
  (float64 from each backend's logits), and the fp16 vs fp32 gap per backend;
- greedy: `greedy` tokens from each backend on the same prompts; any differing token
  fails, the first divergence and the top-1/top-2 margin there are in the detail.
What "fp16" means per backend: PyTorch and MindSpore hold float16 parameters and run
every op in float16 (CPU kernels); ONNX Runtime runs the float16 export, computing in
float32 the nodes its CPU provider has no float16 kernel for (the Casts it inserted are
counted in a row). Loss and perplexity are always computed in float64.

Seams for planted faults (tests): InferHooks.onnx(dtype, path) may rewrite the exported
model before ONNX Runtime loads it; InferHooks.state(backend, dtype, state) may replace
the weights one backend gets.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core import families
from harness.core.vocab import DTYPES, TITLES
from harness.kinds.inference.backends import BACKENDS, Backend, make_backend
from harness.kinds.inference.cases import InferCase
from harness.kinds.inference.inputs import case_state, case_windows, padded_batch
from harness.suite.lm_metrics import Generation, first_divergence, greedy, next_token_nll
from harness.suite.metrics import max_abs, relative
from harness.suite.resource import resource
from harness.suite.rows import Row, first_and_worst, guarded, limited, row
from harness.suite.tolerances import Tolerances

PAIRS = (("ort", "pt"), ("ms", "pt"))   # (got, reference)


@dataclasses.dataclass
class InferHooks:
    onnx: Callable[[str, Path], None] | None = None
    state: Callable[[str, str, dict], dict | None] | None = None


# -- backends ---------------------------------------------------------------------------
def _backends(case: InferCase, state: dict, dtype: str, onnx_path: Path, hooks: InferHooks) -> dict[str, Backend]:
    def weights(name):   # ONNX Runtime runs the exported file (hooks.onnx may rewrite it), not `state`
        if name == "ort" or not hooks.state:
            return state
        return hooks.state(name, dtype, state) or state

    return {name: make_backend(name, case.cfg, weights(name), DTYPES[dtype], onnx_path, count_casts=dtype == "fp16")
            for name in BACKENDS}


# -- one dtype --------------------------------------------------------------------------
@dataclasses.dataclass
class _Errors:
    """Running max |got - ref| and max |ref| over several batches (relative = their ratio)."""
    diff: float = 0.0
    scale: float = 0.0
    agree: int = 0
    positions: int = 0

    def add(self, got: np.ndarray, ref: np.ndarray) -> None:
        self.diff = max(self.diff, max_abs(got, ref))
        self.scale = max(self.scale, float(np.max(np.abs(ref.astype(np.float64)))) if ref.size else 0.0)
        self.agree += int(np.sum(got.argmax(-1) == ref.argmax(-1)))
        self.positions += int(np.prod(got.shape[:-1]))

    @property
    def relative(self) -> float:
        return self.diff / self.scale if self.scale > 0 else self.diff


@dataclasses.dataclass
class _DtypeResult:
    nll: dict[str, tuple[float, int]]            # backend -> (summed NLL, predicted tokens)
    padded_logits: dict[str, np.ndarray]         # backend -> logits of the padded batch, unpadded positions


def _windows_pass(backends: dict[str, Backend], wins: np.ndarray, batch: int, dtype: str):
    """Every backend on the same chunks of `batch` windows: ({pair: _Errors}, {backend: (NLL, tokens)})."""
    errors = {pair: _Errors() for pair in PAIRS}
    nll = {name: (0.0, 0) for name in BACKENDS}
    for at in range(0, len(wins), batch):
        chunk = wins[at:at + batch]
        logits = {name: b.run(chunk, np.ones_like(chunk))["logits"] for name, b in backends.items()}
        wrong = {TITLES[n]: str(x.dtype) for n, x in logits.items() if x.dtype != np.dtype(DTYPES[dtype])}
        if wrong:   # e.g. float16 parameters silently cast back to float32: not an fp16 run
            raise RuntimeError(f"{dtype} run, but logits came back as {wrong}")
        for got, ref in PAIRS:
            errors[(got, ref)].add(logits[got], logits[ref])
        for name in BACKENDS:
            total, count = next_token_nll(logits[name], chunk)
            nll[name] = (nll[name][0] + total, nll[name][1] + count)
    return errors, nll


def _logits_rows(case: InferCase, dtype: str, errors: dict, padded: dict, unpadded: np.ndarray, inputs_detail: str,
                 tol: Tolerances) -> list[Row]:
    cid, rows = case.id, []
    names = families.get("gpt2").layer_names(case.cfg.layers)
    for got, ref in PAIRS:
        err = errors[(got, ref)]
        err.add(padded[got]["logits"][unpadded], padded[ref]["logits"][unpadded])
        title = f"{TITLES[got]} vs {TITLES[ref]}, {dtype} logits"
        where = f"{inputs_detail}; plus a padded batch of {case.batch} (unpadded positions)"
        limit, why = limited(tol, cid, "logits", f"{got}_vs_{ref}.relative", dtype)
        rows.append(row(cid, "logits", f"{dtype}.{got}_vs_{ref}.relative", err.relative, limit,
                         f"{title}: max |diff| / max |{TITLES[ref]}|; {where}" + why))
        rows.append(row(cid, "logits", f"{dtype}.{got}_vs_{ref}.max_abs", err.diff, None, f"{title}; {where}"))
        rows.append(row(cid, "logits", f"{dtype}.{got}_vs_{ref}.argmax_agree", err.agree / max(err.positions, 1),
                         None, f"{title}: fraction of positions with the same top token"))
        limit, why = limited(tol, cid, "logits", f"{got}_vs_{ref}.hidden_relative", dtype)
        layer_errors = [relative(g[unpadded], r[unpadded])
                        for g, r in zip(padded[got]["hidden_states"], padded[ref]["hidden_states"], strict=True)]
        by_name = dict(zip(names, layer_errors, strict=True))
        worst, first, _ = first_and_worst(by_name, limit)
        rows.append(row(cid, "logits", f"{dtype}.{got}_vs_{ref}.hidden_relative", by_name[worst], limit,
                         f"{TITLES[got]} vs {TITLES[ref]}, {dtype} hidden states on the padded batch: first over "
                         f"limit: {first}; worst: {worst} of {len(names)}" + why))
    return rows


def _greedy_rows(case: InferCase, dtype: str, backends: dict[str, Backend], prompts: np.ndarray,
                 tol: Tolerances) -> list[Row]:
    cid, rows = case.id, []
    gens: dict[str, Generation] = {name: greedy(b.forward, prompts, case.greedy) for name, b in backends.items()}
    for got, ref in PAIRS:
        div = first_divergence(gens[got].tokens, gens[ref].tokens)
        limit, why = limited(tol, cid, "greedy", f"{got}_vs_{ref}.diverged", dtype)
        if div:
            i, j = div[0]
            detail = (f"{len(div)} of {len(prompts)} sequences differ; first: sequence {i} at generated token {j} "
                      f"({TITLES[got]} {gens[got].tokens[i, j]} vs {TITLES[ref]} {gens[ref].tokens[i, j]}; "
                      f"{TITLES[ref]}'s top-1/top-2 logit margin there {gens[ref].margins[i, j]:.3g})")
        else:
            detail = f"all {gens[ref].tokens.size} tokens identical"
        rows.append(row(cid, "greedy", f"{dtype}.{got}_vs_{ref}.diverged", len(div), limit,
                         f"{TITLES[got]} vs {TITLES[ref]}, {dtype}, {len(prompts)} prompts of {case.prompt} tokens, "
                         f"{case.greedy} greedy tokens each: {detail}" + why))
    ref = gens["pt"]
    rows.append(row(cid, "greedy", f"{dtype}.pt.min_margin", float(ref.margins.min()), None,
                     "PyTorch's smallest top-1/top-2 logit margin over every greedy step (a near tie flips "
                     "under rounding noise)"))
    rows.append(row(cid, "greedy", f"{dtype}.pt.tokens", " ".join(map(str, ref.tokens[0])), None,
                     "PyTorch's greedy tokens for prompt 0", "info"))
    return rows


def _perplexity(nll: tuple[float, int]) -> float:
    """exp(mean NLL) from (summed NLL, predicted tokens)."""
    total, count = nll
    return math.exp(total / count)


def _perplexity_rows(case: InferCase, dtype: str, nll: dict, inputs_detail: str, tol: Tolerances) -> list[Row]:
    cid, rows, ppl = case.id, [], {}
    for name in BACKENDS:
        total, count = nll[name]
        loss = total / count
        ppl[name] = _perplexity(nll[name])
        what = (f"{TITLES[name]}, {dtype}: mean next-token NLL over {count} predicted tokens of {inputs_detail}; "
                f"random weights give a perplexity near the vocabulary size ({case.cfg.vocab})")
        rows.append(row(cid, "perplexity", f"{dtype}.{name}.loss", loss, None, what))
        rows.append(row(cid, "perplexity", f"{dtype}.{name}.perplexity", ppl[name], None, what))
    for got, ref in PAIRS:
        limit, why = limited(tol, cid, "perplexity", f"{got}_vs_{ref}.relative", dtype)
        rows.append(row(cid, "perplexity", f"{dtype}.{got}_vs_{ref}.relative", abs(ppl[got] - ppl[ref]) / ppl[ref],
                         limit, f"|ppl {TITLES[got]} - ppl {TITLES[ref]}| / ppl {TITLES[ref]}, {dtype}: "
                                f"{ppl[got]:.6g} vs {ppl[ref]:.6g}" + why))
    return rows


def _measure_dtype(case: InferCase, dtype: str, state: dict, wins: np.ndarray, inputs_detail: str,
                   case_dir: Path, hooks: InferHooks, tol: Tolerances, rows: list[Row], keep: bool) -> _DtypeResult:
    """Export, load the three backends, and append the logits, greedy and perplexity rows of one dtype."""
    from harness.kinds.inference.onnx_backend import export_cached
    cid = case.id
    start = time.perf_counter()
    onnx_path, reused = export_cached(case.cfg, state, case_dir / f"onnx_{dtype}", DTYPES[dtype])
    export_s = time.perf_counter() - start
    if hooks.onnx:
        hooks.onnx(dtype, onnx_path)
    backends = _backends(case, state, dtype, onnx_path, hooks)

    errors, nll = _windows_pass(backends, wins, case.batch, dtype)
    ids, mask = padded_batch(wins, case.batch)
    unpadded = mask.astype(bool)
    padded = {name: b.forward(ids, mask) for name, b in backends.items()}
    rows.extend(_logits_rows(case, dtype, errors, padded, unpadded, inputs_detail, tol))
    rows.append(row(cid, "logits", f"{dtype}.export_s", export_s, None,
                     f"torch.onnx (dynamo) export, {dtype}, seconds" + (
                         "; reused this process's export of the same weights (a copy)" if reused else "")))
    for name, b in backends.items():
        rows.append(row(cid, "logits", f"{dtype}.{name}.forward_s", b.seconds, None,
                         f"{TITLES[name]} forward of {len(wins)} windows, seconds" + (f"; {b.note}" if b.note else "")))
    if dtype == "fp16":
        rows.append(row(cid, "logits", "fp16.ort.fallback_casts", backends["ort"].fallback_casts, None,
                         "Casts onnxruntime's CPU provider inserted so that float16 nodes without a float16 kernel "
                         "compute in float32"))
    rows.extend(_greedy_rows(case, dtype, backends, wins[:case.batch, :case.prompt], tol))
    rows.extend(_perplexity_rows(case, dtype, nll, inputs_detail, tol))

    result = _DtypeResult(nll, {name: padded[name]["logits"][unpadded] for name in BACKENDS})
    del backends, padded
    gc.collect()
    if not keep:   # one dtype's export at a time on disk
        shutil.rmtree(case_dir / f"onnx_{dtype}", ignore_errors=True)
    return result


# -- the case ---------------------------------------------------------------------------
def run_infer_case(case: InferCase, workdir: Path, keep: bool = False, hooks: InferHooks | None = None,
                   *, tolerances: Tolerances) -> list[Row]:
    """All rows of one inference case. ONNX files go to workdir/<case id>/onnx_<dtype>/ and are
    deleted unless keep. Raises CaseFailed (carrying the rows so far) on an error."""
    hooks = hooks or InferHooks()
    tol = tolerances
    case_dir = Path(workdir) / case.id
    return guarded("inference", case.id, lambda rows: _infer_and_compare(case, case_dir, hooks, tol, rows, keep),
                   None if keep else case_dir)


def _infer_and_compare(case: InferCase, case_dir: Path, hooks: InferHooks, tol: Tolerances, rows: list[Row],
             keep: bool) -> None:
    cid = case.id
    state, state_detail = case_state(case)
    wins, inputs_detail = case_windows(case)
    rows.append(row(cid, "logits", "model", case.cfg.name, None, state_detail, "info"))
    results = {}
    for dtype in case.dtypes:
        results[dtype] = _measure_dtype(case, dtype, state, wins, inputs_detail, case_dir, hooks, tol, rows, keep)
    if {"fp32", "fp16"} <= set(results):
        for name in BACKENDS:
            rows.append(row(cid, "logits", f"fp16.{name}.vs_fp32.relative",
                             relative(results["fp16"].padded_logits[name], results["fp32"].padded_logits[name]), None,
                             f"{TITLES[name]} fp16 vs {TITLES[name]} fp32 logits, padded batch (unpadded positions)"))
            p32, p16 = (_perplexity(results[d].nll[name]) for d in ("fp32", "fp16"))
            limit, why = limited(tol, cid, "perplexity", "fp16_gap", "fp16")
            rows.append(row(cid, "perplexity", f"fp16_gap.{name}", abs(p16 - p32) / p32, limit,
                             f"{TITLES[name]}: |ppl fp16 - ppl fp32| / ppl fp32 = |{p16:.6g} - {p32:.6g}| / {p32:.6g} "
                             "(the reference guide: 29.383 vs 29.372 for pretrained GPT-2 small)" + why))
    rows.append(row(cid, "logits", "resource", resource(), None, "where the rows were measured", "info"))
