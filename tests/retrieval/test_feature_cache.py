import numpy as np

from retrieval.feature_cache import FeatureCache


def vectors(texts):
    """A deterministic stand-in for an encoder: (length, first letter code)."""
    return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def test_get_or_compute_computes_only_what_is_missing_and_survives_a_reload(tmp_path):
    asked = []

    def compute(todo):
        asked.append(list(todo))
        return vectors(todo)

    cache = FeatureCache(tmp_path, "setting A")
    np.testing.assert_array_equal(cache.get_or_compute(["ab", "c"], compute), vectors(["ab", "c"]))
    reloaded = FeatureCache(tmp_path, "setting A")
    out = reloaded.get_or_compute(["xyz", "c", "ab"], compute)
    np.testing.assert_array_equal(out, vectors(["xyz", "c", "ab"]))
    assert asked == [["ab", "c"], ["xyz"]]
    assert reloaded.get_or_compute(["ab", "xyz"], compute).shape == (2, 2) and len(asked) == 2
    FeatureCache(tmp_path, "setting B").get_or_compute(["ab"], compute)  # another setting: its own file
    assert len(asked) == 3 and len(list(tmp_path.glob("*.npz"))) == 2


def test_a_text_given_twice_is_stored_once_and_rows_stay_aligned(tmp_path):
    cache = FeatureCache(tmp_path, "s")
    cache.get_or_compute(["dup", "one", "dup"], vectors)
    cache.get_or_compute(["four", "dup"], vectors)  # added after the duplicate: must not shift
    reloaded = FeatureCache(tmp_path, "s")
    found, got = reloaded.lookup(["four", "one", "dup", "absent"])
    assert found.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(got, vectors(["four", "one", "dup"]))


def test_nothing_to_embed_gives_an_empty_array(tmp_path):
    out = FeatureCache(tmp_path, "s").get_or_compute([], lambda todo: np.zeros((0, 3), np.float32))
    assert out.shape == (0, 3)
