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
