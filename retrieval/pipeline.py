"""What an annotator is loaded from: a model, a function index, homology references and search
settings. :class:`PipelineSpec` records them so that another process (a Ray worker) loads the same."""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Sequence, Union

from retrieval.homology import Reference, SearchSettings
from retrieval.models.retriever import RetrievalModel

LOG = logging.getLogger(__name__)
Paths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


@dataclass(frozen=True)
class PipelineSpec:
    """The arguments of :meth:`retrieval.annotate.Annotator.from_pretrained`, paths made absolute."""

    model: str | None
    index: str | None
    reference: str | tuple[str, ...] | None
    executable: str | None
    settings: SearchSettings | None
    force: bool

    @classmethod
    def of(cls, model, index, reference, executable, settings, force) -> "PipelineSpec":
        """From the arguments as given: paths made absolute (a bare tool name stays a name, for PATH)."""
        if reference is not None and reference != "default":
            folders = [reference] if isinstance(reference, (str, os.PathLike)) else reference
            reference = tuple(os.path.abspath(f) for f in folders)
        if executable is not None and os.path.exists(executable):
            executable = os.path.abspath(executable)
        return cls(_absolute(model), _absolute(index), reference, executable, settings, force)

    def load(self, threads: int = 0):
        """The annotator; ``threads``: the search tool's threads (0: as recorded)."""
        from retrieval.annotate import Annotator

        settings = self.settings or SearchSettings()
        if threads:
            settings = dataclasses.replace(settings, threads=threads)
        return Annotator.from_pretrained(self.model, self.index, self.reference, self.executable, settings, self.force)


def load_references(reference: Paths | None, model: RetrievalModel) -> list[Reference]:
    """The references ``Annotator.from_pretrained`` is asked for: ``"default"`` (the shipped ones,
    when the model's homology re-ranker was trained on them), folders, or None / [] (none)."""
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


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.path.abspath(path)


#: The manifest of a pipeline folder (``prot-retrieve refresh``).
PIPELINE_MANIFEST = "pipeline.json"


def pipeline_parts(folder: str | os.PathLike) -> tuple[str, str, list[str]]:
    """(model folder, index folder, reference folders in the re-ranker's order) of a pipeline folder
    that ``prot-retrieve refresh`` wrote.

    Raises:
        InputError: not a pipeline folder, or its parts are of different GO releases or references
            than the manifest records (artefacts of different releases are never mixed).
    """
    import json
    from pathlib import Path

    from index.errors import InputError

    folder = Path(folder)
    try:
        manifest = json.loads((folder / PIPELINE_MANIFEST).read_text())
    except (OSError, ValueError):
        raise InputError(f"{folder}: not a pipeline folder (no readable {PIPELINE_MANIFEST}; make one with "
                         "`prot-retrieve refresh`)") from None
    model, index = folder / "model", folder / "index"
    references = [folder / r["folder"] for r in manifest.get("references", [])]
    release = manifest.get("go_release")
    index_release = _json(index / "index_config.json").get("build", {}).get("ontology_release")
    found = {str(r): _json(r / "reference.json").get("ontology_release") for r in references}
    mixed = {k: v for k, v in {"index": index_release, **found}.items() if v != release}
    if mixed:
        raise InputError(f"{folder}: parts of another GO release than the pipeline's ({release}): "
                         + ", ".join(f"{k} {v}" for k, v in mixed.items()))
    return str(model), str(index), [str(r) for r in references]


def _json(path) -> dict:
    import json

    from index.errors import InputError

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise InputError(f"{path}: missing or unreadable: the pipeline folder is incomplete") from None
