import numpy as np
import pandas as pd
import pytest

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from index.vector_index import FunctionIndex


def catalogue(n: int) -> FunctionCatalogue:
    return FunctionCatalogue(pd.DataFrame({"term_id": [f"f{i}" for i in range(n)], "name": [f"n{i}" for i in range(n)],
                                           "description": "", "aspect": ""}))


def synthetic(n=2000, d=24, q=50, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((q, d)).astype(np.float32)


@pytest.mark.parametrize("k", [10, 300, 5000])  # FAISS's own search; one product and a top-k; k > catalogue
def test_exact_search_matches_bruteforce(k, tmp_path):
    xb, xq = synthetic()
    index = FunctionIndex.build(xb, catalogue(len(xb)), fingerprint="abc")
    brute = xq.astype(np.float64) @ xb.T.astype(np.float64)
    expected = np.argsort(-brute, axis=1, kind="stable")[:, :k]
    for searched in (index, FunctionIndex.load(index.save(tmp_path / "i"))):
        scores, rows = searched.search(xq, k)
        assert rows.shape == (len(xq), min(k, len(xb))) and rows.dtype == np.int64
        np.testing.assert_allclose(scores, np.take_along_axis(brute, rows, 1), rtol=1e-4, atol=1e-4)
        if k < len(xb):
            np.testing.assert_array_equal(rows, expected)
        else:  # every row, best first (float32 near-ties may swap neighbours)
            assert (np.sort(rows, axis=1) == np.arange(len(xb))).all() and (np.diff(scores, axis=1) <= 1e-4).all()
    np.testing.assert_allclose(index.vectors(rows[:2]), xb[rows[:2]])


@pytest.mark.parametrize("factory", ["HNSW32", "IVF16,Flat"])
def test_approximate_indexes_keep_recall(factory):
    xb, xq = synthetic()
    exact = np.argsort(-(xq @ xb.T), axis=1)[:, :10]
    _, rows = FunctionIndex.build(xb, catalogue(len(xb)), "abc", factory=factory).search(xq, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall >= 0.9


def test_save_load_and_fingerprint_refusal(tmp_path):
    xb, xq = synthetic(100)
    built = FunctionIndex.build(xb, catalogue(100), "model-A", edges=(np.array([1, 2]), np.array([0, 0])))
    built.save(tmp_path / "idx")
    loaded = FunctionIndex.load(tmp_path / "idx", expected_fingerprint="model-A")
    np.testing.assert_array_equal(loaded.search(xq, 5)[1], built.search(xq, 5)[1])
    assert [e.tolist() for e in loaded.edges] == [[1, 2], [0, 0]]
    with pytest.raises(InputError, match="built by model model-A, not by the loaded model \\(model-B\\)"):
        FunctionIndex.load(tmp_path / "idx", expected_fingerprint="model-B")


def test_rebuilding_is_deterministic(tmp_path):
    xb, _ = synthetic(200)
    for name in ("a", "b"):
        FunctionIndex.build(xb, catalogue(200), "m").save(tmp_path / name)
    assert (tmp_path / "a" / "index.faiss").read_bytes() == (tmp_path / "b" / "index.faiss").read_bytes()


def test_corrupt_or_incomplete_folders(tmp_path):
    xb, _ = synthetic(20)
    FunctionIndex.build(xb, catalogue(20), "m").save(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").write_bytes(b"not faiss")
    with pytest.raises(InputError, match="corrupt FAISS index"):
        FunctionIndex.load(tmp_path / "idx")
    (tmp_path / "idx" / "terms.tsv").unlink()
    with pytest.raises(InputError, match="missing terms.tsv"):
        FunctionIndex.load(tmp_path / "idx")
    with pytest.raises(InputError, match="expected 5 vectors"):
        FunctionIndex.build(xb, catalogue(5), "m")
    with pytest.raises(InputError, match="invalid FAISS factory"):
        FunctionIndex.build(xb, catalogue(20), "m", factory="Bogus99")


def test_meaning_vectors_round_trip_8_bit_and_are_checked(tmp_path):
    xb, _ = synthetic(50)
    meaning = synthetic(50, d=16, seed=3)[0]
    meaning /= np.linalg.norm(meaning, axis=1, keepdims=True)
    built = FunctionIndex.build(xb, catalogue(50), "m", meaning=meaning)
    assert np.abs(built.meaning - meaning).max() < 2 / 255  # 8 bits over each dimension's range
    cosine = (built.meaning * meaning).sum(1) / np.linalg.norm(built.meaning, axis=1)
    assert cosine.min() > 0.999
    loaded = FunctionIndex.load(built.save(tmp_path / "idx"))
    np.testing.assert_array_equal(loaded.meaning, built.meaning)
    np.testing.assert_array_equal(loaded.meaning, loaded.meaning_index.reconstruct_n(0, 50))  # decoded once, kept
    built.save(tmp_path / "again")
    assert (tmp_path / "idx" / "meaning.faiss").read_bytes() == (tmp_path / "again" / "meaning.faiss").read_bytes()
    assert FunctionIndex.build(xb, catalogue(50), "m").meaning is None  # an index without them
    other = FunctionIndex.build(xb, catalogue(50), "m", meaning=meaning[::-1].copy())
    import faiss

    faiss.write_index(other.meaning_index, str(tmp_path / "idx" / "meaning.faiss"))
    with pytest.raises(InputError, match="does not match the meaning vectors"):
        FunctionIndex.load(tmp_path / "idx")
    (tmp_path / "idx" / "meaning.faiss").unlink()
    with pytest.raises(InputError, match="meaning.faiss is missing"):
        FunctionIndex.load(tmp_path / "idx")
    with pytest.raises(InputError, match="49 meaning vectors for 50 functions"):
        FunctionIndex(built.index, catalogue(50), built.config, meaning=FunctionIndex.build(
            xb[:49], catalogue(49), "m", meaning=meaning[:49]).meaning_index)
