"""Turning (protein, term) annotation pairs into a propagated protein x term label matrix."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.errors import InputError

LOG = logging.getLogger(__name__)


def label_matrix(ontology, propagator, proteins, terms, follow_replaced_by: bool = True,
                 index: pd.Index | None = None) -> tuple[sp.csr_matrix, pd.Index]:
    """Build the boolean label matrix of annotation pairs, closed under ancestors.

    Args:
        ontology: :class:`index.ontology.Ontology` resolving ids (alt_ids, replaced_by).
        propagator: :class:`index.propagation.Propagator` of that ontology.
        proteins, terms: aligned sequences of protein ids and term ids, one pair each.
        follow_replaced_by: map obsolete terms to their replacement (False: drop them, as CAFA does).
        index: fix the row order to these protein ids (pairs of other proteins are ignored);
            by default rows follow first appearance.

    Returns:
        (labels, protein index): CSR (proteins x live terms) and the protein id of each row.
    """
    term_idx, stats = ontology.resolve_many(terms, follow_replaced_by=follow_replaced_by)
    proteins = np.asarray(proteins, dtype=object)
    if index is None:
        index = pd.Index(pd.unique(proteins[term_idx >= 0]))
    rows = index.get_indexer(proteins)
    keep = (term_idx >= 0) & (rows >= 0)
    if len(terms) and not keep.any():
        raise InputError("no annotation maps to a live term of the ontology (wrong OBO file?)")
    if stats["dropped"]:  # said out loud: a wrong OBO release silently loses labels otherwise
        LOG.warning("annotations: %d rows with obsolete or unknown terms dropped (%d rows mapped to current ids)",
                    stats["dropped"], stats["mapped"])
    elif stats["mapped"]:
        LOG.info("annotations: %d rows mapped to current ids", stats["mapped"])
    labels = sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (rows[keep], term_idx[keep])),
                           shape=(len(index), len(ontology.live_ids)))
    return propagator.propagate_labels(labels), index
