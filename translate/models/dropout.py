"""Dropout whose masks are drawn 16 bits at a time, for every model alike.

torch's CPU dropout draws one float per element (`bernoulli_`) and keeps a 4-byte mask for the backward pass: 13 %
of a training step of the default Transformer on this CPU. Drawing 64 random bits at a time and comparing each
16 of them with a threshold costs a fifth of that, and the mask kept is a bool. The drop probability is rounded
to a multiple of 1/65,536. On a GPU torch's fused kernel is used as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # 16-bit draws


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each element of x with probability p (to 1/65,536), scale the rest by 1 / (1 - p)."""
    if x.is_cuda:
        return F.dropout(x, p, training=True)
    n = x.numel()
    bits = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= round(p * _LEVELS) - _LEVELS // 2  # (x.shape) bool
    return x * keep * (1.0 / (1.0 - p))


class Dropout(nn.Module):
    """`nn.Dropout`'s interface (active in training mode only) over `dropout` above."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p) if self.training and self.p > 0 else x

    def extra_repr(self) -> str:
        return f"p={self.p}"
