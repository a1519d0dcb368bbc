"""CAFA protein-centric evaluation: Fmax, weighted Fmax, Smin and AUPR per aspect.

The protocol follows the CAFA evaluator (cafaeval 1.3, run with roots excluded): truth and
predictions are propagated over is_a + part_of within each namespace (a parent's score is the max
of its descendants'), alt_ids are mapped, obsolete and unknown terms are dropped, the roots are
left out, thresholds run 0.01..0.99 in steps of 0.01, precision is averaged over proteins with a
prediction at or above the threshold and recall over all proteins with truth in the aspect.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.errors import InputError
from index.labels import label_matrix
from index.ontology import Ontology
from index.propagation import Propagator

LOG = logging.getLogger(__name__)

#: Same grid as cafaeval (np.arange keeps its exact float values, so ties land identically).
THRESHOLDS = np.arange(0.01, 1, 0.01)


@dataclass
class _Curves:
    """Per-threshold protein-centric curves of one aspect (arrays over THRESHOLDS)."""

    precision: np.ndarray
    recall: np.ndarray
    coverage: np.ndarray
    remaining: np.ndarray
    misinformation: np.ndarray

    @property
    def f(self) -> np.ndarray:
        denom = self.precision + self.recall
        return np.divide(2 * self.precision * self.recall, denom, out=np.zeros_like(denom), where=denom > 0)


class Evaluator:
    """Scores prediction tables against one truth set; the truth is propagated once.

    Args:
        ontology: the ontology to propagate over.
        truth: DataFrame with ``protein`` and ``term`` columns (an aspect column is ignored:
            the namespace comes from the ontology).
        ia: information accretion per live term (aligned with ``ontology.live_ids``), enabling
            weighted Fmax and Smin.
        targets: restrict the evaluation to these proteins.
        propagator: reuse an existing :class:`Propagator` for this ontology.
    """

    def __init__(self, ontology: Ontology, truth: pd.DataFrame, ia: np.ndarray | None = None,
                 targets: list[str] | None = None, propagator: Propagator | None = None):
        self.ontology = ontology
        self.propagator = propagator or Propagator.from_ontology(ontology)
        self.ia = ia
        if targets is not None:
            truth = truth[truth["protein"].isin(set(targets))]
        if truth.empty:
            raise InputError("the truth table is empty (after restricting to the targets)")
        self.truth, self.proteins = label_matrix(ontology, self.propagator, truth["protein"].to_numpy(),
                                                 truth["term"].to_numpy(), follow_replaced_by=False)
        not_root = np.ones(len(ontology.live_ids), dtype=bool)
        not_root[ontology.roots] = False
        # Per namespace: its non-root terms, and the proteins with truth in it.
        self._aspects = {}
        for ns in sorted(pd.unique(ontology.namespaces[self.truth.indices])):
            in_ns = ontology.namespaces == ns
            self._aspects[ns] = (np.flatnonzero(in_ns & not_root), np.flatnonzero(self.truth[:, in_ns].getnnz(axis=1)))
        LOG.info("truth: %d proteins with at least one live term", len(self.proteins))

    def evaluate(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Score one prediction table (``protein``, ``term``, ``score``).

        Returns:
            One row per aspect: n_truth, n_predicted, fmax, threshold, coverage, precision, recall,
            aupr, ece and, when IA was given, wfmax, wthreshold, smin, sthreshold. ``ece`` is the
            expected calibration error of the propagated scores of the proteins with truth in the
            aspect, each (protein, term) score judged against the propagated truth.
        """
        scores = self._propagated_scores(predictions)
        rows = []
        for terms, proteins in self._aspects.values():
            truth = self.truth[proteins][:, terms]
            pred = scores[proteins][:, terms]
            row = {"aspect": self.ontology.terms[self.ontology.live_ids[terms[0]]].aspect,
                   "n_truth": len(proteins), "n_predicted": int((pred.getnnz(axis=1) > 0).sum())}
            plain = _curves(pred, truth, None)
            row.update(_summarise(plain))
            row["ece"] = _calibration_error(pred, truth)
            if self.ia is not None:
                row.update(_summarise_weighted(_curves(pred, truth, self.ia[terms]), plain.coverage))
            rows.append(row)
        return pd.DataFrame(rows)

    def curves(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Protein-centric precision, recall and coverage at every threshold, per aspect (the curves
        behind Fmax; for precision-recall plots and for choosing thresholds).

        Returns:
            Rows (aspect, threshold, precision, recall, coverage), thresholds 0.01 ... 0.99.
        """
        scores = self._propagated_scores(predictions)
        tables = []
        for terms, proteins in self._aspects.values():
            found = _curves(scores[proteins][:, terms], self.truth[proteins][:, terms], None)
            tables.append(pd.DataFrame({"aspect": self.ontology.terms[self.ontology.live_ids[terms[0]]].aspect,
                                        "threshold": THRESHOLDS, "precision": found.precision,
                                        "recall": found.recall, "coverage": found.coverage}))
        return pd.concat(tables, ignore_index=True)

    def reliability(self, predictions: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
        """Per aspect and score bin (equal width), the mean score, the share of true pairs and the
        count: a reliability diagram of the propagated scores (the pairs :meth:`evaluate`'s ece reads).

        Returns:
            Rows (aspect, bin_low, bin_high, mean_score, observed, n).
        """
        rows = []
        edges = np.linspace(0, 1, bins + 1)
        for aspect, (scores, truth) in self.scored_pairs(predictions).items():
            which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
            for b in range(bins):
                inside = which == b
                if inside.any():
                    rows.append({"aspect": aspect, "bin_low": edges[b], "bin_high": edges[b + 1],
                                 "mean_score": float(scores[inside].mean()),
                                 "observed": float(truth[inside].mean()), "n": int(inside.sum())})
        return pd.DataFrame(rows)

    def scored_pairs(self, predictions: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per aspect, every propagated score of the proteins with truth in it and whether the pair is
        true (what calibration is judged and fitted on)."""
        scores = self._propagated_scores(predictions)
        out = {}
        for terms, proteins in self._aspects.values():
            pred = scores[proteins][:, terms].tocoo()
            truth = np.asarray(self.truth[proteins][:, terms][pred.row, pred.col]).ravel() > 0 if pred.nnz \
                else np.zeros(0, dtype=bool)
            out[self.ontology.terms[self.ontology.live_ids[terms[0]]].aspect] = (pred.data, truth)
        return out

    def _propagated_scores(self, predictions: pd.DataFrame) -> sp.csr_matrix:
        """(truth proteins x terms) max-propagated prediction scores; other proteins are ignored."""
        rows = self.proteins.get_indexer(predictions["protein"].to_numpy())
        known = rows >= 0
        term_idx, stats = self.ontology.resolve_many(predictions["term"].to_numpy()[known], follow_replaced_by=False)
        ok = term_idx >= 0
        LOG.info("predictions: %d rows for proteins without truth ignored, %d alt_ids mapped", int((~known).sum()),
                 stats["mapped"])
        if (~ok).any():
            LOG.warning("predictions: %d rows with unknown or obsolete terms dropped", int((~ok).sum()))
        scores = predictions["score"].to_numpy(dtype=np.float64)[known][ok]
        return self.propagator.max_propagate_pairs(rows[known][ok], term_idx[ok], scores, len(self.proteins))


def _curves(pred: sp.csr_matrix, truth: sp.csr_matrix, weights: np.ndarray | None) -> _Curves:
    """Precision/recall/coverage/RU/MI at every threshold, from one pass over the predicted entries.

    Each prediction falls into the bin of thresholds it passes; cumulative sums over bins then give,
    per protein and threshold, the (weighted) number of predicted and correctly predicted terms.
    """
    n_prot, n_terms = truth.shape
    w = np.ones(n_terms) if weights is None else np.asarray(weights, dtype=np.float64)
    pred = pred.tocoo()
    truth_keys = np.sort(truth.tocoo().row.astype(np.int64) * n_terms + truth.tocoo().col)
    keys = pred.row.astype(np.int64) * n_terms + pred.col
    is_tp = np.isin(keys, truth_keys, assume_unique=False)
    n_bins = len(THRESHOLDS) + 1
    bins = np.searchsorted(THRESHOLDS, pred.data, side="right")  # predicted at THRESHOLDS[k] iff bin > k
    flat = pred.row.astype(np.int64) * n_bins + bins
    entry_w = w[pred.col]
    hist_pred = np.bincount(flat, weights=entry_w, minlength=n_prot * n_bins).reshape(n_prot, n_bins)
    hist_tp = np.bincount(flat, weights=entry_w * is_tp, minlength=n_prot * n_bins).reshape(n_prot, n_bins)
    n_pred = np.cumsum(hist_pred[:, ::-1], axis=1, dtype=np.float64)[:, ::-1][:, 1:]
    n_tp = np.cumsum(hist_tp[:, ::-1], axis=1, dtype=np.float64)[:, ::-1][:, 1:]
    n_gt = np.asarray(truth.multiply(w[None, :]).sum(axis=1)).ravel()[:, None] if weights is not None \
        else truth.getnnz(axis=1)[:, None].astype(np.float64)
    has_pred = n_pred > 0
    n_covered = has_pred.sum(axis=0)
    precision = np.divide(n_tp, n_pred, out=np.zeros_like(n_tp), where=has_pred).sum(axis=0)
    precision = np.divide(precision, n_covered, out=np.zeros_like(precision), where=n_covered > 0)
    recall = np.divide(n_tp, n_gt, out=np.zeros_like(n_tp), where=n_gt > 0).sum(axis=0) / n_prot
    return _Curves(precision=precision, recall=recall, coverage=n_covered / n_prot,
                   remaining=(n_gt - n_tp).sum(axis=0) / n_prot, misinformation=(n_pred - n_tp).sum(axis=0) / n_prot)


def _calibration_error(pred: sp.csr_matrix, truth: sp.csr_matrix) -> float:
    """ECE of every stored score of ``pred`` against ``truth`` (0 when nothing is predicted)."""
    scores = pred.tocoo()
    if scores.nnz == 0:
        return 0.0
    return expected_calibration_error(scores.data, np.asarray(truth[scores.row, scores.col]).ravel() > 0)


def _summarise(curves: _Curves) -> dict:
    f = np.where(curves.coverage > 0, curves.f, -1.0)
    best = int(np.argmax(f))
    valid = curves.coverage > 0
    order = np.argsort(curves.recall[valid], kind="stable")
    aupr = float(np.trapezoid(curves.precision[valid][order], curves.recall[valid][order])) if valid.sum() > 1 else 0.0
    return {"fmax": float(max(f[best], 0.0)), "threshold": float(THRESHOLDS[best]),
            "coverage": float(curves.coverage[best]), "precision": float(curves.precision[best]),
            "recall": float(curves.recall[best]), "aupr": aupr}


def _summarise_weighted(curves: _Curves, plain_coverage: np.ndarray) -> dict:
    """Weighted Fmax and Smin over the thresholds where any protein is predicted (as cafaeval filters)."""
    valid = plain_coverage > 0
    if not valid.any():
        return {"wfmax": 0.0, "wthreshold": float("nan"), "smin": float("nan"), "sthreshold": float("nan")}
    f = np.where(valid, curves.f, -1.0)
    s = np.where(valid, np.sqrt(curves.remaining ** 2 + curves.misinformation ** 2), np.inf)
    bf, bs = int(np.argmax(f)), int(np.argmin(s))
    return {"wfmax": float(f[bf]), "wthreshold": float(THRESHOLDS[bf]),
            "smin": float(s[bs]), "sthreshold": float(THRESHOLDS[bs])}


def ia_vector(ontology: Ontology, ia: pd.Series) -> np.ndarray:
    """Align an IA series (term id -> IA) with the ontology's live terms; absent terms get 0."""
    idx, _ = ontology.resolve_many(ia.index.to_numpy(), follow_replaced_by=False)
    vector = np.zeros(len(ontology.live_ids))
    ok = idx >= 0
    vector[idx[ok]] = np.nan_to_num(ia.to_numpy()[ok], posinf=0.0, neginf=0.0)
    return vector


def evaluate_files(predictions, truth, obo, ia=None, targets=None) -> pd.DataFrame:
    """Read the files and run :class:`Evaluator` (what ``prot-retrieve evaluate`` calls).

    Args:
        predictions: prediction file (CAFA format or prot-retrieve TSV).
        truth: annotation table with the true terms.
        obo: ontology file.
        ia: optional IA file (``term ia``).
        targets: optional file of protein ids to restrict to.
    """
    from retrieval.io.tables import read_annotations, read_ia, read_id_list, read_predictions

    ontology = Ontology.from_obo(obo)
    ia_values = ia_vector(ontology, read_ia(ia)) if ia else None
    target_ids = read_id_list(targets) if targets else None
    evaluator = Evaluator(ontology, read_annotations(truth), ia=ia_values, targets=target_ids)
    return evaluator.evaluate(read_predictions(predictions))


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    """ECE: mean |observed rate - mean probability| over equal-width probability bins, weighted by count."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=y, minlength=bins) - np.bincount(which, weights=p, minlength=bins))
    return float(gap.sum() / max(count.sum(), 1))
