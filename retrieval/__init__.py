"""prot-retrieve: protein function prediction by retrieval (two towers, FAISS recall, fusion re-ranking).

The Python API::

    from retrieval import Annotator
    annotator = Annotator.from_pretrained()          # shipped model, all of live GO
    table = annotator.annotate("proteome.fasta", top=20)
"""
from retrieval.annotate import AnnotateConfig, Annotator
from retrieval.indexing import build_function_index, default_index
from retrieval.model import RetrievalModel
from retrieval.protein_encoder import ProteinEncoder, ProteinEncoderConfig
from retrieval.reranker import FusionReranker, RerankerConfig
from retrieval.text_encoder import TextEncoder, TextEncoderConfig

__all__ = ["AnnotateConfig", "Annotator", "FusionReranker", "ProteinEncoder", "ProteinEncoderConfig",
           "RerankerConfig", "RetrievalModel", "TextEncoder", "TextEncoderConfig", "build_function_index",
           "default_index"]
