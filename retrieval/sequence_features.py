"""Whole-sequence signals for the re-ranker, which a convolutional tower with max-pooling cannot compute.

Amino-acid composition alone predicts much of a protein's subcellular location (the classic
composition-based predictors), and counts are beyond a max-pool: how many hydrophobic,
transmembrane-like segments a protein has, and whether its N-terminus looks like a signal peptide
(a hydrophobic core) or a mitochondrial / chloroplast transit peptide (basic, no acidic residues).
Each protein gets one vector, shown to the re-ranker beside every candidate term.
"""
from __future__ import annotations

import numpy as np

from retrieval.alphabet import STANDARD, VOCAB, encode

#: Kyte & Doolittle (1982) hydropathy; X counts as 0.
KYTE_DOOLITTLE = dict(zip(STANDARD, (1.8, 2.5, -3.5, -3.5, 2.8, -0.4, -3.2, 4.5, -3.9, 3.8, 1.9, -3.5, -1.6,
                                        -3.5, -4.5, -0.8, -0.7, 4.2, -0.9, -1.3)))
TM_WINDOW, TM_THRESHOLD = 19, 1.6  # a window of 19 residues with mean hydropathy above 1.6: a TM helix
SIGNAL_REGION, SIGNAL_WINDOW = 40, 11  # the hydrophobic core of a signal peptide lies in the first ~40
TRANSIT_REGION = 25  # residues whose net charge marks a transit peptide

#: Names of the features, in the column order of :func:`sequence_features` (re-ranker pair features).
SEQUENCE_FEATURES = ("log_length", *(f"composition_{a}" for a in STANDARD), "tm_segments",
                     "nterm_hydrophobicity", "nterm_charge")

# Indexed by alphabet token id (0 pad, 1..21 = VOCAB).
_HYDROPATHY = np.array([0.0, *(KYTE_DOOLITTLE.get(a, 0.0) for a in VOCAB)])
_CHARGE = np.array([0.0, *({"K": 1.0, "R": 1.0, "D": -1.0, "E": -1.0}.get(a, 0.0) for a in VOCAB)])


def sequence_features(sequences: list[str]) -> np.ndarray:
    """(N, len(SEQUENCE_FEATURES)) float32 features of normalised sequences (retrieval.alphabet)."""
    out = np.zeros((len(sequences), len(SEQUENCE_FEATURES)), dtype=np.float32)
    for i, seq in enumerate(sequences):
        codes = encode(seq)
        n = len(codes)
        hydro = _HYDROPATHY[codes]
        out[i, 0] = np.log(n)
        out[i, 1:21] = np.bincount(codes, minlength=len(VOCAB) + 1)[1: len(STANDARD) + 1] / n
        out[i, 21] = _count_runs(_window_means(hydro, TM_WINDOW) > TM_THRESHOLD)
        head = _window_means(hydro[:SIGNAL_REGION], SIGNAL_WINDOW)
        out[i, 22] = head.max() if len(head) else hydro[:SIGNAL_REGION].mean()
        out[i, 23] = _CHARGE[codes[:TRANSIT_REGION]].mean()
    return out


def _window_means(values: np.ndarray, width: int) -> np.ndarray:
    """Means of every window of ``width`` consecutive values (empty when there are fewer)."""
    if len(values) < width:
        return np.zeros(0)
    sums = np.cumsum(np.r_[0.0, values])
    return (sums[width:] - sums[:-width]) / width


def _count_runs(flags: np.ndarray) -> int:
    """Number of runs of consecutive True values (overlapping windows of one segment count once)."""
    return int(np.count_nonzero(flags[1:] & ~flags[:-1]) + (flags[:1].sum() if len(flags) else 0))
