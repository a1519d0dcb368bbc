"""Function catalogue, Gene Ontology, propagation, information accretion and the vector index: the
bottom layer. It knows no model: arrays in, arrays out (torch serves only as an array library, for
scatter-max and top-k).

It also holds what every layer shares: the error types (:mod:`index.errors`), atomic writes of
files and folders (:mod:`index.atomic`) and reading plain or gzipped text (:mod:`index.textio`),
since the layers above may import it and it may import none of them."""
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
