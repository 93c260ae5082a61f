"""The growth kind's comparisons, on plain numpy data (public: planted-fault tests call them with
perturbed data): grown parameters by name, outputs and hidden states, file sizes, and the kernel
executor against the framework's own ops (preservation of the source's function: preservation.py)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harness.core import families
from harness.suite import frameworks
from harness.suite.metrics import cosine, max_abs, relative, ulp_distance
from harness.suite.rows import Row, first_and_worst, limited, names_rows, row
from harness.suite.tensors import compare_states
from harness.suite.tolerances import Tolerances


def _iter_reference(ref: Mapping | Path):
    """(names, get, handle) over a state dict, or a safetensors file read one tensor at a time
    (the caller keeps `handle` alive while it calls `get`)."""
    if isinstance(ref, Mapping):
        return list(ref), ref.__getitem__, None
    from safetensors import safe_open
    handle = safe_open(str(ref), framework="numpy")
    return list(handle.keys()), handle.get_tensor, handle


def compare_params(case_id: str, got: Mapping[str, np.ndarray], ref: Mapping | Path, tol: Tolerances,
                   got_name: str = "MindSpore", ref_name: str = "PyTorch") -> list[Row]:
    """Every tensor of `got` against `ref` (a dict, or a safetensors file streamed), joined by name, by
    the project's one per-tensor comparison (harness.suite.tensors, as `python -m harness compare`)."""
    names, get, _handle = _iter_reference(ref)
    diff = compare_states(got, names, get)
    rows = names_rows(case_id, "param", got, names, got_name, ref_name)
    shape_errors = [f"{d.name} {got_name} {d.shape_got} vs {ref_name} {d.shape_ref}" for d in diff.shape_errors]
    if shape_errors:
        rows.append(row(case_id, "param", "shapes", len(shape_errors), 0, "; ".join(shape_errors[:5])))
    worst, worst_ulp, worst_abs, differing, compared = diff.worst()
    where = (f"worst tensor {worst} (max ULP {worst_ulp}, max abs {worst_abs:.3g}); "
             f"{differing} of {compared} tensors differ; {got_name} vs {ref_name}")
    for metric, value in (("max_ulp", worst_ulp), ("max_abs", worst_abs)):
        limit, why = limited(tol, case_id, "param", metric)
        rows.append(row(case_id, "param", metric, value, limit, where + why))
    return rows


def _select(name: str, x: np.ndarray, unpadded: np.ndarray) -> np.ndarray:
    return x if name == "pooler_output" else x[unpadded]   # pooler is per sequence, from the unpadded first token


def compare_outputs(case_id: str, family: str, ref: dict, got: dict, unpadded: np.ndarray, tol: Tolerances,
                    inputs_detail: str = "", got_name: str = "MindSpore", ref_name: str = "PyTorch") -> list[Row]:
    """output and layers rows: `got` (MindSpore) against `ref` (PyTorch), unpadded positions only."""
    rows = []
    for name in families.get(family).TOKEN_OUTPUTS:
        g, r = _select(name, got[name], unpadded), _select(name, ref[name], unpadded)
        detail = f"{got_name} vs {ref_name}, {name}; {inputs_detail}"
        for metric, value in (("relative", relative(g, r)), ("max_abs", max_abs(g, r))):
            limit, why = limited(tol, case_id, "output", metric)
            rows.append(row(case_id, "output", f"{name}.{metric}", value, limit, detail + why))
        rows.append(row(case_id, "output", f"{name}.cosine", cosine(g, r), None, detail))
    if "logits" in families.get(family).TOKEN_OUTPUTS:   # a language model: does the argmax agree?
        agree = float(np.mean(got["logits"][unpadded].argmax(-1) == ref["logits"][unpadded].argmax(-1)))
        rows.append(row(case_id, "output", "logits.argmax_agree", agree, None,
                         f"fraction of unpadded positions whose argmax token is the same; {inputs_detail}"))
    limit, why = limited(tol, case_id, "layers", "relative")
    names = families.get(family).layer_names(len(ref["hidden_states"]) - 1)
    pairs = zip(got["hidden_states"], ref["hidden_states"], strict=True)
    errors = [relative(g[unpadded], r[unpadded]) for g, r in pairs]
    for name, err in zip(names, errors, strict=True):
        rows.append(row(case_id, "layers", f"{name}.relative", err, limit, f"{got_name} vs {ref_name}" + why))
    by_name = dict(zip(names, errors, strict=True))
    worst, first, _ = first_and_worst(by_name, limit)
    rows.append(row(case_id, "layers", "worst.relative", by_name[worst], limit,
                     f"first layer over limit: {first}; worst: {worst} ({by_name[worst]:.3g}) "
                     f"of {len(names)} hidden states" + why))
    return rows


def size_rows(case_id: str, n_params: int, files: dict[str, tuple[int, str]], tol: Tolerances) -> list[Row]:
    """Bytes and overhead of each framework's checkpoint; files: framework -> (bytes, file name)."""
    rows = []
    for name, (nbytes, filename) in files.items():
        overhead = nbytes / (n_params * 4) - 1
        limit, why = limited(tol, case_id, "size", f"{name}.overhead")
        rows.append(row(case_id, "size", f"{name}.bytes", nbytes, None, filename))
        # below 0 the file is smaller than its float32 tensors: something was not written
        rows.append(row(case_id, "size", f"{name}.overhead", overhead, limit,
                         f"{filename}: bytes / (params x 4) - 1, must be >= 0" + why,
                         "fail" if overhead < 0 else None))
    return rows


def executor_check(case_id: str, name: str, recipes: list, src_state: dict, result, tol: Tolerances) -> list[Row]:
    """Where the expander ran by a custom kernel (MindSpore's default), every tensor is made again by the
    framework's own ops and compared bit for bit (one tensor at a time: no second state is held),
    so each case also proves the framework's ops give the grown model the kernel gave."""
    fw = frameworks.load(name)
    if result.executor != "kernel":   # by the framework's own ops: nothing to check; say why if by fallback
        return [row(case_id, "param", f"{name}.executor", result.executor, None, result.executor_note, "info")
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
    limit, why = limited(tol, case_id, "param", "max_ulp")
    return [row(case_id, "param", f"{name}.kernel_vs_ops.max_ulp", worst, limit,
                 f"{fw.title}'s kernel executor vs its own ops: {differing} of {compared} tensors differ, "
                 f"worst {worst_name}" + why)]
