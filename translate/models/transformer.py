"""A small Transformer encoder-decoder (Vaswani et al. 2017) with a key/value cache for incremental decoding.

Choices, documented because they differ between implementations:
- pre-norm residual blocks (LayerNorm before each sub-layer, one final LayerNorm): stable without long warmup;
- sinusoidal positions computed on the fly, so any input length works (no learned table to run out of);
- embeddings scaled by sqrt(d_model) and, with a joint vocabulary, shared by source, target and output layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from translate.models.attention import MultiHeadAttention, attention_kind
from translate.models.base import DecoderOutput, Seq2Seq, State
from translate.models.dropout import Dropout


@dataclass(frozen=True)
class TransformerConfig:
    src_vocab: int = 8000  # set from the tokenizer when the model is built
    tgt_vocab: int = 8000  # set from the tokenizer when the model is built
    joint_vocab: bool = True  # one vocabulary for both sides: share source and target embeddings
    d_model: int = 256  # width of every residual stream
    heads: int = 4  # attention heads per attention layer
    ffn: int = 1024  # inner width of the position-wise feed-forward layers
    enc_layers: int = 3
    dec_layers: int = 3
    dropout: float = 0.1  # on embeddings, attention weights, sub-layer outputs
    tie_embeddings: bool = True  # output projection shares the target embedding

    def validate(self) -> list[str]:
        errors = []
        if self.heads < 1 or self.d_model % self.heads:
            errors.append(f"heads ({self.heads}) must be >= 1 and divide d_model ({self.d_model})")
        if self.enc_layers < 1 or self.dec_layers < 1 or self.ffn < 1:
            errors.append("enc_layers, dec_layers and ffn must be positive")
        if not 0 <= self.dropout < 1:
            errors.append(f"dropout must be in [0, 1), not {self.dropout}")
        return errors


def sinusoidal_positions(start: int, length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) encodings of positions start..start+length-1 (Vaswani et al. §3.5)."""
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freq)
    enc[:, 1::2] = torch.cos(pos * freq)
    return enc


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ffn: int, dropout: float):
        super().__init__(nn.Linear(d_model, ffn), nn.ReLU(), Dropout(dropout), nn.Linear(ffn, d_model))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.heads, dropout=cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn, cfg.dropout)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn.attend(*self.self_attn.project_qkv(h), mask, False)[0])  # (B, S, D)
        return x + self.dropout(self.ffn(self.norm2(x)))  # (B, S, D)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.heads, dropout=cfg.dropout)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.heads, dropout=cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn, cfg.dropout)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, state: State, i: int, causal: torch.Tensor | None, need_weights: bool):
        """x (B, T, D) new positions; extends the self-attention cache of layer i in `state` (a fresh dict)."""
        q, k_new, v_new = self.self_attn.project_qkv(self.norm1(x))  # (B, h, T, d)
        past = state[f"self_k{i}"].size(2)
        k = state[f"self_k{i}"] = torch.cat([state[f"self_k{i}"], k_new], dim=2) if past else k_new  # (B, h, P+T, d)
        v = state[f"self_v{i}"] = torch.cat([state[f"self_v{i}"], v_new], dim=2) if past else v_new
        x = x + self.dropout(self.self_attn.attend(q, k, v, causal, False)[0])  # (B, T, D)
        src_mask = state["src_mask"][:, None, None, :]  # (B, 1, 1, S)
        q = self.cross_attn.project_q(self.norm2(x))  # (B, h, T, d)
        context, weights = self.cross_attn.attend(q, state[f"cross_k{i}"], state[f"cross_v{i}"], src_mask, need_weights)
        x = x + self.dropout(context)  # (B, T, D)
        return x + self.dropout(self.ffn(self.norm3(x))), weights


class Transformer(Seq2Seq):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tgt_embedding = nn.Embedding(cfg.tgt_vocab, cfg.d_model, padding_idx=0)
        self.src_embedding = (
            self.tgt_embedding if cfg.joint_vocab else nn.Embedding(cfg.src_vocab, cfg.d_model, padding_idx=0)
        )
        self.encoder_layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.dropout = Dropout(cfg.dropout)
        self.out_proj = nn.Linear(cfg.d_model, cfg.tgt_vocab, bias=False)
        self._position_table: torch.Tensor | None = None  # sinusoidal rows, grown on demand (not a parameter)
        self.source_keys = frozenset(  # read by every beam of a source, held once (see models/base.py)
            ["src_mask"] + [f"cross_{kv}{i}" for i in range(cfg.dec_layers) for kv in "kv"]
        )
        self._init_weights()
        if cfg.tie_embeddings:
            self.out_proj.weight = self.tgt_embedding.weight

    def _init_weights(self):
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for emb in dict.fromkeys([self.src_embedding, self.tgt_embedding]):  # fixed order: seeded runs repeat
            nn.init.normal_(emb.weight, std=self.cfg.d_model**-0.5)  # scaled by sqrt(d) on use
            nn.init.zeros_(emb.weight[0])

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor, start: int) -> torch.Tensor:
        x = embedding(ids) * math.sqrt(self.cfg.d_model)  # (B, T, D)
        return self.dropout(x + self._positions(start, ids.size(1), x))

    def _positions(self, start: int, length: int, like: torch.Tensor) -> torch.Tensor:
        """Rows start..start+length-1 of the sinusoidal table, kept from call to call (decoding asks one row a step)."""
        table = self._position_table
        if table is None or table.size(0) < start + length or table.device != like.device or table.dtype != like.dtype:
            rows = max(start + length, 2 * (0 if table is None else table.size(0)), 256)
            table = sinusoidal_positions(0, rows, self.cfg.d_model, like.device).to(like.dtype)
            self._position_table = table
        return table[start : start + length]  # (T, D)

    def _encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, State]:
        x = self._embed(self.src_embedding, src, 0)  # (B, S, D)
        mask = src_mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        memory = self.encoder_norm(x)  # (B, S, D)
        B, D = src.size(0), self.cfg.d_model
        empty = memory.new_zeros(B, self.cfg.heads, 0, D // self.cfg.heads)  # (B, h, 0, d): nothing decoded yet
        state: State = {"src_mask": src_mask}
        for i, layer in enumerate(self.decoder_layers):
            state[f"cross_k{i}"], state[f"cross_v{i}"] = layer.cross_attn.project_kv(memory)  # once per sentence
            state[f"self_k{i}"], state[f"self_v{i}"] = empty, empty
        return memory, state

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> State:
        return self._encode(src, src_mask)[1]  # the decoder reads the memory through its cached keys/values only

    def encode_traced(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[State, list]:
        memory, state = self._encode(src, src_mask)
        return state, [memory]

    def step_kind(self, tgt: torch.Tensor, state: State):
        """First step or not (an empty cache is replaced, not extended), the cross-attention's decisions (see
        `attention_kind`), and the position table a trace keeps (grown eagerly when a step needs more rows)."""
        past, table = state["self_k0"].size(2), self._position_table
        if table is None or table.size(0) <= past or table.dtype != state["self_k0"].dtype:
            return None
        return past > 0, attention_kind(tgt.size(0), state["src_mask"].size(0)), table.size(0)

    def decode(self, tgt: torch.Tensor, state: State, need_attention: bool = False) -> DecoderOutput:
        past, T = state["self_k0"].size(2), tgt.size(1)
        x = self._embed(self.tgt_embedding, tgt, past)  # (B, T, D)
        # New position t may see cached positions and new ones up to itself (one new position: all of them).
        causal = None if T == 1 else torch.ones(T, past + T, dtype=torch.bool, device=tgt.device).tril(diagonal=past)
        state = dict(state)
        weights = None
        for i, layer in enumerate(self.decoder_layers):
            last = i == len(self.decoder_layers) - 1
            x, w = layer(x, state, i, causal, need_attention and last)
            if w is not None:
                weights = w.mean(1)  # (B, T, S): last layer's cross-attention, heads averaged
        logits = self.out_proj(self.decoder_norm(x))  # (B, T, V)
        return DecoderOutput(logits, state, weights)
