"""GPT-2 (pre-LN decoder, Hugging Face's GPT2LMHeadModel): everything the project knows of the family.

The tensor table (Conv1D weights in (in, out) layout; lm_head tied to wte, so not a tensor of
its own, as in Hugging Face's safetensors files), the layer prefix, the config.json mapping,
the growth rule of every tensor and the names of its outputs and hidden states.
"""
from __future__ import annotations

NAME = "gpt2"
ACTIVATION = "gelu_new"              # the tanh GELU
LAYER_PREFIX = "transformer.h"
TOKEN_OUTPUTS = ("last_hidden_state", "logits")
PRESERVED_OUTPUTS = ("logits",)      # compared with the source's for preservation
NULL_GRADIENT = ()                   # the key bias is a third of c_attn.bias, with q and v: compared with them
HEADS = ("none",)                    # the LM head is tied to wte: no tensor, no choice
BUFFERS = frozenset({"lm_head.weight"})   # the tied head, when a checkpoint stores it anyway


def layer_prefix(i: int) -> str:
    return f"{LAYER_PREFIX}.{i}."


def layer_names(n_layers: int) -> list[str]:
    """Names of the L + 1 hidden states; transformers reports ln_f's output in place of the last block's."""
    return (["embeddings"] + [f"{LAYER_PREFIX}.{i}" for i in range(n_layers - 1)]
            + [f"{LAYER_PREFIX}.{n_layers - 1}+ln_f"])


# -- the tensor table (Conv1D layout: (in, out)) ---------------------------------------------
def layer_shapes(cfg, i: int) -> dict[str, tuple[int, ...]]:
    d, f, p = cfg.hidden, cfg.ffn, layer_prefix(i)
    return {
        p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
        p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
        p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
        p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
        p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
        p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,),
    }


def param_shapes(cfg) -> dict[str, tuple[int, ...]]:
    d = cfg.hidden
    shapes = {"transformer.wte.weight": (cfg.vocab, d), "transformer.wpe.weight": (cfg.positions, d)}
    for i in range(cfg.layers):
        shapes.update(layer_shapes(cfg, i))
    shapes["transformer.ln_f.weight"] = (d,)
    shapes["transformer.ln_f.bias"] = (d,)
    return shapes


# -- Hugging Face config.json ---------------------------------------------------------------
def to_hf(cfg) -> dict:
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_embd": cfg.hidden, "n_layer": cfg.layers, "n_head": cfg.heads,
        "n_inner": cfg.ffn, "vocab_size": cfg.vocab, "n_positions": cfg.positions,
        "n_ctx": cfg.positions, "layer_norm_epsilon": cfg.eps,
        "activation_function": cfg.act, "initializer_range": cfg.initializer_range,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "tie_word_embeddings": True, "scale_attn_weights": True,
        "bos_token_id": 50256 if cfg.vocab > 50256 else 0,
        "eos_token_id": 50256 if cfg.vocab > 50256 else 0,
    }


def from_hf(hf: dict) -> dict:
    """ModelConfig keyword arguments from a config.json (KeyError for a missing key)."""
    return dict(family=NAME, hidden=hf["n_embd"], layers=hf["n_layer"], heads=hf["n_head"],
                ffn=hf.get("n_inner") or 4 * hf["n_embd"], vocab=hf["vocab_size"], positions=hf["n_positions"],
                type_vocab=0, eps=float(hf.get("layer_norm_epsilon", 1e-5)),
                act=hf.get("activation_function", ACTIVATION),
                initializer_range=float(hf.get("initializer_range", 0.02)))


# -- growth rules: per-axis specs of every tensor (harness.core.recipe turns them into recipes) --
def layer_growth(hid, hid_in, heads, ffn) -> dict:
    """Specs of one layer's tensors by name suffix (Conv1D: axis 0 is in, axis 1 is out).
    c_attn fuses q | k | v: each part grown head-wise with the same map (parts=3)."""
    return {
        "ln_1.weight": (hid,), "ln_1.bias": (hid,),
        "attn.c_attn.weight": (hid_in, heads(parts=3)),
        "attn.c_attn.bias": (heads(parts=3),),
        "attn.c_proj.weight": (heads(divide=True), hid),
        "attn.c_proj.bias": (hid,),
        "ln_2.weight": (hid,), "ln_2.bias": (hid,),
        "mlp.c_fc.weight": (hid_in, ffn()),
        "mlp.c_fc.bias": (ffn(),),
        "mlp.c_proj.weight": (ffn(divide=True), hid),
        "mlp.c_proj.bias": (hid,),
    }


def global_growth(hid, hid_in) -> dict:
    """Specs of the tensors outside the layers: name -> (axes, note). The tied lm_head sums
    duplicated hidden units, so ln_f is divided by the counts."""
    tied = "(tied lm_head: logits sum duplicated units)"
    return {
        "transformer.wte.weight": ((None, hid), ""),
        "transformer.wpe.weight": ((None, hid), ""),
        "transformer.ln_f.weight": ((hid_in,), tied),
        "transformer.ln_f.bias": ((hid_in,), tied),
    }


# -- lossless growth (docs/lossless.md; harness.core.recipe_lossless reads these) -------------
LOSSLESS_STREAM = "mean"             # pre-LN: each new stream coordinate holds the mean of the old ones
NORMS = ("ln_1", "ln_2", "transformer.ln_f")      # the stream's LayerNorms (layer suffixes, global names)
BRANCH_OUTPUTS = ("attn.c_proj", "mlp.c_proj")    # what a block adds to the stream: zero in an inserted block
BLOCK_NORM = INPUT_NORM = None       # post-LN only
TIED_HEAD_NORM = None                # ln_f, in front of the tied head, is a stream norm: NORMS' rule
LAST_STATE_NORMED = True             # the last hidden state is ln_f's output (layer_names)
