"""``prot-retrieve refresh``: a complete, self-consistent pipeline from release files.

```
PIPELINE/
  pipeline.json     the GO release; every input file with its sha256; the fingerprints of the model,
                    the index (by content) and the references; versions; when and how long
  index/            the function index of every live term of the given GO (the model's text tower)
  references/1-NAME/ (2-NAME/)   the references, built from a UniProt .dat or a FASTA + GAF/GPAD
  model/            the given model's towers with a homology re-ranker retrained on these references,
                    and its --min-precision thresholds fitted on its validation proteins
```
``annotate --pipeline PIPELINE`` uses it; loading it refuses parts of another GO release.
"""
from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from index.atomic import atomic_folder
from index.errors import InputError
from index.textio import hash_file
from retrieval.io.annotations import AnnotationFilter
from retrieval.pipeline import PIPELINE_MANIFEST

LOG = logging.getLogger(__name__)


@dataclass
class ReferenceSource:
    """One reference to build: a UniProt .dat alone, or a FASTA and an annotation file."""

    sequences: str
    annotations: str | None = None
    name: str = ""
    keep: AnnotationFilter = field(default_factory=AnnotationFilter)
    exclude_tags: dict[str, str] = field(default_factory=dict)

    def files(self) -> list[str]:
        return [f for f in (self.sequences, self.annotations) if f]


def refresh(obo: str, sources: list[ReferenceSource], output: str, model: str | None = None,
            data_dir: str | None = None, settings=None, epochs: int | None = None, overwrite: bool = False) -> Path:
    """Build the pipeline folder (see the module docstring) all or nothing.

    Args:
        obo: the GO release (OBO, plain or .gz).
        sources: one or two references, in the order the new homology re-ranker reads them.
        model: the model whose towers are kept (default: the shipped one); its training data is
            found as recorded, or in ``data_dir``.
        settings: how the references are searched while the re-ranker trains.
    """
    from index.catalogue import FunctionCatalogue
    from index.ontology import Ontology
    from retrieval.dataset import build_reference
    from retrieval.indexing import build_function_index
    from retrieval.models.retriever import DEFAULT_MODEL, RetrievalModel
    from train.loop import retrain_reranker
    from train.rerank import HomologyTraining
    from train.thresholds import fit_thresholds

    if not 1 <= len(sources) <= 2:
        raise InputError("refresh builds one or two references")
    model = str(model or DEFAULT_MODEL)
    start = time.time()
    inputs = [("ontology", obo)] + [(f"reference {i + 1}", f) for i, s in enumerate(sources) for f in s.files()]
    with atomic_folder(output, PIPELINE_MANIFEST, overwrite) as tmp:
        ontology = Ontology.from_obo(obo)
        LOG.warning("refresh: the function index of %s (%s)", obo, ontology.release or "no data-version")
        towers = RetrievalModel.from_pretrained(model)
        index = build_function_index(towers, FunctionCatalogue.from_ontology(ontology), ontology=ontology)
        index.save(tmp / "index")
        references, summaries = [], []
        for i, source in enumerate(sources):
            name = f"{i + 1}-{source.name or Path(source.sequences).name.split('.')[0]}"
            LOG.warning("refresh: reference %s", name)
            reference, summary = build_reference(source.sequences, source.annotations, tmp / "references" / name, obo,
                                                 source.exclude_tags, keep=source.keep)
            references.append(reference)
            summaries.append({"folder": f"references/{name}", "fingerprint": reference.fingerprint(),
                              "proteins": len(reference.ids), "terms": len(reference.terms), "read": summary,
                              "evidence": source.keep.evidence, "taxa": list(source.keep.taxa)})
        LOG.warning("refresh: the homology re-ranker, retrained on these references")
        # trained as the given model's homology re-ranker was (identity cut, dropouts)
        trained = retrain_reranker(model, [str(r.folder) for r in references], str(tmp / "run"), epochs=epochs,
                                   shown=HomologyTraining.recorded(towers.info), settings=settings, data_dir=data_dir)
        shutil.move(str(trained), tmp / "model")
        shutil.rmtree(tmp / "run")
        LOG.warning("refresh: --min-precision thresholds on the model's validation proteins")
        fit_thresholds(tmp / "model", [str(r.folder) for r in references], settings, data_dir, index)
        manifest = {"go_release": ontology.release, "inputs": [{"role": role, "path": str(Path(path).resolve()),
                                                                 "sha256": hash_file(path).hexdigest()} for role, path in inputs],
                    "model_from": str(Path(model).resolve()), "model": RetrievalModel.from_pretrained(
                        tmp / "model").fingerprint(), "index": index.content_digest(), "references": summaries,
                    "built_by": "prot-retrieve refresh", "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "seconds": round(time.time() - start), "versions": {"python": platform.python_version(),
                                                                         "prot-retrieve": _version()}}
        (tmp / PIPELINE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(output)


def _version() -> str:
    from importlib import metadata

    return metadata.version("prot-retrieve")
