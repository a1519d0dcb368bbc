"""What ships inside the package: the default references, the all-GO vectors, the selftest, fast help."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retrieval.homology.shipped import SHIPPED_REFERENCES, shipped_manifest, shipped_references
from retrieval.indexing import SHIPPED_INDEX
from retrieval.models.int8_cnn import int8_supported
from retrieval.models.retriever import DEFAULT_MODEL

pytestmark = pytest.mark.skipif(not (SHIPPED_REFERENCES / "references.json").is_file(),
                                reason="package installed without its data")


@pytest.fixture(scope="module")
def shipped_model():
    from retrieval.models.retriever import RetrievalModel

    return RetrievalModel.from_pretrained()


def test_shipped_references_are_the_ones_the_homology_reranker_read(shipped_model):
    references = shipped_references()
    trained = shipped_model.info["homology_references"]
    assert [r.fingerprint() for r in references] == [t["fingerprint"] for t in trained]
    assert [len(r.ids) for r in references] == [t["n_proteins"] for t in trained]
    assert "CC BY 4.0" in shipped_manifest()["licence"]
    # One pooled FASTA holds every protein of both, each once.
    records = references[1].records()
    assert [r.id for r in records] == list(references[1].ids) and all(r.sequence for r in records[:100])


def test_the_pooled_database_reads_the_shared_sequences_file_once(tmp_path, monkeypatch):
    import retrieval.homology.search as search
    from retrieval.homology import SearchSettings
    from retrieval.homology.reference import read_sequences

    references, read = shipped_references(), []
    monkeypatch.setattr(search, "read_sequences", lambda path: read.append(path) or read_sequences(path))
    database = search.SearchDatabase(references, "mmseqs", None, SearchSettings())
    sequences = database._pool(tmp_path / "targets.tsv")
    assert len(read) == 1 and len(sequences) >= max(len(r.ids) for r in references)
    targets = pd.read_csv(tmp_path / "targets.tsv", sep="\t")
    assert [len(targets[targets["source"] == k]) for k in (0, 1)] == [len(r.ids) for r in references]


def test_default_annotator_uses_the_shipped_references_unless_told_otherwise(shipped_model, monkeypatch):
    from retrieval.pipeline import load_references

    assert [r.fingerprint() for r in load_references("default", shipped_model)] == \
        [t["fingerprint"] for t in shipped_model.info["homology_references"]]
    assert load_references(None, shipped_model) == [] and load_references([], shipped_model) == []
    other = type(shipped_model)(shipped_model.protein_encoder, shipped_model.text_encoder, shipped_model.reranker,
                                info={"homology_references": [{"fingerprint": "0" * 16}]})
    assert load_references("default", other) == []  # its re-ranker read other references


def test_shipped_vectors_are_the_models_and_assemble_into_the_go_index(shipped_model, monkeypatch, tmp_path):
    from index.catalogue import FunctionCatalogue
    from index.ontology import Ontology
    from retrieval.indexing import DEFAULT_OBO, default_index
    from retrieval.models.scoring import index_vectors

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    text = shipped_model.text_encoder
    monkeypatch.setattr(type(text), "encode", lambda *a, **k: pytest.fail("the shipped vectors were re-embedded"))
    index = default_index(shipped_model)
    config = json.loads((SHIPPED_INDEX / "index_config.json").read_text())
    assert index.fingerprint == text.fingerprint() == config["fingerprint"]
    assert len(index.catalogue) == 43789 and index.edges is not None and len(index.edges[0]) > 70000
    monkeypatch.undo()
    # A sample of terms embedded now gives the stored vectors, to fp16 precision.
    onto = Ontology.from_obo(DEFAULT_OBO)
    sample = FunctionCatalogue(FunctionCatalogue.from_ontology(onto).table.iloc[::997])
    rows = pd.Index(index.catalogue.ids).get_indexer(sample.ids)
    v, b = text.encode(text.function_texts(sample), sample.ids, precision="bf16")
    fresh = index_vectors(v, b, text.scale)
    assert np.allclose(index.vectors(rows), fresh, atol=2e-2), np.abs(index.vectors(rows) - fresh).max()


def test_help_imports_no_heavy_library():
    code = ("import sys, retrieval.cli; heavy = {'torch', 'pandas', 'faiss', 'transformers', 'scipy'} & set(sys.modules);"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # --help lists the training commands too, so it loads their options (train.config) but no torch
    listed = ("import sys\nfrom retrieval.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(sorted({'torch', 'pandas', 'faiss', 'transformers', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", listed], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]") and "Training commands" in out


def test_selftest_reports_a_changed_score(monkeypatch):
    from retrieval import selftest

    golden = pd.read_csv(selftest.GOLDEN, sep="\t", comment="#")

    class Fake:
        homology = None
        model = type("M", (), {"fingerprint": staticmethod(lambda: "m")})()
        index = type("I", (), {"config": {"build": {"ontology_release": "r"}}})()

    changed = golden.copy()
    changed.loc[0, "score"] += 0.05
    changed = changed.drop(index=1)
    monkeypatch.setattr(selftest, "default_predictions", lambda top, precision: (changed, Fake()))
    report = selftest.run_selftest(tolerance=0.01)
    assert not report.ok and report.checked == len(golden) and len(report.mismatches) == 2
    assert "not predicted" in report.mismatches[1] and report.facts["search"] == "none"
    monkeypatch.setattr(selftest, "default_predictions", lambda top, precision: (golden, Fake()))
    assert selftest.run_selftest().ok


@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_MODEL / "retriever.json").is_file(), reason="no shipped default model")
@pytest.mark.parametrize("precision", ["fp32", "bf16", pytest.param("int8", marks=pytest.mark.skipif(
    not int8_supported(), reason="no int8 kernels in this torch"))])
def test_selftest_passes_end_to_end_in_every_precision(precision):
    """The golden file (computed in bf16) holds within selftest's tolerance of 0.01 in fp32 and with the
    int8 tower too."""
    from click.testing import CliRunner

    from retrieval.cli import main

    result = CliRunner().invoke(main, ["selftest", "--precision", precision])
    assert result.exit_code == 0, result.output
    assert "selftest passed" in result.output and "references: c8eef3e3a93bb86f, e3fb184ebcf91492" in result.output
    assert f"precision: {precision} (asked for)" in result.output and "processor: " in result.output


def test_the_default_lender_table_is_saved_once_where_the_cache_lists_it(monkeypatch, tmp_path):
    from retrieval.annotate import Annotator
    from retrieval.cache import default_entries

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    first = Annotator.from_pretrained().lending.nearest()
    saved = list((tmp_path / "lenders").iterdir())
    assert len(saved) == 1 and saved[0] in default_entries()
    monkeypatch.setattr(type(first), "lookup", lambda *a: pytest.fail("the saved table was computed again"))
    again = Annotator.from_pretrained().lending.nearest()
    np.testing.assert_array_equal(again.rows, first.rows)
