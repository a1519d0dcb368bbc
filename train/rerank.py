"""Training the fusion re-ranker on the recall stage's own candidates (its hard negatives).

The candidates come from the same FAISS search the annotator runs, over proteins the towers never
trained on, so the re-ranker sees at training time the score distribution it gets when serving.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from index.vector_index import FunctionIndex
from retrieval.evaluation import expected_calibration_error
from retrieval.scoring import index_vectors, pair_features, query_vectors, rerank_probabilities
from train.validation import catalogue_vectors

LOG = logging.getLogger(__name__)


def candidate_set(protein, index: FunctionIndex, v: np.ndarray, b: np.ndarray, scale: float, data, proteins,
                  k: int, names, precision: str) -> dict[str, np.ndarray]:
    """u, candidate rows, their v, features and labels for some proteins."""
    u = protein.encode([data.records[i].sequence for i in proteins], precision=precision)
    recall, rows = index.search(query_vectors(u), k)
    cand_v = v[rows]
    return {"u": u, "rows": rows, "v": cand_v, "recall": recall,
            "features": pair_features(names, u, cand_v, b[rows], scale),
            "labels": np.take_along_axis(data.y[proteins].toarray(), rows, axis=1).astype(np.float32)}


def train_reranker(reranker, protein, text, data, features, texts, config, rng, validator) -> dict:
    """Fit the re-ranker with BCE; report validation Fmax (towers vs re-ranked) and calibration."""
    v, b, scale = catalogue_vectors(text, features, texts)
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="training")
    names = reranker.config.pair_features
    args = (protein, index, v, b, scale, data)
    fit = candidate_set(*args, data.splits["rerank"], config.recall_k, names, config.precision)
    val = candidate_set(*args, data.splits["val"], config.recall_k, names, config.precision)
    optimizer = torch.optim.AdamW(reranker.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = len(fit["u"])
    for epoch in range(config.reranker_epochs):
        reranker.train()
        order = rng.permutation(n)
        for start in tqdm(range(0, n, 32), desc=f"re-ranker epoch {epoch + 1}/{config.reranker_epochs}", unit="step"):
            idx = order[start: start + 32]
            logits = reranker(*(torch.from_numpy(fit[key][idx]) for key in ("u", "v", "features")))
            loss = loss_fn(logits, torch.from_numpy(fit["labels"][idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    probs = rerank_probabilities(reranker, val["u"], val["v"], val["features"])
    record = {"val_fmax_towers": validator.fmax(val["rows"], 1 / (1 + np.exp(-val["recall"]))),
              "val_fmax_reranked": validator.fmax(val["rows"], probs),
              "val_ece_reranked": round(expected_calibration_error(probs, val["labels"]), 4),
              "val_recall_at_k": round(float(val["labels"].sum() / max(data.y[data.splits["val"]].sum(), 1)), 4)}
    LOG.info("re-ranker: %s", record)
    return record
