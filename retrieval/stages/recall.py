"""Recall: each protein's candidate functions, the function index's nearest by the towers' score
merged with every term its homology hits transfer, and each reference's evidence for them.

Shared by the annotator and by re-ranker training, so both see candidates built the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from index.vector_index import FunctionIndex
from retrieval.homology import HomologySource, Transfer
from retrieval.models.scoring import query_vectors


@dataclass
class Evidence:
    """One reference's label-transfer evidence for a chunk of queries."""

    transfer: Transfer
    ref_col: np.ndarray  # catalogue row -> reference term column (-1: the reference lacks the term)


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` of integer keys, by one sort: numpy 2's hashing ``np.unique`` took 6 times as long
    on the half million (protein, row) keys of a chunk."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def merge_candidates(recall_rows: np.ndarray, extra: list[np.ndarray] | None) -> np.ndarray:
    """Per protein, the recall rows followed by the extra rows not already recalled (ascending, each
    once); padded with -1. One sort of (protein, row) keys for the whole chunk: a set difference per
    protein took a sixteenth of a hybrid run's scoring."""
    if not extra:
        return recall_rows
    n, recalled = len(recall_rows), recall_rows >= 0
    more = np.concatenate([np.asarray(m, dtype=np.int64).ravel() for m in extra])
    span = int(max(recall_rows.max(initial=-1), more.max(initial=-1))) + 1
    owner = np.repeat(np.arange(n, dtype=np.int64), [np.size(m) for m in extra])
    keys = unique_sorted(owner * span + more)
    taken = (np.arange(n, dtype=np.int64)[:, None] * span + recall_rows)[recalled]  # a top-k: distinct
    keys = keys[~np.isin(keys, taken, assume_unique=True)]
    owner, rows = keys // span, keys % span
    n_recalled, n_extra = recalled.sum(axis=1), np.bincount(owner, minlength=n)
    out = np.full((n, int((n_recalled + n_extra).max(initial=0))), -1, dtype=np.int64)
    width = min(recall_rows.shape[1], out.shape[1])
    packed = np.take_along_axis(recall_rows, np.argsort(~recalled, axis=1, kind="stable"), axis=1)[:, :width]
    out[:, :width] = np.where(np.arange(width) < n_recalled[:, None], packed, -1)
    rank = np.arange(len(keys)) - (np.cumsum(n_extra) - n_extra)[owner]
    out[owner, n_recalled[owner] + rank] = rows
    return out


def homology_candidates(recall_rows: np.ndarray, sources: list[HomologySource], hits: list[pd.DataFrame],
                        queries: list[str], taxa: list[str] | None = None) -> tuple[np.ndarray, list[Evidence]]:
    """Recall rows plus every term any source transfers from its hits, and each source's evidence
    (``taxa``: the queries' NCBI taxa for the species prior; None or "": unknown)."""
    transfers = [Transfer.from_hits(s.reference, h, queries, taxa) for s, h in zip(sources, hits)]
    per_source = [s.candidate_rows(t) for s, t in zip(sources, transfers)]
    extra = [np.concatenate(rows) for rows in zip(*per_source)] if per_source else None
    return merge_candidates(recall_rows, extra), [Evidence(t, s.ref_col) for s, t in zip(sources, transfers)]


def recall(index: FunctionIndex, u: np.ndarray, k: int, sources: list[HomologySource], hits: list[pd.DataFrame],
           queries: list[str], taxa: list[str]) -> tuple[np.ndarray, list[Evidence]]:
    """Candidate rows (B, K) of proteins with vectors ``u`` (-1: padding): the ``k`` nearest of the
    index, then the homology candidates (:func:`homology_candidates`); and each source's evidence."""
    _, rows = index.search(query_vectors(u), k)
    return homology_candidates(rows, sources, hits, queries, taxa)


def split_hits(hits: list[pd.DataFrame], ids: list[str], size: int) -> list[list[pd.DataFrame]]:
    """Each reference's hits split by the chunk of ``size`` queries their query is in (a chunk's
    transfer then reads its own hits, not the whole block's)."""
    chunks, queries = -(-len(ids) // size), pd.Index(ids)
    out = []
    for frame in hits:
        chunk = queries.get_indexer(frame["query"].to_numpy()) // size
        groups = frame.groupby(chunk, sort=False).indices
        out.append([frame.iloc[groups[k]] if k in groups else frame.iloc[:0] for k in range(chunks)])
    return out
