"""Candidate sets for re-ranking: the towers' recall merged with homology transfers, and their features.

Shared by the annotator and by re-ranker training, so both see candidates built the same way.
"""
from __future__ import annotations

import numpy as np

from retrieval.homology import HOMOLOGY_FEATURES, Transfer
from retrieval.scoring import pair_features


def merge_candidates(recall_rows: np.ndarray, extra: list[np.ndarray] | None) -> np.ndarray:
    """Per protein, the recall rows followed by extra rows not already recalled; padded with -1."""
    if not extra:
        return recall_rows
    merged = []
    for rows, more in zip(recall_rows, extra):
        rows = rows[rows >= 0]
        merged.append(np.concatenate([rows, np.setdiff1d(more, rows, assume_unique=False)]))
    width = max(len(m) for m in merged)
    out = np.full((len(merged), width), -1, dtype=np.int64)
    for i, m in enumerate(merged):
        out[i, : len(m)] = m
    return out


def candidate_features(names, u: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float, rows: np.ndarray,
                       transfer: Transfer | None = None, ref_col: np.ndarray | None = None) -> np.ndarray:
    """(B, K, F) features of candidate rows; homology features are zero when there is no transfer."""
    extra = None
    if any(n in HOMOLOGY_FEATURES for n in names):
        if transfer is None:
            extra = {n: np.zeros(rows.shape, dtype=np.float32) for n in HOMOLOGY_FEATURES}
        else:
            cols = np.where(rows >= 0, ref_col[np.clip(rows, 0, None)], -1)
            extra = transfer.features(cols, np.arange(len(rows)))
    return pair_features(names, u, v, bias, scale, extra)
