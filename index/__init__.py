"""Function catalogue, Gene Ontology and vector index: the layer that knows no torch models."""
from __future__ import annotations

import importlib

_EXPORTS = {"FunctionCatalogue": "index.catalogue", "InputError": "index.errors", "Ontology": "index.ontology",
            "Propagator": "index.propagation", "Term": "index.ontology"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Names load on first use: the CLI imports a light submodule without paying for pandas, scipy and faiss.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
