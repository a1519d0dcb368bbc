"""Holding GO terms out of training: a term list, its subtrees, and the annotations that imply them.

A held-out term must not come back through propagation, so every annotation of the term *or of
any descendant* is dropped before labels are propagated (holding out the term alone leaks it back
from its children).
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from index.errors import InputError
from index.textio import open_text

LOG = logging.getLogger(__name__)


def read_term_list(path: str | os.PathLike, ontology) -> list[str]:
    """GO ids, one per line (blank lines and ``#`` comments skipped), each a live term of ``ontology``."""
    terms = []
    with open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            term = line.split("#", 1)[0].strip()
            if not term:
                continue
            live = ontology.resolve(term, follow_replaced_by=False)
            if live is None:
                raise InputError(f"{path}:{number}: {term!r} is not a live term of GO {ontology.release or ''}".rstrip())
            terms.append(live)
    if not terms:
        raise InputError(f"{path}: no GO ids in it")
    return list(dict.fromkeys(terms))


def subtrees(ontology, propagator, term_ids) -> np.ndarray:
    """Boolean mask over live terms: ``term_ids`` and all their descendants (is_a + part_of)."""
    columns = np.array([ontology.index[t] for t in term_ids], dtype=np.int64)
    mask = propagator.ancestors[:, columns].getnnz(axis=1) > 0
    return np.asarray(mask).ravel()


def drop_subtrees(annotations: pd.DataFrame, ontology, propagator, term_ids) -> pd.DataFrame:
    """The annotation rows whose term is neither one of ``term_ids`` nor a descendant of one."""
    mask = subtrees(ontology, propagator, term_ids)
    idx, _ = ontology.resolve_many(annotations["term"].to_numpy())
    hit = (idx >= 0) & mask[np.maximum(idx, 0)]
    LOG.info("held out %d GO terms (%d with descendants): %d of %d annotations dropped", len(term_ids),
             int(mask.sum()), int(hit.sum()), len(annotations))
    if len(annotations) and hit.all():
        raise InputError(f"holding out {len(term_ids)} GO term(s) with their descendants leaves no annotation")
    return annotations[~hit].reset_index(drop=True)
