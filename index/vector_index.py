"""The function index: a folder with a FAISS index, its term table and the fingerprint of its encoder.

```
index/
  index.faiss         vectors, row i = function i
  terms.tsv           the catalogue (term_id, name, description, aspect), row i = vector i
  index_config.json   factory string, metric, dim, ntotal, catalogue sha256, encoder fingerprint,
                      versions and build information
  dag.tsv             (optional) child/parent term ids between catalogue functions, for making
                      scores consistent with the ontology (a parent scores at least its children)
  meaning.faiss       (optional) unit vectors of what each function's text says (the text backbone's
                      pooled output), 8-bit: functions no reference annotates borrow from the
                      annotated ones nearest in meaning (retrieval.stages.lending)
```
Arrays in, arrays out: this module never sees a torch model, only vectors and a fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from index.atomic import atomic_folder
from index.catalogue import FunctionCatalogue
from index.errors import InputError, require_fingerprint

INDEX_FILE, TERMS_FILE, CONFIG_FILE, DAG_FILE = "index.faiss", "terms.tsv", "index_config.json", "dag.tsv"
MEANING_FILE = "meaning.faiss"
#: Meaning vectors are stored 8 bits per dimension: on held-out GO terms the neighbours found and the
#: scores borrowed were those of float32 (cosine to float32 >= 0.99996), at a quarter of the size.
MEANING_FACTORY = "SQ8"


class FunctionIndex:
    """Inner-product search over function vectors (see the module docstring for the folder layout).

    Args:
        index: a FAISS index over ``len(catalogue)`` vectors.
        catalogue: the functions, row i = vector i.
        config: the metadata written to ``index_config.json``.
        edges: (child rows, parent rows) between catalogue functions, or None (no ontology).
        meaning: the functions' meaning vectors as stored (:data:`MEANING_FACTORY`), or None (an
            index built before they were stored).
        decoded_meaning: ``meaning`` decoded, when at hand already (decoding all of GO's takes 0.2 s).
    """

    def __init__(self, index: faiss.Index, catalogue: FunctionCatalogue, config: dict[str, Any],
                 edges: tuple[np.ndarray, np.ndarray] | None = None, meaning: faiss.Index | None = None,
                 decoded_meaning: np.ndarray | None = None):
        if index.ntotal != len(catalogue):
            raise InputError(f"index holds {index.ntotal} vectors but the catalogue {len(catalogue)} functions")
        if meaning is not None and meaning.ntotal != len(catalogue):
            raise InputError(f"{meaning.ntotal} meaning vectors for {len(catalogue)} functions")
        self.index, self.catalogue, self.config, self.edges = index, catalogue, config, edges
        self.meaning_index, self._meaning = meaning, decoded_meaning

    @property
    def meaning(self) -> np.ndarray | None:
        """(n, d) float32 meaning vectors of the functions (decoded once), or None."""
        if self._meaning is None and self.meaning_index is not None:
            self._meaning = self.meaning_index.reconstruct_n(0, self.meaning_index.ntotal)
        return self._meaning

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the text tower that built the index (not of its content)."""
        return self.config["fingerprint"]

    def content_digest(self) -> str:
        """sha256 of what the index holds: its vectors, catalogue, GO edges and meaning vectors (two
        indexes of one model differ here when their catalogues or builds do). Computed once and kept
        in the folder's config by :meth:`save` (hashing all of GO's vectors takes a quarter second)."""
        if "content_sha256" not in self.config:
            digest = hashlib.sha256(self.vectors(np.arange(self.index.ntotal)).astype(np.float32).tobytes())
            digest.update(self.catalogue.sha256().encode())
            for part in self.edges or ():
                digest.update(np.asarray(part, dtype=np.int64).tobytes())
            digest.update(str(self.config.get("meaning_sha256")).encode())
            self.config["content_sha256"] = digest.hexdigest()
        return self.config["content_sha256"]

    @classmethod
    def build(cls, vectors: np.ndarray, catalogue: FunctionCatalogue, fingerprint: str, factory: str = "Flat",
              info: dict[str, Any] | None = None, edges: tuple[np.ndarray, np.ndarray] | None = None,
              hnsw_ef_search: int = 128, ivf_nprobe: int = 32, meaning: np.ndarray | None = None) -> "FunctionIndex":
        """Index ``vectors`` (one row per catalogue function) with a FAISS factory string.

        Args:
            vectors: float32 (n, dim).
            catalogue: the functions in the same order.
            fingerprint: the encoder's fingerprint, checked again at load time.
            factory: "Flat" (exact, default), "HNSW32", "IVF1024,Flat", ... (inner product metric).
            info: extra build information to record (counts, timings).
            edges: ontology edges between catalogue rows (see :func:`index.propagation.catalogue_edges`).
            hnsw_ef_search, ivf_nprobe: search-time accuracy knobs for approximate indexes.
            meaning: the functions' unit meaning vectors (kept as stored: 8-bit).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(catalogue):
            raise InputError(f"expected {len(catalogue)} vectors, got array of shape {vectors.shape}")
        start = time.perf_counter()
        index = inner_product_index(vectors, factory, hnsw_ef_search, ivf_nprobe)
        meaning = None if meaning is None else _meaning_index(meaning)
        decoded = None if meaning is None else meaning.reconstruct_n(0, meaning.ntotal)
        config = {"factory": factory, "metric": "inner_product", "dim": int(vectors.shape[1]),
                  "ntotal": int(index.ntotal), "catalogue_sha256": catalogue.sha256(), "fingerprint": fingerprint,
                  "hnsw_ef_search": hnsw_ef_search, "ivf_nprobe": ivf_nprobe,
                  "versions": {"faiss": faiss.__version__, "numpy": np.__version__,
                               "python": platform.python_version()},
                  "build": {"faiss_seconds": round(time.perf_counter() - start, 3), **(info or {})}}
        if decoded is not None:
            config["meaning_sha256"] = meaning_digest(decoded)
        return cls(index, catalogue, config, edges, meaning, decoded)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` functions per query: (scores, rows), both (n, min(k, ntotal)), best first."""
        return search_inner_product(self.index, queries, k, self.config.get("hnsw_ef_search", 128))

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of some rows (exact for Flat/HNSW, decoded for compressed indexes)."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.index.reconstruct_batch(rows.ravel()).reshape(*rows.shape, self.index.d)

    def save(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the index folder all or nothing (:func:`index.atomic.atomic_folder`): a rebuild without
        an ontology leaves no ``dag.tsv`` of the previous build behind. A folder of other files is
        refused unless ``overwrite``."""
        with atomic_folder(folder, CONFIG_FILE, overwrite) as tmp:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            self.catalogue.to_tsv(tmp / TERMS_FILE)
            self.content_digest()
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config, indent=2, sort_keys=True))
            if self.edges is not None:
                ids = np.asarray(self.catalogue.ids, dtype=object)
                pd.DataFrame({"child": ids[self.edges[0]], "parent": ids[self.edges[1]]}).to_csv(
                    tmp / DAG_FILE, sep="\t", index=False)
            if self.meaning_index is not None:
                faiss.write_index(self.meaning_index, str(tmp / MEANING_FILE))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, expected_fingerprint: str | None = None) -> "FunctionIndex":
        """Load an index folder, refusing one built by a different encoder.

        Raises:
            InputError: missing or corrupt files, or a fingerprint mismatch.
        """
        folder = Path(folder)
        missing = [f for f in (INDEX_FILE, TERMS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
        if missing:
            raise InputError(f"{folder}: not an index folder (missing {', '.join(missing)})")
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
        except ValueError as err:
            raise InputError(f"{folder / CONFIG_FILE}: corrupt ({err})") from None
        if expected_fingerprint is not None:
            require_fingerprint(f"{folder}: index", config.get("fingerprint"), expected_fingerprint,
                                "rebuild it with `prot-retrieve build-index`")
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as err:
            raise InputError(f"{folder / INDEX_FILE}: corrupt FAISS index ({str(err).splitlines()[0][-120:]})") from None
        catalogue = FunctionCatalogue.from_tsv(folder / TERMS_FILE)
        if catalogue.sha256() != config.get("catalogue_sha256"):
            raise InputError(f"{folder / TERMS_FILE}: does not match the catalogue the index was built from")
        tune(index, config.get("hnsw_ef_search", 128), config.get("ivf_nprobe", 32))
        edges = _read_edges(folder / DAG_FILE, catalogue)
        return cls(index, catalogue, config, edges, *_read_meaning(folder, config))

    @classmethod
    def load_vectors(cls, folder: str | os.PathLike, catalogue: FunctionCatalogue, expected_fingerprint: str,
                     edges: tuple[np.ndarray, np.ndarray] | None = None) -> "FunctionIndex":
        """An exact (Flat) index whose catalogue and edges are given (e.g. rebuilt from an OBO) and whose
        vectors are read from ``folder`` (``index.faiss``, any factory, + ``index_config.json`` and
        ``meaning.faiss`` if there; no ``terms.tsv``).

        Raises:
            InputError: a fingerprint mismatch, or a catalogue that is not the one the vectors were built for.
        """
        folder = Path(folder)
        config = json.loads((folder / CONFIG_FILE).read_text())
        require_fingerprint(f"{folder}: vectors", config.get("fingerprint"), expected_fingerprint,
                            "they belong to another model")
        if config.get("catalogue_sha256") != catalogue.sha256():
            raise InputError(f"{folder}: the vectors were built for another catalogue")
        stored = faiss.read_index(str(folder / INDEX_FILE))
        # Stored compactly (fp16), searched exactly: a scalar-quantised index decodes every vector for
        # every query (3x slower than BLAS here), so the decoded vectors go into a Flat index.
        index = faiss.IndexFlatIP(stored.d)
        index.add(stored.reconstruct_n(0, stored.ntotal))
        config = {**{k: v for k, v in config.items() if k != "content_sha256"}, "factory": "Flat",
                  "stored_as": config.get("factory", "")}  # the content here has the edges given
        return cls(index, catalogue, config, edges, *_read_meaning(folder, config))


def _meaning_index(meaning: np.ndarray) -> faiss.Index:
    index = faiss.index_factory(meaning.shape[1], MEANING_FACTORY, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(meaning, dtype=np.float32))
    index.add(np.ascontiguousarray(meaning, dtype=np.float32))
    return index


def meaning_digest(meaning: np.ndarray) -> str:
    """sha256 of stored (decoded) meaning vectors, recorded in the config and checked at load."""
    return hashlib.sha256(np.ascontiguousarray(meaning, dtype=np.float32).tobytes()).hexdigest()


def _read_meaning(folder: Path, config: dict[str, Any]) -> tuple[faiss.Index | None, np.ndarray | None]:
    """The stored meaning index and its vectors decoded (checked against the config's digest)."""
    path = folder / MEANING_FILE
    if not path.is_file():
        if config.get("meaning_sha256"):
            raise InputError(f"{folder}: {MEANING_FILE} is missing; rebuild the index")
        return None, None
    try:
        meaning = faiss.read_index(str(path))
    except RuntimeError as err:
        raise InputError(f"{path}: corrupt FAISS index ({str(err).splitlines()[0]})") from None
    decoded = meaning.reconstruct_n(0, meaning.ntotal)
    if meaning_digest(decoded) != config.get("meaning_sha256"):
        raise InputError(f"{path}: does not match the meaning vectors the index was built with; rebuild the index")
    return meaning, decoded


def _read_edges(path: Path, catalogue: FunctionCatalogue) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, sep="\t", dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: corrupt ({str(err).splitlines()[0]}); rebuild the index") from None
    if not {"child", "parent"} <= set(table.columns):
        raise InputError(f"{path}: expected child and parent columns; rebuild the index")
    rows = pd.Index(catalogue.ids)
    child, parent = rows.get_indexer(table["child"]), rows.get_indexer(table["parent"])
    if (child < 0).any() or (parent < 0).any():
        raise InputError(f"{path}: names functions that are not in the index")
    return child, parent


def inner_product_index(vectors: np.ndarray, factory: str = "Flat", hnsw_ef_search: int = 128,
                        ivf_nprobe: int = 32) -> faiss.Index:
    """An inner-product FAISS index of float32 ``vectors`` (n, dim) from a factory string, trained,
    filled and tuned for search (see :func:`tune`)."""
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise InputError(f"invalid FAISS factory string {factory!r}: {str(err).splitlines()[0]}") from None
    if not index.is_trained:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and len(vectors) < ivf.nlist:  # k-means needs a vector per cluster at least
            raise InputError(f"--factory {factory}: {ivf.nlist} clusters need at least as many vectors, there are "
                             f"{len(vectors)} (choose IVF{max(1, len(vectors) // 39)},Flat or Flat)")
        try:
            index.train(vectors)
        except RuntimeError as err:
            raise InputError(f"--factory {factory}: {str(err).splitlines()[0][-200:]}") from None
    index.add(vectors)
    tune(index, hnsw_ef_search, ivf_nprobe)
    return index


def search_inner_product(index: faiss.Index, queries: np.ndarray, k: int,
                         hnsw_ef_search: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows per query: (scores, rows), both (n, min(k, ntotal)), best first."""
    k = min(k, index.ntotal)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if hasattr(index, "hnsw"):  # HNSW's candidate list must be at least k long, or recall collapses
        return index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=max(hnsw_ef_search, 2 * k)))
    if isinstance(index, faiss.IndexFlat) and index.metric_type == faiss.METRIC_INNER_PRODUCT and k > 32:
        return _exact_top_k(index, queries, k)
    return index.search(queries, k)


def _exact_top_k(index: faiss.IndexFlat, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A flat index searched as one matrix product and a top-k over its stored vectors: the scores
    of ``index.search`` to float32 rounding, faster for the recall's k of hundreds, where FAISS
    keeps a heap per query; the product is numpy's, which ran this shape faster than torch's
    (docs/experiments.md, throughput of stop 22)."""
    import torch

    stored = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
    with torch.inference_mode():
        scores, rows = torch.topk(torch.from_numpy(queries @ stored.T), k, dim=1)
    return scores.numpy(), rows.numpy().astype(np.int64)


def tune(index: faiss.Index, hnsw_ef_search: int, ivf_nprobe: int) -> None:
    """Set search-time knobs and make compressed/IVF indexes reconstructable."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = hnsw_ef_search
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = ivf_nprobe
        ivf.make_direct_map()
