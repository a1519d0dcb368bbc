import numpy as np
import pytest

from retrieval.unseen import NearestAnnotated, lend

# rows: 0 A and 1 B annotated (MF), 2 C annotated (BP), 3 D not annotated (MF), 4 E not annotated (CC),
# 5 F not annotated (MF), pointing away from everything
VECTORS = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.9, 0.1], [1.0, 0.0], [-1.0, -1.0]], dtype=np.float32)
ANNOTATED = np.array([True, True, True, False, False, False])
ASPECTS = np.array(["MF", "MF", "BP", "MF", "CC", "MF"], dtype=object)


def test_neighbours_come_from_the_annotated_rows_of_the_same_aspect():
    nearest = NearestAnnotated(VECTORS, ANNOTATED, ASPECTS, k=2)
    rows, weights = nearest.lookup(np.array([3, 4, 5, 3]))
    cos_a, cos_b = 0.9 / np.hypot(0.9, 0.1), 0.1 / np.hypot(0.9, 0.1)  # D against A and B; C is BP
    assert sorted(rows[0].tolist()) == [0, 1]
    got = dict(zip(rows[0].tolist(), weights[0].tolist()))
    assert got == pytest.approx({0: cos_a / (cos_a + cos_b), 1: cos_b / (cos_a + cos_b)})
    assert rows[1].tolist() == [-1, -1] and not weights[1].any()  # no annotated CC row
    assert not weights[2].any()  # F is at negative cosine to both: nothing to borrow
    np.testing.assert_array_equal(rows[3], rows[0])  # found once, looked up again


def test_lend_is_the_mean_of_own_and_neighbour_scores_among_the_proteins_candidates():
    nearest = NearestAnnotated(VECTORS, ANNOTATED, ASPECTS, k=2)
    cos_a, cos_b = 0.9 / np.hypot(0.9, 0.1), 0.1 / np.hypot(0.9, 0.1)
    w_a, w_b = cos_a / (cos_a + cos_b), cos_b / (cos_a + cos_b)
    rows = np.array([[3, 0, 1, 4], [3, 1, -1, -1]])
    probs = np.array([[0.2, 0.8, 0.4, 0.3], [0.6, 0.5, 0.0, 0.0]], dtype=np.float32)
    unseen = np.array([[True, False, False, True], [True, False, False, False]])
    lend(probs, rows, unseen, nearest)
    expected = np.array([[(0.2 + w_a * 0.8 + w_b * 0.4) / 2, 0.8, 0.4, 0.3],  # E: no neighbours, unchanged
                         [(0.6 + w_b * 0.5) / 2, 0.5, 0.0, 0.0]])  # A is not protein 1's candidate: lends 0
    np.testing.assert_allclose(probs, expected, rtol=1e-6)


def test_lend_without_unseen_candidates_changes_nothing():
    nearest = NearestAnnotated(VECTORS, ANNOTATED, ASPECTS)
    probs = np.array([[0.5, 0.25]], dtype=np.float32)
    lend(probs, np.array([[0, 1]]), np.zeros((1, 2), dtype=bool), nearest)
    np.testing.assert_array_equal(probs, [[0.5, 0.25]])
