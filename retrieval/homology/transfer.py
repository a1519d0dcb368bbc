"""Label-transfer features: a query's hits on a reference turned into per-(query, term) evidence.

Transfer score of term t for query q (bitscore-weighted kNN, as DeepGOPlus and the CAFA
baselines): sum of bitscores of q's hits annotated with t / sum of bitscores of q's hits annotated
in t's aspect; the same over q's hits in other species than its own (orthologs share function more
often than paralogs). Beside them, the reference gives a species prior: how often t is annotated
among the reference proteins of q's taxon (GO usage differs between organisms and their curation
projects), and identity, coverage and amount of evidence per term and per aspect.

Several references can feed one re-ranker (e.g. a small experimental one and a larger one with
electronic labels): each is a *source* with its own block of features, named by
:func:`homology_feature_names`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from retrieval.homology.reference import Reference

#: Per-pair features one reference provides to the re-ranker (see retrieval.models.scoring.PAIR_FEATURES).
HOMOLOGY_FEATURES = ("knn_score", "max_identity", "max_coverage", "hit_fraction", "top_identity", "has_hits",
                     "taxon_frequency", "aspect_hits", "aspect_identity", "ortholog_knn_score")


def homology_feature_names(source: int) -> tuple[str, ...]:
    """Feature names of the ``source``-th reference (0-based): plain for the first, ``_2``... after."""
    return HOMOLOGY_FEATURES if source == 0 else tuple(f"{n}_{source + 1}" for n in HOMOLOGY_FEATURES)


def n_homology_sources(pair_features) -> int:
    """How many references a re-ranker with these pair features reads (each has its own knn_score;
    a re-ranker trained before a feature was added reads the ones it knows)."""
    n = 0
    while homology_feature_names(n)[0] in pair_features:
        n += 1
    return n


@dataclass
class Transfer:
    """Sparse per-(query, reference term) evidence: (queries x reference terms) CSR matrices.

    The five matrices share one sparsity pattern, the (query, term) pairs some hit of the query
    carries, listed in ``pairs``; features are then looked up once for all five.
    """

    knn_score: sp.csr_matrix
    # The same score over hits from other species than the query's only: orthologs share function
    # more often than paralogs do (equal to knn_score when the query's taxon is unknown; explicit
    # zeros where only hits of the query's own species carry the term).
    ortholog_knn_score: sp.csr_matrix
    max_identity: sp.csr_matrix
    max_coverage: sp.csr_matrix  # best alignment coverage (fraction) among the hits carrying the term
    hit_fraction: sp.csr_matrix
    pairs: np.ndarray  # sorted query * n_terms + term of the matrices' stored entries, in their order
    top_identity: np.ndarray  # best hit identity per query (fraction), 0 without hits
    has_hits: np.ndarray  # 1.0 when the query has any hit
    # How much evidence the kNN score of a term rests on: per (query, aspect), log(1 + number of hits
    # annotated in the aspect) and the best identity among them (the best hit overall may carry no
    # label in that aspect, and a score of 1.0 from one hit means less than from 25).
    aspect_hits: np.ndarray  # (queries, aspects)
    aspect_identity: np.ndarray  # (queries, aspects)
    col_aspect: np.ndarray  # aspect (column of the two above) of each reference term
    taxon_frequency: np.ndarray  # (taxa, terms) term frequencies of the queries' taxa in the reference
    taxon_row: np.ndarray  # row of taxon_frequency for each query

    @classmethod
    def from_hits(cls, reference: Reference, hits: pd.DataFrame, queries: list[str],
                  taxa: list[str] | None = None) -> "Transfer":
        q_index = pd.Index(queries)
        qi = q_index.get_indexer(hits["query"].to_numpy())
        ti = reference.id_index.get_indexer(hits["target"].to_numpy())
        ok = (qi >= 0) & (ti >= 0)
        qi, ti = qi[ok], ti[ok]
        bits = hits["bitscore"].to_numpy(dtype=np.float64)[ok]
        ident = hits["identity"].to_numpy(dtype=np.float64)[ok] / 100.0
        cover = hits["coverage"].to_numpy(dtype=np.float64)[ok] / 100.0
        n_q, n_t = len(queries), len(reference.terms)
        queries_taxa = np.asarray(taxa if taxa is not None else [""] * n_q, dtype=str)
        other = ~((queries_taxa[qi] == reference.taxa[ti]) & (queries_taxa[qi] != ""))  # another species' hit
        y, in_aspect, col_aspect = reference.aspect_labels
        annotated = in_aspect[ti].toarray().astype(bool)  # (hits, aspects)

        def per_aspect(weights: np.ndarray) -> np.ndarray:  # (queries, aspects) sums over the annotated hits
            return np.stack([np.bincount(qi, weights * a, minlength=n_q) for a in annotated.T], axis=1)

        # Every hit expanded to its target's terms and grouped by (query, term): one sort for all five
        per_hit = y[ti].tocoo()
        key = qi[per_hit.row].astype(np.int64) * n_t + per_hit.col
        order = np.argsort(key, kind="stable")
        key, hit = key[order], per_hit.row[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
        pairs = key[starts]
        row, col = pairs // n_t, pairs % n_t
        indptr = np.searchsorted(row, np.arange(n_q + 1))

        def matrix(data: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix((data, col, indptr), shape=(n_q, n_t))

        def reduce(ufunc, x: np.ndarray) -> np.ndarray:
            return ufunc.reduceat(x[hit], starts) if len(starts) else np.zeros(0)

        def share(numerator: np.ndarray, denominator: np.ndarray) -> sp.csr_matrix:  # of the term's aspect
            den = denominator[row, col_aspect[col]]
            return matrix(np.divide(numerator, den, out=np.zeros_like(numerator), where=den > 0))

        hits_in_aspect = per_aspect(np.ones(len(qi)))
        knn = share(reduce(np.add, bits), per_aspect(bits))
        ortholog_knn = share(reduce(np.add, bits * other), per_aspect(bits * other))
        fraction = share(reduce(np.add, np.ones(len(qi))), hits_in_aspect)
        max_ident, max_cover = matrix(reduce(np.maximum, ident)), matrix(reduce(np.maximum, cover))
        top = np.zeros(n_q)
        np.maximum.at(top, qi, ident)
        aspect_identity = np.zeros((n_q, in_aspect.shape[1]))
        for a, in_a in enumerate(annotated.T):
            np.maximum.at(aspect_identity[:, a], qi[in_a], ident[in_a])
        aspect_hits = np.log1p(hits_in_aspect)
        has = np.zeros(n_q)
        has[qi] = 1.0
        groups, taxon_row = np.unique(queries_taxa, return_inverse=True)
        frequency = np.stack([reference.term_frequencies(t) for t in groups]) if n_q else np.zeros((0, n_t))
        return cls(knn, ortholog_knn, max_ident, max_cover, fraction, pairs, top, has, aspect_hits, aspect_identity,
                   col_aspect, frequency.astype(np.float32), taxon_row.reshape(-1))

    def features(self, rows_terms: np.ndarray, query_rows: np.ndarray) -> dict[str, np.ndarray]:
        """Dense (B, K) feature arrays for candidate terms given as reference-term columns (-1: absent)."""
        b, k = rows_terms.shape
        out = {}
        valid = rows_terms >= 0
        qq = np.repeat(query_rows, k).reshape(b, k)
        wanted = qq[valid].astype(np.int64) * self.knn_score.shape[1] + rows_terms[valid]
        at = np.minimum(np.searchsorted(self.pairs, wanted), max(len(self.pairs) - 1, 0))
        found = self.pairs[at] == wanted if len(self.pairs) else np.zeros(len(wanted), dtype=bool)
        for name in ("knn_score", "ortholog_knn_score", "max_identity", "max_coverage", "hit_fraction"):
            values = np.zeros((b, k), dtype=np.float32)
            if len(self.pairs):
                values[valid] = np.where(found, getattr(self, name).data[at], 0.0)
            out[name] = values
        out["top_identity"] = np.repeat(self.top_identity[query_rows], k).reshape(b, k).astype(np.float32)
        out["has_hits"] = np.repeat(self.has_hits[query_rows], k).reshape(b, k).astype(np.float32)
        for name, values in (("taxon_frequency", lambda q, c: self.taxon_frequency[self.taxon_row[q], c]),
                             ("aspect_hits", lambda q, c: self.aspect_hits[q, self.col_aspect[c]]),
                             ("aspect_identity", lambda q, c: self.aspect_identity[q, self.col_aspect[c]])):
            out[name] = np.zeros((b, k), dtype=np.float32)
            out[name][valid] = values(qq[valid], rows_terms[valid])
        return out
