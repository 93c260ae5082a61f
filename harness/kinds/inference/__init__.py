"""GPT-2 inference parity (cases/inference.toml): the same weights and token ids on PyTorch,
MindSpore and ONNX Runtime, fp32 and fp16: logits, greedy decoding, perplexity."""
from __future__ import annotations

from harness.kinds.inference.cases import load_infer_cases
from harness.kinds.inference.runner import run_infer_case
from harness.suite.kind import CaseKind
from harness.suite.summary import Column, Summary, fmt, worst

_VS = ("ort_vs_pt", "ms_vs_pt")   # ONNX Runtime and MindSpore, each against PyTorch


def _pair(quantity: str, dtype: str, metric: str):
    return lambda got: " / ".join(got.cell(quantity, f"{dtype}.{vs}.{metric}") for vs in _VS)


SUMMARY = Summary(
    columns=(
        Column("model", lambda got: got.cell("logits", "model")),
        Column("logits rel fp32 ORT / MS", _pair("logits", "fp32", "relative")),
        Column("logits rel fp16 ORT / MS", _pair("logits", "fp16", "relative")),
        Column("greedy diverged fp32 ORT / MS", _pair("greedy", "fp32", "diverged")),
        Column("ppl fp32 PT / MS / ORT", lambda got: " / ".join(
            got.cell("perplexity", f"fp32.{b}.perplexity", ".7g") for b in ("pt", "ms", "ort"))),
        Column("ppl rel fp32 ORT / MS", _pair("perplexity", "fp32", "relative")),
        Column("ppl fp16 gap (max)",
               lambda got: fmt(worst(got.numbers("perplexity", lambda m: m.startswith("fp16_gap."))))),
    ),
    console_title="inference: PyTorch, MindSpore, ONNX Runtime", json_key="inference_summary",
    heading="inference: PyTorch, MindSpore and ONNX Runtime",
    blurb="Same weights and token ids on each backend; relative error = max |got - PyTorch| / max |PyTorch|. "
          "Random weights: perplexity near the vocabulary size is expected.",
)

KIND = CaseKind(
    name="inference", fixture="infer_case", load=load_infer_cases, runner=run_infer_case,
    quantities=("logits", "greedy", "perplexity"),
    gated={
        "logits": ("ort_vs_pt.relative", "ms_vs_pt.relative", "ort_vs_pt.hidden_relative", "ms_vs_pt.hidden_relative"),
        "greedy": ("ort_vs_pt.diverged", "ms_vs_pt.diverged"),
        "perplexity": ("ort_vs_pt.relative", "ms_vs_pt.relative", "fp16_gap"),
    },
    summary=SUMMARY,
)
