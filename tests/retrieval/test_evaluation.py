import numpy as np
import pandas as pd
import pytest

from index.propagation import Propagator
from retrieval.evaluation import THRESHOLDS, Evaluator, ia_vector


def frame(rows, columns=("protein", "term")):
    return pd.DataFrame(rows, columns=list(columns))


TRUTH = frame([("P1", "GO:0000004"), ("P2", "GO:0000003"), ("P3", "GO:0000092"), ("P4", "GO:0000011")])
PRED = frame([("P1", "GO:0000004", 0.5), ("P1", "GO:0000003", 0.8), ("P2", "GO:0000002", 0.9),
              ("P9", "GO:0000002", 1.0)], ("protein", "term", "score"))


def test_fmax_by_hand(toy_ontology):
    # MF truth without the root: P1 {2,3,4}, P2 {3}, P3 {2} (alt_id 92 -> 2). Propagated predictions:
    # P1 {2: .5, 3: .8, 4: .5}, P2 {2: .9}; P3 none; P9 has no truth and is ignored.
    # tau <= .5: precision (1 + 0) / 2 proteins with predictions, recall (1 + 0 + 0) / 3 -> F = 0.4.
    # .5 < tau <= .8: precision .5, recall 1/9 -> F = 2/11.
    result = Evaluator(toy_ontology, TRUTH).evaluate(PRED).set_index("aspect")
    mf = result.loc["MFO"]
    assert mf["n_truth"] == 3 and mf["n_predicted"] == 2
    assert mf["fmax"] == pytest.approx(0.4)
    assert mf["threshold"] == pytest.approx(0.01)  # first threshold reaching the max, as cafaeval
    assert mf["coverage"] == pytest.approx(2 / 3)
    assert (mf["precision"], mf["recall"]) == (pytest.approx(0.5), pytest.approx(1 / 3))
    bp = result.loc["BPO"]
    assert bp["n_truth"] == 1 and bp["n_predicted"] == 0 and bp["fmax"] == 0
    # Calibration of the four propagated MF scores: .5 (true) and .5 (true) in one bin, .8 (true),
    # .9 (false: P2's truth is GO:3) -> (|2 - 1.0| + |1 - .8| + |0 - .9|) / 4.
    assert mf["ece"] == pytest.approx((1.0 + 0.2 + 0.9) / 4)
    assert bp["ece"] == 0


def test_weighted_fmax_and_smin_by_hand(toy_ontology):
    ia = ia_vector(toy_ontology, pd.Series({"GO:0000002": 1.0, "GO:0000003": 2.0, "GO:0000004": 3.0}))
    mf = Evaluator(toy_ontology, TRUTH, ia=ia).evaluate(PRED).set_index("aspect").loc["MFO"]
    # tau <= .5: weighted precision (6/6 + 0/1)/2, recall (1 + 0 + 0)/3 -> wF = 0.4;
    # remaining uncertainty (0 + 2 + 1)/3 = 1, misinformation (0 + 1 + 0)/3 -> S = sqrt(1 + 1/9).
    assert mf["wfmax"] == pytest.approx(0.4)
    assert mf["smin"] == pytest.approx(np.sqrt(1 + 1 / 9))
    assert mf["sthreshold"] == pytest.approx(0.01)


def test_targets_restrict_the_truth(toy_ontology):
    mf = Evaluator(toy_ontology, TRUTH, targets=["P1"]).evaluate(PRED).set_index("aspect").loc["MFO"]
    assert mf["n_truth"] == 1 and mf["fmax"] == pytest.approx(1.0)


def bruteforce_fmax(truth_sets, pred_scores, n_truth):
    """Direct CAFA definition, set by set, threshold by threshold."""
    best = 0.0
    for tau in THRESHOLDS:
        precisions, recall_sum = [], 0.0
        for protein, true in truth_sets.items():
            predicted = {t for t, s in pred_scores.get(protein, {}).items() if s >= tau}
            if predicted:
                precisions.append(len(predicted & true) / len(predicted))
            recall_sum += len(predicted & true) / len(true) if true else 0.0
        if precisions:
            p, r = np.mean(precisions), recall_sum / n_truth
            best = max(best, 2 * p * r / (p + r) if p + r else 0.0)
    return best


def test_matches_bruteforce_on_random_predictions(toy_ontology):
    rng = np.random.default_rng(0)
    onto = toy_ontology
    mf_terms = ["GO:0000002", "GO:0000003", "GO:0000004"]
    truth = frame([(f"P{i}", t) for i in range(30) for t in mf_terms if rng.random() < 0.4])
    pred = frame([(f"P{i}", t, float(np.round(rng.random(), 3))) for i in range(30) for t in mf_terms
                  if rng.random() < 0.6], ("protein", "term", "score"))
    got = Evaluator(onto, truth).evaluate(pred).set_index("aspect").loc["MFO", "fmax"]
    # Oracle inputs: propagate both sides by hand (root excluded).
    prop = Propagator.from_ontology(onto)
    ids = onto.live_ids
    ancestors = {t: {ids[a] for a in prop.ancestors[ids.index(t)].indices} - {"GO:0000001"} for t in mf_terms}
    truth_sets = {}
    for p, t in truth.itertuples(index=False):
        truth_sets.setdefault(p, set()).update(ancestors[t])
    pred_scores = {}
    for p, t, s in pred.itertuples(index=False):
        for a in ancestors[t]:
            pred_scores.setdefault(p, {})[a] = max(pred_scores.get(p, {}).get(a, 0.0), s)
    assert got == pytest.approx(bruteforce_fmax(truth_sets, pred_scores, len(truth_sets)))


def test_curves_reliability_and_pairs_by_hand(toy_ontology):
    evaluator = Evaluator(toy_ontology, TRUTH)
    curves = evaluator.curves(PRED)
    mf = curves[curves["aspect"] == "MFO"].set_index(np.round(curves.loc[curves["aspect"] == "MFO", "threshold"], 2))
    # As in test_fmax_by_hand: tau <= .5: P 0.5, R 1/3, coverage 2/3; .5 < tau <= .8: P .5, R 1/9.
    assert (mf.loc[0.5, "precision"], mf.loc[0.5, "recall"], mf.loc[0.5, "coverage"]) == \
        (pytest.approx(0.5), pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert (mf.loc[0.6, "precision"], mf.loc[0.6, "recall"]) == (pytest.approx(0.5), pytest.approx(1 / 9))
    assert mf.loc[0.95, "coverage"] == 0
    scores, truth = evaluator.scored_pairs(PRED)["MFO"]
    assert sorted(zip(scores.tolist(), truth.tolist())) == [(0.5, True), (0.5, True), (0.8, True), (0.9, False)]
    bins = evaluator.reliability(PRED).set_index(["aspect", "bin_low"])
    assert bins.loc[("MFO", 0.5), ["mean_score", "observed", "n"]].tolist() == [0.5, 1.0, 2]
    assert bins.loc[("MFO", 0.8), ["mean_score", "observed", "n"]].tolist() == [0.8, 1.0, 1]
    assert bins.loc[("MFO", 0.9), ["mean_score", "observed", "n"]].tolist() == [0.9, 0.0, 1]
