"""Validation on held-out proteins with the project's own CAFA metric."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from retrieval.evaluation import Evaluator
from train.data import TrainingData


@torch.inference_mode()
def catalogue_vectors(text, features: torch.Tensor | None, texts: list[str],
                      known: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """(v, b, scale) of every catalogue column, in eval mode; ``known=False`` gives them as if unseen
    (the text alone and the unseen-term prior, as a term without an id embedding is served)."""
    text.eval()
    if features is None:
        features = text.backbone_features(texts)
    rows = torch.arange(len(texts), device=features.device)
    if not known:
        rows = torch.full_like(rows, -1)
    v, b = text(features, rows)
    return v.float().cpu().numpy(), b.float().cpu().numpy(), text.scale


class Validator:
    """Fmax per aspect on a fixed set of held-out proteins (truth = their propagated labels)."""

    def __init__(self, data: TrainingData, proteins: np.ndarray, top: int = 300):
        self.data, self.proteins, self.top = data, proteins, top
        sub = data.labels[proteins].tocoo()
        ids = np.array([data.records[i].id for i in proteins], dtype=object)
        live = np.array(data.ontology.live_ids, dtype=object)
        truth = pd.DataFrame({"protein": ids[sub.row], "term": live[sub.col]})
        self.ids = ids
        self.evaluator = Evaluator(data.ontology, truth, propagator=data.propagator)

    def sequences(self) -> list[str]:
        return [self.data.records[i].sequence for i in self.proteins]

    def fmax(self, rows: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """Fmax of (protein x top) catalogue-column predictions, keyed by aspect."""
        live = np.array(self.data.ontology.live_ids, dtype=object)
        pred = pd.DataFrame({"protein": np.repeat(self.ids, rows.shape[1]), "term": live[self.data.terms[rows.ravel()]],
                             "score": scores.ravel().astype(np.float64)})
        result = self.evaluator.evaluate(pred)
        return {r.aspect: round(float(r.fmax), 4) for r in result.itertuples()}

    def tower_fmax(self, protein, text, features, texts, precision: str) -> dict[str, float]:
        """Fmax of the towers alone: sigmoid(recall score) over the whole catalogue, top-k per protein."""
        u = protein.encode(self.sequences(), precision=precision)
        v, b, scale = catalogue_vectors(text, features, texts)
        scores = scale * u @ v.T + b
        rows = np.argpartition(-scores, min(self.top, scores.shape[1] - 1), axis=1)[:, : self.top]
        top = np.take_along_axis(scores, rows, axis=1)
        return self.fmax(rows, 1 / (1 + np.exp(-top)))
