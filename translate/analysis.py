"""Measurements that explain the comparison: gradient flow to the encoder states, attention maps.

Gradient flow: for a batch, the norm of dL/dh_t for every encoder output h_t, grouped by the distance of t from
the end of its source sentence (0 = the last real token, EOS included). A recurrent encoder without attention
passes gradient to early positions only through its recurrence, so the norm decays with distance; attention
gives every position a direct path. This is the vanishing-gradient lesson, measured.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from translate.data import Batch
from translate.loss import token_cross_entropy
from translate.models.base import Seq2Seq


@torch.backends.cudnn.flags(enabled=False)  # cuDNN's RNN backward runs in training mode only; this is eval mode
def gradient_norms_by_distance(model: Seq2Seq, batches: Iterable[Batch], max_distance: int = 30) -> list[float | None]:
    """Mean ||dL/dh_t|| per distance from the end of the source (index = distance), over all batches.

    L is the summed token cross-entropy of the reference, in eval mode (no dropout). Distances with no token
    get None.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(max_distance + 1, dtype=torch.float64)
    counts = torch.zeros(max_distance + 1, dtype=torch.float64)
    device = next(model.parameters()).device
    try:
        for batch in batches:
            batch = batch.to(device)
            state, parts = model.encode_traced(batch.src, batch.src_mask)
            logits = model.decode(batch.tgt_in, state).logits  # (B, T, V)
            loss = token_cross_entropy(logits, batch.tgt_out, reduction="sum")
            flat = [t for part in parts for t in (part if isinstance(part, list) else [part])]
            grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
            squared = torch.zeros(batch.src.shape, dtype=torch.float64)  # (B, S)
            for part in parts:
                if isinstance(part, list):  # one (B, H) tensor per position
                    g = torch.stack([_zero_if_none(next(grads), t) for t in part], dim=1)  # (B, S, H)
                else:
                    g = _zero_if_none(next(grads), part)  # (B, S, H)
                squared += g.double().pow(2).sum(-1).cpu()
            norms = squared.sqrt()  # (B, S): ||dL/dh_t||, directions of a bidirectional encoder together
            lengths = batch.src_mask.sum(1).cpu()  # (B,)
            positions = torch.arange(batch.src.size(1))[None, :]  # (1, S)
            distance = lengths[:, None] - 1 - positions  # (B, S): 0 at the last real token
            real = (distance >= 0) & (distance <= max_distance)
            sums.index_add_(0, distance[real], norms[real])
            counts.index_add_(0, distance[real], torch.ones_like(norms[real]))
    finally:
        model.train(was_training)
    return [float(s / c) if c else None for s, c in zip(sums, counts)]


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
