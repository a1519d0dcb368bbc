"""Function catalogue, Gene Ontology, propagation, information accretion and the vector index: the
bottom layer. It knows no model: arrays in, arrays out (torch serves only as an array library, for
scatter-max and top-k).

It also holds what every layer shares: the error types (:mod:`index.errors`), atomic writes of
files and folders (:mod:`index.atomic`) and reading plain or gzipped text (:mod:`index.textio`),
since the layers above may import it and it may import none of them."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` that imports each exported name's module on first use: the CLI then
    imports a light submodule without paying for torch, pandas, scipy and faiss."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__


_EXPORTS = {"FunctionCatalogue": "index.catalogue", "InputError": "index.errors", "Ontology": "index.ontology",
            "Propagator": "index.propagation", "Term": "index.ontology"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
