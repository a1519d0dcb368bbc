"""Action thresholds: per aspect, the score above which predictions reach a chosen precision,
measured on the model's held-out validation proteins and stored in its manifest.

``annotate --min-precision 0.8`` then keeps, per aspect, the predictions scoring at least the
threshold fitted for precision 0.8. The precision is protein-centric (CAFA's: the mean over proteins
with a prediction above the threshold of the share of their predicted terms that are true,
propagated). The threshold is the smallest one from which on the validation precision never drops
below the target, so it holds on proteins like the validation ones; new proteins with fewer close
homologs get lower precision (see docs/benchmarks.md for what CAFA3 gave).
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from index.atomic import atomic_folder
from retrieval.models.retriever import MANIFEST, RetrievalModel

LOG = logging.getLogger(__name__)
#: Target precisions fitted; annotate --min-precision takes one of them.
PRECISION_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Thresholds that predict for fewer than this share of the proteins are left out of the fit: a
#: precision over a dozen proteins is noise (one such dip moved MFO's 0.8 threshold from 0.47 to 0.84).
MIN_COVERAGE = 0.01


class WithoutSelfHits:
    """A homology search that hides each query's hit on itself (validation proteins are in the references)."""

    def __init__(self, search):
        self.search, self.references = search, search.references

    def describe(self) -> dict[str, str]:
        return self.search.describe()

    def summary(self) -> str:
        return f"{self.search.summary()}, self-hits hidden"

    def hits(self, records, u=None) -> list[pd.DataFrame]:
        return [h[h["query"] != h["target"]] for h in self.search.hits(records, u)]


def thresholds_for(curves: pd.DataFrame, levels=PRECISION_LEVELS) -> dict[str, dict[str, float]]:
    """Per aspect and target precision, the smallest threshold from which on precision stays at or
    above the target (over thresholds that predict for at least :data:`MIN_COVERAGE` of the
    proteins); aspects that never reach a target get no threshold for it."""
    out: dict[str, dict[str, float]] = {}
    for aspect, curve in curves.groupby("aspect", sort=False):
        curve = curve[curve["coverage"] >= MIN_COVERAGE].sort_values("threshold")
        # The lower envelope from the right: the worst precision at this threshold or any higher one.
        floor = np.minimum.accumulate(curve["precision"].to_numpy()[::-1])[::-1]
        out[aspect] = {f"{p:g}": round(float(curve["threshold"].to_numpy()[np.argmax(floor >= p)]), 2)
                       for p in levels if (floor >= p).any()}
    return out


def fit_thresholds(model_dir: str | Path, references="default", settings=None, data_dir: str | None = None,
                   index=None) -> dict:
    """Annotate the model's validation proteins (self-hits hidden), fit :func:`thresholds_for` and
    write them into the model folder's manifest (``info.thresholds``).

    Returns:
        The record stored: thresholds per aspect and level, and what they were measured on.
    """
    table, evaluator, note = validation_predictions(model_dir, references, settings, data_dir, index)
    record = {"precision": thresholds_for(evaluator.curves(table)), "measured_on": note}
    _write_info(Path(model_dir), "thresholds", record)
    return record


def validation_predictions(model_dir: str | Path, references="default", settings=None, data_dir: str | None = None,
                           index=None):
    """The hybrid's predictions for the model's held-out validation proteins, with each protein's hit
    on itself hidden, and an evaluator of their truth (``index``: the function index annotated with,
    default all of the shipped GO).

    Returns:
        (predictions table (protein, term, score), :class:`retrieval.evaluation.Evaluator`, a note
        saying what they are).
    """
    from retrieval.annotate import Annotator
    from retrieval.evaluation import Evaluator
    from retrieval.pipeline import load_references
    from retrieval.homology import HomologySearch
    from retrieval.indexing import default_index
    from train.config import TrainConfig
    from train.data import load_training_data

    model = RetrievalModel.from_pretrained(model_dir)
    data = load_training_data(TrainConfig.recorded(model.info, data_dir))
    proteins = data.splits["val"]
    records = [data.records[i] for i in proteins]
    search = HomologySearch(load_references(references, model), settings, protein_encoder=model.protein_encoder)
    annotator = Annotator(model, index if index is not None else default_index(model), WithoutSelfHits(search))
    table = annotator.annotate(records, top=1500, min_score=0.01).rename(
        columns={"protein_id": "protein", "term_id": "term"})
    leaves = data.leaves[proteins].tocoo()
    truth = pd.DataFrame({"protein": np.array([r.id for r in records], dtype=object)[leaves.row],
                          "term": np.asarray(data.ontology.live_ids, dtype=object)[leaves.col]})
    evaluator = Evaluator(data.ontology, truth, propagator=data.propagator)
    return table, evaluator, f"{len(records)} validation proteins of the training split, self-hits hidden, " \
                             f"search {search.summary()}"


def _write_info(folder: Path, key: str, value) -> None:
    """Set ``info[key]`` in a model folder's manifest (the weights and fingerprints stay as they are)."""
    with atomic_folder(folder) as tmp:
        for path in folder.iterdir():
            _copy(path, tmp / path.name)
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["info"][key] = value
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _copy(source: Path, target: Path) -> None:
    (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
