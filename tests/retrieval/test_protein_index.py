import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from retrieval.annotate import Annotator
from retrieval.indexing import build_function_index
from retrieval.io.fasta import ProteinRecord
from retrieval.protein_index import ProteinIndex
from retrieval.cli import main

SEQUENCES = ["MKVLAAGIVWACDEFGHIK", "ACDEFGHIKLMNPQRSTVWY", "MMMKKKVVVLLL", "WWWWHHHHCCCCAAAA", "GGGSSSPPPTTT",
             "MKTAYIAKQRQISFVKSHFSRQ"]
RECORDS = [ProteinRecord(f"P{i}", s, "", {"taxon": "9606"} if i % 2 else {}) for i, s in enumerate(SEQUENCES)]
QUERIES = ["binds heme and carries oxygen", "cuts DNA at specific sites"]


@pytest.fixture
def protein_index(tiny_model):
    return ProteinIndex.build(tiny_model, RECORDS, progress=False)  # bf16, as Annotator.score


def test_search_ranks_every_protein_by_the_annotators_own_score(tiny_model, toy_ontology, protein_index):
    """Oracle: with fewer proteins than are recalled, the ranking is Annotator.score's for each text."""
    annotator = Annotator(tiny_model, build_function_index(tiny_model, FunctionCatalogue.from_ontology(toy_ontology),
                                                           progress=False, use_cache=False))
    expected = annotator.score(RECORDS, QUERIES)
    hits = protein_index.search(tiny_model, QUERIES, top=4)
    assert hits.groupby("query", sort=False).size().tolist() == [4, 4]
    for query in QUERIES:
        mine = hits[hits["query"] == query]
        oracle = expected[query].sort_values(ascending=False, kind="stable")
        assert mine["protein_id"].tolist() == oracle.index[:4].tolist()
        np.testing.assert_allclose(mine["score"], oracle.to_numpy()[:4], atol=1e-5)
        assert mine["rank"].tolist() == [1, 2, 3, 4]
        u = annotator.embed_proteins([r for r in RECORDS if r.id in set(mine["protein_id"])])
        v = annotator.embed_functions([query])[0]
        cosine = dict(zip(sorted(mine["protein_id"], key=lambda p: int(p[1:])), u @ v))
        np.testing.assert_allclose(mine["similarity"], [cosine[p] for p in mine["protein_id"]], atol=1e-5)


def test_saved_index_loads_only_with_the_model_that_made_it(tiny_model, model_copy, protein_index, tmp_path):
    protein_index.save(tmp_path / "idx")
    again = ProteinIndex.load(tmp_path / "idx", tiny_model)
    assert again.proteins.equals(protein_index.proteins) and again.proteins["taxon"].tolist()[:2] == ["", "9606"]
    pd.testing.assert_frame_equal(again.search(tiny_model, QUERIES, 3), protein_index.search(tiny_model, QUERIES, 3))
    with torch.no_grad():
        next(model_copy.protein_encoder.parameters()).add_(0.01)
    with pytest.raises(InputError, match="not by the loaded model"):
        ProteinIndex.load(tmp_path / "idx", model_copy)
    table = tmp_path / "idx" / "proteins.tsv"
    table.write_text(table.read_text().replace("P3", "P9"))
    with pytest.raises(InputError, match="does not match the index"):
        ProteinIndex.load(tmp_path / "idx", tiny_model)
    with pytest.raises(InputError, match="not a protein index"):
        ProteinIndex.load(tmp_path / "nothing", tiny_model)


def test_bad_queries_and_proteins(tiny_model, protein_index):
    for queries in ([], ["  "], ["heme", ""]):
        with pytest.raises(InputError, match="empty query"):
            protein_index.search(tiny_model, queries)
    with pytest.raises(InputError, match="appears twice"):
        ProteinIndex.build(tiny_model, RECORDS + RECORDS[:1], progress=False)
    with pytest.raises(InputError, match="no proteins"):
        ProteinIndex.build(tiny_model, [], progress=False)


def test_cli_builds_searches_and_fails_in_one_line(saved_pipeline, tiny_model, tmp_path):
    model, _ = saved_pipeline
    fasta = tmp_path / "proteome.fa"
    fasta.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in RECORDS))
    (tmp_path / "queries.txt").write_text(f"{QUERIES[1]}\n\n")
    run = CliRunner().invoke
    built = run(main, ["build-protein-index", str(fasta), "-o", str(tmp_path / "idx"), "--model", str(model),
                       "--precision", "fp32"])
    assert built.exit_code == 0, built.output
    out = run(main, ["search", str(tmp_path / "idx"), QUERIES[0], "--queries", str(tmp_path / "queries.txt"),
                     "--top", "2", "--model", str(model)])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(__import__("io").StringIO(out.stdout), sep="\t")
    assert table.columns.tolist() == ["query", "rank", "protein_id", "score", "similarity"]
    assert table["query"].tolist() == [QUERIES[0]] * 2 + [QUERIES[1]] * 2
    expected = ProteinIndex.load(tmp_path / "idx", tiny_model).search(tiny_model, QUERIES, 2)
    assert table["protein_id"].tolist() == expected["protein_id"].tolist()
    out = run(main, ["search", str(tmp_path / "idx"), QUERIES[0], "--format", "jsonl", "--top", "1", "--model", str(model)])
    assert [json.loads(line)["rank"] for line in out.stdout.splitlines()] == [1]
    other = tmp_path / "other_model"
    with torch.no_grad():
        next(tiny_model.protein_encoder.parameters()).add_(0.01)
    try:
        tiny_model.save_pretrained(other)
    finally:
        with torch.no_grad():
            next(tiny_model.protein_encoder.parameters()).sub_(0.01)
    for args, message in (([str(tmp_path / "idx"), "  "], "empty query"),
                          ([str(tmp_path / "idx")], "empty query"),
                          ([str(tmp_path / "missing"), "heme"], "not a protein index"),
                          ([str(tmp_path / "idx"), "heme", "--model", str(other)], "not by the loaded model"),
                          ([str(tmp_path / "idx"), "heme", "--top", "0"], "--top must be at least 1")):
        result = run(main, ["search", *args, *(["--model", str(model)] if "--model" not in args else [])])
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert result.exit_code == 2 and len(errors) == 1 and message in errors[0], result.output


@pytest.mark.parametrize("factory", ["HNSW32", "IVF2,Flat"])
def test_approximate_factories_search_like_flat_after_a_reload(tiny_model, protein_index, factory, tmp_path):
    """An approximate index of 6 proteins must find them all (HNSW's candidate list covers k; IVF can
    give its vectors back for the re-ranker after a reload)."""
    ProteinIndex.build(tiny_model, RECORDS, factory=factory, progress=False).save(tmp_path / "idx")
    approximate = ProteinIndex.load(tmp_path / "idx", tiny_model).search(tiny_model, QUERIES, 6)
    exact = protein_index.search(tiny_model, QUERIES, 6)
    assert approximate[["query", "protein_id"]].equals(exact[["query", "protein_id"]])
    np.testing.assert_allclose(approximate["score"], exact["score"], atol=1e-6)
    with pytest.raises(InputError, match="invalid FAISS factory"):
        ProteinIndex.build(tiny_model, RECORDS, factory="NoSuchThing", progress=False)
