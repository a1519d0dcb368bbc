"""The annotation pipeline: FASTA -> protein tower -> FAISS recall -> fusion re-rank -> GO propagation -> table.

``Annotator`` is the Python API; ``prot-retrieve annotate`` wraps it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from index.propagation import Propagator
from index.vector_index import FunctionIndex
from retrieval.config import AnnotateConfig
from retrieval.io.fasta import FastaReader, ProteinRecord, check_sequence
from retrieval.model import RetrievalModel
from retrieval.batching import token_batches
from retrieval.candidates import Evidence, candidate_features, homology_candidates
from retrieval.homology import (HomologySearch, HomologySource, Reference, SearchSettings, annotated_rows,
                               n_homology_sources)
from retrieval.scoring import query_vectors, rerank_probabilities, split_index_vectors
from retrieval.unseen import NearestAnnotated, lend, lenders_of, pack, pick, table_key

LOG = logging.getLogger(__name__)
Sequences = Union[str, os.PathLike, dict, Iterable[ProteinRecord]]
Paths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]
#: Candidate pairs whose features are computed together (the re-ranker runs in smaller batches).
GROUP_PAIRS = 1 << 15
#: Homology profiles keep probabilities from this one on: a lender below it lends next to nothing.
PROFILE_FLOOR = 0.01


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
            to the functions no reference annotates (:mod:`retrieval.unseen`), or a function that
            loads it when first needed; default ``index`` itself. :meth:`from_pretrained` gives the
            model's GO index, so that free-text functions borrow from GO terms.
    """

    def __init__(self, model: RetrievalModel, index: FunctionIndex, homology: HomologySearch | None = None,
                 force: bool = False, lenders: FunctionIndex | Callable[[], FunctionIndex] | None = None):
        expected = model.text_encoder.fingerprint()
        if index.fingerprint != expected:
            raise InputError(f"index was built by model {index.fingerprint}, not by this model ({expected}); "
                             "rebuild it with `prot-retrieve build-index`")
        self.model, self.index, self.homology, self.force = model, index, homology, force
        self.recipe: Recipe | None = None  # set by from_pretrained: how to load this annotator again
        self._stores: dict = {}  # cache key -> EmbeddingStore of the protein tower's vectors
        references = homology.references if homology is not None else []
        self.sources = [HomologySource(r, index.catalogue.ids) for r in references]
        self.reranker = model.homology_reranker if self.sources and model.homology_reranker else model.reranker
        self._check_sources()
        self.scale = model.text_encoder.scale
        self.propagator = Propagator(len(index.catalogue), *index.edges) if index.edges is not None else None
        self._is_root = np.zeros(len(index.catalogue), dtype=bool)
        if index.edges is not None:  # roots: parents of something, children of nothing
            self._is_root[np.setdiff1d(index.edges[1], index.edges[0])] = True
        self._ids = np.asarray(index.catalogue.ids, dtype=object)
        self._aspects = index.catalogue.table["aspect"].to_numpy(dtype=object)
        self._aspect_codes = pd.factorize(self._aspects, use_na_sentinel=False)[0].astype(np.int64)
        self._names = index.catalogue.table["name"].to_numpy(dtype=object)
        self._function_vectors: tuple[np.ndarray, np.ndarray] | None = None
        self._lenders = lenders
        self._lender_table: LenderTable | None = None
        self._nearest: NearestAnnotated | None = None  # the lenders of the catalogue's rows
        self._computed_meaning: dict[int, np.ndarray] = {}  # id(index) -> meaning of an index that has none
        self._floors: dict[float, np.ndarray] = {}  # --min-precision level -> threshold per catalogue row

    def _catalogue_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(v, b) of every catalogue row. The index's vectors are split once and kept: gathering and
        rescaling them per chunk took a tenth of a hybrid run."""
        if self._function_vectors is None:
            self._function_vectors = _split(self.index, self.scale)
        return self._function_vectors

    def _lending(self) -> "LenderTable":
        """The lender index as this annotator reads it, loaded on first use."""
        if self._lender_table is None:
            lenders = self._lenders() if callable(self._lenders) else self._lenders
            if lenders is None or lenders is self.index:
                self._lender_table = LenderTable(self.index, self.sources, self._catalogue_vectors(),
                                                 self._meaning(self.index))
            else:
                expected = self.model.text_encoder.fingerprint()
                if lenders.fingerprint != expected:
                    raise InputError(f"lender index was built by model {lenders.fingerprint}, not by this model "
                                     f"({expected})")
                sources = [HomologySource(s.reference, lenders.catalogue.ids) for s in self.sources]
                self._lender_table = LenderTable(lenders, sources, _split(lenders, self.scale), self._meaning(lenders))
        return self._lender_table

    def _catalogue_nearest(self) -> NearestAnnotated | None:
        """The lenders of the catalogue's rows (with references)."""
        if not self.sources:
            return None
        if self._nearest is None:
            lenders = self._lending()
            self._nearest = NearestAnnotated(self._meaning(self.index), lenders.meaning, lenders.annotated)
            key = (self.index.config.get("meaning_sha256"), lenders.index.config.get("meaning_sha256"))
            if all(key):  # stored meaning vectors: the table of every row's lenders is kept in the cache
                from retrieval.feature_cache import cache_dir

                name = table_key(*key, [s.reference.fingerprint() for s in self.sources])
                path = cache_dir() / "lenders" / f"{name}.npz"
                if not self._nearest.load(path):
                    self._nearest.lookup(np.flatnonzero(~annotated_rows(self.sources)))
                    self._nearest.save(path)
        return self._nearest

    def _meaning(self, index: FunctionIndex) -> np.ndarray:
        """An index's meaning vectors; an index built before they were stored has them computed
        (the text backbone's features are cached, so once)."""
        if index.meaning is not None:
            return index.meaning
        if id(index) not in self._computed_meaning:
            LOG.info("index of %d functions has no meaning vectors (built by an older version): computing them",
                     len(index.catalogue))
            from retrieval.feature_cache import cache_dir

            text = self.model.text_encoder
            self._computed_meaning[id(index)] = text.meaning(text.function_texts(index.catalogue),
                                                             cache_dir=cache_dir() / "features")
        return self._computed_meaning[id(index)]

    def _check_sources(self) -> None:
        """Refuse more references than the re-ranker reads; warn when fewer or different ones are given."""
        wanted, given = n_homology_sources(self.reranker.config.pair_features), len(self.sources)
        if not given:
            if wanted:
                LOG.warning("this model's re-ranker uses homology features but no reference was given "
                            "(--reference): scoring without homology, accuracy is lower")
            LOG.info("no homology reference (--reference): ranking by the two towers alone")
        elif not wanted:
            LOG.warning("this model has no homology re-ranker: the reference only adds candidates")
        elif given > wanted:
            raise InputError(f"this model's homology re-ranker reads {wanted} reference(s), {given} were given")
        elif given < wanted:
            LOG.warning("this model's homology re-ranker reads %d references, %d given: the missing ones "
                        "count as having no hits (accuracy is lower)", wanted, given)
        trained = [r.get("fingerprint") for r in self.model.info.get("homology_references", [])]
        for i, (source, expected) in enumerate(zip(self.sources, trained)):
            found = source.reference.fingerprint()
            if found != expected:
                message = (f"reference {i + 1} ({source.reference.folder}) is not the one the homology re-ranker "
                           f"was trained with (fingerprint {found}, expected {expected})")
                if not self.force:
                    raise InputError(f"{message}: give the references in the training order, retrain the "
                                     "re-ranker for yours (prot-retrieve train-reranker), or --force")
                LOG.warning("%s; going on (--force): its features may not mean what the re-ranker learned", message)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | None = None, index: str | os.PathLike | None = None,
                        reference: Paths | None = "default", executable: str | None = None,
                        settings: SearchSettings | None = None, force: bool = False) -> "Annotator":
        """Load a model folder (default: the shipped model), an index folder (default: all of live GO,
        see :func:`retrieval.indexing.default_index`) and homology references.

        Args:
            reference: ``"default"``: the references shipped with the package when the model's
                homology re-ranker was trained on them; one reference folder (`prot-retrieve
                build-reference`) or a list of them; None or []: no homology (the towers alone).
            executable: path of the search tool (default: found as ``settings.searcher`` says).
            settings: how the references are searched.
            force: see :class:`Annotator`.
        """
        from retrieval.indexing import default_index

        retrieval_model = RetrievalModel.from_pretrained(model)
        expected = retrieval_model.text_encoder.fingerprint()
        function_index = FunctionIndex.load(index, expected) if index is not None else default_index(retrieval_model)
        references = _load_references(reference, retrieval_model)
        search = HomologySearch(references, settings, executable, retrieval_model.protein_encoder) \
            if references else None
        lenders = None if index is None else (lambda: default_index(retrieval_model))
        annotator = cls(retrieval_model, function_index, search, force, lenders)
        annotator.recipe = Recipe.of(model, index, reference, executable, settings, force)
        return annotator

    def precision_thresholds(self, precision: float) -> dict[str, float]:
        """Per aspect, the score threshold fitted for ``precision`` (``prot-retrieve thresholds``);
        an aspect that never reached it on the validation proteins is left out (nothing passes)."""
        fitted = self.model.info.get("thresholds", {}).get("precision", {})
        if not fitted:
            raise InputError("this model has no precision thresholds (fit them with `prot-retrieve thresholds`)")
        if self.model.homology_reranker is not None and self.reranker is not self.model.homology_reranker:
            raise InputError("--min-precision: the thresholds were fitted with homology; give references")
        levels = sorted({float(p) for per in fitted.values() for p in per})
        if precision not in levels:
            raise InputError(f"--min-precision {precision:g}: fitted levels are {', '.join(f'{p:g}' for p in levels)}")
        return {aspect: per[f"{precision:g}"] for aspect, per in fitted.items() if f"{precision:g}" in per}

    def _column_floors(self, precision: float) -> np.ndarray:
        """Each catalogue row's threshold for ``precision`` (inf: its aspect has none), once per level."""
        if precision not in self._floors:
            floor = self.precision_thresholds(precision)
            self._floors[precision] = np.array([floor.get(a, np.inf) for a in self._aspects])
        return self._floors[precision]

    def embed_proteins(self, sequences: Sequences) -> np.ndarray:
        """Unit vectors (n, D) of the protein tower, in input order."""
        return self.model.protein_encoder.encode([r.sequence for r in as_records(sequences)])

    def embed_functions(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (n, D) of the function tower for free-text functions (text only)."""
        return self.model.text_encoder.encode(texts)[0]

    def score(self, sequences: Sequences, functions: FunctionCatalogue | list[str], taxon: str = "") -> pd.DataFrame:
        """Probability of every (protein, function) pair; functions may be free text not in any index.

        ``taxon`` stands in for records without a taxon tag (see :attr:`AnnotateConfig.taxon`).

        Returns:
            DataFrame indexed by protein id, one column per function id.
        """
        catalogue = functions if isinstance(functions, FunctionCatalogue) else FunctionCatalogue.from_texts(functions)
        text = self.model.text_encoder
        v, b, meaning = text.encode_with_meaning(text.function_texts(catalogue), catalogue.ids)
        return self.score_vectors(sequences, catalogue.ids, v, b, meaning, taxon)

    def score_vectors(self, sequences: Sequences, ids: list[str], v: np.ndarray, b: np.ndarray,
                      meaning: np.ndarray | None = None, taxon: str = "") -> pd.DataFrame:
        """:meth:`score` for functions given as text-tower vectors ``v`` (n, D) and biases ``b`` (n,);
        with references, those no reference annotates borrow from the lenders nearest to their
        ``meaning`` vectors (n, hidden) (None: they do not borrow)."""
        records = list(as_records(sequences))
        u = self.model.protein_encoder.encode([r.sequence for r in records])
        rows = np.broadcast_to(np.arange(len(ids)), (len(u), len(ids)))
        proteins = [r.id for r in records]
        taxa = [r.taxon or taxon for r in records]
        hits = self.homology.hits(records, u) if self.homology else []
        evidence = [Evidence(s.reference.transfer(h, proteins, taxa), pd.Index(s.reference.terms).get_indexer(ids))
                    for s, h in zip(self.sources, hits)]
        v = np.ascontiguousarray(v, dtype=np.float32)
        nearest = None
        if evidence and meaning is not None:
            lenders = self._lending()
            nearest = NearestAnnotated(meaning, lenders.meaning, lenders.annotated)
        probs = self._rerank(u, rows, (v, np.asarray(b)), evidence, AnnotateConfig().precision, nearest)
        return pd.DataFrame(probs, index=proteins, columns=ids)

    def annotate(self, sequences: Sequences, config: AnnotateConfig | None = None, **options) -> pd.DataFrame:
        """Top functions per protein as one DataFrame (protein_id, term_id, score, aspect, name)."""
        chunks = list(self.iter_annotate(sequences, config, **options))
        return pd.concat(chunks, ignore_index=True) if chunks else _empty()

    def iter_annotate(self, sequences: Sequences, config: AnnotateConfig | None = None, skip_invalid: bool = False,
                      **options) -> Iterator[pd.DataFrame]:
        """Streaming variant: one DataFrame per chunk of ``config.batch_size`` proteins.

        With homology, proteins are embedded and searched a block of ``config.search_block`` at a
        time (one search per block is much faster than one per chunk), then scored chunk by chunk.
        """
        config = dataclasses.replace(config or AnnotateConfig(), **options)
        config.check()
        block_size = config.search_block if self.sources else config.batch_size
        block: list[ProteinRecord] = []
        for record in as_records(sequences, skip_invalid=skip_invalid):
            block.append(record)
            if len(block) == block_size:
                yield from self._annotate_block(block, config)
                block = []
        if block:
            yield from self._annotate_block(block, config)

    def _annotate_block(self, records: list[ProteinRecord], config: AnnotateConfig) -> Iterator[pd.DataFrame]:
        for chunk in self._chunks(records, config):
            yield self._annotate_chunk(*chunk, config)

    def _chunks(self, records: list[ProteinRecord], config: AnnotateConfig
                ) -> Iterator[tuple[list[ProteinRecord], np.ndarray, list[pd.DataFrame]]]:
        """A block's chunks of ``config.batch_size`` proteins, with their protein-tower vectors and
        each reference's hits (embedded and searched once for the block)."""
        u = self._embed([r.sequence for r in records], config)
        hits = self.homology.hits(records, u) if self.homology else []
        per_chunk = _split_hits(hits, [r.id for r in records], config.batch_size)
        for k, start in enumerate(range(0, len(records), config.batch_size)):
            stop = start + config.batch_size
            yield records[start:stop], u[start:stop], [h[k] for h in per_chunk]

    def homology_profile(self, sequences: Sequences, config: AnnotateConfig | None = None,
                         floor: float = PROFILE_FLOOR, progress: bool = False) -> sp.csr_matrix:
        """(proteins x catalogue rows) the homology re-ranker's probabilities, at least ``floor``,
        of each protein's candidates that the references annotate: what they would lend to a
        function no reference annotates (:mod:`retrieval.unseen`). A protein index keeps it, so that
        text searches borrow as annotation does (:class:`retrieval.protein_index.ProteinIndex`).

        Raises:
            InputError: no references, or a model without a homology re-ranker.
        """
        if not self.sources or self.reranker is self.model.reranker:
            raise InputError("a homology profile needs references and a model with a homology re-ranker")
        from tqdm.auto import tqdm

        config = config or AnnotateConfig()
        records = list(as_records(sequences))
        items, cols, values, done = [], [], [], 0
        with tqdm(total=len(records), desc="homology profiles", unit=" proteins", disable=not progress) as bar:
            for start in range(0, len(records), config.search_block):
                for chunk in self._chunks(records[start: start + config.search_block], config):
                    rows, evidence, probs = self._score_chunk(*chunk, config)
                    i, j = np.nonzero(self._parts(rows, evidence)[0][0] & (probs >= floor))
                    items.append(i + done)
                    cols.append(rows[i, j])
                    values.append(probs[i, j])
                    done += len(chunk[0])
                    bar.update(len(chunk[0]))
        shape = (len(records), len(self.index.catalogue))
        if not items:
            return sp.csr_matrix(shape, dtype=np.float32)
        return sp.csr_matrix((np.concatenate(values), (np.concatenate(items), np.concatenate(cols))), shape=shape)

    def _embed(self, sequences: list[str], config: AnnotateConfig) -> np.ndarray:
        tower = self.model.protein_encoder

        def encode(todo: list[str]) -> np.ndarray:
            return tower.encode(todo, precision=config.precision)

        if not config.embedding_cache:
            return encode(sequences)
        key = tower.cache_key(config.precision)
        if key not in self._stores:
            from retrieval.embedding_store import EmbeddingStore
            from retrieval.feature_cache import cache_dir

            self._stores[key] = EmbeddingStore(cache_dir() / "proteins", key, tower.config.embed_dim)
        return self._stores[key].get_or_compute(sequences, encode)

    def _score_chunk(self, records: list[ProteinRecord], u: np.ndarray, hits: list[pd.DataFrame],
                     config: AnnotateConfig) -> tuple[np.ndarray, list[Evidence], np.ndarray]:
        """Candidate rows (B, K) of a chunk (-1: padding), their evidence and probabilities (before
        GO propagation)."""
        _, rows = self.index.search(query_vectors(u), config.recall)
        rows, evidence = homology_candidates(rows, self.sources, hits, [r.id for r in records],
                                             [r.taxon or config.taxon for r in records])
        return rows, evidence, self._rerank(u, rows, self._catalogue_vectors(), evidence, config.precision,
                                            self._catalogue_nearest(), shared=True)

    def _annotate_chunk(self, records: list[ProteinRecord], u: np.ndarray, hits: list[pd.DataFrame],
                        config: AnnotateConfig) -> pd.DataFrame:
        rows, evidence, probs = self._score_chunk(records, u, hits, config)
        items = np.repeat(np.arange(len(records)), rows.shape[1])
        valid = rows.ravel() >= 0  # padding: FAISS when the catalogue is smaller than k, or merged candidates
        if config.propagate and self.propagator is not None:
            items, cols, values = self.propagator.max_propagate_triples(items[valid], rows.ravel()[valid],
                                                                        probs.ravel()[valid], len(records))
        else:
            items, cols, values = items[valid], rows.ravel()[valid], probs.ravel()[valid]
        table, items, cols = self._top(records, items, cols, values, config)
        if config.explain:
            from retrieval.explain import explanation

            v, b = (part[cols] for part in self._catalogue_vectors())
            table = table.join(explanation(items, cols, u, v, b, self.scale, self.sources, evidence, hits,
                                           [r.id for r in records], self._borrowed(u, items, cols, evidence,
                                                                                   config.precision)))
        return table

    def _borrowed(self, u: np.ndarray, items: np.ndarray, cols: np.ndarray, evidence: list[Evidence],
                  precision: str) -> tuple[np.ndarray, np.ndarray]:
        """For the pairs (items, catalogue rows cols), the part of the score borrowed from lenders
        (NaN where nothing is borrowed) and the lender that lent most ("" where none)."""
        lent, source = np.full(len(items), np.nan), np.full(len(items), "", dtype=object)
        nearest = self._catalogue_nearest()
        parts = self._parts(cols[None, :], evidence)
        if nearest is None or len(parts) < 2:
            return lent, source
        at = np.flatnonzero(parts[1][0][0])
        at = at[np.argsort(items[at], kind="stable")]
        neighbours, weights = nearest.lookup(cols[at])
        mine = pack(items[at], cols[at], len(u))
        lenders = lenders_of(mine, mine >= 0, nearest)
        shares = weights * pick(lenders, self._lender_probs(u, lenders, evidence, precision), items[at], neighbours,
                                nearest.n_lenders)
        has = weights.sum(axis=1) > 0
        lent[at[has]] = shares.sum(axis=1)[has]
        ids = np.asarray(self._lending().index.catalogue.ids, dtype=object)
        source[at[has]] = ids[neighbours[has, shares[has].argmax(axis=1)]]
        return lent, source

    def _rerank(self, u: np.ndarray, rows: np.ndarray, vectors: tuple[np.ndarray, np.ndarray],
                evidence: list[Evidence], precision: str, nearest: NearestAnnotated | None = None,
                shared: bool = False) -> np.ndarray:
        """Probabilities (B, K) of candidate rows (-1: padding, scored 0) of the functions
        ``vectors`` = (v (N, D), b (N,)), the products with the candidates at ``precision``; with
        ``nearest``, the candidates no reference labels borrow from their lenders (:mod:`retrieval.unseen`).
        ``shared``: the rows are the annotator's own index's, so where that is the lender index the
        lenders' probabilities are read from the candidates already scored.

        Each re-ranker's candidates (:meth:`_parts`) are packed to the left of each protein's row,
        and proteins are scored in groups of similar candidate counts, each cut to its own widest: a
        chunk padded to its widest protein was two-thirds padding in a hybrid run.
        """
        probs = np.zeros(rows.shape, dtype=np.float32)
        parts = self._parts(rows, evidence)
        for part, reranker, given in parts:
            order = np.argsort(~part, axis=1, kind="stable")
            widths = part.sum(axis=1)
            packed = np.where(np.arange(rows.shape[1]) < widths[:, None], np.take_along_axis(rows, order, axis=1), -1)
            for group in token_batches(widths, max_tokens=GROUP_PAIRS, max_batch=len(rows)):
                width = int(widths[group].max())
                if width:
                    sub = packed[group, :width]
                    real = sub >= 0
                    scored = self._score(reranker, u[group], sub, vectors, given, group, precision)
                    probs[np.broadcast_to(group[:, None], sub.shape)[real], order[group, :width][real]] = scored[real]
        if nearest is not None and len(parts) == 2 and parts[1][0].any():
            lenders = lenders_of(rows, parts[1][0], nearest)
            scored = self._lender_probs(u, lenders, evidence, precision, (rows, probs) if shared else None)
            lend(probs, rows, parts[1][0], nearest, lenders, scored)
        return probs

    def _lender_probs(self, u: np.ndarray, lenders: np.ndarray, evidence: list[Evidence], precision: str,
                      candidates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The homology re-ranker's probabilities (B, L) of each protein's ``lenders`` (rows of the
        lender index, -1: padding): read from ``candidates`` (rows and probabilities of the lender
        index itself, already scored) where they are among them, the others scored here."""
        table = self._lending()
        out = np.full(lenders.shape, np.nan, dtype=np.float32)
        if candidates is not None and table.index is self.index:
            out = pick(*candidates, np.arange(len(lenders)), lenders, len(self.index.catalogue), missing=np.nan)
        todo = (lenders >= 0) & np.isnan(out)
        if todo.any():
            found = [Evidence(e.transfer, s.ref_col) for e, s in zip(evidence, table.sources)]
            out[todo] = self._rerank(u, np.where(todo, lenders, -1), table.vectors, found, precision)[todo]
        return np.nan_to_num(out)

    def _parts(self, rows: np.ndarray, evidence: list[Evidence]) -> list[tuple[np.ndarray, object, list[Evidence]]]:
        """(candidates as a (B, K) mask, the re-ranker that scores them, the evidence it reads).

        A candidate that no given reference has labels for (a GO term newer than the references, a
        free-text function) is scored by the two-tower re-ranker: the homology re-ranker trained
        only on terms the references annotate, and ranks terms without any evidence worse than the
        towers do (held-out GO terms, docs/benchmarks.md#held-out-terms-protocols-a-and-b-of-issue-13).
        """
        present = rows >= 0
        if not evidence or self.reranker is self.model.reranker:
            return [(present, self.reranker, evidence)]
        known = present & np.any([e.ref_col[np.clip(rows, 0, None)] >= 0 for e in evidence], axis=0)
        return [(known, self.reranker, evidence), (present & ~known, self.model.reranker, [])]

    def _score(self, reranker, u: np.ndarray, rows: np.ndarray, vectors: tuple[np.ndarray, np.ndarray],
               evidence: list[Evidence], queries: np.ndarray, precision: str) -> np.ndarray:
        """One re-ranker's probabilities (B, K) for candidate rows (-1: padding)."""
        safe = np.clip(rows, 0, None)
        v, b = vectors[0][safe], vectors[1][safe]
        feats = candidate_features(reranker.config.pair_features, u, v, b, self.scale, rows, evidence, queries)
        return rerank_probabilities(reranker, u, v, feats, precision=precision)

    def _top(self, records, items, cols, values, config: AnnotateConfig) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The reported rows as a table, and their query indices and catalogue rows.

        Filtered and ranked as arrays (by protein, score descending, catalogue row); only the rows
        reported become a DataFrame.
        """
        keep = values >= max(config.min_score, 1e-6)
        if config.min_precision:
            keep &= values >= self._column_floors(config.min_precision)[cols]
        if not config.include_roots:
            keep &= ~self._is_root[cols]
        if config.aspect:
            keep &= (self._aspects == config.aspect)[cols]
        items, cols, values = items[keep], cols[keep], values[keep]
        ranked = np.lexsort((cols, -values, items))
        items, cols, values = items[ranked], cols[ranked], values[ranked]
        groups = items * (self._aspect_codes.max() + 1) + self._aspect_codes[cols] if config.per_aspect else items
        if config.specific and self.propagator is not None:
            chosen = _most_specific(groups, cols, self.propagator.ancestors, config.top)
        else:
            chosen = _ranks_in_group(groups) < config.top
        items, cols, values = items[chosen], cols[chosen], values[chosen]
        ids = np.array([r.id for r in records], dtype=object)
        return pd.DataFrame({"protein_id": ids[items], "term_id": self._ids[cols],
                             "score": values.astype(np.float64), "aspect": self._aspects[cols],
                             "name": self._names[cols]}), items, cols


@dataclass
class LenderTable:
    """The index whose annotated functions lend (:mod:`retrieval.unseen`), as an annotator reads it."""

    index: FunctionIndex
    sources: list[HomologySource]  # the annotator's references, mapped onto this index
    vectors: tuple[np.ndarray, np.ndarray]  # (v, b) of every row
    meaning: np.ndarray

    @property
    def annotated(self) -> np.ndarray:
        return annotated_rows(self.sources)


def _split(index: FunctionIndex, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(v, b) float32 of every row of an index."""
    v, b = split_index_vectors(index.vectors(np.arange(len(index.catalogue))), scale)
    return np.ascontiguousarray(v, dtype=np.float32), np.ascontiguousarray(b)


def _split_hits(hits: list[pd.DataFrame], ids: list[str], size: int) -> list[list[pd.DataFrame]]:
    """Each reference's hits split by the chunk of ``size`` queries their query is in (a chunk's
    transfer then reads its own hits, not the whole block's)."""
    chunks, queries = -(-len(ids) // size), pd.Index(ids)
    out = []
    for frame in hits:
        chunk = queries.get_indexer(frame["query"].to_numpy()) // size
        groups = frame.groupby(chunk, sort=False).indices
        out.append([frame.iloc[groups[k]] if k in groups else frame.iloc[:0] for k in range(chunks)])
    return out


def _ranks_in_group(groups: np.ndarray) -> np.ndarray:
    """Each row's rank among the rows of its group, in row order (0: the group's first row)."""
    order = np.argsort(groups, kind="stable")
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    return ranks


def _most_specific(groups: np.ndarray, cols: np.ndarray, ancestors, top: int) -> np.ndarray:
    """Positions (rows ranked best first within each group) of up to ``top`` terms per group of
    which none is an ancestor of another: going down the ranking, a term that is an ancestor of one
    already taken is skipped, and a term replaces the ancestors of it already taken."""
    keep = []
    order = np.argsort(groups, kind="stable")
    for at in np.split(order, np.flatnonzero(groups[order][1:] != groups[order][:-1]) + 1):
        chosen: list[int] = []  # positions
        covered: set[int] = set()  # the chosen terms and all their ancestors
        for pos in at:
            col = int(cols[pos])
            if col in covered:
                continue
            above = set(ancestors.indices[ancestors.indptr[col]: ancestors.indptr[col + 1]].tolist())
            chosen = [p for p in chosen if int(cols[p]) not in above] + [pos]
            covered |= above
            if len(chosen) == top:
                break
        keep.extend(chosen)
    return np.sort(np.asarray(keep, dtype=np.int64))


@dataclass(frozen=True)
class Recipe:
    """The arguments of :meth:`Annotator.from_pretrained`, paths made absolute, so that another
    process (a Ray worker) loads the same annotator."""

    model: str | None
    index: str | None
    reference: str | tuple[str, ...] | None
    executable: str | None
    settings: SearchSettings | None
    force: bool

    @classmethod
    def of(cls, model, index, reference, executable, settings, force) -> "Recipe":
        """From the arguments as given: paths made absolute (a bare tool name stays a name, for PATH)."""
        if reference is not None and reference != "default":
            folders = [reference] if isinstance(reference, (str, os.PathLike)) else reference
            reference = tuple(os.path.abspath(f) for f in folders)
        if executable is not None and os.path.exists(executable):
            executable = os.path.abspath(executable)
        return cls(_absolute(model), _absolute(index), reference, executable, settings, force)

    def load(self, threads: int = 0) -> Annotator:
        """The annotator; ``threads``: the search tool's threads (0: as recorded)."""
        settings = self.settings or SearchSettings()
        if threads:
            settings = dataclasses.replace(settings, threads=threads)
        return Annotator.from_pretrained(self.model, self.index, self.reference, self.executable, settings, self.force)


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _load_references(reference: Paths | None, model: RetrievalModel) -> list[Reference]:
    """The references ``Annotator.from_pretrained`` is asked for (see there)."""
    if isinstance(reference, str) and reference == "default":
        from retrieval.homology.shipped import shipped_manifest, shipped_references

        shipped = [r["fingerprint"] for r in shipped_manifest().get("references", [])]
        trained = [r.get("fingerprint") for r in model.info.get("homology_references", [])]
        if shipped and shipped == trained:
            return shipped_references()
        if trained:
            LOG.warning("this model's homology re-ranker was trained on references that are not shipped: "
                        "give them with --reference")
        return []
    folders = [reference] if isinstance(reference, (str, os.PathLike)) else list(reference or [])
    return [Reference.load(f) for f in folders]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["protein_id", "term_id", "score", "aspect", "name"])
