"""Training data: proteins, propagated labels over the training catalogue, splits and batches."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.catalogue import FunctionCatalogue
from index.holdout import drop_subtrees, read_term_list
from index.labels import label_matrix
from index.ontology import Ontology
from index.propagation import Propagator
from retrieval.dataset import AnnotatedProteins, parse_tag_filters
from retrieval.io.fasta import ProteinRecord
from train.config import TrainConfig

LOG = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Proteins with labels over the training catalogue (the terms with enough training proteins).

    Attributes:
        records: the proteins.
        labels: propagated (proteins x live terms) booleans.
        leaves: the annotated (unpropagated) terms, same shape: for the open-world negative mask.
        terms: live-term index of each catalogue column.
        y: labels restricted to the catalogue columns (CSR, proteins x columns).
        frequency: share of proteins (with labels in the aspect) carrying each column's term.
        splits: protein indices of "train" (towers), "rerank" (re-ranker) and "val" (reporting); the
            extra proteins (after the main ones in ``records``) are all in "train".
    """

    ontology: Ontology
    propagator: Propagator
    records: list[ProteinRecord]
    labels: sp.csr_matrix
    leaves: sp.csr_matrix
    terms: np.ndarray
    y: sp.csr_matrix
    frequency: np.ndarray
    splits: dict[str, np.ndarray]

    @cached_property
    def catalogue(self) -> FunctionCatalogue:
        """The catalogue terms as functions (built once: the whole ontology is walked)."""
        full = FunctionCatalogue.from_ontology(self.ontology)
        return FunctionCatalogue(full.table.iloc[self.terms])

    @property
    def term_ids(self) -> list[str]:
        return [self.ontology.live_ids[t] for t in self.terms]


def load_training_data(config: TrainConfig) -> TrainingData:
    """Read, propagate, pick the catalogue terms and split proteins (seeded).

    Only the main proteins (``config.fasta``) are split; the extra ones train the towers alone, so the
    re-ranker and validation proteins do not depend on them.
    """
    ontology = Ontology.from_obo(config.obo)
    propagator = Propagator.from_ontology(ontology)
    tags = parse_tag_filters(config.exclude_tag)
    data = AnnotatedProteins.load(config.fasta, config.annotations, tags, skip_invalid=config.skip_invalid)
    records, annotations, n_main = data.records, data.annotations, len(data.records)
    if config.extra_fasta:
        extra = AnnotatedProteins.load(config.extra_fasta, config.extra_annotations, tags,
                                       skip_ids=frozenset(data.ids) | data.held_out, skip_invalid=config.skip_invalid)
        records, annotations = records + extra.records, pd.concat([annotations, extra.annotations], ignore_index=True)
    index = pd.Index([r.id for r in records])
    labels, _ = label_matrix(ontology, propagator, annotations["protein"], annotations["term"], index=index)
    # Splits are drawn over the proteins of the full labels, so a held-out run's validation and re-ranker
    # proteins are those of the normal run (less any left without labels) and the two compare directly.
    splittable = _catalogue_labels(labels, ontology, config.min_term_count)[1].getnnz(axis=1) > 0
    if config.hold_out_terms:
        annotations = drop_subtrees(annotations, ontology, propagator, read_term_list(config.hold_out_terms, ontology))
        labels, _ = label_matrix(ontology, propagator, annotations["protein"], annotations["term"], index=index)
    leaf_idx, _ = ontology.resolve_many(annotations["term"].to_numpy())
    ok = leaf_idx >= 0
    leaves = sp.csr_matrix((np.ones(int(ok.sum()), dtype=bool),
                            (index.get_indexer(annotations["protein"].to_numpy()[ok]), leaf_idx[ok])),
                           shape=labels.shape)
    terms, y = _catalogue_labels(labels, ontology, config.min_term_count)
    counts = np.asarray(labels.sum(axis=0)).ravel()
    frequency = np.zeros(len(terms))
    for ns in pd.unique(ontology.namespaces[terms]):
        cols = ontology.namespaces[terms] == ns
        n_in_aspect = (labels[:, ontology.namespaces == ns].getnnz(axis=1) > 0).sum()
        frequency[cols] = counts[terms[cols]] / max(n_in_aspect, 1)
    keep = np.flatnonzero(splittable)
    order = np.random.default_rng(config.seed).permutation(keep[keep < n_main])
    n_val, n_rerank = int(len(order) * config.val_fraction), int(len(order) * config.rerank_fraction)
    splits = {"val": order[:n_val], "rerank": order[n_val: n_val + n_rerank],
              "train": np.concatenate([order[n_val + n_rerank:], keep[keep >= n_main]])}
    labelled = y.getnnz(axis=1) > 0
    splits = {name: np.sort(rows[labelled[rows]]) for name, rows in splits.items()}
    LOG.info("training data: %d proteins (%d extra; %d train / %d rerank / %d val), %d catalogue terms with >= %d "
             "proteins", len(records), len(records) - n_main, *(len(splits[k]) for k in ("train", "rerank", "val")),
             len(terms), config.min_term_count)
    return TrainingData(ontology, propagator, records, labels, leaves, terms, y, frequency, splits)


def _catalogue_labels(labels: sp.csr_matrix, ontology: Ontology, min_count: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """The catalogue terms (not a root, at least ``min_count`` proteins) and the labels of their columns."""
    counts = np.asarray(labels.sum(axis=0)).ravel()
    not_root = np.ones(len(ontology.live_ids), dtype=bool)
    not_root[ontology.roots] = False
    terms = np.flatnonzero((counts >= min_count) & not_root)
    return terms, labels[:, terms].tocsr()


def protein_batches(lengths: np.ndarray, indices: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Shuffled batches of similar-length proteins: sort within random pools of 50 batches, then shuffle."""
    shuffled = rng.permutation(indices)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        chunk = shuffled[start: start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def random_crop(sequence: str, length: int, rng: np.random.Generator) -> str:
    """A random window of ``length`` residues (the whole sequence when shorter)."""
    if len(sequence) <= length:
        return sequence
    start = int(rng.integers(0, len(sequence) - length + 1))
    return sequence[start: start + length]
