"""Function catalogue, Gene Ontology and vector index: the layer that knows no torch models."""
from index.catalogue import FunctionCatalogue
from index.errors import InputError
from index.ontology import Ontology, Term
from index.propagation import Propagator

__all__ = ["FunctionCatalogue", "InputError", "Ontology", "Propagator", "Term"]
