"""Text -> protein search: the towers the other way round.

A protein index is a folder of protein-tower vectors of a proteome:

```
protein_index/
  proteins.faiss       unit vectors of the protein tower, row i = protein i
  proteins.tsv         protein_id, taxon, length (row i = vector i)
  index_config.json    factory, dim, ntotal, the protein tower's and the model's fingerprints,
                       sha256 of proteins.tsv and of the vectors, versions
```

A query (a function in plain words, or a GO term's "name: definition") is embedded by the text
tower; FAISS recalls the proteins nearest to it, and the model's two-tower re-ranker (the fusion
MLP over ``[u, v, |u-v|, u*v]`` and the pair features) gives each a probability, as
``Annotator.score`` would for that protein and that text.
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

from index.atomic import atomic_folder
from index.errors import InputError
from index.textio import open_text
from index.vector_index import inner_product_index, search_inner_product, tune
from retrieval.candidates import candidate_features
from retrieval.io.fasta import ProteinRecord
from retrieval.model import RetrievalModel
from retrieval.scoring import rerank_probabilities

INDEX_FILE, PROTEINS_FILE, CONFIG_FILE = "proteins.faiss", "proteins.tsv", "index_config.json"
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
    """

    index: faiss.Index
    proteins: pd.DataFrame
    config: dict

    @classmethod
    def build(cls, model: RetrievalModel, records: list[ProteinRecord], factory: str = "Flat",
              precision: str = "bf16", progress: bool = True) -> "ProteinIndex":
        """Embed ``records`` with the model's protein tower and index them (``factory``: a FAISS
        factory string, "Flat" exact, "HNSW32" approximate for millions of proteins)."""
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
                  "precision": precision, "protein_tower": model.protein_encoder.fingerprint(),
                  "model_fingerprint": model.fingerprint(), "proteins_sha256": _table_digest(proteins),
                  "vectors_sha256": hashlib.sha256(vectors.tobytes()).hexdigest(),
                  "versions": {"faiss": faiss.__version__, "numpy": np.__version__,
                               "python": platform.python_version()}}
        return cls(index, proteins, config)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the folder all or nothing (:func:`index.atomic.atomic_folder`)."""
        with atomic_folder(folder) as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            self.proteins.to_csv(tmp / PROTEINS_FILE, sep="\t", index=False)
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
        expected = model.protein_encoder.fingerprint()
        if config.get("protein_tower") != expected:
            raise InputError(f"{folder}: built by model {config.get('model_fingerprint')} (protein tower "
                             f"{config.get('protein_tower')}), not by the loaded model ({model.fingerprint()}); "
                             "rebuild it with `prot-retrieve build-protein-index`")
        if _table_digest(proteins) != config.get("proteins_sha256") or index.ntotal != len(proteins):
            raise InputError(f"{folder / PROTEINS_FILE}: does not match the index it was built with")
        tune(index, HNSW_EF_SEARCH, IVF_NPROBE)  # search knobs and reconstruction are not kept in the file
        return cls(index, proteins, config)

    def search(self, model: RetrievalModel, queries: list[str], top: int = 50) -> pd.DataFrame:
        """The ``top`` proteins per query, best first.

        Returns:
            DataFrame of ``query``, ``rank`` (1-based), ``protein_id``, ``score`` (the re-ranker's
            probability) and ``similarity`` (the towers' cosine).
        """
        queries = [q.strip() for q in queries]
        if not queries or any(not q for q in queries):
            raise InputError("empty query: give a function in words, e.g. \"binds heme and carries oxygen\"")
        if top < 1:
            raise InputError("--top must be at least 1")
        text = model.text_encoder
        v, b = text.encode(queries)
        k = min(max(RECALL_FACTOR * top, MIN_RECALL), self.index.ntotal)
        similarity, rows = search_inner_product(self.index, v, k, HNSW_EF_SEARCH)
        reranker = model.reranker  # the two-tower one: a text query has no homology evidence
        frames = []
        for q, query in enumerate(queries):
            found = rows[q][rows[q] >= 0]
            u = self.index.reconstruct_batch(found).astype(np.float32)
            cand_v = np.broadcast_to(v[q], (len(found), 1, v.shape[1]))
            cand_b = np.full((len(found), 1), b[q], dtype=np.float32)
            feats = candidate_features(reranker.config.pair_features, u, cand_v, cand_b, text.scale,
                                       np.zeros((len(found), 1), dtype=np.int64))
            probs = rerank_probabilities(reranker, u, np.ascontiguousarray(cand_v), feats,
                                         precision=self.config.get("precision", "fp32"))[:, 0]
            order = np.lexsort((np.arange(len(found)), -probs))[:top]  # ties keep FAISS order
            frames.append(pd.DataFrame({"query": query, "rank": np.arange(1, len(order) + 1),
                                        "protein_id": self.proteins["protein_id"].to_numpy()[found[order]],
                                        "score": probs[order], "similarity": similarity[q][: len(found)][order]}))
        return pd.concat(frames, ignore_index=True)


def read_queries(path: str | os.PathLike) -> list[str]:
    """One query per line; blank lines are not queries."""
    with open_text(path) as fh:
        queries = [line.strip() for line in fh if line.strip()]
    if not queries:
        raise InputError(f"{path}: no queries in it")
    return queries


def _table_digest(proteins: pd.DataFrame) -> str:
    return hashlib.sha256(proteins.to_csv(sep="\t", index=False).encode()).hexdigest()
