"""ONNX Runtime, the third inference backend for GPT-2.

    path = export_gpt2(cfg, state, out_dir, dtype="float32")   # models_pt's GPT2LMHeadModel -> ONNX
    model = OrtModel(path, cfg)                                 # onnxruntime, CPU
    out = model.run_forward(input_ids, attention_mask)          # as models_pt.run_forward

Export uses torch.onnx's dynamo exporter (torch.export + onnxscript; the TorchScript
exporter cannot trace models_pt's LayerNorm over `x.shape[-1]`), with dynamic batch
and sequence axes. Inputs: input_ids and attention_mask, int64 (batch, seq); outputs:
logits (batch, seq, vocab) and, unless hidden_states=False, hidden_states
(layers + 1, batch, seq, hidden), in the model's dtype.

"float16" exports the PyTorch model with float16 parameters and activations. ONNX
Runtime's CPU provider lacks float16 kernels for most operators: its graph
optimiser inserts Casts so that those nodes compute in float32 and hand float16
on; OrtModel(..., count_casts=True).fallback_casts says how many it inserted.

torch, onnx and onnxruntime are imported only inside the functions here.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from harness.core.config import ModelConfig
from harness.core.errors import BadInput
from harness.core.formats.atomic import commit, discard, temp_beside
from harness.core.forward_inputs import check_forward_inputs
from harness.core.vocab import DTYPES

MODEL_NAME = "model.onnx"
OPSET = 20                      # LayerNormalization needs >= 17; onnxruntime 1.31 runs up to 23
INPUTS = ("input_ids", "attention_mask")
CACHE_MAX_PARAMS = 16_000_000   # export_cached keeps models up to this size (64 MB in float32)
_exports: dict[tuple, Path] = {}   # (config, dtype, weights digest) -> this process's kept copy of model.onnx
_kept: list[Path] = []             # the folder of the kept copies, removed at exit


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs progress, a warning per missing torchvision op and notes on axis names
    and deprecated pytree internals; keep errors only."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def export_gpt2(cfg: ModelConfig, state: dict[str, np.ndarray], out_dir: Path, dtype: str = "float32",
                hidden_states: bool = True) -> Path:
    """Export a GPT-2 state (numpy, Hugging Face names) to out_dir/model.onnx; returns that path.

    Written into a temporary folder beside out_dir and renamed into place, so a failed
    export leaves nothing under the final name (weights above 2 GB go to model.onnx.data
    beside it, as the exporter decides).
    """
    if cfg.family != "gpt2":
        raise BadInput(f"model config {cfg.name or cfg.family}: only GPT-2 exports to ONNX here",
                       "pass a gpt2 preset or a gpt2 config.json")
    if dtype not in DTYPES.values():
        raise BadInput(f"dtype {dtype!r} cannot be exported", f"use one of: {', '.join(DTYPES.values())}")
    import torch

    import models_pt

    model = models_pt.build_model(cfg)
    models_pt.load_numpy_state(model, state, dtype)
    model.eval()

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            logits, hidden = self.model(input_ids, attention_mask)
            return (logits, torch.stack(hidden)) if hidden_states else logits

    example = torch.from_numpy(np.random.default_rng(0).integers(0, cfg.vocab, (2, 8), dtype=np.int64))
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("seq", min=1, max=cfg.positions)
    out_dir = Path(out_dir)
    tmp = temp_beside(out_dir, folder=True)   # creates out_dir's parent
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                Graph().eval(), (example, torch.ones_like(example)), dynamo=True, opset_version=OPSET, verbose=False,
                input_names=list(INPUTS), output_names=["logits", "hidden_states"][:2 if hidden_states else 1],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
            program.save(str(tmp / MODEL_NAME))
        del program
        commit(tmp, out_dir)
    except BaseException:
        discard(tmp)
        raise
    return out_dir / MODEL_NAME


def _digest(state: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        a = np.ascontiguousarray(state[name])
        h.update(f"{name}:{a.dtype}:{a.shape};".encode())
        h.update(a.view(np.uint8).reshape(-1))
    return h.hexdigest()


def _copy_folder(src: Path, out_dir: Path) -> None:
    tmp = temp_beside(out_dir, folder=True)
    try:
        for path in src.iterdir():
            shutil.copyfile(path, tmp / path.name)
        commit(tmp, out_dir)
    except BaseException:
        discard(tmp)
        raise


def export_cached(cfg: ModelConfig, state: dict[str, np.ndarray], out_dir: Path,
                  dtype: str = "float32") -> tuple[Path, bool]:
    """export_gpt2 (with hidden states), reusing this process's earlier export of the same config,
    weights (by content) and dtype for models up to CACHE_MAX_PARAMS: (path, whether reused).
    out_dir always gets its own copy, so a caller may edit it. Tests export the same tiny model
    several times; one export costs seconds, a copy milliseconds."""
    out_dir = Path(out_dir)   # its parent is made by the writers (temp_beside)
    if cfg.n_params() > CACHE_MAX_PARAMS:
        return export_gpt2(cfg, state, out_dir, dtype), False
    key = (cfg, dtype, _digest(state))
    kept = _exports.get(key)
    if kept is not None and kept.is_file():
        _copy_folder(kept.parent, out_dir)
        return out_dir / MODEL_NAME, True
    path = export_gpt2(cfg, state, out_dir, dtype)
    if not _kept:
        _kept.append(Path(tempfile.mkdtemp(prefix="onnx-exports-")))
        atexit.register(shutil.rmtree, _kept[0], True)
    folder = _kept[0] / hashlib.sha256(repr(key).encode()).hexdigest()[:24]   # one folder per key, never reused
    _copy_folder(path.parent, folder)
    _exports[key] = folder / MODEL_NAME
    return path, False


def session_options(threads: int | None = None):
    """CPU, deterministic: a fixed intra-op thread count (default: every core, as torch), one
    inter-op thread, sequential execution, deterministic compute, every graph optimisation."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.use_deterministic_compute = True
    so.log_severity_level = 3   # errors only
    return so


def _count_casts(path: Path) -> int:
    import onnx
    return sum(node.op_type == "Cast" for node in onnx.load(str(path), load_external_data=False).graph.node)


class OrtModel:
    """An exported GPT-2 in an onnxruntime CPU session; run_forward speaks numpy like models_pt."""

    def __init__(self, path: Path, cfg: ModelConfig, threads: int | None = None, count_casts: bool = False):
        """count_casts: also write the optimised graph (a temporary file) and set fallback_casts, the
        number of Casts onnxruntime inserted to run float16 nodes in float32; else it is None."""
        import onnxruntime as ort
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: ONNX model not found",
                           "export it first (harness.kinds.inference.onnx_backend.export_gpt2)")
        so = session_options(threads)
        self.threads = so.intra_op_num_threads
        self.fallback_casts = None
        with tempfile.TemporaryDirectory() as scratch:
            optimized = Path(scratch) / MODEL_NAME
            if count_casts:
                so.optimized_model_filepath = str(optimized)
            try:
                self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own Fail / InvalidGraph types
                raise BadInput(f"{path}: onnxruntime cannot load the model: {str(e).splitlines()[0][:300]}",
                               "re-export it (harness.kinds.inference.onnx_backend.export_gpt2)") from None
            if count_casts:
                self.fallback_casts = _count_casts(optimized) - _count_casts(path)
        self.cfg = cfg
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.dtype = {"tensor(float)": "float32", "tensor(float16)": "float16"}.get(
            self.session.get_outputs()[0].type, self.session.get_outputs()[0].type)

    def run_forward(self, input_ids, attention_mask=None) -> dict[str, np.ndarray]:
        """input_ids (B, T), 0/1 attention_mask (B, T) -> {"logits", "last_hidden_state", "hidden_states"}
        (the last two only when exported with hidden states)."""
        input_ids, mask = check_forward_inputs(self.cfg, input_ids, attention_mask)
        mask = np.ones_like(input_ids) if mask is None else np.asarray(mask, dtype=np.int64)
        values = self.session.run(None, {"input_ids": np.ascontiguousarray(input_ids),
                                         "attention_mask": np.ascontiguousarray(mask)})
        out = dict(zip(self.outputs, values, strict=True))
        if "hidden_states" in out:
            out["last_hidden_state"] = out["hidden_states"][-1]
        return out
