"""Candidate sets for re-ranking: the towers' recall merged with homology transfers, and their features.

Shared by the annotator and by re-ranker training, so both see candidates built the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrieval.homology import HomologySource, Transfer, homology_feature_names
from retrieval.scoring import pair_features


@dataclass
class Evidence:
    """One reference's label-transfer evidence for a chunk of queries."""

    transfer: Transfer
    ref_col: np.ndarray  # catalogue row -> reference term column (-1: the reference lacks the term)


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


def homology_candidates(recall_rows: np.ndarray, sources: list[HomologySource], hits: list[pd.DataFrame],
                        queries: list[str], taxa: list[str] | None = None) -> tuple[np.ndarray, list[Evidence]]:
    """Recall rows plus every term any source transfers from its hits, and each source's evidence
    (``taxa``: the queries' NCBI taxa for the species prior; None or "": unknown)."""
    transfers = [s.reference.transfer(h, queries, taxa) for s, h in zip(sources, hits)]
    per_source = [s.candidate_rows(t) for s, t in zip(sources, transfers)]
    extra = [np.concatenate(rows) for rows in zip(*per_source)] if per_source else None
    return merge_candidates(recall_rows, extra), [Evidence(t, s.ref_col) for s, t in zip(sources, transfers)]


def candidate_features(names, u: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float, rows: np.ndarray,
                       evidence: list[Evidence] = (), queries: np.ndarray | None = None) -> np.ndarray:
    """(B, K, F) features of candidate rows (-1: padding, all features zero); a source's features are
    zero when it gives no evidence. ``queries``: the evidence's query of each of the B proteins
    (default: the first B, in order)."""
    extra = {}
    source = 0
    while any(n in names for n in homology_feature_names(source)):
        own = homology_feature_names(source)
        if source < len(evidence):
            found = evidence[source]
            cols = np.where(rows >= 0, found.ref_col[np.clip(rows, 0, None)], -1)
            values = found.transfer.features(cols, np.arange(len(rows)) if queries is None else queries)
            extra.update(zip(own, (values[n] for n in homology_feature_names(0))))
        else:
            extra.update((n, np.zeros(rows.shape, dtype=np.float32)) for n in own)
        source += 1
    features = pair_features(names, u, v, bias, scale, extra)
    features[rows < 0] = 0.0
    return features
