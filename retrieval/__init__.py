"""prot-retrieve: protein function prediction by retrieval (two towers, FAISS recall, fusion re-ranking).

The Python API::

    from retrieval import Annotator
    annotator = Annotator.from_pretrained()          # shipped model, all of live GO
    table = annotator.annotate("proteome.fasta", top=20)
"""
from __future__ import annotations

from index import lazy_exports

_EXPORTS = {"AnnotateConfig": "retrieval.config", "Annotator": "retrieval.annotate",
            "FusionReranker": "retrieval.models.reranker", "ProteinIndex": "retrieval.protein_index",
            "ProteinEncoder": "retrieval.models.protein_encoder", "ProteinEncoderConfig": "retrieval.models.protein_encoder",
            "RerankerConfig": "retrieval.models.reranker", "RetrievalModel": "retrieval.models.retriever",
            "TextEncoder": "retrieval.models.text_encoder", "TextEncoderConfig": "retrieval.models.text_encoder",
            "build_function_index": "retrieval.indexing", "default_index": "retrieval.indexing"}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
