"""The protein-tower vector store: computed once per sequence, read back exactly, never fatal."""
import numpy as np
import pytest

from retrieval.embedding_store import EmbeddingStore


def vectors(sequences):
    """A stand-in for a tower: (length, first residue code, last residue code)."""
    return np.array([[len(s), ord(s[0]), ord(s[-1])] for s in sequences], dtype=np.float32)


def counting():
    asked = []

    def compute(todo):
        asked.append(list(todo))
        return vectors(todo)

    return asked, compute


def test_only_unseen_sequences_are_computed_and_a_new_process_reads_them(tmp_path):
    asked, compute = counting()
    store = EmbeddingStore(tmp_path, "tower A|bf16", dim=3)
    np.testing.assert_array_equal(store.get_or_compute(["MKV", "AC", "MKV"], compute), vectors(["MKV", "AC", "MKV"]))
    again = EmbeddingStore(tmp_path, "tower A|bf16", dim=3)
    np.testing.assert_array_equal(again.get_or_compute(["WWW", "AC", "MKV"], compute), vectors(["WWW", "AC", "MKV"]))
    assert asked == [["MKV", "AC", "MKV"], ["WWW"]] and len(again) == 3
    EmbeddingStore(tmp_path, "tower B|bf16", dim=3).get_or_compute(["AC"], compute)  # another tower: its own file
    assert len(asked) == 3 and len(list(tmp_path.glob("*.sqlite"))) == 2


def test_many_sequences_cross_the_query_chunks(tmp_path):
    sequences = ["M" + "ACDEFGHIKL"[i % 10] * (1 + i // 10) for i in range(1234)]
    store = EmbeddingStore(tmp_path, "s", dim=3)
    store.get_or_compute(sequences, vectors)
    asked, compute = counting()
    np.testing.assert_array_equal(store.get_or_compute(sequences[::-1], compute), vectors(sequences[::-1]))
    assert asked == []


def test_a_corrupt_store_is_reported_and_the_vectors_computed(tmp_path, caplog):
    store = EmbeddingStore(tmp_path, "s", dim=3)
    store.get_or_compute(["MKV"], vectors)
    store._db.close()
    store.path.write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
    asked, compute = counting()
    out = EmbeddingStore(tmp_path, "s", dim=3).get_or_compute(["MKV", "AC"], compute)
    np.testing.assert_array_equal(out, vectors(["MKV", "AC"]))
    assert asked == [["MKV", "AC"]] and "embedding cache not usable" in caplog.text


def test_an_unwritable_folder_only_costs_the_cache(tmp_path, caplog):
    (tmp_path / "file").write_text("x")
    out = EmbeddingStore(tmp_path / "file" / "below", "s", dim=3).get_or_compute(["MKV"], vectors)
    np.testing.assert_array_equal(out, vectors(["MKV"]))
    assert "embedding cache not usable" in caplog.text


@pytest.mark.parametrize("cached", [True, False])
def test_annotating_again_skips_the_protein_tower(tiny_model, toy_ontology, monkeypatch, cached):
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index

    index = build_function_index(tiny_model, FunctionCatalogue.from_ontology(toy_ontology), ontology=toy_ontology,
                                 precision="fp32", progress=False)
    proteins = {"P1": "MKVLAAGIVWACDEFGHIKMNW", "P2": "ACDEFGHIKLMNPQRSTVWYYY"}
    first = Annotator(tiny_model, index).annotate(proteins, top=5, precision="fp32", embedding_cache=cached)
    calls = []
    real = type(tiny_model.protein_encoder).encode
    monkeypatch.setattr(type(tiny_model.protein_encoder), "encode",
                        lambda self, seqs, **kw: calls.append(len(seqs)) or real(self, seqs, **kw))
    second = Annotator(tiny_model, index).annotate(proteins, top=5, precision="fp32", embedding_cache=cached)
    assert calls == ([] if cached else [2])
    assert first.equals(second)
