import numpy as np

from retrieval.models.alphabet import VOCAB_SIZE, encode, first_invalid, normalize


def test_golden_normalisation():
    assert normalize("mkv*") == "MKV"
    assert normalize("AUOBZJC") == "AXXXXXC"
    assert first_invalid("MK1V") == 2
    assert first_invalid("MKV") == -1
    assert first_invalid("M*K") == 1  # only a trailing stop is tolerated


def test_token_ids_are_stable():
    assert encode("ACDY").tolist() == [1, 2, 3, 20]
    assert encode("X").tolist() == [21]
    assert VOCAB_SIZE == 22
    assert encode("ACDEFGHIKLMNPQRSTVWYX").tolist() == list(np.arange(1, 22))
