"""Training the fusion re-ranker on the recall stage's own candidates (its hard negatives).

The candidates come from the same FAISS search (plus homology transfers, when a reference is given)
that the annotator runs, over proteins the towers never trained on, so the re-ranker sees at
training time the score distribution it gets when serving. Homology is out-of-fold: a protein's
hit on itself is dropped, so it never finds its own labels.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from index.vector_index import FunctionIndex
from retrieval.candidates import candidate_features, homology_candidates
from retrieval.evaluation import expected_calibration_error
from retrieval.scoring import index_vectors, query_vectors, rerank_probabilities, split_index_vectors
from train.validation import catalogue_vectors

LOG = logging.getLogger(__name__)


def candidate_set(protein, index: FunctionIndex, scale: float, data, proteins, k: int, names, precision: str,
                  sources=(), max_identity: float = 100.0) -> dict[str, np.ndarray]:
    """u, candidate rows (-1 padded), their v, features, labels and tower scores for some proteins.

    ``sources`` are homology sources (one per reference). Hits above ``max_identity`` percent are
    dropped besides self-hits: training proteins have much closer relatives in the reference than
    new proteins do, so this keeps the re-ranker from learning an easier problem than the one it serves.
    """
    records = [data.records[i] for i in proteins]
    u = protein.encode([r.sequence for r in records], precision=precision)
    _, rows = index.search(query_vectors(u), k)
    hits = [h[(h["query"] != h["target"]) & (h["identity"] <= max_identity)]  # out-of-fold
            for h in (s.hits(records, u) for s in sources)]
    rows, evidence = homology_candidates(rows, list(sources), hits, [r.id for r in records])
    valid = rows >= 0
    v, b = split_index_vectors(index.vectors(np.clip(rows, 0, None)), scale)
    labels = np.take_along_axis(data.y[proteins].toarray(), np.clip(rows, 0, None), axis=1) * valid
    return {"u": u, "rows": rows, "valid": valid, "v": v.astype(np.float32),
            "features": candidate_features(names, u, v, b, scale, rows, evidence),
            "labels": labels.astype(np.float32), "tower": scale * np.einsum("bd,bkd->bk", u, v) + b}


def train_reranker(reranker, protein, text, data, features, texts, config, rng, validator, sources=(),
                   max_identity: float = 100.0) -> dict:
    """Fit the re-ranker with BCE on valid candidates; report validation Fmax and calibration.

    ``max_identity`` applies to the proteins it trains on; validation keeps every non-self hit.
    """
    v, b, scale = catalogue_vectors(text, features, texts)
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="training")
    names = reranker.config.pair_features
    args = (protein, index, scale, data)
    fit = candidate_set(*args, data.splits["rerank"], config.recall_k, names, config.precision, sources, max_identity)
    val = candidate_set(*args, data.splits["val"], config.recall_k, names, config.precision, sources)
    optimizer = torch.optim.AdamW(reranker.parameters(), lr=1e-3, weight_decay=1e-2)
    n = len(fit["u"])
    for epoch in range(config.reranker_epochs):
        reranker.train()
        order = rng.permutation(n)
        for start in tqdm(range(0, n, 32), desc=f"re-ranker epoch {epoch + 1}/{config.reranker_epochs}", unit="step"):
            idx = order[start: start + 32]
            logits = reranker(*(torch.from_numpy(fit[key][idx]) for key in ("u", "v", "features")))
            mask = torch.from_numpy(fit["valid"][idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], torch.from_numpy(fit["labels"][idx])[mask])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    probs = rerank_probabilities(reranker, val["u"], val["v"], val["features"]) * val["valid"]
    rows = np.clip(val["rows"], 0, None)
    record = {"val_fmax_towers": validator.fmax(rows, 1 / (1 + np.exp(-val["tower"])) * val["valid"]),
              "val_fmax_reranked": validator.fmax(rows, probs),
              "val_ece_reranked": round(expected_calibration_error(probs[val["valid"]], val["labels"][val["valid"]]), 4),
              "val_recall_of_candidates": round(float(val["labels"].sum() / max(data.y[data.splits["val"]].sum(), 1)), 4),
              "pair_features": list(names), "homology": bool(sources), "train_max_identity": max_identity}
    LOG.info("re-ranker: %s", record)
    return record
