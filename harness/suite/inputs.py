"""The inputs of a forward comparison: real sentences where MiniLM's tokenizer fits, seeded ids otherwise."""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.core.config import ModelConfig
from harness.suite.corpus import TOKENIZER_NAME, english_ids, seeded_ids, windows
from harness.suite.tokenizer import TOKENIZER_VOCAB

BATCH, TOKENS = 4, 24            # small, because MindSpore PyNative forward is slow
LM_WINDOWS, LM_TOKENS = 4, 64     # language-model loss: corpus windows, unpadded


@dataclasses.dataclass(frozen=True)
class Inputs:
    ids: np.ndarray        # (B, T) int64
    mask: np.ndarray       # (B, T) 0/1, right padding
    detail: str

    @property
    def unpadded(self) -> np.ndarray:
        return self.mask.astype(bool)



def make_inputs(seed: int, cfg: ModelConfig) -> Inputs:
    """BERT with a vocabulary that holds MiniLM's tokenizer: real sentences; otherwise fixed
    seeded token ids in [0, vocab). Always padded rows, so masking is exercised."""
    if cfg.family == "bert" and cfg.vocab >= TOKENIZER_VOCAB:
        from harness.suite.tokenizer import SENTENCES, encode
        ids, mask, _ = encode(SENTENCES[:BATCH])
        detail = (f"inputs: {BATCH} sentences tokenised by MiniLM's tokenizer, {ids.shape[0]}x{ids.shape[1]} "
                  f"ids, {int(mask.sum())} unpadded")
        return Inputs(ids, mask, detail)
    tokens = min(TOKENS, cfg.positions)
    rng = np.random.default_rng([seed, 2024])
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


def lm_windows(seed: int, cfg: ModelConfig) -> tuple[np.ndarray, str]:
    """(windows (LM_WINDOWS, T), what they are) for a language model's loss: English text
    (harness.suite.corpus) where MiniLM's tokenizer ids fit the vocabulary, seeded ids otherwise."""
    tokens = min(LM_TOKENS, cfg.positions)
    if cfg.vocab >= TOKENIZER_VOCAB:
        ids, what = english_ids(), f"English text (data/english/rust_book.txt), {TOKENIZER_NAME} tokenizer"
    else:
        ids = seeded_ids(cfg.vocab, LM_WINDOWS * tokens, seed)
        what = f"seeded token ids in [0, {cfg.vocab}) (the tokenizer's ids do not fit the vocabulary)"
    return windows(ids, LM_WINDOWS, tokens, "LM loss"), f"{LM_WINDOWS} x {tokens} tokens of {what}"
