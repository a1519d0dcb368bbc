"""Text -> protein search: the towers the other way round.

A protein index is a folder of protein-tower vectors of a proteome:

```
protein_index/
  proteins.faiss       unit vectors of the protein tower, row i = protein i
  proteins.tsv         protein_id, taxon, length (row i = vector i)
  profile.npz          (built with references) each protein's homology profile: the homology
                       re-ranker's probabilities of its candidate GO terms that the references
                       annotate, and which GO terms they annotate
  index_config.json    factory, dim, ntotal, the protein tower's and the model's fingerprints,
                       sha256 of proteins.tsv, of the vectors and of the profile, what the profile
                       was made with (references, GO index, search), versions
```

A query (a function in plain words, or a GO term's "name: definition") is embedded by the text
tower; FAISS recalls the proteins nearest to it, and the model's two-tower re-ranker (the fusion
MLP over ``[u, v, |u-v|, u*v]`` and the pair features) gives each a probability, as
``Annotator.score`` without references would for that protein and that text. With a profile the
query borrows as annotation does (:mod:`retrieval.stages.lending`): its 10 annotated GO terms nearest in
meaning lend their profile scores, the proteins they score highest are recalled too, and a
protein's score is the mean of the two-tower probability and the lent one.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.atomic import atomic_folder
from index.errors import UNREADABLE, InputError, require_fingerprint
from index.textio import open_text
from index.vector_index import inner_product_index, search_inner_product, tune
from retrieval.config import AnnotateConfig
from retrieval.homology import annotated_rows
from retrieval.io.fasta import ProteinRecord
from retrieval.models.batching import blocks
from retrieval.models.retriever import RetrievalModel
from retrieval.models.scoring import rerank_probabilities
from retrieval.stages.lending import NearestAnnotated, blend
from retrieval.stages.rerank import candidate_features

INDEX_FILE, PROTEINS_FILE, CONFIG_FILE = "proteins.faiss", "proteins.tsv", "index_config.json"
PROFILE_FILE = "profile.npz"
#: Homology profiles keep probabilities from this one on: a lender below it lends next to nothing.
PROFILE_FLOOR = 0.01
#: Proteins recalled per query before re-ranking: this many times --top, at least MIN_RECALL.
RECALL_FACTOR, MIN_RECALL = 4, 200
HNSW_EF_SEARCH, IVF_NPROBE = 128, 32  # search knobs of approximate factories, as for the function index


@dataclass
class ProteinIndex:
    """Protein-tower vectors of a set of proteins under FAISS (see the module docstring).

    Attributes:
        index: inner-product FAISS index over the unit vectors.
        proteins: ``protein_id``, ``taxon``, ``length``, row i = vector i.
        config: what ``index_config.json`` holds.
        profile: (proteins x GO index rows) homology profiles, or None (built without references).
        annotated: (GO index rows,) the terms the references annotate (with a profile).
    """

    index: faiss.Index
    proteins: pd.DataFrame
    config: dict
    profile: sp.csr_matrix | None = None
    annotated: np.ndarray | None = None

    @classmethod
    def build(cls, model: RetrievalModel, records: list[ProteinRecord], factory: str = "Flat",
              precision: str = "auto", progress: bool = True, annotator=None,
              embedding_cache: bool = True) -> "ProteinIndex":
        """Embed ``records`` with the model's protein tower and index them (``factory``: a FAISS
        factory string, "Flat" exact, "HNSW32" approximate for millions of proteins); with an
        :class:`retrieval.annotate.Annotator` of this model over a GO index with references, keep
        each protein's homology profile too (:func:`homology_profile`: as slow as annotating)."""
        if not records:
            raise InputError("no proteins to index")
        ids = pd.Index([r.id for r in records])
        if ids.has_duplicates:
            raise InputError(f"protein id {ids[ids.duplicated()][0]!r} appears twice: ids must be unique to be found again")
        vectors = np.ascontiguousarray(model.protein_encoder.encode([r.sequence for r in records], precision=precision,
                                                                    progress=progress), dtype=np.float32)
        index = inner_product_index(vectors, factory)
        proteins = pd.DataFrame({"protein_id": list(ids), "taxon": [r.taxon for r in records],
                                 "length": [len(r.sequence) for r in records]})
        config = {"factory": factory, "dim": int(vectors.shape[1]), "ntotal": int(index.ntotal),
                  "precision": model.protein_encoder.resolved_precision(precision), "protein_tower": model.protein_encoder.fingerprint(),
                  "model_fingerprint": model.fingerprint(), "proteins_sha256": _table_digest(proteins),
                  "vectors_sha256": hashlib.sha256(vectors.tobytes()).hexdigest(),
                  "versions": {"faiss": faiss.__version__, "numpy": np.__version__,
                               "python": platform.python_version()}}
        if annotator is None:
            return cls(index, proteins, config)
        if annotator.model.fingerprint() != model.fingerprint():
            raise InputError("the annotator's model is not the one the proteins are embedded with")
        profile = homology_profile(annotator, records, AnnotateConfig(precision=precision,
                                                                      embedding_cache=embedding_cache), progress=progress)
        profile.data = profile.data.astype(np.float16).astype(np.float32)  # as stored: half precision
        annotated = annotated_rows(annotator.reranking.sources)
        config["homology"] = {"references": [s.reference.fingerprint() for s in annotator.reranking.sources],
                              "search": annotator.homology.summary(), "floor": PROFILE_FLOOR,
                              "go_index_catalogue_sha256": annotator.index.config["catalogue_sha256"],
                              "go_index_meaning_sha256": annotator.index.config.get("meaning_sha256"),
                              "profile_sha256": _profile_digest(profile, annotated)}
        return cls(index, proteins, config, profile, annotated)

    def save(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the folder all or nothing (:func:`index.atomic.atomic_folder`); a folder of other
        files is refused unless ``overwrite``."""
        with atomic_folder(folder, CONFIG_FILE, overwrite) as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            self.proteins.to_csv(tmp / PROTEINS_FILE, sep="\t", index=False)
            if self.profile is not None:
                np.savez(tmp / PROFILE_FILE, data=self.profile.data.astype(np.float16), indices=self.profile.indices,
                         indptr=self.profile.indptr, shape=np.array(self.profile.shape), annotated=self.annotated)
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config, indent=2, sort_keys=True) + "\n")
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, model: RetrievalModel) -> "ProteinIndex":
        """Load a folder written by :meth:`save`, refusing one whose vectors another protein tower made.

        Raises:
            InputError: not a protein index, corrupt or edited files, or another model's vectors.
        """
        folder = Path(folder)
        missing = [f for f in (INDEX_FILE, PROTEINS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
        if missing:
            raise InputError(f"{folder}: not a protein index (missing {', '.join(missing)}; build one with "
                             "`prot-retrieve build-protein-index`)")
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
            proteins = pd.read_csv(folder / PROTEINS_FILE, sep="\t", dtype={"protein_id": str, "taxon": str},
                                   keep_default_na=False)
            index = faiss.read_index(str(folder / INDEX_FILE))
        except (ValueError, RuntimeError, pd.errors.ParserError) as err:
            raise InputError(f"{folder}: corrupt protein index ({str(err).splitlines()[0]})") from None
        require_fingerprint(f"{folder}: protein index (protein tower)", config.get("protein_tower"),
                            model.protein_encoder.fingerprint(), "rebuild it with `prot-retrieve build-protein-index`")
        if _table_digest(proteins) != config.get("proteins_sha256") or index.ntotal != len(proteins):
            raise InputError(f"{folder / PROTEINS_FILE}: does not match the index it was built with")
        tune(index, HNSW_EF_SEARCH, IVF_NPROBE)  # search knobs and reconstruction are not kept in the file
        profile = annotated = None
        if "homology" in config:
            try:
                with np.load(folder / PROFILE_FILE) as z:
                    profile = sp.csr_matrix((z["data"].astype(np.float32), z["indices"], z["indptr"]),
                                            shape=tuple(z["shape"]))
                    annotated = z["annotated"]
            except UNREADABLE as err:
                raise InputError(f"{folder / PROFILE_FILE}: missing or corrupt ({str(err).splitlines()[0]}); "
                                 "rebuild the protein index") from None
            if _profile_digest(profile, annotated) != config["homology"].get("profile_sha256") \
                    or profile.shape[0] != len(proteins):
                raise InputError(f"{folder / PROFILE_FILE}: does not match the index it was built with")
        return cls(index, proteins, config, profile, annotated)

    def search(self, model: RetrievalModel, queries: list[str], top: int = 50, lenders=None,
               precision: str = "auto") -> pd.DataFrame:
        """The ``top`` proteins per query, best first.

        Args:
            lenders: with a profile, the GO index it was made over (default: the model's,
                :func:`retrieval.indexing.default_index`); its meaning vectors find the lenders.
            precision: of the text tower and the re-ranker (:mod:`retrieval.models.precision`).

        Returns:
            DataFrame of ``query``, ``rank`` (1-based), ``protein_id``, ``score`` (the re-ranker's
            probability, with a profile its mean with the lent one) and ``similarity`` (the towers' cosine).
        """
        queries = [q.strip() for q in queries]
        if not queries or any(not q for q in queries):
            raise InputError("empty query: give a function in words, e.g. \"binds heme and carries oxygen\"")
        if top < 1:
            raise InputError("--top must be at least 1")
        text = model.text_encoder
        v, b, meaning = text.encode_with_meaning(queries, precision=precision)
        k = min(max(RECALL_FACTOR * top, MIN_RECALL), self.index.ntotal)
        similarity, rows = search_inner_product(self.index, v, k, HNSW_EF_SEARCH)
        lent, borrows = self._lent(model, meaning, lenders)
        reranker = model.reranker  # the two-tower one: a text query has no homology evidence
        frames = []
        for q, query in enumerate(queries):
            found = rows[q][rows[q] >= 0]
            if borrows[q]:  # the proteins the lenders score highest are candidates too
                found = np.concatenate([found, np.setdiff1d(np.argsort(-lent[q], kind="stable")[:k], found)])
            u = self.index.reconstruct_batch(found).astype(np.float32)
            cand_v = np.broadcast_to(v[q], (len(found), 1, v.shape[1]))
            cand_b = np.full((len(found), 1), b[q], dtype=np.float32)
            feats = candidate_features(reranker.config.pair_features, u, cand_v, cand_b, text.scale,
                                       np.zeros((len(found), 1), dtype=np.int64))
            probs = rerank_probabilities(reranker, u, np.ascontiguousarray(cand_v), feats,
                                         precision=precision)[:, 0]
            if borrows[q]:
                probs = blend(probs, lent[q, found])
            order = np.lexsort((np.arange(len(found)), -probs))[:top]  # ties keep recall order
            frames.append(pd.DataFrame({"query": query, "rank": np.arange(1, len(order) + 1),
                                        "protein_id": self.proteins["protein_id"].to_numpy()[found[order]],
                                        "score": probs[order], "similarity": u[order] @ v[q]}))
        return pd.concat(frames, ignore_index=True)

    def _lent(self, model: RetrievalModel, meaning: np.ndarray, lenders) -> tuple[np.ndarray, np.ndarray]:
        """(queries, proteins) what each query's lenders lend each protein, and (queries,) whether
        it borrows: not without a profile, nor when its meaning points away from every annotated
        term (then the towers alone score it, as annotation does)."""
        if self.profile is None:
            return np.zeros((len(meaning), 0), dtype=np.float32), np.zeros(len(meaning), dtype=bool)
        if lenders is None:
            from retrieval.indexing import default_index

            lenders = default_index(model)
        made = self.config["homology"]
        if (lenders.config.get("catalogue_sha256"), lenders.config.get("meaning_sha256")) != \
                (made["go_index_catalogue_sha256"], made["go_index_meaning_sha256"]) or lenders.meaning is None:
            raise InputError("this protein index's homology profile was made over another GO index than the one "
                             "given; rebuild it with `prot-retrieve build-protein-index`")
        rows, weights = NearestAnnotated(meaning, lenders.meaning, self.annotated).lookup(np.arange(len(meaning)))
        queries = np.broadcast_to(np.arange(len(meaning))[:, None], rows.shape)
        real = rows >= 0
        lending = sp.csr_matrix((weights[real], (rows[real], queries[real])),
                                shape=(self.profile.shape[1], len(meaning)))  # (GO rows, queries)
        return np.asarray((self.profile @ lending).T.todense(), dtype=np.float32), weights.sum(axis=1) > 0


def homology_profile(annotator, records: list[ProteinRecord], config: AnnotateConfig | None = None,
                     floor: float = PROFILE_FLOOR, progress: bool = False) -> sp.csr_matrix:
    """(proteins x catalogue rows) the homology re-ranker's probabilities, at least ``floor``, of
    each protein's candidates that the references annotate: what they would lend to a function no
    reference annotates (:mod:`retrieval.stages.lending`), so that text searches borrow as
    annotation does.

    Raises:
        InputError: no references, or a model without a homology re-ranker.
    """
    if not annotator.reranking.homology:
        raise InputError("a homology profile needs references and a model with a homology re-ranker")
    from tqdm.auto import tqdm

    config = config or AnnotateConfig()
    items, cols, values, done = [], [], [], 0
    with tqdm(total=len(records), desc="homology profiles", unit=" proteins", disable=not progress) as bar:
        for block in blocks(records, config.search_block):
            for chunk in annotator.chunks(block, config):
                scored = annotator.score_chunk(*chunk, config)
                known = annotator.reranking.routes(scored.rows, scored.evidence)[0].mask
                i, j = np.nonzero(known & (scored.probs >= floor))
                items.append(i + done)
                cols.append(scored.rows[i, j])
                values.append(scored.probs[i, j])
                done += len(chunk[0])
                bar.update(len(chunk[0]))
    shape = (len(records), len(annotator.index.catalogue))
    if not items:
        return sp.csr_matrix(shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(items), np.concatenate(cols))), shape=shape)


def read_queries(path: str | os.PathLike) -> list[str]:
    """One query per line; blank lines are not queries."""
    with open_text(path) as fh:
        queries = [line.strip() for line in fh if line.strip()]
    if not queries:
        raise InputError(f"{path}: no queries in it")
    return queries


def _profile_digest(profile: sp.csr_matrix, annotated: np.ndarray) -> str:
    digest = hashlib.sha256()
    for part in (profile.data, profile.indices, profile.indptr, np.asarray(annotated, dtype=bool)):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def _table_digest(proteins: pd.DataFrame) -> str:
    return hashlib.sha256(proteins.to_csv(sep="\t", index=False).encode()).hexdigest()
