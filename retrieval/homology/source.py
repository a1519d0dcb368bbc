"""One reference as seen by one function index: which catalogue rows its transferred terms are."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from retrieval.homology.reference import Reference
from retrieval.homology.transfer import Transfer


class HomologySource:
    """Maps a reference's terms onto the rows of an index's catalogue.

    Args:
        reference: the annotated reference proteins.
        catalogue_ids: the index's function ids (row order).
    """

    def __init__(self, reference: Reference, catalogue_ids):
        self.reference = reference
        self.ref_col = pd.Index(reference.terms).get_indexer(list(catalogue_ids))  # catalogue row -> ref column
        self.row_of_col = np.full(len(reference.terms), -1, dtype=np.int64)
        present = self.ref_col >= 0
        self.row_of_col[self.ref_col[present]] = np.flatnonzero(present)

    def without(self, rows: np.ndarray) -> "HomologySource":
        """The same source with the catalogue ``rows`` (a boolean mask) absent from the reference, as
        for terms it has no labels of (training the re-ranker on simulated unseen terms)."""
        out = copy.copy(self)
        out.ref_col = np.where(rows, -1, self.ref_col)
        out.row_of_col = np.where(np.isin(self.row_of_col, np.flatnonzero(rows)), -1, self.row_of_col)
        return out

    def candidate_rows(self, transfer: Transfer) -> list[np.ndarray]:
        """Catalogue rows of every term transferred from a hit with a positive score, per query."""
        knn = transfer.knn_score
        out = []
        for i in range(knn.shape[0]):
            span = slice(knn.indptr[i], knn.indptr[i + 1])
            rows = self.row_of_col[knn.indices[span][knn.data[span] > 0]]
            out.append(rows[rows >= 0])
        return out


def annotated_rows(sources: list[HomologySource]) -> np.ndarray:
    """(catalogue rows,) whether any of the references labels each function."""
    return np.any([s.ref_col >= 0 for s in sources], axis=0)
