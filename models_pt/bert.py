"""BERT encoder in Hugging Face's BertModel layout (post-LN), for inference.

Attribute paths spell transformers' parameter names (`encoder.layer.0.attention.
self.query.weight`, ...), so a state dict loads by name in either framework.
No dropout (inference, and distillation steps that compare both frameworks exactly).
"""
# mirror: framework
import torch
from torch import nn
# mirror: end

from .layers import (ACTIVATIONS, Embedding, LayerNorm, Linear, attend, attention_scores, merge_heads,
                     padding_mask, split_heads, tanh)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = Embedding(cfg.vocab, cfg.hidden)
        self.position_embeddings = Embedding(cfg.positions, cfg.hidden)
        self.token_type_embeddings = Embedding(cfg.type_vocab, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1])  # (T,) absolute positions 0..T-1
        # summed in transformers' order (word + type, then + position) so the rounding matches
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, d)
        x = x + self.position_embeddings(positions)[None]
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.heads
        self.query = Linear(cfg.hidden, cfg.hidden)
        self.key = Linear(cfg.hidden, cfg.hidden)
        self.value = Linear(cfg.hidden, cfg.hidden)

    def forward(self, x, mask):
        q = split_heads(self.query(x), self.n_head)  # (B, nh, T, hs)
        k = split_heads(self.key(x), self.n_head)
        v = split_heads(self.value(x), self.n_head)
        scores = attention_scores(q, k)  # (B, nh, T, T), before the mask
        return merge_heads(attend(scores, v, mask)), scores  # (B, T, d), and the scores


class BertSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)  # post-LN: normalise after the residual add


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x, mask):
        h, scores = self.self(x, mask)
        return self.output(h, x), scores


class BertIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.ffn)
        self.act = ACTIVATIONS[cfg.act]  # erf GELU for BERT

    def forward(self, x):
        return self.act(self.dense(x))  # (B, T, F)


class BertOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.ffn, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)  # (B, T, d)


class BertLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x, mask):
        a, scores = self.attention(x, mask)
        return self.output(self.intermediate(a), a), scores


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.layers)])

    def forward(self, x, mask):
        hidden_states = (x,)  # embedding output, then every layer's output: L + 1 tensors
        scores = ()  # every layer's attention scores before the mask: L tensors
        for block in self.layer:
            x, s = block(x, mask)
            hidden_states += (x,)
            scores += (s,)
        return hidden_states, scores


class BertPooler(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.hidden)

    def forward(self, x):
        return tanh(self.dense(x[:, 0]))  # (B, d), from the first ([CLS]) token


class BertModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """input_ids (B, T) -> (last_hidden_state (B, T, d), pooler_output (B, d), hidden_states)."""
        hidden_states, _ = self.encode(input_ids, attention_mask, token_type_ids)
        x = hidden_states[-1]
        return x, self.pooler(x), hidden_states

    def encode(self, input_ids, attention_mask=None, token_type_ids=None):
        """input_ids (B, T) -> (hidden_states: L + 1 of (B, T, d), attention scores: L of (B, nh, T, T),
        q k^T / sqrt(hs) before the mask is added)."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
        return self.encoder(self.embeddings(input_ids, token_type_ids), mask)
