"""Offline English text for language-model checks, tokenised by a real tokenizer.

The text is an excerpt of "The Rust Programming Language" (MIT licence; see
data/english/README.md), ~200 KB of English prose copied into the repository, so
nothing is downloaded. It is tokenised with all-MiniLM-L6-v2's WordPiece tokenizer
(uncased, vocabulary 30522; harness.suite.tokenizer), the only real tokenizer available
offline: its ids fit any model whose vocabulary holds 30522 ids (GPT-2's 50257 does).

The growth study (`python -m harness study`) reads a larger text: Jane Austen's six novels
(public domain; data/austen/README.md), ~4 MB, split by novel into training (five) and held-out
validation (Persuasion), tokenised by the study's own 4096-token BPE (data/austen/tokenizer.json,
tools/train_study_tokenizer.py) or, for a model with MiniLM's vocabulary, by MiniLM's WordPiece.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from harness.core.errors import BadInput
from harness.core.paths import DATA_DIR

ENGLISH_TEXT = DATA_DIR / "english" / "rust_book.txt"
TOKENIZER_NAME = "all-MiniLM-L6-v2 WordPiece (uncased, 30522)"

AUSTEN_DIR = DATA_DIR / "austen"
STUDY_TOKENIZER = AUSTEN_DIR / "tokenizer.json"
STUDY_SPLITS = {"train": ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey"),
                "validation": ("persuasion",)}
STUDY_TOKENIZERS = ("austen", "minilm")   # the study's BPE (4096), MiniLM's WordPiece (30522)


@functools.lru_cache(maxsize=2)
def english_ids(path: Path = ENGLISH_TEXT) -> np.ndarray:
    """Token ids (int64) of the whole text, paragraph after paragraph, without special tokens."""
    from harness.suite.tokenizer import load_tokenizer
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: English text not found", "restore data/english/ from the repository")
    paragraphs = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not paragraphs:
        raise BadInput(f"{path}: the text is empty", "restore data/english/ from the repository")
    tok = load_tokenizer()
    tok.no_truncation()
    ids = [i for enc in tok.encode_batch(paragraphs, add_special_tokens=False) for i in enc.ids]
    return np.asarray(ids, dtype=np.int64)


def study_paragraphs(novels: tuple[str, ...], folder: Path = AUSTEN_DIR) -> list[str]:
    """The paragraphs (one per line) of the named novels of data/austen/, in order."""
    out = []
    for name in novels:
        path = Path(folder) / f"{name}.txt"
        if not path.is_file():
            raise BadInput(f"{path}: a novel of the study's corpus is missing",
                           "restore data/austen/ from the repository")
        out += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


@functools.lru_cache(maxsize=4)
def study_ids(split: str, tokenizer: str = "austen", folder: Path = AUSTEN_DIR) -> np.ndarray:
    """Token ids (int64) of one split of the study's corpus ("train" | "validation"), paragraph after
    paragraph, without special tokens, by the study's BPE ("austen") or MiniLM's WordPiece ("minilm")."""
    from harness.suite.tokenizer import load_tokenizer
    if split not in STUDY_SPLITS:
        raise BadInput(f"unknown corpus split {split!r}", f"use one of: {', '.join(STUDY_SPLITS)}")
    if tokenizer not in STUDY_TOKENIZERS:
        raise BadInput(f"unknown study tokenizer {tokenizer!r}", f"use one of: {', '.join(STUDY_TOKENIZERS)}")
    tok = load_tokenizer(Path(folder) / "tokenizer.json" if tokenizer == "austen" else None)
    tok.no_truncation()
    paragraphs = study_paragraphs(STUDY_SPLITS[split], folder)
    ids = [i for enc in tok.encode_batch(paragraphs, add_special_tokens=False) for i in enc.ids]
    return np.asarray(ids, dtype=np.int64)


def windows(ids: np.ndarray, count: int, length: int, what: str) -> np.ndarray:
    """(count, length): consecutive non-overlapping windows from the start of `ids`."""
    need = count * length
    if ids.size < need:
        raise BadInput(f"{what}: {count} windows of {length} tokens need {need} tokens, the source has {ids.size}",
                       "ask for fewer or shorter windows")
    return ids[:need].reshape(count, length).copy()


def seeded_ids(vocab: int, count: int, seed: int) -> np.ndarray:
    """`count` token ids drawn uniformly from [0, vocab), for models no offline tokenizer fits."""
    return np.random.default_rng(seed).integers(0, vocab, count, dtype=np.int64)
