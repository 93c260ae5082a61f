"""Tensor names and shapes of each family, in Hugging Face's order and spelling.

This table is the single definition of what a checkpoint holds: both model trees
name their parameters exactly so, `init` draws them in this order, loaders check
files against it, and the expanders walk it. GPT-2's lm_head is tied to wte and
therefore not a tensor of its own (as in Hugging Face's safetensors files).
"""
from __future__ import annotations

from harness.config import ModelConfig

# Buffers some Hugging Face checkpoints carry beside the parameters (MiniLM's
# safetensors has position_ids); they are not weights and are dropped on load.
IGNORED_BUFFERS = frozenset({"embeddings.position_ids", "lm_head.weight"})


def bert_layer_shapes(cfg: ModelConfig, i: int) -> dict[str, tuple[int, ...]]:
    d, f, p = cfg.hidden, cfg.ffn, f"encoder.layer.{i}."
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


def gpt2_layer_shapes(cfg: ModelConfig, i: int) -> dict[str, tuple[int, ...]]:
    d, f, p = cfg.hidden, cfg.ffn, f"transformer.h.{i}."
    return {
        p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
        p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
        p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
        p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
        p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
        p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,),
    }


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter tensor name -> shape, in Hugging Face's state-dict order."""
    d = cfg.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    if cfg.family == "bert":
        shapes["embeddings.word_embeddings.weight"] = (cfg.vocab, d)
        shapes["embeddings.position_embeddings.weight"] = (cfg.positions, d)
        shapes["embeddings.token_type_embeddings.weight"] = (cfg.type_vocab, d)
        shapes["embeddings.LayerNorm.weight"] = (d,)
        shapes["embeddings.LayerNorm.bias"] = (d,)
        for i in range(cfg.layers):
            shapes.update(bert_layer_shapes(cfg, i))
        shapes["pooler.dense.weight"] = (d, d)
        shapes["pooler.dense.bias"] = (d,)
    else:
        shapes["transformer.wte.weight"] = (cfg.vocab, d)
        shapes["transformer.wpe.weight"] = (cfg.positions, d)
        for i in range(cfg.layers):
            shapes.update(gpt2_layer_shapes(cfg, i))
        shapes["transformer.ln_f.weight"] = (d,)
        shapes["transformer.ln_f.bias"] = (d,)
    return shapes


def layer_prefix(family: str, i: int) -> str:
    return f"encoder.layer.{i}." if family == "bert" else f"transformer.h.{i}."
