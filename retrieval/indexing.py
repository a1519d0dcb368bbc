"""Building function indexes with a model's text tower, and the cached default index of all live GO."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from index.ontology import Ontology
from index.propagation import Propagator, catalogue_edges
from index.vector_index import MEANING_FILE, FunctionIndex
from retrieval.feature_cache import cache_dir
from retrieval.models.retriever import RetrievalModel
from retrieval.models.precision import resolve_precision
from retrieval.models.scoring import index_vectors

LOG = logging.getLogger(__name__)
#: The GO release shipped with the package; the default index covers all its live terms.
DEFAULT_OBO = Path(__file__).parent / "data" / "go-basic_2021-12-15.obo.gz"
#: The shipped model's vectors of every live term of DEFAULT_OBO (``python -m train.shipped_data``).
SHIPPED_INDEX = Path(__file__).parent / "data" / "go_index"


def build_function_index(model: RetrievalModel, catalogue: FunctionCatalogue, factory: str = "Flat",
                         ontology: Ontology | None = None, precision: str = "auto",
                         progress: bool = True, use_cache: bool = True) -> FunctionIndex:
    """Embed every function with the model's text tower and index it.

    Args:
        model: supplies the text tower; its fingerprint is recorded in the index.
        catalogue: the functions.
        factory: FAISS factory string ("Flat" exact; "HNSW32" or "IVF1024,Flat" approximate).
        ontology: when given, edges between catalogue terms are stored so that annotation makes
            scores consistent with the graph.
        precision: of the text backbone (:mod:`retrieval.models.precision`; the one computed in is recorded).
        progress: show a progress bar.
        use_cache: reuse frozen text-backbone features from ``cache_dir()/features`` (a text is
            embedded once per backbone, whatever model heads come later).
    """
    start = time.perf_counter()
    texts = model.text_encoder.function_texts(catalogue, ontology)
    vectors, bias, meaning = model.text_encoder.encode_with_meaning(
        texts, catalogue.ids, precision=precision, progress=progress,
        cache_dir=cache_dir() / "features" if use_cache else None)
    embed_seconds = time.perf_counter() - start
    edges = catalogue_edges(ontology, Propagator.from_ontology(ontology), catalogue.ids) if ontology else None
    scale = model.text_encoder.scale
    info = {"n_functions": len(catalogue), "embed_seconds": round(embed_seconds, 1),
            "precision": resolve_precision(precision, model.text_encoder.feature_mean.device).name,
            "model_fingerprint": model.fingerprint(), "ontology_release": ontology.release if ontology else "",
            "n_dag_edges": 0 if edges is None else int(len(edges[0]))}
    return FunctionIndex.build(index_vectors(vectors, bias, scale), catalogue, model.text_encoder.fingerprint(),
                               factory=factory, info=info, edges=edges, meaning=meaning)


def catalogue_ontology(catalogue: FunctionCatalogue, obo: str | Path | None = None) -> Ontology | None:
    """The ontology a catalogue's scores are made consistent with: ``obo`` when given; else the
    shipped GO when most of its ids are GO ids (logged); else none (free-text functions)."""
    if obo is None and sum(i.startswith("GO:") for i in catalogue.ids) > len(catalogue) / 2:
        obo = DEFAULT_OBO
        LOG.warning("GO ids found: using the shipped ontology %s for propagation (--obo to choose)", obo.name)
    return Ontology.from_obo(obo) if obo else None


def default_index(model: RetrievalModel) -> FunctionIndex:
    """All live terms of the shipped GO release for this model, cached (see :func:`cache_dir`).

    For the shipped model the vectors come with the package (fp16, see ``train/shipped_data.py``), so
    only the catalogue and the GO edges are rebuilt from the OBO; other models embed every term once.
    """
    fingerprint = model.text_encoder.fingerprint()
    folder = cache_dir() / f"go-index-{fingerprint}"
    if (folder / "index_config.json").is_file() and (folder / MEANING_FILE).is_file():
        try:
            return FunctionIndex.load(folder, fingerprint)
        except InputError as err:  # a cache entry rebuilds itself
            LOG.warning("%s: damaged, built again (%s)", folder, str(err)[:200])
    ontology = Ontology.from_obo(DEFAULT_OBO)
    catalogue = FunctionCatalogue.from_ontology(ontology)
    if _shipped_fingerprint() == fingerprint:
        LOG.info("assembling the shipped GO index in %s (first use only)", folder)
        index = FunctionIndex.load_vectors(SHIPPED_INDEX, catalogue, fingerprint,
                                           catalogue_edges(ontology, Propagator.from_ontology(ontology), catalogue.ids))
    else:
        LOG.warning("building the default GO index in %s (first use only; a few minutes on a laptop CPU)", folder)
        index = build_function_index(model, catalogue, ontology=ontology)
    index.save(folder)  # atomic: a process finishing at the same time writes the same content
    return index


def _shipped_fingerprint() -> str | None:
    return _shipped_config().get("fingerprint")


def shipped_meaning_digest() -> str | None:
    """sha256 of the shipped GO index's meaning vectors (None: not shipped)."""
    return _shipped_config().get("meaning_sha256")


def _shipped_config() -> dict:
    config = SHIPPED_INDEX / "index_config.json"
    return json.loads(config.read_text()) if config.is_file() else {}
