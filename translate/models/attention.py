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


SHORT_QUERIES = 16  # query positions up to which eval-mode attention takes the written-out path


def attention_kind(rows: int, sources: int) -> tuple[bool, bool]:
    """What `attend` decides for one new query per row over keys held by `sources`: whether the rows come grouped
    by source, and whether a source's queries are few enough for the written-out form. The part of a decoding
    step's kind (`Seq2Seq.step_kind`) that attention owns."""
    return rows != sources, rows // sources <= SHORT_QUERIES


def _group(q: torch.Tensor, n: int) -> torch.Tensor:
    """(n*K, h, T, d) -> (n, h, K*T, d): the queries of a source's K rows side by side."""
    B, h, T, d = q.shape
    return q.view(n, B // n, h, T, d).transpose(1, 2).reshape(n, h, (B // n) * T, d)


def _ungroup(x: torch.Tensor, B: int) -> torch.Tensor:
    """(n, h, K*T, S) -> (n*K, h, T, S), the inverse of `_group` for attention weights."""
    n, h, KT, S = x.shape
    return x.view(n, h, B // n, KT * n // B, S).transpose(1, 2).reshape(B, h, KT * n // B, S)


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
        self.qkv_proj: nn.Linear | None = None  # inference only: see pack_projections
        self.kv_proj: nn.Linear | None = None

    def pack_projections(self) -> None:
        """Inference: q, k and v of self-attention in one matmul, k and v of cross-attention in one.

        The packed weights are copies of the trained ones (which stay, and are what checkpoints hold).
        """
        def packed(*linears: nn.Linear) -> nn.Linear:
            out = nn.Linear(linears[0].in_features, sum(lin.out_features for lin in linears))
            out = out.to(linears[0].weight.device, linears[0].weight.dtype)
            with torch.no_grad():
                out.weight.copy_(torch.cat([lin.weight for lin in linears]))
                out.bias.copy_(torch.cat([lin.bias for lin in linears]))
            return out.eval()

        self.kv_proj = packed(self.k_proj, self.v_proj)
        if self.k_proj.in_features == self.q_proj.in_features:
            self.qkv_proj = packed(self.q_proj, self.k_proj, self.v_proj)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.d_head).transpose(1, 2)  # (B, h, T, d)

    def _split_packed(self, x: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
        B, T, _ = x.shape
        return x.view(B, T, parts, self.heads, self.d_head).permute(2, 0, 3, 1, 4).unbind(0)  # parts x (B, h, T, d)

    def project_q(self, query: torch.Tensor) -> torch.Tensor:
        return self.split_heads(self.q_proj(query))  # (B, h, T, d)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, h, S, d) of a memory, computed once and cached by decoders (so made contiguous once,
        not copied by every decoding step's matmul)."""
        if self.kv_proj is not None:
            k, v = self._split_packed(self.kv_proj(memory), 2)
        else:
            k, v = self._split_packed(self._joined(memory, self.k_proj, self.v_proj), 2)
        return k.contiguous(), v.contiguous()

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values (B, h, T, d) of self-attention over x."""
        if self.qkv_proj is not None:
            return self._split_packed(self.qkv_proj(x), 3)
        if self.k_proj.in_features != self.q_proj.in_features:
            return (self.project_q(x), *self.project_kv(x))
        return self._split_packed(self._joined(x, self.q_proj, self.k_proj, self.v_proj), 3)

    @staticmethod
    def _joined(x: torch.Tensor, *linears: nn.Linear) -> torch.Tensor:
        """Several projections of x in one matmul, their weights joined on the fly (training: the joined copy gets
        the gradients back to each weight; inference keeps a joined copy instead, see pack_projections)."""
        weight = torch.cat([lin.weight for lin in linears])  # (parts * d_model, d_in)
        bias = torch.cat([lin.bias for lin in linears])
        return F.linear(x, weight, bias)  # (B, T, parts * d_model)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Projected queries (B, h, T, d) over projected k/v; returns (B, T, d_model) and weights (B, h, T, S) if asked.

        k/v (and the mask) may be held once per source for B = n * K rows grouped by source (beam search): the K
        rows' queries then attend together, as K*T query positions of their source.
        """
        B, _, T, _ = q.shape
        n = k.size(0)
        if n != B:
            out, weights = self.attend(_group(q, n), k, v, mask, need_weights)  # as n sources of K*T positions
            return out.reshape(B, T, -1), None if weights is None else _ungroup(weights, B)
        dropout = self.dropout if self.training else 0.0
        if need_weights or (not self.training and T <= SHORT_QUERIES):
            # Inspection, and decoding steps (a query or a beam's few): the written-out form, which for so few
            # queries also runs faster on the CPU than torch's fused kernel (measured: 0.4 vs 1.4 ms at 200 rows).
            out, weights = scaled_dot_product_attention(q, k, v, mask)
            weights = weights if need_weights else None
        else:
            # Same maths in torch's fused kernel (checked equal in tests): faster when weights are not needed.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
            weights = None
        out = out.transpose(1, 2).reshape(B, T, self.heads * self.d_head)  # (B, T, d_model)
        return self.out_proj(out), weights

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if query is memory:  # self-attention
            q, k, v = self.project_qkv(query)
        else:
            q, (k, v) = self.project_q(query), self.project_kv(memory)
        return self.attend(q, k, v, mask, need_weights)
