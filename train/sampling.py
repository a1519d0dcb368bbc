"""Candidate terms per training batch, and which of them count as negatives for which protein.

Why not the naive proteins x all-terms grid: projecting every catalogue text every step costs a
full pass over ~20k terms. Instead a batch scores the union of
  * its proteins' positive terms (in-batch negatives: one protein's positives are the others' negatives),
  * random catalogue terms (so rare terms are pushed down too),
  * GO siblings of each protein's annotated terms (hard negatives: same parent, different function).
Negatives that are descendants of a protein's annotated terms are masked out: a protein annotated
"kinase activity" may well be an unannotated "protein serine kinase", so calling that a negative
would teach the wrong thing (GO annotations are open-world).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class CandidateSampler:
    """Builds (candidate columns, targets, mask) for a batch of proteins.

    Args:
        y: (proteins x catalogue columns) propagated labels.
        leaves: (proteins x live terms) annotated terms, unpropagated.
        terms: live-term index of each catalogue column.
        ancestors: (live terms x live terms) ancestor closure incl. self.
        child, parent: DAG edges over live terms (for siblings).
        random_negatives, sibling_negatives: how many of each to add.
    """

    def __init__(self, y: sp.csr_matrix, leaves: sp.csr_matrix, terms: np.ndarray, ancestors: sp.csr_matrix,
                 child: np.ndarray, parent: np.ndarray, random_negatives: int, sibling_negatives: int):
        self.y, self.leaves, self.terms = y, leaves, terms
        self.n_columns = len(terms)
        column = np.full(ancestors.shape[0], -1, dtype=np.int64)
        column[terms] = np.arange(len(terms))
        self.column = column
        # Ancestors of each catalogue column, as live-term indices (for the open-world mask).
        self.column_ancestors = ancestors[terms].T.tocsr()  # (live terms x columns)
        # Siblings through a shared parent, restricted to catalogue columns.
        edges = column[child] >= 0
        by_parent = sp.csr_matrix((np.ones(int(edges.sum())), (parent[edges], column[child[edges]])),
                                  shape=(ancestors.shape[0], len(terms)))
        child_col = sp.csr_matrix((np.ones(int(edges.sum())), (column[child[edges]], parent[edges])),
                                  shape=(len(terms), ancestors.shape[0]))
        self.siblings = (child_col @ by_parent).tocsr()
        self.random_negatives, self.sibling_negatives = random_negatives, sibling_negatives

    def sample(self, proteins: np.ndarray, rng: np.random.Generator):
        """Returns (columns (C,), targets (B, C) float, mask (B, C) bool: True = counts in the loss)."""
        y = self.y[proteins]
        positives = np.unique(y.indices)
        extra = [rng.integers(0, self.n_columns, self.random_negatives)]
        if self.sibling_negatives:
            leaf_cols = self.column[self.leaves[proteins].indices]
            leaf_cols = leaf_cols[leaf_cols >= 0]
            if len(leaf_cols):
                picked = rng.choice(leaf_cols, size=min(len(leaf_cols), self.sibling_negatives * len(proteins)))
                sib = self.siblings[picked]
                if sib.nnz:
                    extra.append(sib.indices[rng.integers(0, sib.nnz, min(sib.nnz, len(picked)))])
        columns = np.unique(np.concatenate([positives, *extra]))
        targets = y[:, columns].toarray().astype(np.float32)
        # Protein i's leaf terms that are (strict) ancestors of candidate c -> c is an unknown, not a negative.
        below_leaf = (self.leaves[proteins].astype(np.float32) @ self.column_ancestors[:, columns]).toarray() > 0
        mask = ~(below_leaf & (targets == 0))
        return torch.from_numpy(columns), torch.from_numpy(targets), torch.from_numpy(mask)
