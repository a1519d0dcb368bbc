"""Evidence behind each reported prediction (``annotate --explain``): where its score comes from.

For a reported (protein, term) pair, whether the re-ranker scored it or GO propagation carried a
descendant's score up to it:

| column | what it says |
|---|---|
| ``tower`` | the two towers' own probability, sigmoid(scale · u·v + bias) |
| ``prior`` | the term's prior alone, sigmoid(bias) (its training frequency, learned) |
| ``transfer_<ref>`` | the bitscore-weighted kNN label-transfer score of the term from each reference |
| ``support_protein`` | the reference protein with the best bitscore among the hits annotated with the term |
| ``support_identity``, ``support_bitscore`` | that hit's percent identity and bitscore |
| ``lent`` | for a function no reference annotates: the part of its score lent by the annotated GO terms nearest in meaning (:mod:`retrieval.stages.lending`; the score is the mean of this and the two-tower re-ranker's); empty otherwise |
| ``lent_from`` | the GO term that lent the most of it |
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from retrieval.stages.recall import Evidence
from retrieval.homology import HomologySource


def explanation(items: np.ndarray, cols: np.ndarray, u: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float,
                sources: list[HomologySource], evidence: list[Evidence], hits: list[pd.DataFrame],
                queries: list[str], borrowed: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Evidence columns (see the module docstring) for the pairs (queries[items], catalogue row cols).

    Args:
        items, cols: the reported pairs: query index and catalogue row.
        u: the queries' protein vectors; v, bias: the reported terms' vectors and biases (one per pair).
        sources, evidence, hits: per reference, its catalogue mapping, transfer evidence and hits.
        borrowed: per pair, the ``lent`` part and its ``lent_from`` term.
    """
    out = {"tower": _sigmoid(scale * np.einsum("nd,nd->n", u[items], v) + bias), "prior": _sigmoid(bias)}
    support = _Support(len(items))
    for source, found, source_hits in zip(sources, evidence, hits):
        ref_cols = found.ref_col[cols]
        knn = np.zeros(len(items))
        present = ref_cols >= 0
        knn[present] = np.asarray(found.transfer.knn_score[items[present], ref_cols[present]]).ravel()
        out[f"transfer_{source.reference.folder.name}"] = knn
        support.update(source, source_hits, items, ref_cols, queries)
    return pd.DataFrame({**out, "support_protein": support.protein, "support_identity": support.identity,
                         "support_bitscore": support.bitscore, "lent": borrowed[0], "lent_from": borrowed[1]})


class _Support:
    """Per pair, the best-bitscore hit (over every reference) whose target carries the pair's term."""

    def __init__(self, n: int):
        self.protein = [""] * n
        self.identity, self.bitscore = np.zeros(n), np.zeros(n)

    def update(self, source: HomologySource, hits: pd.DataFrame, items: np.ndarray, ref_cols: np.ndarray,
               queries: list[str]) -> None:
        labels = source.reference.labels
        rows = pd.Index(source.reference.ids).get_indexer(hits["target"].to_numpy())
        by_query: dict[str, list[tuple[float, float, str, int]]] = {}
        for hit in zip(hits["query"], hits["bitscore"], hits["identity"], hits["target"], rows):
            if hit[4] >= 0:
                by_query.setdefault(hit[0], []).append(hit[1:])
        for pair, (item, col) in enumerate(zip(items, ref_cols)):
            for bitscore, identity, target, row in by_query.get(queries[item], ()) if col >= 0 else ():
                carried = labels.indices[labels.indptr[row]: labels.indptr[row + 1]]
                if bitscore > self.bitscore[pair] and col in carried:
                    self.protein[pair], self.identity[pair], self.bitscore[pair] = target, identity, bitscore


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
