"""The training objective: token-level cross-entropy of next-token logits against the reference, padding ignored."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from translate.tokenizer import PAD_ID


def token_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of (B, T, V) logits against (B, T) target ids; "mean" is per real (non-pad) token."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
        ignore_index=PAD_ID, label_smoothing=label_smoothing, reduction=reduction,
    )
