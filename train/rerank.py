"""Training the fusion re-ranker on the recall stage's own candidates (its hard negatives).

The candidates come from the same FAISS search (plus homology transfers, when a reference is given)
that the annotator runs, over proteins the towers never trained on, so the re-ranker sees at
training time the score distribution it gets when serving. Homology is out-of-fold: a protein's
hit on itself is dropped, so it never finds its own labels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from index.vector_index import FunctionIndex
from retrieval.candidates import candidate_features, homology_candidates
from retrieval.evaluation import expected_calibration_error
from retrieval.scoring import index_vectors, query_vectors, rerank_probabilities, split_index_vectors
from train.validation import catalogue_vectors

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class HomologyTraining:
    """How homology evidence is shown to the re-ranker's training proteins (validation sees it all)."""

    max_identity: float = 100.0  # drop hits above this percent identity, besides self-hits
    source_dropout: float = 0.0  # chance that a training protein loses one reference's hits entirely
    taxon_dropout: float = 0.0  # chance that a training protein's taxon is hidden (FASTA without taxon tags)


def candidate_set(protein, index: FunctionIndex, scale: float, data, proteins, k: int, names, precision: str,
                  sources=(), shown: HomologyTraining = HomologyTraining(),
                  rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """u, candidate rows (-1 padded), their v, features, labels and tower scores for some proteins.

    ``sources`` are homology sources (one per reference); self-hits are always dropped (out-of-fold).
    Hits above ``shown.max_identity`` are dropped too: training proteins have much closer relatives
    in the reference than new proteins do, so this keeps the re-ranker from learning an easier
    problem than the one it serves. ``shown.source_dropout`` hides a reference from random proteins,
    so that a ranker trained on several references still ranks well when one is not given, and
    ``shown.taxon_dropout`` hides their taxon, for FASTA files without taxon tags.
    """
    records = [data.records[i] for i in proteins]
    ids = np.array([r.id for r in records], dtype=object)
    u = protein.encode([r.sequence for r in records], precision=precision)
    _, rows = index.search(query_vectors(u), k)
    hits = []
    for source in sources:
        found = source.hits(records, u)
        keep = (found["query"] != found["target"]) & (found["identity"] <= shown.max_identity)
        if shown.source_dropout:
            keep &= ~found["query"].isin(ids[rng.random(len(ids)) < shown.source_dropout])
        hits.append(found[keep])
    taxa = [r.taxon for r in records]
    if shown.taxon_dropout:
        taxa = ["" if hide else t for t, hide in zip(taxa, rng.random(len(taxa)) < shown.taxon_dropout)]
    rows, evidence = homology_candidates(rows, list(sources), hits, list(ids), taxa)
    valid = rows >= 0
    v, b = split_index_vectors(index.vectors(np.clip(rows, 0, None)), scale)
    labels = np.take_along_axis(data.y[proteins].toarray(), np.clip(rows, 0, None), axis=1) * valid
    return {"u": u, "rows": rows, "valid": valid, "v": v.astype(np.float32),
            "features": candidate_features(names, u, v, b, scale, rows, evidence),
            "labels": labels.astype(np.float32), "tower": scale * np.einsum("bd,bkd->bk", u, v) + b}


def train_reranker(reranker, protein, text, data, features, texts, config, rng, validator, sources=(),
                   shown: HomologyTraining = HomologyTraining()) -> dict:
    """Fit the re-ranker with BCE on valid candidates; report validation Fmax and calibration.

    ``shown`` applies to the proteins it trains on; validation keeps every non-self hit.
    """
    v, b, scale = catalogue_vectors(text, features, texts)
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="training")
    names = reranker.config.pair_features
    args = (protein, index, scale, data)
    fit = candidate_set(*args, data.splits["rerank"], config.recall_k, names, config.precision, sources, shown, rng)
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
              "pair_features": list(names), "homology": bool(sources),
              "train_max_identity": shown.max_identity, "train_source_dropout": shown.source_dropout,
              "train_taxon_dropout": shown.taxon_dropout}
    LOG.info("re-ranker: %s", record)
    return record
