"""BERT encoder in Hugging Face's BertModel layout (post-LN), and BertForMaskedLM (the masked-LM head).

Attribute paths spell transformers' parameter names (`encoder.layer.0.attention.
self.query.weight`, ...), so a state dict loads by name in either framework.
No dropout (inference, and distillation steps that compare both frameworks exactly).
"""
# mirror: framework
from mindspore import nn, ops
# mirror: end

from .layers import (ACTIVATIONS, Embedding, LayerNorm, Linear, attend, attention_scores, linear, merge_heads,
                     new_param, padding_mask, split_heads, tanh)


class BertEmbeddings(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = Embedding(cfg.vocab, cfg.hidden)
        self.position_embeddings = Embedding(cfg.positions, cfg.hidden)
        self.token_type_embeddings = Embedding(cfg.type_vocab, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def construct(self, input_ids, token_type_ids):
        positions = ops.arange(input_ids.shape[1])  # (T,) absolute positions 0..T-1
        # summed in transformers' order (word + type, then + position) so the rounding matches
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, d)
        x = x + self.position_embeddings(positions)[None]
        return self.LayerNorm(x)


class BertSelfAttention(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.heads
        self.query = Linear(cfg.hidden, cfg.hidden)
        self.key = Linear(cfg.hidden, cfg.hidden)
        self.value = Linear(cfg.hidden, cfg.hidden)

    def construct(self, x, mask):
        q = split_heads(self.query(x), self.n_head)  # (B, nh, T, hs)
        k = split_heads(self.key(x), self.n_head)
        v = split_heads(self.value(x), self.n_head)
        scores = attention_scores(q, k)  # (B, nh, T, T), before the mask
        return merge_heads(attend(scores, v, mask)), scores  # (B, T, d), and the scores


class BertSelfOutput(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def construct(self, h, x):
        return self.LayerNorm(self.dense(h) + x)  # post-LN: normalise after the residual add


class BertAttention(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def construct(self, x, mask):
        h, scores = self.self(x, mask)
        return self.output(h, x), scores


class BertIntermediate(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.ffn)
        self.act = ACTIVATIONS[cfg.act]  # erf GELU for BERT

    def construct(self, x):
        return self.act(self.dense(x))  # (B, T, F)


class BertOutput(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.ffn, cfg.hidden)
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def construct(self, h, x):
        return self.LayerNorm(self.dense(h) + x)  # (B, T, d)


class BertLayer(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def construct(self, x, mask):
        a, scores = self.attention(x, mask)
        return self.output(self.intermediate(a), a), scores


class BertEncoder(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.CellList([BertLayer(cfg) for _ in range(cfg.layers)])

    def construct(self, x, mask):
        hidden_states = (x,)  # embedding output, then every layer's output: L + 1 tensors
        scores = ()  # every layer's attention scores before the mask: L tensors
        for block in self.layer:
            x, s = block(x, mask)
            hidden_states += (x,)
            scores += (s,)
        return hidden_states, scores


class BertPooler(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.hidden)

    def construct(self, x):
        return tanh(self.dense(x[:, 0]))  # (B, d), from the first ([CLS]) token


class BertPredictionHeadTransform(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.dense = Linear(cfg.hidden, cfg.hidden)
        self.act = ACTIVATIONS[cfg.act]
        self.LayerNorm = LayerNorm(cfg.hidden, cfg.eps)

    def construct(self, x):
        return self.LayerNorm(self.act(self.dense(x)))  # (B, T, d)


class BertLMPredictionHead(nn.Cell):
    """The decoder is tied to the word embeddings (no weight of its own) and has its own bias."""

    def __init__(self, cfg):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.bias = new_param(cfg.vocab)

    def construct(self, x, word_embeddings):
        return linear(self.transform(x), word_embeddings, self.bias)  # (B, T, vocab)


class BertOnlyMLMHead(nn.Cell):
    def __init__(self, cfg):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg)

    def construct(self, x, word_embeddings):
        return self.predictions(x, word_embeddings)


class BertEncoderModel(nn.Cell):
    """Embeddings and encoder, the part BertModel and BertForMaskedLM share (under the same names)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)

    def encode(self, input_ids, attention_mask=None, token_type_ids=None):
        """input_ids (B, T) -> (hidden_states: L + 1 of (B, T, d), attention scores: L of (B, nh, T, T),
        q k^T / sqrt(hs) before the mask is added)."""
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
        return self.encoder(self.embeddings(input_ids, token_type_ids), mask)


class BertModel(BertEncoderModel):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.pooler = BertPooler(cfg)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None):
        """input_ids (B, T) -> (last_hidden_state (B, T, d), pooler_output (B, d), hidden_states)."""
        hidden_states, _ = self.encode(input_ids, attention_mask, token_type_ids)
        x = hidden_states[-1]
        return x, self.pooler(x), hidden_states


class BertForMaskedLM(BertEncoderModel):
    """Hugging Face's BertForMaskedLM without its "bert." prefix: no pooler, the masked-LM head `cls`."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.cls = BertOnlyMLMHead(cfg)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None):
        """input_ids (B, T) -> (logits (B, T, vocab), hidden_states: L + 1 tensors (B, T, d))."""
        hidden_states, _ = self.encode(input_ids, attention_mask, token_type_ids)
        return self.cls(hidden_states[-1], self.embeddings.word_embeddings.weight), hidden_states
