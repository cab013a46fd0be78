"""Scaled dot-product and multi-head attention, written out: this is what the project compares.

Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V   (Vaswani et al. 2017, eq. 1)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, h, T, d), k/v (B, h, S, d), mask broadcastable to (B, h, T, S), True = may attend.

    Returns the output (B, h, T, d) and the weights (B, h, T, S).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, h, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # (B, h, T, S)
    return weights @ v, weights  # (B, h, T, d)


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention over learned projections (Vaswani et al. 2017, §3.2.2)."""

    def __init__(self, d_model: int, heads: int, d_key: int | None = None, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by {heads} heads")
        self.heads, self.d_head = heads, d_model // heads
        d_key = d_key or d_model  # keys/values may come from a wider memory (bidirectional encoder)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_key, d_model)
        self.v_proj = nn.Linear(d_key, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.d_head).transpose(1, 2)  # (B, h, T, d)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, h, S, d) of a memory, computed once and cached by decoders."""
        return self.split_heads(self.k_proj(memory)), self.split_heads(self.v_proj(memory))

    def attend(
        self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """query (B, T, d_model) over projected k/v; returns (B, T, d_model) and weights (B, h, T, S) if asked."""
        B, T, _ = query.shape
        q = self.split_heads(self.q_proj(query))  # (B, h, T, d)
        dropout = self.dropout if self.training else 0.0
        if need_weights:  # inspection and decoding: no attention dropout there
            out, weights = scaled_dot_product_attention(q, k, v, mask)
        else:
            # Same maths in torch's fused kernel (checked equal in tests): faster when weights are not needed.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
            weights = None
        out = out.transpose(1, 2).reshape(B, T, self.heads * self.d_head)  # (B, T, d_model)
        return self.out_proj(out), weights

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        k, v = self.project_kv(memory)
        return self.attend(query, k, v, mask, need_weights)
