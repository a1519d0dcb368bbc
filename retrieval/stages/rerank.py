"""Re-ranking: which re-ranker scores which candidate, decided here once, and their probabilities.

A model has a two-tower re-ranker and, when trained with homology, a homology re-ranker that also
reads each reference's transfer features. With references, the homology re-ranker scores the
candidates some reference has labels for; a candidate no given reference labels (a GO term newer
than the references, a free-text function) is scored by the two-tower re-ranker: the homology
re-ranker trained only on terms the references annotate, and ranks terms without any evidence
worse than the towers do (docs/benchmarks.md#held-out-terms-protocols-a-and-b-of-issue-13). Those
candidates then borrow from their lenders (:mod:`retrieval.stages.lending`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from index.errors import InputError
from index.vector_index import FunctionIndex
from retrieval.homology import HomologySource, homology_feature_names, n_homology_sources
from retrieval.models.batching import token_batches
from retrieval.models.retriever import RetrievalModel
from retrieval.models.scoring import pair_features, rerank_probabilities, split_index_vectors
from retrieval.stages.recall import Evidence

LOG = logging.getLogger(__name__)
#: Candidate pairs whose features are computed together (the re-ranker runs in smaller batches).
GROUP_PAIRS = 1 << 15


@dataclass
class FunctionVectors:
    """The text tower's vector ``v`` (N, D) and bias ``b`` (N,) of every row of a function table."""

    v: np.ndarray
    b: np.ndarray

    @classmethod
    def of_index(cls, index: FunctionIndex, scale: float) -> "FunctionVectors":
        """Split from the index's stored rows once: gathering and rescaling them per chunk took a
        tenth of a hybrid run."""
        v, b = split_index_vectors(index.vectors(np.arange(len(index.catalogue))), scale)
        return cls(np.ascontiguousarray(v, dtype=np.float32), np.ascontiguousarray(b))


@dataclass
class Route:
    """The candidates (a (B, K) mask) one re-ranker scores, and the evidence it reads."""

    mask: np.ndarray
    reranker: object
    evidence: list[Evidence]


class Reranking:
    """Scores candidates with the model's re-rankers.

    Args:
        model: the retrieval model.
        sources: the references, each mapped onto the function table's rows, in the order the
            homology re-ranker was trained with.
        force: use references other than those the homology re-ranker was trained with.
    """

    def __init__(self, model: RetrievalModel, sources: list[HomologySource], force: bool = False):
        self.model, self.sources = model, sources
        #: whether the homology re-ranker is in use (references given, and the model has one)
        self.homology = bool(sources) and model.homology_reranker is not None
        self.reranker = model.homology_reranker if self.homology else model.reranker
        self.scale = model.text_encoder.scale
        _check_sources(model, self.reranker, sources, force)

    def routes(self, rows: np.ndarray, evidence: list[Evidence]) -> list[Route]:
        """Who scores the candidate ``rows`` (B, K) (-1: padding): one route, or with homology two,
        the second being the candidates no reference labels (the two-tower re-ranker, no evidence)."""
        present = rows >= 0
        if not evidence or not self.homology:
            return [Route(present, self.reranker, evidence)]
        known = present & np.any([e.ref_col[np.clip(rows, 0, None)] >= 0 for e in evidence], axis=0)
        return [Route(known, self.reranker, evidence), Route(present & ~known, self.model.reranker, [])]

    def unseen(self, rows: np.ndarray, evidence: list[Evidence]) -> np.ndarray | None:
        """(B, K) the candidates no reference labels, which borrow from lenders (None: no lending)."""
        routes = self.routes(rows, evidence)
        return routes[1].mask if len(routes) == 2 else None

    def score(self, u: np.ndarray, rows: np.ndarray, vectors: FunctionVectors, evidence: list[Evidence],
              precision: str) -> np.ndarray:
        """Probabilities (B, K) of candidate ``rows`` (-1: padding, scored 0) of the functions
        ``vectors``, the products with the candidates at ``precision``.

        Each re-ranker's candidates are packed to the left of each protein's row, and proteins are
        scored in groups of similar candidate counts, each cut to its own widest: a chunk padded to
        its widest protein was two-thirds padding in a hybrid run.
        """
        probs = np.zeros(rows.shape, dtype=np.float32)
        for route in self.routes(rows, evidence):
            order = np.argsort(~route.mask, axis=1, kind="stable")
            widths = route.mask.sum(axis=1)
            packed = np.where(np.arange(rows.shape[1]) < widths[:, None], np.take_along_axis(rows, order, axis=1), -1)
            for group in token_batches(widths, max_tokens=GROUP_PAIRS, max_batch=len(rows)):
                width = int(widths[group].max())
                if width:
                    sub = packed[group, :width]
                    real = sub >= 0
                    scored = self._probabilities(route, u[group], sub, vectors, group, precision)
                    probs[np.broadcast_to(group[:, None], sub.shape)[real], order[group, :width][real]] = scored[real]
        return probs

    def _probabilities(self, route: Route, u: np.ndarray, rows: np.ndarray, vectors: FunctionVectors,
                       queries: np.ndarray, precision: str) -> np.ndarray:
        """One re-ranker's probabilities (B, K) for candidate rows (-1: padding)."""
        safe = np.clip(rows, 0, None)
        v, b = vectors.v[safe], vectors.b[safe]
        feats = candidate_features(route.reranker.config.pair_features, u, v, b, self.scale, rows, route.evidence,
                                   queries)
        return rerank_probabilities(route.reranker, u, v, feats, precision=precision)


def candidate_features(names, u: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float, rows: np.ndarray,
                       evidence: list[Evidence] = (), queries: np.ndarray | None = None) -> np.ndarray:
    """(B, K, F) features of candidate rows (-1: padding, all features zero); a source's features are
    zero when it gives no evidence. ``queries``: the evidence's query of each of the B proteins
    (default: the first B, in order)."""
    extra = {}
    source = 0
    while any(n in names for n in homology_feature_names(source)):
        own = homology_feature_names(source)
        if source < len(evidence):
            found = evidence[source]
            cols = np.where(rows >= 0, found.ref_col[np.clip(rows, 0, None)], -1)
            values = found.transfer.features(cols, np.arange(len(rows)) if queries is None else queries)
            extra.update(zip(own, (values[n] for n in homology_feature_names(0))))
        else:
            extra.update((n, np.zeros(rows.shape, dtype=np.float32)) for n in own)
        source += 1
    features = pair_features(names, u, v, bias, scale, extra)
    features[rows < 0] = 0.0
    return features


def _check_sources(model: RetrievalModel, reranker, sources: list[HomologySource], force: bool) -> None:
    """Refuse more references than the re-ranker reads, or others than it was trained with (unless
    ``force``); warn when fewer are given."""
    wanted, given = n_homology_sources(reranker.config.pair_features), len(sources)
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
    trained = [r.get("fingerprint") for r in model.info.get("homology_references", [])]
    for i, (source, expected) in enumerate(zip(sources, trained)):
        found = source.reference.fingerprint()
        if found != expected:
            message = (f"reference {i + 1} ({source.reference.folder}) is not the one the homology re-ranker "
                       f"was trained with (fingerprint {found}, expected {expected})")
            if not force:
                raise InputError(f"{message}: give the references in the training order, retrain the "
                                 "re-ranker for yours (prot-retrieve train-reranker), or --force")
            LOG.warning("%s; going on (--force): its features may not mean what the re-ranker learned", message)
