"""Train the study's tokenizer (data/austen/tokenizer.json) on the training novels of data/austen/.

    python tools/train_study_tokenizer.py [--vocab 4096]

A byte-pair-encoding model (Hugging Face `tokenizers`), uncased and split on whitespace and
punctuation as BERT's WordPiece is (BertNormalizer, BertPreTokenizer), with BERT's special-token
layout so that the ids mean what they mean in every BERT vocabulary: [PAD] 0, [unused0..98] 1-99,
[UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103 (harness.core.batches.MASK_ID). Why not MiniLM's
30522-token WordPiece: at the study's target (4 x 128) its embedding, tied to the output layer, would
be 3.9M of the model's 4.7M parameters, and the output projection ~5x the multiplies of all the layers
together (a step 3.6x the FLOPs); with 4096 the model is 1.3M parameters, the output projection 40% of
its per-token multiplies. The validation novel (Persuasion) is not read. Deterministic: the same files give the same
tokenizer.json (tests/test_study.py checks the committed one against a retrain).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.suite.corpus import STUDY_SPLITS, study_paragraphs  # noqa: E402

SPECIAL = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train(vocab: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL, show_progress=False)
    tok.train_from_iterator(study_paragraphs(STUDY_SPLITS["train"]), trainer=trainer)
    return tok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--out", type=Path, default=ROOT / "data" / "austen" / "tokenizer.json")
    args = p.parse_args()
    tok = train(args.vocab)
    tok.save(str(args.out))
    print(f"wrote {args.out}: vocabulary {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
