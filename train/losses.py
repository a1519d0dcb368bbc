"""Losses for the towers: BCE for per-term probabilities, multi-positive InfoNCE for ranking."""
from __future__ import annotations

import torch
from torch import nn


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the entries where ``mask`` is True."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1)


def multi_positive_infonce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per protein: -mean over its positives of log softmax over its valid candidates.

    With many positives per protein (propagated GO labels) this is the supervised-contrastive form:
    each positive competes against the negatives and the other positives, which is what the
    inner-product recall ranks by.
    """
    masked = logits.masked_fill(~mask, float("-inf"))
    log_prob = masked - torch.logsumexp(masked, dim=1, keepdim=True)
    n_pos = targets.sum(1)
    per_protein = -(log_prob.masked_fill(targets == 0, 0.0)).sum(1) / n_pos.clamp(min=1)
    has = n_pos > 0
    return per_protein[has].mean() if has.any() else logits.sum() * 0
