"""Information accretion (IA) of GO terms, the weights of CAFA's weighted Fmax and Smin."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import pandas as pd


def information_accretion(labels: sp.spmatrix, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """IA(t) = -log2 P(t | all parents of t), estimated from propagated annotations.

    Args:
        labels: boolean (proteins x terms) matrix, already propagated to ancestors.
        child, parent: the DAG's edge arrays (as in :class:`index.propagation.Propagator`).

    Returns:
        float64 array of IA per term; 0 for roots and for terms nobody is annotated with.
    """
    labels = sp.csc_matrix(labels, dtype=np.float32)
    n_terms = labels.shape[1]
    n_with_term = np.asarray(labels.sum(axis=0)).ravel()
    parent_of = sp.csr_matrix((np.ones(len(child), dtype=np.float32), (parent, child)), shape=(n_terms, n_terms))
    n_parents = np.asarray(parent_of.sum(axis=0)).ravel()
    # Entry (protein, t) counts how many of t's parents the protein carries: all of them -> in t's context.
    parents_held = (labels.tocsr() @ parent_of).tocoo()
    holds_all = parents_held.data == n_parents[parents_held.col]
    n_with_parents = np.bincount(parents_held.col[holds_all], minlength=n_terms)
    ia = np.zeros(n_terms, dtype=np.float64)
    ok = (n_with_term > 0) & (n_parents > 0) & (n_with_parents > 0)
    ia[ok] = -np.log2(n_with_term[ok] / n_with_parents[ok])
    return np.maximum(ia, 0.0)


def information_accretion_table(ontology, proteins, terms) -> "pd.DataFrame":
    """IA of every live term annotated in (``proteins``, ``terms``) pairs, propagated over
    ``ontology`` first: a table of ``term`` and ``ia`` (> 0 only), as ``prot-retrieve ia`` writes it."""
    import pandas as pd

    from index.labels import label_matrix
    from index.propagation import Propagator

    labels, _ = label_matrix(ontology, Propagator.from_ontology(ontology), proteins, terms)
    values = information_accretion(labels, *ontology.edges)
    return pd.DataFrame({"term": ontology.live_ids, "ia": values}).query("ia > 0")
