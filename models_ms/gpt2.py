"""GPT-2 language model in Hugging Face's GPT2LMHeadModel layout (pre-LN), for inference.

Attribute paths spell transformers' parameter names (`transformer.h.0.attn.
c_attn.weight`, ...). Projections are Conv1D: weight (in, out). The LM head is
tied to the token embedding, so it is no parameter of its own. No dropout.
"""
# mirror: framework
from mindspore import nn, ops
# mirror: end

from .layers import (ACTIVATIONS, Conv1D, Embedding, LayerNorm, attention, causal_mask, linear, merge_heads,
                     split_heads)


class GPT2Attention(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.heads
        self.c_attn = Conv1D(cfg.hidden, 3 * cfg.hidden)  # fused q | k | v
        self.c_proj = Conv1D(cfg.hidden, cfg.hidden)

    def construct(self, x, mask):
        q, k, v = self.c_attn(x).split(x.shape[-1], 2)  # each (B, T, d)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        return self.c_proj(merge_heads(attention(q, k, v, mask)))  # (B, T, d)


class GPT2MLP(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg.hidden, cfg.ffn)
        self.c_proj = Conv1D(cfg.ffn, cfg.hidden)
        self.act = ACTIVATIONS[cfg.act]  # tanh GELU for GPT-2

    def construct(self, x):
        return self.c_proj(self.act(self.c_fc(x)))  # (B, T, d)


class GPT2Block(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.hidden, cfg.eps)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = LayerNorm(cfg.hidden, cfg.eps)
        self.mlp = GPT2MLP(cfg)

    def construct(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)  # pre-LN: normalise the branch input only
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.wte = Embedding(cfg.vocab, cfg.hidden)
        self.wpe = Embedding(cfg.positions, cfg.hidden)
        self.h = nn.CellList([GPT2Block(cfg) for _ in range(cfg.layers)])
        self.ln_f = LayerNorm(cfg.hidden, cfg.eps)

    def construct(self, input_ids, attention_mask=None):
        T = input_ids.shape[1]
        mask = causal_mask(T, attention_mask, self.wte.weight.dtype)  # (1 or B, 1, T, T)
        x = self.wte(input_ids) + self.wpe(ops.arange(T))[None]  # (B, T, d)
        hidden_states = (x,)
        for block in self.h:
            x = block(x, mask)
            hidden_states += (x,)
        x = self.ln_f(x)
        # transformers reports ln_f of the last block, not its raw output, as the last entry
        return x, hidden_states[:-1] + (x,)


class GPT2LMHeadModel(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = GPT2Model(cfg)

    def construct(self, input_ids, attention_mask=None):
        """input_ids (B, T) -> (logits (B, T, vocab), hidden_states: L + 1 tensors (B, T, d))."""
        x, hidden_states = self.transformer(input_ids, attention_mask)
        logits = linear(x, self.transformer.wte.weight)  # tied head: x @ wte^T
        return logits, hidden_states
