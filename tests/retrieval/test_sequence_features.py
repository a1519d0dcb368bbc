import numpy as np
import pytest

from retrieval.sequence_features import SEQUENCE_FEATURES, sequence_features


def features(seq: str) -> dict[str, float]:
    return dict(zip(SEQUENCE_FEATURES, sequence_features([seq])[0]))


def test_length_and_composition_by_hand():
    f = features("ACDX")  # X counts in the length, not in any residue's share
    assert f["log_length"] == pytest.approx(np.log(4))
    assert [f[f"composition_{a}"] for a in "ACDE"] == pytest.approx([0.25, 0.25, 0.25, 0.0])
    assert sum(v for k, v in f.items() if k.startswith("composition_")) == pytest.approx(0.75)


@pytest.mark.parametrize("seq, segments", [
    ("L" * 20 + "D" * 30 + "L" * 20, 2),  # two hydrophobic stretches, well apart
    ("L" * 60, 1),  # one long stretch: overlapping windows count once
    ("L" * 19, 1),  # exactly one window of 19
    ("L" * 18, 0),  # too short for a window
    ("D" * 50, 0),
])
def test_transmembrane_like_segments(seq, segments):
    assert features(seq)["tm_segments"] == segments


def test_n_terminus_hydrophobicity_and_charge():
    # A signal-peptide-like start: 11 leucines (hydropathy 3.8) within the first 40 residues.
    assert features("MKK" + "L" * 11 + "D" * 50)["nterm_hydrophobicity"] == pytest.approx(3.8)
    assert features("ACDX")["nterm_hydrophobicity"] == pytest.approx((1.8 + 2.5 - 3.5 + 0.0) / 4)  # < 11 residues
    # Net charge of the first 25 residues: 5 basic, 20 neutral; later acidic residues do not count.
    assert features("K" * 3 + "R" * 2 + "A" * 20 + "E" * 30)["nterm_charge"] == pytest.approx(5 / 25)


def test_candidate_features_broadcast_sequence_features_and_need_the_sequences():
    from retrieval.candidates import candidate_features

    names = ("similarity", "log_length", "composition_A")
    u, v = np.ones((2, 2), np.float32), np.ones((2, 3, 2), np.float32)
    rows = np.array([[0, 1, -1], [0, 1, 2]])
    feats = candidate_features(names, u, v, np.zeros((2, 3)), 1.0, rows, sequences=["AAAA", "AC"])
    assert np.allclose(feats[1, :, 1], np.log(2)) and np.allclose(feats[1, :, 2], 0.5)
    assert np.allclose(feats[0, :2, 2], 1.0) and not feats[0, 2].any()  # padding stays zero
    with pytest.raises(ValueError, match="sequences"):
        candidate_features(names, u, v, np.zeros((2, 3)), 1.0, rows)
