"""BERT (post-LN encoder, Hugging Face's BertModel): everything the project knows of the family.

The tensor table (names in Hugging Face's order and spelling), the layer prefix, the
config.json mapping, the growth rule of every tensor (growth.md's FPI / AKI tables, as
per-axis specs for harness.core.recipe) and the names of its outputs and hidden states.

With head "mlm" the model is Hugging Face's BertForMaskedLM: no pooler, and the masked-LM head
`cls.predictions.*` (transform dense + GELU + LayerNorm, then the decoder tied to the word
embeddings with its own bias `cls.predictions.bias`). The encoder keeps BertModel's names (no
"bert." prefix: transformers' AutoModelForMaskedLM loads such a file, adding the prefix itself);
the decoder's weight and bias are ties, not tensors, as in Hugging Face's safetensors files.
"""
from __future__ import annotations

NAME = "bert"
ACTIVATION = "gelu"                  # the erf GELU
LAYER_PREFIX = "encoder.layer"
TOKEN_OUTPUTS = ("last_hidden_state", "pooler_output")
# outputs compared with the source's for preservation; BERT's are hidden coordinates, read by g_h
PRESERVED_OUTPUTS = ("last_hidden_state", "pooler_output")
HEADS = ("none", "mlm")              # BertModel, BertForMaskedLM
BUFFERS = frozenset({"embeddings.position_ids"})
# tensors whose loss gradient is zero in exact arithmetic: softmax(q k^T + q b_k^T) adds the same q.b_k to
# every score of a query, so the key bias never changes attention; in floating point its gradient is rounding
# noise, which Adam normalises into steps of ~lr, so its values after training are each run's amplified noise
NULL_GRADIENT = ("attention.self.key.bias",)
MLM = "cls.predictions"
# the LayerNorm in front of the tied decoder: logits sum duplicated hidden units, so growth divides it by c_h
TIED_HEAD_NORM = f"{MLM}.transform.LayerNorm"   # a buffer some HF checkpoints carry; not a weight


def layer_prefix(i: int) -> str:
    return f"{LAYER_PREFIX}.{i}."


def layer_names(n_layers: int) -> list[str]:
    """Names of the L + 1 hidden states: the embedding output, then every block's output."""
    return ["embeddings"] + [f"{LAYER_PREFIX}.{i}" for i in range(n_layers)]


# -- the tensor table (torch Linear layout: (out, in)) -------------------------------------
def layer_shapes(cfg, i: int) -> dict[str, tuple[int, ...]]:
    d, f, p = cfg.hidden, cfg.ffn, layer_prefix(i)
    return {
        p + "attention.self.query.weight": (d, d), p + "attention.self.query.bias": (d,),
        p + "attention.self.key.weight": (d, d), p + "attention.self.key.bias": (d,),
        p + "attention.self.value.weight": (d, d), p + "attention.self.value.bias": (d,),
        p + "attention.output.dense.weight": (d, d), p + "attention.output.dense.bias": (d,),
        p + "attention.output.LayerNorm.weight": (d,), p + "attention.output.LayerNorm.bias": (d,),
        p + "intermediate.dense.weight": (f, d), p + "intermediate.dense.bias": (f,),
        p + "output.dense.weight": (d, f), p + "output.dense.bias": (d,),
        p + "output.LayerNorm.weight": (d,), p + "output.LayerNorm.bias": (d,),
    }


def param_shapes(cfg) -> dict[str, tuple[int, ...]]:
    d = cfg.hidden
    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab, d),
        "embeddings.position_embeddings.weight": (cfg.positions, d),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab, d),
        "embeddings.LayerNorm.weight": (d,),
        "embeddings.LayerNorm.bias": (d,),
    }
    for i in range(cfg.layers):
        shapes.update(layer_shapes(cfg, i))
    shapes.update(head_shapes(cfg) if cfg.head == "mlm" else {"pooler.dense.weight": (d, d), "pooler.dense.bias": (d,)})
    return shapes


def head_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """The masked-LM head's tensors (BertForMaskedLM), in its parameter order."""
    d = cfg.hidden
    return {f"{MLM}.transform.dense.weight": (d, d), f"{MLM}.transform.dense.bias": (d,),
            f"{TIED_HEAD_NORM}.weight": (d,), f"{TIED_HEAD_NORM}.bias": (d,), f"{MLM}.bias": (cfg.vocab,)}


# -- Hugging Face config.json ---------------------------------------------------------------
def to_hf(cfg) -> dict:
    return {
        "architectures": ["BertForMaskedLM" if cfg.head == "mlm" else "BertModel"], "model_type": "bert",
        "hidden_size": cfg.hidden, "num_hidden_layers": cfg.layers,
        "num_attention_heads": cfg.heads, "intermediate_size": cfg.ffn,
        "vocab_size": cfg.vocab, "max_position_embeddings": cfg.positions,
        "type_vocab_size": cfg.type_vocab, "layer_norm_eps": cfg.eps,
        "hidden_act": cfg.act, "initializer_range": cfg.initializer_range,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "pad_token_id": 0, "position_embedding_type": "absolute",
    }


def from_hf(hf: dict) -> dict:
    """ModelConfig keyword arguments from a config.json (KeyError for a missing key)."""
    return dict(family=NAME, hidden=hf["hidden_size"], layers=hf["num_hidden_layers"],
                heads=hf["num_attention_heads"], ffn=hf["intermediate_size"],
                vocab=hf["vocab_size"], positions=hf["max_position_embeddings"],
                type_vocab=hf.get("type_vocab_size", 2), eps=float(hf.get("layer_norm_eps", 1e-12)),
                act=hf.get("hidden_act", ACTIVATION), initializer_range=float(hf.get("initializer_range", 0.02)),
                head="mlm" if "BertForMaskedLM" in (hf.get("architectures") or ()) else "none")


# -- growth rules: per-axis specs of every tensor (harness.core.recipe turns them into recipes) --
def layer_growth(hid, hid_in, heads, ffn) -> dict:
    """Specs of one layer's tensors by name suffix. hid: out by g_h; hid_in: in by g_h / c_h;
    heads(divide=False) and ffn(divide=False): the layer's head and FFN maps."""
    specs = {}
    for qkv in ("query", "key", "value"):
        specs[f"attention.self.{qkv}.weight"] = (heads(), hid_in)
        specs[f"attention.self.{qkv}.bias"] = (heads(),)
    specs["attention.output.dense.weight"] = (hid, heads(divide=True))
    specs["attention.output.dense.bias"] = (hid,)
    specs["attention.output.LayerNorm.weight"] = (hid,)
    specs["attention.output.LayerNorm.bias"] = (hid,)
    specs["intermediate.dense.weight"] = (ffn(), hid_in)
    specs["intermediate.dense.bias"] = (ffn(),)
    specs["output.dense.weight"] = (hid, ffn(divide=True))
    specs["output.dense.bias"] = (hid,)
    specs["output.LayerNorm.weight"] = (hid,)
    specs["output.LayerNorm.bias"] = (hid,)
    return specs


def global_growth(hid, hid_in) -> dict:
    """Specs of the tensors outside the layers: name -> (axes, note)."""
    return {
        "embeddings.word_embeddings.weight": ((None, hid), ""),
        "embeddings.position_embeddings.weight": ((None, hid), ""),
        "embeddings.token_type_embeddings.weight": ((None, hid), ""),
        "embeddings.LayerNorm.weight": ((hid,), ""),
        "embeddings.LayerNorm.bias": ((hid,), ""),
        "pooler.dense.weight": ((hid, hid_in), ""),
        "pooler.dense.bias": ((hid,), ""),
        # the masked-LM head: the transform is a hidden -> hidden dense like the pooler; its LayerNorm feeds
        # the decoder tied to the word embeddings, whose logits sum duplicated units: divided by c_h, as
        # GPT-2's ln_f; the vocabulary-sized bias is copied
        f"{MLM}.transform.dense.weight": ((hid, hid_in), ""),
        f"{MLM}.transform.dense.bias": ((hid,), ""),
        f"{TIED_HEAD_NORM}.weight": ((hid_in,), "(tied decoder: logits sum duplicated units)"),
        f"{TIED_HEAD_NORM}.bias": ((hid_in,), "(tied decoder: logits sum duplicated units)"),
        f"{MLM}.bias": ((None,), ""),
    }


# -- lossless growth (docs/lossless.md; harness.core.recipe_lossless reads these) -------------
LOSSLESS_STREAM = "copies"           # post-LN: every coordinate copied D / d times (D a multiple of d)
NORMS = ("embeddings.LayerNorm", "attention.output.LayerNorm", "output.LayerNorm")
BRANCH_OUTPUTS = ("attention.output.dense", "output.dense")   # zero in an inserted block
BLOCK_NORM = "output.LayerNorm"      # its output is the block's: an inserted run takes over its affine
INPUT_NORM = "embeddings.LayerNorm"  # the block norm in front of layer 0
LAST_STATE_NORMED = False
