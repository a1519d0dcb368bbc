import numpy as np
import pytest
import scipy.sparse as sp

from index.errors import InputError
from index.propagation import Propagator


def random_dag(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges from higher to lower index, so the graph is acyclic; several parents per node."""
    rng = np.random.default_rng(seed)
    child, parent = [], []
    for c in range(1, n):
        for p in set(rng.integers(0, c, size=rng.integers(1, 4))):
            child.append(c)
            parent.append(p)
    return np.array(child), np.array(parent)


def descendants_bruteforce(n, child, parent):
    desc = [{i} for i in range(n)]
    changed = True
    while changed:
        changed = False
        for c, p in zip(child, parent):
            if not desc[c] <= desc[p]:
                desc[p] |= desc[c]
                changed = True
    return desc


def test_ancestors_of_toy_ontology(toy_ontology):
    prop = Propagator.from_ontology(toy_ontology)
    ids = toy_ontology.live_ids
    anc = {ids[i] for i in prop.ancestors[ids.index("GO:0000004")].indices}
    assert anc == {"GO:0000004", "GO:0000002", "GO:0000003", "GO:0000001"}
    labels = sp.csr_matrix(([True], ([0], [ids.index("GO:0000012")])), shape=(1, len(ids)))
    assert {ids[i] for i in prop.propagate_labels(labels).indices} == {"GO:0000012", "GO:0000011", "GO:0000010"}


def test_max_propagate_matches_bruteforce_on_random_dags():
    for seed in range(3):
        n = 60
        child, parent = random_dag(n, seed)
        prop = Propagator(n, child, parent)
        scores = np.random.default_rng(seed).random((5, n)).astype(np.float32)
        scores[scores < 0.7] = 0
        desc = descendants_bruteforce(n, child, parent)
        expected = np.stack([[row[list(desc[t])].max() for t in range(n)] for row in scores])
        np.testing.assert_array_equal(prop.max_propagate(scores), expected)
        # Parents never score below children afterwards.
        out = prop.max_propagate(scores)
        assert (out[:, parent] >= out[:, child]).all()


def test_heights_are_longest_paths_to_a_leaf():
    for seed in range(3):
        n = 80
        child, parent = random_dag(n, seed)
        children = {t: [c for c, p in zip(child, parent) if p == t] for t in range(n)}
        height = {}
        for t in reversed(range(n)):  # a child has a higher index than its parents: visited first
            height[t] = max((height[c] + 1 for c in children[t]), default=0)
        np.testing.assert_array_equal(Propagator(n, child, parent).heights(), [height[t] for t in range(n)])
    assert Propagator(3, np.array([], dtype=int), np.array([], dtype=int)).heights().tolist() == [0, 0, 0]


def test_a_cycle_is_refused():
    with pytest.raises(InputError, match="form a cycle"):
        Propagator(3, np.array([0, 1, 2]), np.array([1, 2, 0]))


def test_sparse_pairs_equal_dense_propagation():
    n = 40
    child, parent = random_dag(n, 7)
    prop = Propagator(n, child, parent)
    rng = np.random.default_rng(1)
    items, terms = rng.integers(0, 6, 30), rng.integers(0, n, 30)
    values = rng.random(30).astype(np.float32)
    dense = np.zeros((6, n), dtype=np.float32)
    np.maximum.at(dense, (items, terms), values)
    got = prop.max_propagate_pairs(items, terms, values, n_items=6).toarray()
    np.testing.assert_allclose(got, prop.max_propagate(dense))
    cols = prop.closure_of(terms)
    assert set(np.flatnonzero(got.any(axis=0))) <= set(cols)


@pytest.mark.parametrize("block_bytes", [2e8, 64])
def test_propagated_triples_against_brute_force(monkeypatch, block_bytes):
    import index.propagation as propagation

    monkeypatch.setattr(propagation, "BLOCK_BYTES", block_bytes)  # 64 bytes: a block per item or two
    n = 50
    child, parent = random_dag(n, 3)
    prop = Propagator(n, child, parent)
    desc = descendants_bruteforce(n, child, parent)
    rng = np.random.default_rng(4)
    items, terms = rng.integers(0, 7, 40), rng.integers(0, n, 40)
    items[items == 5] = 6  # item 5 has no pairs
    values = rng.random(40).astype(np.float32)
    given = {}
    for i, t, v in zip(items, terms, values):
        given[i, t] = max(given.get((i, t), 0.0), v)
    expected = {}
    for i in range(7):
        for t in range(n):
            best = max((given.get((i, d), 0.0) for d in desc[t]), default=0.0)
            if best > 0:
                expected[i, t] = best
    rows, cols, scores = prop.max_propagate_triples(items, terms, values, n_items=7)
    got = {(int(i), int(t)): float(s) for i, t, s in zip(rows, cols, scores)}
    assert len(got) == len(rows)  # no duplicates
    assert got == pytest.approx(expected)
    assert 5 not in set(rows.tolist())


def test_max_propagate_leaves_its_input_alone():
    child, parent = random_dag(30, 5)
    prop = Propagator(30, child, parent)
    scores = np.asfortranarray(np.random.default_rng(0).random((4, 30)).astype(np.float32))
    before = scores.copy()
    prop.max_propagate(scores)
    np.testing.assert_array_equal(scores, before)
