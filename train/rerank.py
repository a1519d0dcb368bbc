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

from index.holdout import subtrees
from index.vector_index import FunctionIndex
from retrieval.stages.recall import homology_candidates
from retrieval.stages.rerank import candidate_features
from retrieval.evaluation import expected_calibration_error
from retrieval.homology import HomologySource
from retrieval.models.scoring import index_vectors, query_vectors, rerank_probabilities, split_index_vectors
from train.validation import catalogue_vectors

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class HomologyTraining:
    """How homology evidence is shown to the re-ranker's training proteins (validation sees it all)."""

    max_identity: float = 100.0  # drop hits above this percent identity, besides self-hits
    source_dropout: float = 0.0  # chance that a training protein loses one reference's hits entirely
    taxon_dropout: float = 0.0  # chance that a training protein's taxon is hidden (FASTA without taxon tags)
    # Share of catalogue terms drawn as roots of simulated unseen subtrees: for the training proteins
    # these terms and their descendants are scored as a term never trained on is served (text alone,
    # the unseen-term prior, no labels in the references), so the re-ranker learns to rank such terms
    # instead of reading "no homology evidence" as "negative".
    unseen_share: float = 0.0

    @classmethod
    def recorded(cls, info: dict) -> "HomologyTraining":
        """How a model's homology re-ranker was trained, as its manifest records it (defaults where it
        has none)."""
        record = info.get("homology_reranker", {})
        return cls(**{f: record[f"train_{f}"] for f in ("max_identity", "source_dropout", "taxon_dropout",
                                                        "unseen_share") if f"train_{f}" in record})


def simulated_unseen(data, share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over catalogue columns: a random ``share`` of the terms and all their descendants."""
    roots = [data.ontology.live_ids[t] for t in data.terms[rng.random(len(data.terms)) < share]] if share else []
    return subtrees(data.ontology, data.propagator, roots)[data.terms] if roots else np.zeros(len(data.terms), bool)


def candidate_set(protein, index: FunctionIndex, scale: float, data, proteins, k: int, names, precision: str,
                  homology=None, shown: HomologyTraining = HomologyTraining(),
                  rng: np.random.Generator | None = None, unseen: np.ndarray | None = None,
                  chunk: int = 512) -> dict[str, np.ndarray]:
    """u, candidate rows (-1 padded), features, labels and tower scores for some proteins.

    The candidates' vectors are not stored (they are rows of the index, gathered per batch), so
    memory grows with proteins x candidates x features only; features are built ``chunk`` proteins
    at a time.

    ``homology`` searches the references (a :class:`~retrieval.homology.HomologySearch`, or None);
    self-hits are always dropped (out-of-fold).
    Hits above ``shown.max_identity`` are dropped too: training proteins have much closer relatives
    in the reference than new proteins do, so this keeps the re-ranker from learning an easier
    problem than the one it serves. ``shown.source_dropout`` hides a reference from random proteins,
    so that a ranker trained on several references still ranks well when one is not given, and
    ``shown.taxon_dropout`` hides their taxon, for FASTA files without taxon tags. ``unseen`` (a mask
    over catalogue rows) are terms the references are told to lack (``index`` then holds their
    vectors as unseen terms, see :func:`simulated_unseen`).
    """
    records = [data.records[i] for i in proteins]
    ids = np.array([r.id for r in records], dtype=object)
    u = protein.encode([r.sequence for r in records], precision=precision)
    _, recall = index.search(query_vectors(u), k)
    sources = [HomologySource(r, index.catalogue.ids) for r in homology.references] if homology else []
    if unseen is not None and unseen.any():
        sources = [s.without(unseen) for s in sources]
    hits = []
    for found in (homology.hits(records, u) if homology else []):
        keep = (found["query"] != found["target"]) & (found["identity"] <= shown.max_identity)
        if shown.source_dropout:
            keep &= ~found["query"].isin(ids[rng.random(len(ids)) < shown.source_dropout])
        hits.append(found[keep])
    taxa = np.array([r.taxon for r in records], dtype=object)
    if shown.taxon_dropout:
        taxa[rng.random(len(taxa)) < shown.taxon_dropout] = ""
    parts = []
    for start in range(0, len(records), chunk):
        part = slice(start, start + chunk)
        in_part = [h[h["query"].isin(set(ids[part]))] for h in hits]
        rows, evidence = homology_candidates(recall[part], sources, in_part, list(ids[part]), list(taxa[part]))
        v, b = split_index_vectors(index.vectors(np.clip(rows, 0, None)), scale)
        valid = rows >= 0
        labels = np.take_along_axis(data.y[proteins[part]].toarray(), np.clip(rows, 0, None), axis=1) & valid
        parts.append({"rows": rows, "features": candidate_features(names, u[part], v, b, scale, rows, evidence),
                      "labels": labels.astype(np.float32),
                      "tower": np.where(valid, scale * np.einsum("bd,bkd->bk", u[part], v) + b, 0).astype(np.float32)})
    width = max(p["rows"].shape[1] for p in parts)
    out = {key: np.concatenate([_pad(p[key], width, -1 if key == "rows" else 0) for p in parts])
           for key in parts[0]}
    return {"u": u, "valid": out["rows"] >= 0, **out}


def _pad(array: np.ndarray, width: int, value) -> np.ndarray:
    """Pad axis 1 of ``array`` to ``width`` with ``value``."""
    extra = [(0, 0), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, extra, constant_values=value)


def _probabilities(reranker, candidates: dict[str, np.ndarray], vectors: np.ndarray, batch: int = 256) -> np.ndarray:
    """Re-ranker probabilities of every candidate (0 on padding), gathering vectors batch by batch."""
    rows = np.clip(candidates["rows"], 0, None)
    out = [rerank_probabilities(reranker, candidates["u"][s: s + batch], vectors[rows[s: s + batch]],
                                candidates["features"][s: s + batch]) for s in range(0, len(rows), batch)]
    return np.concatenate(out) * candidates["valid"]


def train_reranker(reranker, protein, text, data, features, texts, config, rng, validator, homology=None,
                   shown: HomologyTraining = HomologyTraining()) -> dict:
    """Fit the re-ranker with BCE on valid candidates; report validation Fmax and calibration.

    ``shown`` applies to the proteins it trains on; validation keeps every non-self hit.
    """
    v, b, scale = catalogue_vectors(text, features, texts)
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="training")
    unseen = simulated_unseen(data, shown.unseen_share, rng)
    fit_v, fit_index = v, index
    if unseen.any():
        text_v, text_b, _ = catalogue_vectors(text, features, texts, known=False)
        fit_v = np.where(unseen[:, None], text_v, v)
        fit_index = FunctionIndex.build(index_vectors(fit_v, np.where(unseen, text_b, b), scale), data.catalogue,
                                        fingerprint="training, simulated unseen")
    names = reranker.config.pair_features
    fit = candidate_set(protein, fit_index, scale, data, data.splits["rerank"], config.recall_k, names,
                        config.precision, homology, shown, rng, unseen)
    val = candidate_set(protein, index, scale, data, data.splits["val"], config.recall_k, names, config.precision,
                        homology)
    optimizer = torch.optim.AdamW(reranker.parameters(), lr=1e-3, weight_decay=1e-2)
    n = len(fit["u"])
    for epoch in range(config.reranker_epochs):
        reranker.train()
        order = rng.permutation(n)
        for start in tqdm(range(0, n, 32), desc=f"re-ranker epoch {epoch + 1}/{config.reranker_epochs}", unit="step"):
            idx = order[start: start + 32]
            vectors = torch.from_numpy(fit_v[np.clip(fit["rows"][idx], 0, None)])
            logits = reranker(torch.from_numpy(fit["u"][idx]), vectors, torch.from_numpy(fit["features"][idx]))
            mask = torch.from_numpy(fit["valid"][idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], torch.from_numpy(fit["labels"][idx])[mask])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    probs = _probabilities(reranker, val, v)
    rows = np.clip(val["rows"], 0, None)
    record = {"val_fmax_towers": validator.fmax(rows, 1 / (1 + np.exp(-val["tower"])) * val["valid"]),
              "val_fmax_reranked": validator.fmax(rows, probs),
              "val_ece_reranked": round(expected_calibration_error(probs[val["valid"]], val["labels"][val["valid"]]), 4),
              "val_recall_of_candidates": round(float(val["labels"].sum() / max(data.y[data.splits["val"]].sum(), 1)), 4),
              "pair_features": list(names), "homology": homology.describe() if homology else False,
              "train_max_identity": shown.max_identity, "train_source_dropout": shown.source_dropout,
              "train_taxon_dropout": shown.taxon_dropout, "train_unseen_share": shown.unseen_share,
              "train_unseen_terms": int(unseen.sum())}
    LOG.info("re-ranker: %s", record)
    return record
