"""The three inference backends over the same weights: PyTorch and MindSpore (models_pt, models_ms)
and ONNX Runtime (the PyTorch model exported), each a timed forward with a note on how it runs."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core.vocab import FRAMEWORKS
from harness.suite import frameworks

BACKENDS = (*FRAMEWORKS, "ort")


@dataclasses.dataclass
class Backend:
    name: str
    forward: Callable[[np.ndarray, np.ndarray], dict]
    seconds: float = 0.0
    note: str = ""
    fallback_casts: int | None = None

    def run(self, ids, mask) -> dict:
        start = time.perf_counter()
        out = self.forward(ids, mask)
        self.seconds += time.perf_counter() - start
        return out


def make_backend(name: str, cfg, state: dict, np_dtype: str, onnx_path: Path | None = None,
                 count_casts: bool = False) -> Backend:
    """One backend's forward over `state` (PyTorch, MindSpore: built here; ONNX Runtime: the
    model exported at onnx_path), with a note on how it runs. The runner and tools/bench_infer.py
    both build their backends here."""
    if name == "ort":
        from harness.kinds.inference.onnx_backend import OrtModel
        model = OrtModel(onnx_path, cfg, count_casts=count_casts)
        note = f"onnxruntime CPU, {model.threads} intra-op threads"
        if model.fallback_casts is not None:
            note += f"; {model.fallback_casts} Casts inserted (float16 nodes without a CPU kernel run in float32)"
        return Backend(name, model.run_forward, note=note, fallback_casts=model.fallback_casts)
    fw = frameworks.load(name)
    model = fw.models.build_model(cfg)
    fw.models.load_numpy_state(model, state, np_dtype)
    if name == "pt":
        import torch
        note = f"{torch.get_num_threads()} threads, eager"
    else:
        note = "PyNative, default threads"
    return Backend(name, lambda ids, mask: fw.models.run_forward(model, ids, mask), note=note)
