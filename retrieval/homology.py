"""Homology evidence: a reference of annotated proteins, searched with DIAMOND (or, without it, by
protein-tower embeddings), turned into per-(protein, term) label-transfer features.

```
reference/
  reference.json   counts, sources, ontology release, searcher settings
  sequences.fasta  the reference proteins
  reference.dmnd   DIAMOND database (when DIAMOND was found at build time; rebuilt on demand)
  labels.npz       propagated labels: CSR (proteins x terms) + protein ids, taxa and term ids
```
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

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.errors import InputError
from retrieval.feature_cache import cache_dir
from retrieval.io.fasta import ProteinRecord, read_fasta

LOG = logging.getLogger(__name__)
#: Per-pair features one reference provides to the re-ranker (see retrieval.scoring.PAIR_FEATURES).
HOMOLOGY_FEATURES = ("knn_score", "max_identity", "max_coverage", "hit_fraction", "top_identity", "has_hits",
                     "taxon_frequency", "aspect_hits", "aspect_identity", "ortholog_knn_score")
#: A taxon needs this many reference proteins annotated in an aspect to get its own term frequencies
#: (else the whole reference's count). At 500, a training query's own labels, which are in the
#: reference, move its species' frequencies by at most 0.2 %.
MIN_TAXON_PROTEINS = 500


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


SEARCHERS = ("diamond", "embedding")


@dataclass
class SearchSettings:
    """How a query is searched against a reference."""

    # diamond, or embedding: the nearest reference proteins by protein-tower embedding (what DIAMOND's
    # absence falls back to; with a protein language model tower, goPredSim-style transfer).
    searcher: str = "diamond"
    sensitivity: str = "more-sensitive"  # DIAMOND: fast | sensitive | more-sensitive | very-sensitive
    evalue: float = 1e-3  # DIAMOND hits above this e-value are ignored
    max_targets: int = 25  # hits kept per query
    min_identity: float = 0.0  # percent identity below which DIAMOND hits are ignored
    threads: int = 2

    def __post_init__(self):
        if self.searcher not in SEARCHERS:
            raise InputError(f"unknown searcher {self.searcher!r} (one of {', '.join(SEARCHERS)})")


class Reference:
    """Annotated reference proteins and their propagated labels.

    Args:
        folder: where the reference lives.
        ids: reference protein ids (row order of ``labels``).
        terms: term ids (column order of ``labels``).
        labels: boolean CSR (proteins x terms), propagated.
        aspects: aspect of each term (MFO/BPO/CCO or "").
        taxa: NCBI taxon of each protein ("" unknown).
    """

    def __init__(self, folder: Path, ids: np.ndarray, terms: np.ndarray, labels: sp.csr_matrix, aspects: np.ndarray,
                 taxa: np.ndarray):
        self.folder, self.ids, self.terms, self.labels, self.aspects = folder, ids, terms, labels, aspects
        self.taxa = taxa
        self._frequencies: dict[str, np.ndarray] = {}

    @classmethod
    def build(cls, records: list[ProteinRecord], annotations: pd.DataFrame, ontology, propagator, folder: str | Path,
              diamond: str | None = None) -> "Reference":
        """Write a reference folder from proteins and (unpropagated) annotations."""
        from index.labels import label_matrix

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        index = pd.Index([r.id for r in records])
        labels, _ = label_matrix(ontology, propagator, annotations["protein"], annotations["term"], index=index)
        used = np.flatnonzero(np.asarray(labels.sum(axis=0)).ravel() > 0)
        labels = labels[:, used].tocsr()
        terms = np.array(ontology.live_ids, dtype=object)[used]
        aspects = np.array([ontology.terms[t].aspect for t in terms], dtype=object)
        keep = labels.getnnz(axis=1) > 0
        records = [r for r, k in zip(records, keep) if k]
        with open(folder / "sequences.fasta", "w") as fh:
            fh.writelines(f">{r.id}\n{r.sequence}\n" for r in records)
        np.savez_compressed(folder / "labels.npz", indptr=labels[keep].indptr, indices=labels[keep].indices,
                            ids=np.array([r.id for r in records]), taxa=np.array([r.taxon for r in records]),
                            terms=terms.astype(str), aspects=aspects.astype(str))
        meta = {"n_proteins": len(records), "n_terms": len(terms), "ontology_release": ontology.release}
        (folder / "reference.json").write_text(json.dumps(meta, indent=2))
        reference = cls.load(folder)
        if find_diamond(diamond, required=False):
            reference.diamond_db(diamond)
        return reference

    @classmethod
    def load(cls, folder: str | Path) -> "Reference":
        folder = Path(folder)
        if not (folder / "labels.npz").is_file() or not (folder / "sequences.fasta").is_file():
            raise InputError(f"{folder}: not a reference folder (build one with `prot-retrieve build-reference`)")
        z = np.load(folder / "labels.npz", allow_pickle=False)
        labels = sp.csr_matrix((np.ones(len(z["indices"]), dtype=bool), z["indices"], z["indptr"]),
                               shape=(len(z["ids"]), len(z["terms"])))
        return cls(folder, z["ids"].astype(object), z["terms"].astype(object), labels, z["aspects"].astype(object),
                   z["taxa"].astype(object))

    def fingerprint(self) -> str:
        """Hash of the proteins, taxa, terms and labels: the same inputs give the same reference."""
        digest = hashlib.sha256()
        for part in (self.ids, self.taxa, self.terms, self.labels.indptr, self.labels.indices):
            digest.update(np.asarray(part).astype(str if part.dtype == object else part.dtype).tobytes())
        return digest.hexdigest()[:16]

    def term_frequencies(self, taxon: str = "") -> np.ndarray:
        """Per term, the share of reference proteins annotated in its aspect that carry it.

        Counted within ``taxon`` for each aspect where the taxon has at least
        :data:`MIN_TAXON_PROTEINS` annotated proteins, over the whole reference otherwise.
        """
        if taxon not in self._frequencies:
            freq = np.zeros(len(self.terms), dtype=np.float32)
            of_taxon = self.taxa == taxon
            for aspect in pd.unique(self.aspects):
                cols = self.aspects == aspect
                in_aspect = self.labels[:, cols]
                annotated = in_aspect.getnnz(axis=1) > 0
                mine = annotated & of_taxon
                rows = mine if mine.sum() >= MIN_TAXON_PROTEINS else annotated
                freq[cols] = np.asarray(in_aspect[rows].sum(axis=0)).ravel() / max(int(rows.sum()), 1)
            self._frequencies[taxon] = freq
        return self._frequencies[taxon]

    @cached_property
    def aspect_labels(self) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """What every transfer needs, computed once per reference: the labels as float64, which
        aspects each protein is annotated in (proteins x aspects) and each term's aspect column."""
        y = self.labels.astype(np.float64)
        aspects = pd.unique(self.aspects)
        in_aspect = sp.csr_matrix(np.stack([np.asarray(y[:, self.aspects == a].sum(axis=1)).ravel() > 0
                                            for a in aspects], axis=1).astype(np.float64))
        return y, in_aspect, pd.Index(aspects).get_indexer(self.aspects)

    def records(self) -> list[ProteinRecord]:
        return read_fasta(self.folder / "sequences.fasta")

    def diamond_db(self, diamond: str | None = None) -> Path:
        """The DIAMOND database of the reference, built on first use."""
        db = self.folder / "reference.dmnd"
        if not db.is_file():
            _run([find_diamond(diamond), "makedb", "--in", str(self.folder / "sequences.fasta"), "-d", str(db),
                  "--quiet"])
        return db

    def transfer(self, hits: pd.DataFrame, queries: list[str], taxa: list[str] | None = None) -> "Transfer":
        """Label-transfer evidence of hits (query, target, identity, bitscore) for the given queries,
        with the species prior of each query's taxon (``taxa``; None or "": unknown)."""
        return Transfer.from_hits(self, hits, queries, taxa)


def find_diamond(path: str | None = None, required: bool = True) -> str | None:
    """The DIAMOND executable: ``path`` if given, else ``diamond`` on PATH."""
    found = shutil.which(path or "diamond")
    if found is None and required:
        raise InputError("DIAMOND not found (apt-get install diamond-aligner, or pass --diamond PATH)")
    return found


def _run(command: list[str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise InputError(f"{Path(command[0]).name} {command[1]} failed: {(err.stderr or '').strip()[:300]}") from None


def diamond_search(reference: Reference, records: list[ProteinRecord], settings: SearchSettings,
                   diamond: str | None = None) -> pd.DataFrame:
    """``diamond blastp`` of the records against the reference.

    Returns:
        DataFrame (query, target, identity, evalue, bitscore, coverage): identity and coverage in
        percent; coverage is the share of the shorter-covered protein that the alignment spans,
        min(query coverage, target coverage) (a hit on one domain of a multi-domain protein is low).
    """
    db = reference.diamond_db(diamond)
    with tempfile.TemporaryDirectory() as tmp:
        queries, out = Path(tmp) / "q.fasta", Path(tmp) / "hits.tsv"
        queries.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in records))
        start = time.perf_counter()
        _run([find_diamond(diamond), "blastp", "-d", str(db), "-q", str(queries), "-o", str(out),
              f"--{settings.sensitivity}", "-e", str(settings.evalue), "--max-target-seqs", str(settings.max_targets),
              "--threads", str(settings.threads), "--outfmt", "6", "qseqid", "sseqid", "pident", "evalue", "bitscore",
              "qcovhsp", "scovhsp", "--quiet"])
        hits = pd.read_csv(out, sep="\t", header=None,
                           names=["query", "target", "identity", "evalue", "bitscore", "qcov", "scov"],
                           dtype={"query": str, "target": str, "identity": float, "evalue": float, "bitscore": float,
                                  "qcov": float, "scov": float})
    hits = hits.assign(coverage=np.minimum(hits["qcov"], hits["scov"])).drop(columns=["qcov", "scov"])
    LOG.info("DIAMOND: %d queries, %d hits in %.1f s", len(records), len(hits), time.perf_counter() - start)
    return hits[hits["identity"] >= settings.min_identity]


def embedding_search(reference_vectors: np.ndarray, reference_ids: np.ndarray, query_vectors: np.ndarray,
                     query_ids: list[str], k: int = 25) -> pd.DataFrame:
    """Fallback without DIAMOND: nearest reference proteins by protein-tower cosine similarity.

    The similarity (x 100) stands in for identity and (x 1000) for the bitscore, so the transfer
    features keep their meaning, if not their accuracy; embeddings compare whole proteins, so the
    coverage is 100.
    """
    import faiss

    index = faiss.IndexFlatIP(reference_vectors.shape[1])
    index.add(np.ascontiguousarray(reference_vectors, dtype=np.float32))
    sims, rows = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(k, len(reference_ids)))
    q = np.repeat(np.asarray(query_ids, dtype=object), rows.shape[1])
    sim = np.clip(sims.ravel(), 0, 1)
    return pd.DataFrame({"query": q, "target": reference_ids[rows.ravel()], "identity": 100 * sim,
                         "evalue": 0.0, "bitscore": 1000 * sim, "coverage": 100.0})


@dataclass
class Transfer:
    """Sparse per-(query, reference term) evidence: (queries x reference terms) CSR matrices."""

    knn_score: sp.csr_matrix
    # The same score over hits from other species than the query's only: orthologs share function
    # more often than paralogs do (equal to knn_score when the query's taxon is unknown).
    ortholog_knn_score: sp.csr_matrix
    max_identity: sp.csr_matrix
    max_coverage: sp.csr_matrix  # best alignment coverage (fraction) among the hits carrying the term
    hit_fraction: sp.csr_matrix
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
        ti = pd.Index(reference.ids).get_indexer(hits["target"].to_numpy())
        ok = (qi >= 0) & (ti >= 0)
        qi, ti = qi[ok], ti[ok]
        bits = hits["bitscore"].to_numpy(dtype=np.float64)[ok]
        ident = hits["identity"].to_numpy(dtype=np.float64)[ok] / 100.0
        cover = hits["coverage"].to_numpy(dtype=np.float64)[ok] / 100.0
        n_q, n_t = len(queries), len(reference.terms)
        queries_taxa = np.asarray(taxa if taxa is not None else [""] * n_q, dtype=str)
        weights = sp.csr_matrix((bits, (qi, ti)), shape=(n_q, len(reference.ids)))
        counts = sp.csr_matrix((np.ones(len(qi)), (qi, ti)), shape=(n_q, len(reference.ids)))
        y, in_aspect, col_aspect = reference.aspect_labels
        knn, ortholog_knn = (_divide_by_aspect(w @ y, (w @ in_aspect).toarray(), col_aspect)
                             for w in (weights, _other_species(weights, queries_taxa, reference.taxa)))
        hits_in_aspect = (counts @ in_aspect).toarray()
        fraction = _divide_by_aspect(counts @ y, hits_in_aspect, col_aspect)
        # Max identity and coverage per (query, term): expand every hit to its target's terms, keep the max.
        per_hit = y[ti].tocoo()
        max_ident, max_cover = (
            _max_duplicates(sp.coo_matrix((x[per_hit.row], (qi[per_hit.row], per_hit.col)), shape=(n_q, n_t)))
            for x in (ident, cover))
        top = np.zeros(n_q)
        np.maximum.at(top, qi, ident)
        aspect_identity = np.zeros((n_q, in_aspect.shape[1]))
        for a, annotated in enumerate(in_aspect[ti].toarray().T.astype(bool)):
            np.maximum.at(aspect_identity[:, a], qi[annotated], ident[annotated])
        aspect_hits = np.log1p(hits_in_aspect)
        has = np.zeros(n_q)
        has[qi] = 1.0
        groups, taxon_row = np.unique(queries_taxa, return_inverse=True)
        frequency = np.stack([reference.term_frequencies(t) for t in groups]) if n_q else np.zeros((0, n_t))
        return cls(knn, ortholog_knn, max_ident, max_cover, fraction, top, has, aspect_hits, aspect_identity,
                   col_aspect, frequency.astype(np.float32), taxon_row.reshape(-1))

    def features(self, rows_terms: np.ndarray, query_rows: np.ndarray) -> dict[str, np.ndarray]:
        """Dense (B, K) feature arrays for candidate terms given as reference-term columns (-1: absent)."""
        b, k = rows_terms.shape
        out = {}
        valid = rows_terms >= 0
        qq = np.repeat(query_rows, k).reshape(b, k)
        for name in ("knn_score", "ortholog_knn_score", "max_identity", "max_coverage", "hit_fraction"):
            matrix = getattr(self, name)
            values = np.zeros((b, k), dtype=np.float32)
            values[valid] = np.asarray(matrix[qq[valid], rows_terms[valid]]).ravel()
            out[name] = values
        out["top_identity"] = np.repeat(self.top_identity[query_rows], k).reshape(b, k).astype(np.float32)
        out["has_hits"] = np.repeat(self.has_hits[query_rows], k).reshape(b, k).astype(np.float32)
        for name, values in (("taxon_frequency", lambda q, c: self.taxon_frequency[self.taxon_row[q], c]),
                             ("aspect_hits", lambda q, c: self.aspect_hits[q, self.col_aspect[c]]),
                             ("aspect_identity", lambda q, c: self.aspect_identity[q, self.col_aspect[c]])):
            out[name] = np.zeros((b, k), dtype=np.float32)
            out[name][valid] = values(qq[valid], rows_terms[valid])
        return out


def _other_species(weights: sp.csr_matrix, query_taxa: np.ndarray, target_taxa: np.ndarray) -> sp.csr_matrix:
    """``weights`` without the hits whose target has the query's (known) taxon."""
    coo = weights.tocoo()
    same = (query_taxa[coo.row] == target_taxa[coo.col]) & (query_taxa[coo.row] != "")
    return sp.csr_matrix((coo.data[~same], (coo.row[~same], coo.col[~same])), shape=weights.shape)


def _divide_by_aspect(numerator: sp.spmatrix, denominator: np.ndarray, col_aspect: np.ndarray) -> sp.csr_matrix:
    num = numerator.tocoo()
    den = denominator[num.row, col_aspect[num.col]]
    return sp.csr_matrix((np.divide(num.data, den, out=np.zeros_like(num.data), where=den > 0), (num.row, num.col)),
                         shape=numerator.shape)


def _max_duplicates(coo: sp.coo_matrix) -> sp.csr_matrix:
    """Combine duplicate (row, col) entries by max (scipy sums them)."""
    if coo.nnz == 0:
        return coo.tocsr()
    key = coo.row.astype(np.int64) * coo.shape[1] + coo.col
    order = np.lexsort((-coo.data, key))
    key, data = key[order], coo.data[order]
    first = np.r_[True, key[1:] != key[:-1]]
    return sp.csr_matrix((data[first], (key[first] // coo.shape[1], key[first] % coo.shape[1])), shape=coo.shape)


class HomologySource:
    """Homology evidence for the catalogue of one index: search, transfer, and mapping to index rows.

    Args:
        reference: the annotated reference proteins.
        catalogue_ids: the index's function ids (row order).
        settings: search settings (the searcher, DIAMOND's parameters).
        diamond: DIAMOND executable (None: look on PATH; when absent, fall back to embeddings).
        protein_encoder: needed for the embedding search.
    """

    def __init__(self, reference: Reference, catalogue_ids, settings: SearchSettings | None = None,
                 diamond: str | None = None, protein_encoder=None):
        self.reference, self.settings = reference, settings or SearchSettings()
        by_embedding = self.settings.searcher == "embedding"
        self.diamond = None if by_embedding else find_diamond(diamond, required=diamond is not None)
        self.protein_encoder = protein_encoder
        if self.diamond is None:
            if protein_encoder is None:
                raise InputError("no protein tower for the embedding search" if by_embedding else
                                 "DIAMOND not found and no protein tower for the embedding fallback")
            if not by_embedding:
                LOG.warning("DIAMOND not found: using the nearest reference proteins by protein-tower embedding, "
                            "which is about as accurate as the towers alone, far below DIAMOND (see README); "
                            "apt-get install diamond-aligner")
            # Cached per model: embedding a 60k-protein reference on 2 cores takes minutes.
            self._ref_vectors = protein_encoder.encode([r.sequence for r in reference.records()], progress=True,
                                                       cache_dir=cache_dir() / "embeddings")
        self.ref_col = pd.Index(reference.terms).get_indexer(list(catalogue_ids))  # catalogue row -> ref column
        self.row_of_col = np.full(len(reference.terms), -1, dtype=np.int64)
        present = self.ref_col >= 0
        self.row_of_col[self.ref_col[present]] = np.flatnonzero(present)

    def hits(self, records: list[ProteinRecord], u: np.ndarray | None = None) -> pd.DataFrame:
        if self.diamond is not None:
            return diamond_search(self.reference, records, self.settings, self.diamond)
        return embedding_search(self._ref_vectors, self.reference.ids, u, [r.id for r in records],
                                self.settings.max_targets)

    def candidate_rows(self, transfer: Transfer) -> list[np.ndarray]:
        """Catalogue rows of every term transferred from a hit, per query."""
        knn = transfer.knn_score
        rows = [self.row_of_col[knn.indices[knn.indptr[i]: knn.indptr[i + 1]]] for i in range(knn.shape[0])]
        return [r[r >= 0] for r in rows]
