import json

import pandas as pd
import pytest
from click.testing import CliRunner

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from retrieval.annotate import AnnotateConfig, Annotator
from retrieval.cli import main
from retrieval.indexing import build_function_index

PROTEINS = {"P1": "MKVLAAGIVWACDEFGHIK", "P2": "ACDEFGHIKLMNPQRSTVWY", "P3": "MMMKKKVVVLLL"}


@pytest.fixture(scope="module")
def toy_index(tiny_model, toy_ontology):
    return build_function_index(tiny_model, FunctionCatalogue.from_ontology(toy_ontology), ontology=toy_ontology,
                                precision="fp32", progress=False)


@pytest.fixture(scope="module")
def annotator(tiny_model, toy_index):
    return Annotator(tiny_model, toy_index)


def test_annotate_returns_ranked_top_n(annotator):
    table = annotator.annotate(PROTEINS, top=3, precision="fp32")
    assert table.columns.tolist() == ["protein_id", "term_id", "score", "aspect", "name"]
    assert table.groupby("protein_id").size().to_dict() == {"P1": 3, "P2": 3, "P3": 3}
    for _, group in table.groupby("protein_id"):
        assert group["score"].is_monotonic_decreasing
    assert table["score"].between(0, 1).all()


def test_scores_are_consistent_with_the_ontology(annotator, toy_ontology):
    table = annotator.annotate(PROTEINS, top=100, precision="fp32", include_roots=True).set_index(
        ["protein_id", "term_id"])["score"]
    ids = toy_ontology.live_ids
    for child, parent in zip(*toy_ontology.edges):
        for protein in PROTEINS:
            assert table[(protein, ids[parent])] >= table[(protein, ids[child])] - 1e-7


def test_pipeline_probability_equals_direct_pair_scoring(annotator):
    """Recall + re-rank (without propagation) gives the same probability as scoring the pair directly."""
    pipeline = annotator.annotate(PROTEINS, top=100, recall=100, propagate=False, precision="fp32", include_roots=True)
    direct = annotator.score(PROTEINS, annotator.index.catalogue)
    for row in pipeline.itertuples():
        assert row.score == pytest.approx(direct.loc[row.protein_id, row.term_id], abs=2e-3)


def test_roots_are_left_out_unless_asked(annotator):
    roots = {"GO:0000001", "GO:0000010"}
    assert not roots & set(annotator.annotate(PROTEINS, top=100)["term_id"])
    assert roots <= set(annotator.annotate(PROTEINS, top=100, include_roots=True)["term_id"])


def test_filters_aspect_per_aspect_and_min_score(annotator):
    only_bp = annotator.annotate(PROTEINS, top=10, aspect="BPO")
    assert set(only_bp["aspect"]) == {"BPO"}
    per = annotator.annotate(PROTEINS, top=1, per_aspect=True)
    assert per.groupby(["protein_id", "aspect"]).size().max() == 1 and per["aspect"].nunique() == 2
    high = annotator.annotate(PROTEINS, top=10, min_score=0.5)
    assert (high["score"] >= 0.5).all()


@pytest.mark.parametrize("per_aspect", [False, True])
def test_top_rows_match_a_pandas_sort_and_groupby(annotator, per_aspect):
    """Oracle: the rows ranked and cut by pandas; scores with ties, so the catalogue row breaks them."""
    import numpy as np


    rng = np.random.default_rng(3)
    selection = annotator.selection
    n_cols = len(selection.ids)
    pairs = np.array([(i, c) for i in range(3) for c in rng.permutation(n_cols)[: n_cols // 2]])
    items, cols = pairs[:, 0], pairs[:, 1]
    values = rng.choice([0.9, 0.5, 0.5, 0.2, 0.005], size=len(items)).astype(np.float32)
    config = AnnotateConfig(top=3, per_aspect=per_aspect, include_roots=True, min_score=0.01)
    got, _, _ = selection.select([f"Q{i}" for i in range(3)], items, cols, values, config)

    frame = pd.DataFrame({"item": items, "col": cols, "score": values, "aspect": selection.aspects[cols]})
    frame = frame[frame["score"] >= 0.01].sort_values(["item", "score", "col"], ascending=[True, False, True])
    frame = frame[frame.groupby(["item", "aspect"] if per_aspect else ["item"]).cumcount() < 3]
    assert got["protein_id"].tolist() == [f"Q{i}" for i in frame["item"]]
    assert got["term_id"].tolist() == selection.ids[frame["col"]].tolist()
    assert got["score"].tolist() == pytest.approx(frame["score"].tolist())


def _reranker_on_concatenation(model, u, v, b):
    """The two-tower re-ranker written out in float64: its first layer on [u, v, |u - v|, u * v] and
    the normalised pair features (similarity, term bias), then the head."""
    import torch

    rr, scale = model.reranker, model.text_encoder.scale
    u, v, b = (torch.as_tensor(x, dtype=torch.float64) for x in (u, v, b))
    feats = torch.stack([scale * (u * v).sum(-1), b], dim=-1)
    norm = rr.feature_norm
    feats = (feats - norm.running_mean.double()) / torch.sqrt(norm.running_var.double() + norm.eps)
    weight = torch.cat([rr.w_u.weight, rr.w_v.weight, rr.w_diff.weight, rr.w_prod.weight], dim=1).double()
    x = torch.cat([u, v, (u - v).abs(), u * v], dim=-1) @ weight.T + rr.w_u.bias.double() \
        + feats @ rr.w_feat.weight.double().T
    gelu, first, last = torch.nn.functional.gelu, rr.head[2], rr.head[4]
    x = gelu(gelu(x) @ first.weight.double().T + first.bias.double()) @ last.weight.double().T + last.bias.double()
    return torch.sigmoid(x[..., 0]).detach().numpy()


def test_free_text_functions_are_scored_as_the_reranker_on_their_vectors(annotator, tiny_model):
    import numpy as np

    texts = ["glows in the dark", "kinase activity"]
    scores = annotator.score(PROTEINS, texts, precision="fp32")
    u = tiny_model.protein_encoder.encode(list(PROTEINS.values()), precision="fp32")
    v, b = tiny_model.text_encoder.encode(texts, precision="fp32")
    pairs = (3, 2, u.shape[1])
    expected = _reranker_on_concatenation(tiny_model, np.broadcast_to(u[:, None, :], pairs).copy(),
                                          np.broadcast_to(v[None, :, :], pairs).copy(), np.broadcast_to(b, (3, 2)).copy())
    assert scores.index.tolist() == list(PROTEINS) and scores.columns.tolist() == texts
    np.testing.assert_allclose(scores.to_numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(annotator.embed_functions(texts), tiny_model.text_encoder.encode(texts)[0], atol=1e-6)
    embedded = annotator.embed_proteins(PROTEINS)
    np.testing.assert_allclose(embedded, tiny_model.protein_encoder.encode(list(PROTEINS.values())), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1.0, atol=1e-5)


def test_streaming_chunks(annotator):
    chunks = list(annotator.iter_annotate(PROTEINS, AnnotateConfig(top=2, batch_size=2)))
    assert len(chunks) == 2 and sum(c["protein_id"].nunique() for c in chunks) == 3


@pytest.mark.parametrize("options, message", [
    ({"top": 0}, "--top must be at least 1"), ({"recall": -1}, "--recall must be at least 1"),
    ({"aspect": "XYZ"}, "--aspect must be one of"), ({"min_score": 2.0}, "--min-score must be in"),
    ({"taxon": "human"}, "--taxon must be an NCBI taxon id"),
])
def test_bad_options(annotator, options, message):
    with pytest.raises(InputError, match=message):
        annotator.annotate(PROTEINS, **options)


def test_bad_sequences(annotator):
    with pytest.raises(InputError, match="invalid residue '1'"):
        annotator.annotate({"x": "MK1"})


def test_index_from_another_model_is_refused(model_copy, toy_index):
    import torch

    with torch.no_grad():
        model_copy.text_encoder.default_bias.add_(1.0)
    with pytest.raises(InputError, match="rebuild it with"):
        Annotator(model_copy, toy_index)


@pytest.fixture(scope="module")
def saved(tiny_model, toy_ontology, toy_obo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    tiny_model.save_pretrained(folder / "model")
    FunctionCatalogue.from_ontology(toy_ontology).to_tsv(folder / "functions.tsv")
    result = CliRunner().invoke(main, ["build-index", str(folder / "functions.tsv"), "-o", str(folder / "index"),
                                       "--model", str(folder / "model"), "--obo", str(toy_obo)])
    assert result.exit_code == 0, result.output
    (folder / "in.fa").write_text("".join(f">{k} taxon=9606\n{v}\n" for k, v in PROTEINS.items()))
    return folder


def annotate_cli(saved, *extra):
    return CliRunner().invoke(main, ["annotate", str(saved / "in.fa"), "--model", str(saved / "model"),
                                     "--index", str(saved / "index"), *map(str, extra)])


@pytest.mark.parametrize("fmt", ["tsv", "cafa", "gaf", "jsonl"])
def test_cli_formats(saved, fmt, tmp_path):
    out = tmp_path / f"out.{fmt}"
    result = annotate_cli(saved, "--top", 2, "--format", fmt, "-o", out, *(["--db", "TestDB"] if fmt == "gaf" else []))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if fmt == "tsv":
        table = pd.read_csv(out, sep="\t", comment="#")
        assert table.columns[:3].tolist() == ["protein_id", "term_id", "score"] and len(table) == 6
        assert text.startswith("# prot-retrieve: ") and "# model: " in text and "# ontology: " in text
    elif fmt == "cafa":
        assert text.startswith("AUTHOR") and text.rstrip().endswith("END")
    elif fmt == "gaf":
        rows = [line.split("\t") for line in text.splitlines() if not line.startswith("!")]
        assert text.startswith("!gaf-version: 2.2") and all(len(r) == 17 for r in rows)
        assert all(r[6] == "IEA" and r[12] == "taxon:9606" and r[8] in "FPC" for r in rows)
    else:
        lines = [json.loads(line) for line in text.splitlines()]
        assert [line["protein_id"] for line in lines] == ["P1", "P2", "P3"]
        assert all(line["provenance"]["model"] == lines[0]["provenance"]["model"] != "" for line in lines)


def test_cli_stdout_is_clean_and_summary_goes_to_stderr(saved):
    result = CliRunner().invoke(main, ["annotate", str(saved / "in.fa"), "--model", str(saved / "model"),
                                       "--index", str(saved / "index"), "--top", "1"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith("# ")][0] == "protein_id\tterm_id\tscore\taspect\tname"
    assert "annotated 3 proteins" in result.stderr and "annotated" not in result.stdout


def test_cli_errors(saved, tmp_path):
    (tmp_path / "empty.fa").write_text("")
    cases = [
        (["annotate", str(tmp_path / "empty.fa")], "no FASTA records found"),
        (["annotate", str(saved / "in.fa"), "--top", "0"], "--top must be at least 1"),
        (["annotate", str(saved / "in.fa"), "-o", str(tmp_path / "missing" / "x.tsv")], "cannot write here"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, [*args, "--model", str(saved / "model"), "--index", str(saved / "index")])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "missing").exists()


def test_cli_no_partial_file_on_failure(saved, tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nMKV\n" * 1 + ">b\nMK9\n")
    out = tmp_path / "out.tsv"
    result = CliRunner().invoke(main, ["annotate", str(bad), "--model", str(saved / "model"),
                                       "--index", str(saved / "index"), "-o", str(out)])
    assert result.exit_code == 2 and not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_cli_searches_references_by_embedding_on_request(saved, toy_obo, tmp_path, monkeypatch):
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ref.fa").write_text(">R1\nMKVLAAGIVWACDEFGHIK\n>R2\nMMMKKKVVVLLLAA\n")
    (tmp_path / "ref.tsv").write_text("EntryID\tterm\nR1\tGO:0000004\nR2\tGO:0000003\n")
    result = CliRunner().invoke(main, ["build-reference", str(tmp_path / "ref.fa"), str(tmp_path / "ref.tsv"),
                                       "-o", str(tmp_path / "ref"), "--obo", str(toy_obo)])
    assert result.exit_code == 0, result.output
    result = annotate_cli(saved, "--reference", tmp_path / "ref", "--search", "embedding", "--top", 3)
    assert result.exit_code == 0, result.output
    assert "nor DIAMOND found" not in result.output  # asked for, not a fallback: no warning
    assert len(list((tmp_path / "cache" / "embeddings").glob("*.npz"))) == 1  # the reference was embedded
    assert len([line for line in result.stdout.splitlines() if not line.startswith("#")]) == 1 + 3 * len(PROTEINS)
    result = annotate_cli(saved, "--reference", tmp_path / "ref", "--search", "blast")
    assert result.exit_code == 2 and "Invalid value for '--search'" in result.output


def test_specific_reports_no_term_with_a_reported_descendant(annotator):
    """Oracle: walk each protein's full ranking by hand and take terms that are not an ancestor of one
    already taken, replacing the taken ancestors of each new one."""
    full = annotator.annotate(PROTEINS, top=1000, include_roots=True)
    specific = annotator.annotate(PROTEINS, top=2, include_roots=True, specific=True)
    ancestors = annotator.selection.propagator.ancestors
    row = {t: i for i, t in enumerate(annotator.index.catalogue.ids)}

    def above(term):  # the term and its ancestors
        r = row[term]
        return {annotator.index.catalogue.ids[c] for c in ancestors.indices[ancestors.indptr[r]: ancestors.indptr[r + 1]]}

    for protein, ranked in full.groupby("protein_id", sort=False):
        chosen, covered = [], set()
        for term in ranked["term_id"]:
            if term in covered:
                continue
            chosen = [c for c in chosen if c not in above(term)] + [term]
            covered |= above(term)
            if len(chosen) == 2:
                break
        got = specific[specific["protein_id"] == protein]
        assert set(got["term_id"]) == set(chosen)
        assert got["score"].is_monotonic_decreasing
        for a in got["term_id"]:
            assert not any(a in above(b) for b in got["term_id"] if b != a)  # no ancestor of another


def test_specific_per_aspect_keeps_the_top_of_each_aspect(annotator):
    table = annotator.annotate(PROTEINS, top=1, per_aspect=True, specific=True)
    assert table.groupby(["protein_id", "aspect"]).size().max() == 1
    assert set(table["aspect"]) == {"MFO", "BPO"}
