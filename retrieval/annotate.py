"""The annotation pipeline: FASTA -> protein tower -> recall -> re-rank (and lending) -> selection -> table.

``Annotator`` is the Python API and wires the stages (:mod:`retrieval.stages`); ``prot-retrieve
annotate`` wraps it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable, Iterator, Union

import numpy as np
import pandas as pd

from index.catalogue import FunctionCatalogue
from index.errors import InputError, require_fingerprint
from index.vector_index import FunctionIndex
from retrieval.config import AnnotateConfig
from retrieval.homology import HomologySearch, HomologySource, SearchSettings, Transfer
from retrieval.io.fasta import FastaReader, ProteinRecord, check_sequence
from retrieval.models.batching import blocks
from retrieval.models.retriever import RetrievalModel
from retrieval.pipeline import Paths, PipelineSpec, load_references
from retrieval.stages.embed import ProteinVectors
from retrieval.stages.explain import explanation
from retrieval.stages.lending import Lending
from retrieval.stages.recall import Evidence, recall, split_hits
from retrieval.stages.rerank import FunctionVectors, Reranking
from retrieval.stages.select import Selection

Sequences = Union[str, os.PathLike, dict, Iterable[ProteinRecord]]


def as_records(sequences: Sequences, skip_invalid: bool = False) -> Iterable[ProteinRecord]:
    """A FASTA path, a dict id -> sequence, or records -> an iterable of validated records."""
    if isinstance(sequences, (str, os.PathLike)):
        return FastaReader(sequences, skip_invalid=skip_invalid)
    if isinstance(sequences, dict):
        records = []
        for pid, raw in sequences.items():
            sequence, problem = check_sequence(raw)
            if problem:
                raise InputError(f"sequence '{pid}': {problem}")
            records.append(ProteinRecord(str(pid), sequence))
        return records
    return sequences


@dataclass
class Scored:
    """A chunk of proteins after re-ranking: candidate rows (B, K) (-1: padding), each reference's
    evidence, and the probabilities (before GO propagation)."""

    rows: np.ndarray
    evidence: list[Evidence]
    probs: np.ndarray


class Annotator:
    """Annotates proteins with the functions of an index, using a retrieval model.

    Args:
        model: the retrieval model.
        index: a function index built by the same model's text tower (checked by fingerprint).
        homology: optional homology search over one or more references, in the order the model's
            homology re-ranker was trained with: adds the terms transferred from each query's hits
            to the candidates and each reference's transfer features to the re-ranker's input.
        force: use references other than those the homology re-ranker was trained with (refused
            otherwise: their fingerprints are checked).
        lenders: with references, the function index whose annotated functions lend their scores
            to the functions no reference annotates (:mod:`retrieval.stages.lending`), or a function
            that loads it when first needed; default ``index`` itself. :meth:`from_pretrained` gives
            the model's GO index, so that free-text functions borrow from GO terms.
    """

    def __init__(self, model: RetrievalModel, index: FunctionIndex, homology: HomologySearch | None = None,
                 force: bool = False, lenders: FunctionIndex | Callable[[], FunctionIndex] | None = None):
        require_fingerprint("index", index.fingerprint, model.text_encoder.fingerprint(),
                            "rebuild it with `prot-retrieve build-index`")
        self.model, self.index, self.homology = model, index, homology
        self.spec: PipelineSpec | None = None  # set by from_pretrained: how to load this annotator again
        sources = [HomologySource(r, index.catalogue.ids) for r in (homology.references if homology else [])]
        self.reranking = Reranking(model, sources, force)
        self.lending = Lending(index, lambda: self.function_vectors, self.reranking, lenders) if sources else None
        self.selection = Selection(index, model.info,
                                   homology_missing=model.homology_reranker is not None and not self.reranking.homology)
        self.protein_vectors = ProteinVectors(model.protein_encoder)

    @cached_property
    def function_vectors(self) -> FunctionVectors:
        """(v, b) of every row of the index."""
        return FunctionVectors.of_index(self.index, self.reranking.scale)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, index: str | os.PathLike | None = None,
                        reference: Paths | None = "default", executable: str | None = None,
                        settings: SearchSettings | None = None, force: bool = False,
                        prepare_search: bool = False) -> "Annotator":
        """Load a model folder (default: the shipped model), an index folder (default: all of live GO,
        see :func:`retrieval.indexing.default_index`) and homology references.

        Args:
            reference: ``"default"``: the references shipped with the package when the model's
                homology re-ranker was trained on them; one reference folder (`prot-retrieve
                build-reference`) or a list of them; None or []: no homology (the towers alone).
            executable: path of the search tool (default: found as ``settings.searcher`` says).
            settings: how the references are searched.
            force: see :class:`Annotator`.
            prepare_search: a search database not built yet (a first run) starts building in the
                background while the rest loads, instead of when the first proteins are searched
                (``prot-retrieve annotate`` does: docs/benchmarks.md, "The first run, stop 29").
        """
        from retrieval.indexing import default_index
        from retrieval.models.precision import resolve_precision

        retrieval_model = RetrievalModel.from_pretrained(model)
        references = load_references(reference, retrieval_model)
        search = HomologySearch(references, settings, executable, retrieval_model.protein_encoder) \
            if references else None
        if search is not None and prepare_search:
            # A new search database builds while the index loads. This machine's precision
            # measurement (taken once, then cached) comes first: timed beside the build, int8 measured
            # twice as slow as fp32.
            resolve_precision("auto", "cpu")
            search.prepare()
        expected = retrieval_model.text_encoder.fingerprint()
        function_index = FunctionIndex.load(index, expected) if index is not None else default_index(retrieval_model)
        lenders = None if index is None else (lambda: default_index(retrieval_model))
        annotator = cls(retrieval_model, function_index, search, force, lenders)
        annotator.spec = PipelineSpec.of(model, index, reference, executable, settings, force)
        if annotator.lending is not None:  # read from the cache, or found (4 s) while a new database builds
            annotator.lending.nearest()
        return annotator

    def embed_proteins(self, sequences: Sequences) -> np.ndarray:
        """Unit vectors (n, D) of the protein tower, in input order."""
        return self.model.protein_encoder.encode([r.sequence for r in as_records(sequences)])

    def embed_functions(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (n, D) of the function tower for free-text functions (text only)."""
        return self.model.text_encoder.encode(texts)[0]

    def score(self, sequences: Sequences, functions: FunctionCatalogue | list[str], taxon: str = "",
              precision: str = "auto") -> pd.DataFrame:
        """Probability of every (protein, function) pair; functions may be free text not in any index.

        ``taxon`` stands in for records without a taxon tag (see :attr:`AnnotateConfig.taxon`); with
        references, the functions no reference annotates borrow from the lenders nearest in meaning.

        Returns:
            DataFrame indexed by protein id, one column per function id.
        """
        catalogue = functions if isinstance(functions, FunctionCatalogue) else FunctionCatalogue.from_texts(functions)
        text = self.model.text_encoder
        v, b, meaning = text.encode_with_meaning(text.function_texts(catalogue), catalogue.ids, precision=precision)
        return self.score_vectors(sequences, catalogue.ids, v, b, meaning, taxon, precision)

    def score_vectors(self, sequences: Sequences, ids: list[str], v: np.ndarray, b: np.ndarray,
                      meaning: np.ndarray | None = None, taxon: str = "", precision: str = "auto") -> pd.DataFrame:
        """:meth:`score` for functions given as text-tower vectors ``v`` (n, D) and biases ``b`` (n,);
        with references, those no reference annotates borrow from the lenders nearest to their
        ``meaning`` vectors (n, hidden) (None: they do not borrow)."""
        records = list(as_records(sequences))
        u = self.model.protein_encoder.encode([r.sequence for r in records], precision=precision)
        proteins, taxa = [r.id for r in records], [r.taxon or taxon for r in records]
        hits = self.homology.hits(records, u) if self.homology else []
        evidence = [Evidence(Transfer.from_hits(s.reference, h, proteins, taxa),
                             pd.Index(s.reference.terms).get_indexer(ids)) for s, h in zip(self.reranking.sources, hits)]
        rows = np.broadcast_to(np.arange(len(ids)), (len(u), len(ids)))
        vectors = FunctionVectors(np.ascontiguousarray(v, dtype=np.float32), np.asarray(b))
        nearest = None if meaning is None else (lambda: self.lending.nearest_to(meaning))
        return pd.DataFrame(self.rerank(u, rows, vectors, evidence, precision, nearest), index=proteins, columns=ids)

    def annotate(self, sequences: Sequences, config: AnnotateConfig | None = None, **options) -> pd.DataFrame:
        """Top functions per protein as one DataFrame (protein_id, term_id, score, aspect, name)."""
        chunks = list(self.iter_annotate(sequences, config, **options))
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(
            columns=["protein_id", "term_id", "score", "aspect", "name"])

    def iter_annotate(self, sequences: Sequences, config: AnnotateConfig | None = None, skip_invalid: bool = False,
                      **options) -> Iterator[pd.DataFrame]:
        """Streaming variant: one DataFrame per chunk of ``config.batch_size`` proteins.

        With homology, proteins are embedded and searched a block of ``config.search_block`` at a
        time (one search per block is much faster than one per chunk), then scored chunk by chunk.
        """
        config = dataclasses.replace(config or AnnotateConfig(), **options)
        config.check()
        block_size = config.search_block if self.homology else config.batch_size
        for block in blocks(as_records(sequences, skip_invalid=skip_invalid), block_size):
            for records, u, hits in self.chunks(block, config):
                scored = self.score_chunk(records, u, hits, config)
                items, cols, values = self.selection.propagate(scored.rows, scored.probs, config)
                table, items, cols = self.selection.select([r.id for r in records], items, cols, values, config)
                if config.explain:
                    table = table.join(self._explain(records, u, hits, scored, items, cols, config))
                yield table

    def chunks(self, records: list[ProteinRecord], config: AnnotateConfig
               ) -> Iterator[tuple[list[ProteinRecord], np.ndarray, list[pd.DataFrame]]]:
        """A block's chunks of ``config.batch_size`` proteins, with their protein-tower vectors and
        each reference's hits (embedded and searched once for the block)."""
        u = self.protein_vectors([r.sequence for r in records], config.precision, config.embedding_cache)
        hits = self.homology.hits(records, u) if self.homology else []
        per_chunk = split_hits(hits, [r.id for r in records], config.batch_size)
        for k, start in enumerate(range(0, len(records), config.batch_size)):
            stop = start + config.batch_size
            yield records[start:stop], u[start:stop], [h[k] for h in per_chunk]

    def score_chunk(self, records: list[ProteinRecord], u: np.ndarray, hits: list[pd.DataFrame],
                    config: AnnotateConfig) -> Scored:
        """Recall and re-rank a chunk (with lending, where references are given)."""
        rows, evidence = recall(self.index, u, config.recall, self.reranking.sources, hits, [r.id for r in records],
                                [r.taxon or config.taxon for r in records])
        probs = self.rerank(u, rows, self.function_vectors, evidence, config.precision,
                             self.lending.nearest if self.lending else None, shared=True)
        return Scored(rows, evidence, probs)

    def rerank(self, u: np.ndarray, rows: np.ndarray, vectors: FunctionVectors, evidence: list[Evidence],
                precision: str, nearest: Callable | None, shared: bool = False) -> np.ndarray:
        """Probabilities (B, K) of candidate ``rows`` (-1: padding) of the functions ``vectors``, from
        the re-rankers (:mod:`retrieval.stages.rerank`); the candidates no reference labels borrow
        from the lenders ``nearest()`` finds (``shared``: see :meth:`Lending.apply`)."""
        probs = self.reranking.score(u, rows, vectors, evidence, precision)
        unseen = self.reranking.unseen(rows, evidence)
        if self.lending is not None and nearest is not None and unseen is not None and unseen.any():
            self.lending.apply(u, rows, probs, unseen, evidence, precision, nearest(), shared)
        return probs

    def _explain(self, records, u, hits, scored: Scored, items, cols, config: AnnotateConfig) -> pd.DataFrame:
        """The evidence columns of the reported pairs (:mod:`retrieval.stages.explain`)."""
        vectors = self.function_vectors
        borrowed = self.lending.borrowed(u, items, cols, scored.evidence, config.precision) if self.lending else \
            (np.full(len(items), np.nan), np.full(len(items), "", dtype=object))
        return explanation(items, cols, u, vectors.v[cols], vectors.b[cols], self.reranking.scale,
                           self.reranking.sources, scored.evidence, hits, [r.id for r in records], borrowed)
