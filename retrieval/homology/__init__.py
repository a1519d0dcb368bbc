"""Homology evidence: references of annotated proteins, searched for a query's relatives, whose
labels become per-(protein, term) transfer features for the re-ranker.

One module per job: :mod:`~retrieval.homology.reference` (the reference store),
:mod:`~retrieval.homology.settings` and :mod:`~retrieval.homology.search` (MMseqs2, DIAMOND or
embedding search of all references at once), :mod:`~retrieval.homology.transfer` (hits ->
label-transfer features), :mod:`~retrieval.homology.source` (a reference's terms as rows of a
function index) and :mod:`~retrieval.homology.shipped` (the default references of the package).

Names are imported on first use, so that reading the settings (the CLI's choices) stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "MIN_TAXON_PROTEINS": "reference", "Reference": "reference",
    "SEARCHERS": "settings", "SENSITIVITIES": "settings", "SearchSettings": "settings",
    "HomologySearch": "search", "embedding_search": "search",
    "HomologySource": "source", "annotated_rows": "source",
    "HOMOLOGY_FEATURES": "transfer", "Transfer": "transfer", "homology_feature_names": "transfer",
    "n_homology_sources": "transfer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
