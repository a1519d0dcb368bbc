import numpy as np
import pytest

from retrieval.stages.lending import NearestAnnotated, borrow, lenders_of, values_at

# Lender table: rows 0 A, 1 B and 2 C annotated, 3 D not (it never lends).
POOL = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.9, 0.1]], dtype=np.float32)
ANNOTATED = np.array([True, True, True, False])
# Rows looked up: 0 near A, 1 pointing away from everything, 2 exactly C.
QUERIES = np.array([[0.9, 0.1], [-1.0, -1.0], [3.0, 3.0]], dtype=np.float32)


def _cosines(query):
    return {i: float(POOL[i] @ query / np.linalg.norm(POOL[i]) / np.linalg.norm(query)) for i in range(3)}


def test_lenders_are_the_annotated_rows_nearest_in_meaning_weighted_by_cosine():
    nearest = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2)
    rows, weights = nearest.lookup(np.array([0, 1, 2, 0]))
    cos = _cosines(QUERIES[0])  # A 0.994, C 0.781, B 0.110; D is not annotated though nearest
    assert rows[0].tolist() == [0, 2]
    assert weights[0].tolist() == pytest.approx([cos[0] / (cos[0] + cos[2]), cos[2] / (cos[0] + cos[2])])
    assert not weights[1].any()  # negative cosine to every lender: nothing to borrow
    assert rows[2][0] == 2 and weights[2].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(rows[3], rows[0])  # found once, looked up again
    assert nearest.lookup(np.array([0]))[0].shape == (1, 2)


def test_k_is_capped_by_the_pool_and_an_empty_pool_lends_nothing():
    rows, weights = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=10).lookup(np.array([0]))
    assert sorted(rows[0].tolist()) == [0, 1, 2]
    cos = _cosines(QUERIES[0])
    assert dict(zip(rows[0].tolist(), weights[0].tolist())) == pytest.approx(
        {i: c / sum(cos.values()) for i, c in cos.items()})
    rows, weights = NearestAnnotated(QUERIES, POOL, np.zeros(4, bool)).lookup(np.array([0, 2]))
    assert rows.shape == (2, 0) and weights.shape == (2, 0)


def test_borrow_is_the_mean_of_own_and_lender_scores_of_the_same_protein():
    nearest = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2)
    cos = _cosines(QUERIES[0])
    w_a, w_c = cos[0] / (cos[0] + cos[2]), cos[2] / (cos[0] + cos[2])
    rows = np.array([[0, 7, 1], [0, -1, -1]])  # candidate rows of another table; 0 and 1 unseen
    probs = np.array([[0.2, 0.8, 0.3], [0.6, 0.0, 0.0]], dtype=np.float32)
    unseen = np.array([[True, False, True], [True, False, False]])
    lender_rows = np.array([[2, 0, -1], [2, -1, -1]])  # protein 1's hits do not transfer A
    lender_probs = np.array([[0.4, 0.9, 0.0], [0.5, 0.0, 0.0]], dtype=np.float32)
    borrow(probs, rows, unseen, nearest, lender_rows, lender_probs)
    expected = [[(0.2 + w_a * 0.9 + w_c * 0.4) / 2, 0.8, 0.3],  # query 1 has no lender: unchanged
                [(0.6 + w_c * 0.5) / 2, 0.0, 0.0]]
    np.testing.assert_allclose(probs, expected, rtol=1e-6)


def test_borrow_without_unseen_candidates_changes_nothing():
    nearest = NearestAnnotated(QUERIES, POOL, ANNOTATED)
    probs = np.array([[0.5, 0.25]], dtype=np.float32)
    borrow(probs, np.array([[0, 1]]), np.zeros((1, 2), dtype=bool), nearest, np.array([[0]]), np.array([[1.0]]))
    np.testing.assert_array_equal(probs, [[0.5, 0.25]])


def test_values_at_against_a_loop():
    rng = np.random.default_rng(0)
    rows = np.where(rng.random((6, 8)) < 0.2, -1, rng.integers(0, 30, (6, 8)))
    values = rng.random((6, 8)).astype(np.float32)
    proteins = rng.integers(0, 6, 40)
    wanted = np.where(rng.random((40, 5)) < 0.1, -1, rng.integers(0, 30, (40, 5)))
    got = values_at(rows, values, proteins, wanted, 30)
    for i, p in enumerate(proteins):
        for j, w in enumerate(wanted[i]):
            hits = [values[p, k] for k in range(8) if rows[p, k] == w and w >= 0]
            assert got[i, j] == (hits[0] if hits else 0.0)
    assert values_at(np.full((2, 3), -1), np.zeros((2, 3)), np.array([0]), np.array([[1]]), 5).tolist() == [[0.0]]


def test_lenders_of_lists_each_proteins_lenders_once():
    nearest = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2)
    rows = np.array([[0, 2, 1], [1, 0, -1], [2, -1, -1]])
    unseen = np.array([[True, True, True], [True, False, False], [False, False, False]])
    got = lenders_of(rows, unseen, nearest)
    # protein 0: query 0 lends from A, C; query 2 from C, then A or B; query 1 has none. Protein 1: none.
    expected_0 = {0, 2} | set(nearest.lookup(np.array([2]))[0][0].tolist())
    assert got.shape[0] == 3 and set(got[0][got[0] >= 0].tolist()) == expected_0
    assert (got[0][got[0] >= 0].size == len(expected_0)) and not (got[1:] >= 0).any()
    assert lenders_of(rows, np.zeros_like(unseen), nearest).shape == (3, 0)


def test_a_saved_table_reloads_and_a_bad_file_is_found_again(tmp_path):
    nearest = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2)
    nearest.lookup(np.array([0, 2]))
    nearest.save(tmp_path / "t.npz")
    again = NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2)
    assert again.load(tmp_path / "t.npz")
    for rows in (np.array([0, 2]), np.array([1])):  # row 1 was not saved: found now
        np.testing.assert_array_equal(again.lookup(rows)[0], NearestAnnotated(QUERIES, POOL, ANNOTATED, k=2).lookup(rows)[0])
    assert not NearestAnnotated(QUERIES, POOL, ANNOTATED, k=3).load(tmp_path / "t.npz")  # another k
    (tmp_path / "bad.npz").write_bytes(b"not a table")
    assert not again.load(tmp_path / "bad.npz") and not again.load(tmp_path / "missing.npz")
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".*tmp*"))
