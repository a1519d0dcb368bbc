"""Lending: scores for functions no reference annotates, lent by the annotated GO terms nearest in meaning.

With homology, a candidate that no reference labels (a GO term newer than the references or held
out of them, a function written in plain words) has no transfer evidence, so only the two-tower
re-ranker can score it, from its text. Its score becomes the mean of that and the cosine-weighted
mean of the homology re-ranker's scores of the ``NEIGHBOURS`` GO terms the references annotate
whose texts are nearest in meaning (its *lenders*): their homology evidence says which protein
families carry functions worded like it. Meaning is the text backbone's sentence vector (MiniLM's,
trained for sentence similarity), not the tower's projection, and lenders come from every aspect:
on GO terms held out of training and of the references this chose better lenders than the tower's
space within the term's own aspect (docs/benchmarks.md#held-out-terms-protocols-a-and-b-of-issue-13).
Each lender lends the homology re-ranker's score for the protein, whether or not its hits transfer
the lender (that score still weighs the towers and the priors; lending 0 without transfer ranked
held-out terms 0.01-0.02 AUROC worse).
"""
from __future__ import annotations

import hashlib
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from index.errors import UNREADABLE, InputError, require_fingerprint
from index.vector_index import FunctionIndex
from retrieval.feature_cache import cache_dir
from retrieval.homology import HomologySource, annotated_rows
from retrieval.stages.recall import Evidence, unique_sorted
from retrieval.stages.rerank import FunctionVectors, Reranking

LOG = logging.getLogger(__name__)
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
        self._pool_vectors = pool
        self.rows = np.full((len(queries), self.k), -1, dtype=np.int64)
        self.weights = np.zeros((len(queries), self.k), dtype=np.float32)
        self._found = np.zeros(len(queries), dtype=bool)

    @cached_property
    def _unit(self) -> torch.Tensor:
        """The lenders' unit vectors, made when rows are first looked up (a saved table needs none)."""
        return torch.from_numpy(_unit(np.asarray(self._pool_vectors, dtype=np.float32)[self.pool]))

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
        except UNREADABLE:
            return False
        if rows.shape != self.rows.shape or weights.shape != self.weights.shape or found.shape != self._found.shape:
            return False
        self.rows, self.weights, self._found = rows, weights.astype(np.float32), found.astype(bool)
        return True


def table_key(queries: str, pool: str, references: list[str], k: int = NEIGHBOURS) -> str:
    """The name of a saved lender table: what its rows' and the lenders' meaning vectors are (their
    sha256, :func:`index.vector_index.meaning_digest`), which references say what is annotated, and k."""
    return hashlib.sha256("|".join([queries, pool, *references, str(k)]).encode()).hexdigest()[:16]


def borrow(probs: np.ndarray, rows: np.ndarray, unseen: np.ndarray, nearest: NearestAnnotated,
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
        lent = values_at(lender_rows, lender_probs, qi, neighbours, nearest.n_lenders)
        probs[qi[has], qj[has]] = blend(probs[qi[has], qj[has]], (lent * weights).sum(axis=1)[has])


def blend(own: np.ndarray, lent: np.ndarray) -> np.ndarray:
    """A borrowing function's score: the mean of its own (the two-tower re-ranker's) and the lent one."""
    return (own + lent) / 2


def lenders_of(rows: np.ndarray, unseen: np.ndarray, nearest: NearestAnnotated) -> np.ndarray:
    """(B, L) the lender rows each protein's ``unseen`` candidates borrow from, each once (-1: padding)."""
    qi, qj = np.nonzero(unseen)
    neighbours, weights = nearest.lookup(rows[qi, qj])
    keep = weights > 0
    keys = unique_sorted(np.repeat(qi, neighbours.shape[1]).reshape(neighbours.shape)[keep] * nearest.n_lenders
                         + neighbours[keep])
    protein, row = np.divmod(keys, nearest.n_lenders) if nearest.n_lenders else (keys, keys)
    return rows_per_protein(protein, row, len(rows))


def rows_per_protein(proteins: np.ndarray, rows: np.ndarray, n_proteins: int) -> np.ndarray:
    """(n_proteins, width) each protein's ``rows`` in order, padded with -1; ``proteins`` sorted."""
    counts = np.bincount(proteins, minlength=n_proteins)
    out = np.full((n_proteins, int(counts.max(initial=0))), -1, dtype=np.int64)
    out[proteins, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = rows
    return out


def values_at(rows: np.ndarray, values: np.ndarray, proteins: np.ndarray, wanted: np.ndarray, n_rows: int,
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


class LenderIndex:
    """The function index whose annotated functions lend, as the annotator reads it: the references
    mapped onto its rows, its rows' vectors and their meaning."""

    def __init__(self, index: FunctionIndex, sources: list[HomologySource], vectors: FunctionVectors):
        if index.meaning is None:
            raise InputError(f"the lender index of {len(index.catalogue)} functions has no meaning vectors: "
                             "rebuild it with `prot-retrieve build-index`")
        self.index, self.sources, self.vectors = index, sources, vectors
        self.annotated = annotated_rows(sources)


class Lending:
    """Lends to the candidates of one function index that no reference annotates.

    Args:
        index: the annotator's function index (its rows are the candidates).
        vectors: that index's :class:`FunctionVectors`, or a function giving them.
        reranking: scores the lenders (the homology re-ranker).
        lenders: the index whose annotated functions lend, or a function that loads it when first
            needed; default ``index`` itself (a free-text catalogue lends nothing to itself).
    """

    def __init__(self, index: FunctionIndex, vectors: Callable[[], FunctionVectors], reranking: Reranking,
                 lenders: FunctionIndex | Callable[[], FunctionIndex] | None = None):
        self.index, self.reranking, self._vectors, self._lenders = index, reranking, vectors, lenders
        self._table: LenderIndex | None = None
        self._nearest: NearestAnnotated | None = None

    def table(self) -> LenderIndex:
        """The lender index as this annotator reads it, loaded on first use."""
        if self._table is None:
            lenders = self._lenders() if callable(self._lenders) else self._lenders
            sources = self.reranking.sources
            if lenders is None or lenders is self.index:
                self._table = LenderIndex(self.index, sources, self._vectors())
            else:
                require_fingerprint("lender index", lenders.fingerprint,
                                    self.reranking.model.text_encoder.fingerprint(), "rebuild it with `prot-retrieve build-index`")
                self._table = LenderIndex(lenders, [HomologySource(s.reference, lenders.catalogue.ids)
                                                    for s in sources],
                                          FunctionVectors.of_index(lenders, self.reranking.scale))
        return self._table

    def nearest(self) -> NearestAnnotated:
        """The lenders of the index's rows; the table of every row's lenders is kept in the cache."""
        if self._nearest is None:
            table = self.table()
            if self.index.meaning is None:
                raise InputError(f"the function index of {len(self.index.catalogue)} functions has no meaning "
                                 "vectors: rebuild it with `prot-retrieve build-index`")
            self._nearest = NearestAnnotated(self.index.meaning, table.index.meaning, table.annotated)
            name = table_key(self.index.config["meaning_sha256"], table.index.config["meaning_sha256"],
                             [s.reference.fingerprint() for s in self.reranking.sources])
            path = cache_dir() / "lenders" / f"{name}.npz"
            if not self._nearest.load(path):
                self._nearest.lookup(np.flatnonzero(~annotated_rows(self.reranking.sources)))
                self._nearest.save(path)
        return self._nearest

    def nearest_to(self, meaning: np.ndarray) -> NearestAnnotated:
        """The lenders of functions given by their ``meaning`` vectors (free text scored directly)."""
        table = self.table()
        return NearestAnnotated(meaning, table.index.meaning, table.annotated)

    def apply(self, u: np.ndarray, rows: np.ndarray, probs: np.ndarray, unseen: np.ndarray, evidence: list[Evidence],
             precision: str, nearest: NearestAnnotated, shared: bool = False) -> None:
        """In place: the ``unseen`` candidates among ``rows`` (B, K) borrow from their lenders.

        ``shared``: the rows are this index's, so where it is its own lender index the lenders'
        probabilities are read from the candidates already scored (``probs``)."""
        lenders = lenders_of(rows, unseen, nearest)
        scored = self.lender_probs(u, lenders, evidence, precision, (rows, probs) if shared else None)
        borrow(probs, rows, unseen, nearest, lenders, scored)

    def lender_probs(self, u: np.ndarray, lenders: np.ndarray, evidence: list[Evidence], precision: str,
                     candidates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The homology re-ranker's probabilities (B, L) of each protein's ``lenders`` (rows of the
        lender index, -1: padding): read from ``candidates`` (rows and probabilities of the lender
        index itself, already scored) where they are among them, the others scored here."""
        table = self.table()
        out = np.full(lenders.shape, np.nan, dtype=np.float32)
        if candidates is not None and table.index is self.index:
            out = values_at(*candidates, np.arange(len(lenders)), lenders, len(self.index.catalogue), missing=np.nan)
        todo = (lenders >= 0) & np.isnan(out)
        if todo.any():
            found = [Evidence(e.transfer, s.ref_col) for e, s in zip(evidence, table.sources)]
            out[todo] = self.reranking.score(u, np.where(todo, lenders, -1), table.vectors, found, precision)[todo]
        return np.nan_to_num(out)

    def borrowed(self, u: np.ndarray, items: np.ndarray, cols: np.ndarray, evidence: list[Evidence],
                 precision: str) -> tuple[np.ndarray, np.ndarray]:
        """For the pairs (items, catalogue rows cols), the part of the score borrowed from lenders
        (NaN where nothing is borrowed) and the lender that lent most ("" where none)."""
        lent, source = np.full(len(items), np.nan), np.full(len(items), "", dtype=object)
        unseen = self.reranking.unseen(cols[None, :], evidence)
        if unseen is None:
            return lent, source
        nearest = self.nearest()
        at = np.flatnonzero(unseen[0])
        at = at[np.argsort(items[at], kind="stable")]
        neighbours, weights = nearest.lookup(cols[at])
        mine = rows_per_protein(items[at], cols[at], len(u))
        lenders = lenders_of(mine, mine >= 0, nearest)
        shares = weights * values_at(lenders, self.lender_probs(u, lenders, evidence, precision), items[at], neighbours,
                                nearest.n_lenders)
        has = weights.sum(axis=1) > 0
        lent[at[has]] = shares.sum(axis=1)[has]
        ids = np.asarray(self.table().index.catalogue.ids, dtype=object)
        source[at[has]] = ids[neighbours[has, shares[has].argmax(axis=1)]]
        return lent, source
