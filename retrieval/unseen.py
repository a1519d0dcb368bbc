"""Scores for functions no reference annotates, lent by the annotated GO terms nearest in meaning.

With homology, a candidate that no reference labels (a GO term newer than the references or held
out of them, a function written in plain words) has no transfer evidence, so only the two-tower
re-ranker can score it, from its text. Its score becomes the mean of that and the cosine-weighted
mean of the homology re-ranker's scores of the ``NEIGHBOURS`` GO terms the references annotate
whose texts are nearest in meaning: their homology evidence says which protein families carry
functions worded like it. Meaning is the text backbone's sentence vector (MiniLM's, trained for
sentence similarity), not the tower's projection, and neighbours come from every aspect: on GO
terms held out of training and of the references this chose better lenders than the tower's space
within the term's own aspect (docs/benchmarks.md#held-out-terms-protocols-a-and-b-of-issue-13).
Each lender lends the homology re-ranker's score for the protein, whether or not its hits transfer
the lender (that score still weighs the towers and the priors; lending 0 without transfer ranked
held-out terms 0.01-0.02 AUROC worse).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

#: Annotated functions an unannotated one borrows from.
NEIGHBOURS = 10
_BLOCK = 1024  # queries whose similarities to the pool are computed at a time


class NearestAnnotated:
    """For rows of one function table, the annotated rows of a lender table nearest in meaning,
    found on first use.

    Args:
        queries: (N, D) meaning vectors of the rows looked up (they need not be unit vectors).
        pool: (M, D) meaning vectors of the lender table's rows.
        annotated: (M,) lender rows some reference labels; only they lend.
        k: neighbours per row.
    """

    def __init__(self, queries: np.ndarray, pool: np.ndarray, annotated: np.ndarray, k: int = NEIGHBOURS):
        self.queries, self.n_lenders = queries, len(pool)
        self.pool = np.flatnonzero(np.asarray(annotated, dtype=bool))
        self.k = min(k, len(self.pool))
        self._unit = torch.from_numpy(_unit(np.asarray(pool, dtype=np.float32)[self.pool]))
        self.rows = np.full((len(queries), self.k), -1, dtype=np.int64)
        self.weights = np.zeros((len(queries), self.k), dtype=np.float32)
        self._found = np.zeros(len(queries), dtype=bool)

    def lookup(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lender rows (len(rows), k) (-1: none) and weights summing to 1 (all 0: none) of ``rows``."""
        todo = np.unique(rows[~self._found[rows]])
        for start in range(0, len(todo) if self.k else 0, _BLOCK):
            part = todo[start: start + _BLOCK]
            with torch.inference_mode():  # torch's top-k: 3 times faster than numpy's argpartition here
                sims, top = torch.topk(torch.from_numpy(_unit(self.queries[part])) @ self._unit.T, self.k, dim=1)
            weights = np.clip(sims.numpy(), 0, None)
            total = weights.sum(axis=1, keepdims=True)
            self.rows[part] = self.pool[top.numpy()]
            self.weights[part] = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
        self._found[todo] = True
        return self.rows[rows], self.weights[rows]

    def save(self, path: Path) -> None:
        """Write the lenders found so far, atomically (a table for every row takes seconds to find)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(partial, rows=self.rows, weights=self.weights, found=self._found)
        os.replace(partial, path)

    def load(self, path: Path) -> bool:
        """Read the lenders :meth:`save` wrote for these same vectors; False when there are none
        (or they do not fit: a corrupt file is computed again)."""
        try:
            with np.load(path) as saved:
                rows, weights, found = saved["rows"], saved["weights"], saved["found"]
        except (OSError, ValueError, KeyError, EOFError):
            return False
        if rows.shape != self.rows.shape or weights.shape != self.weights.shape or found.shape != self._found.shape:
            return False
        self.rows, self.weights, self._found = rows, weights.astype(np.float32), found.astype(bool)
        return True


def table_key(queries: str, pool: str, references: list[str], k: int = NEIGHBOURS) -> str:
    """The name of a saved lender table: what its rows' and the lenders' meaning vectors are (their
    sha256, :func:`index.vector_index.meaning_digest`), which references say what is annotated, and k."""
    return hashlib.sha256("|".join([queries, pool, *references, str(k)]).encode()).hexdigest()[:16]


def lend(probs: np.ndarray, rows: np.ndarray, unseen: np.ndarray, nearest: NearestAnnotated,
         lender_rows: np.ndarray, lender_probs: np.ndarray) -> None:
    """In place: each ``unseen`` candidate's probability becomes the mean of its own and the
    weighted probabilities of its lenders for the same protein.

    Args:
        probs: (B, K) probabilities of the candidate ``rows`` (B, K) (-1: padding).
        unseen: (B, K) the candidates to blend (no reference labels them).
        nearest: their lenders, by row.
        lender_rows, lender_probs: (B, L) each protein's scored lender rows (-1: padding) and
            probabilities; a lender missing from its protein's row lends 0.
    """
    qi, qj = np.nonzero(unseen)
    neighbours, weights = nearest.lookup(rows[qi, qj])
    has = weights.sum(axis=1) > 0
    if has.any():
        lent = pick(lender_rows, lender_probs, qi, neighbours, nearest.n_lenders)
        probs[qi[has], qj[has]] = (probs[qi[has], qj[has]] + (lent * weights).sum(axis=1)[has]) / 2


def lenders_of(rows: np.ndarray, unseen: np.ndarray, nearest: NearestAnnotated) -> np.ndarray:
    """(B, L) the lender rows each protein's ``unseen`` candidates borrow from, each once (-1: padding)."""
    qi, qj = np.nonzero(unseen)
    neighbours, weights = nearest.lookup(rows[qi, qj])
    keep = weights > 0
    keys = np.unique(np.repeat(qi, neighbours.shape[1]).reshape(neighbours.shape)[keep] * nearest.n_lenders
                     + neighbours[keep])
    protein, row = np.divmod(keys, nearest.n_lenders) if nearest.n_lenders else (keys, keys)
    return pack(protein, row, len(rows))


def pack(proteins: np.ndarray, rows: np.ndarray, n_proteins: int) -> np.ndarray:
    """(n_proteins, width) each protein's ``rows`` in order, padded with -1; ``proteins`` sorted."""
    counts = np.bincount(proteins, minlength=n_proteins)
    out = np.full((n_proteins, int(counts.max(initial=0))), -1, dtype=np.int64)
    out[proteins, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = rows
    return out


def pick(rows: np.ndarray, values: np.ndarray, proteins: np.ndarray, wanted: np.ndarray, n_rows: int,
         missing: float = 0.0) -> np.ndarray:
    """The ``values`` (B, K) of rows (B, K) (-1: padding, rows < ``n_rows``) at the ``wanted`` rows
    (n, W) of the ``proteins`` (n,); ``missing`` where the protein has no such row (or ``wanted`` is -1)."""
    present = rows >= 0
    keys = (np.arange(len(rows))[:, None] * n_rows + rows)[present]
    order = np.argsort(keys, kind="stable")
    keys, found = keys[order], values[present][order]
    if not len(keys):
        return np.full(wanted.shape, missing, dtype=np.float32)
    want = proteins[:, None] * n_rows + wanted
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where((wanted >= 0) & (keys[at] == want), found[at], missing).astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
