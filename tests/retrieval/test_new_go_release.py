"""A newer GO release: terms the model never saw are indexed and scored without retraining."""
import io

import numpy as np
import pandas as pd
from click.testing import CliRunner

from retrieval.cli import main

NEW_TERMS = """
[Term]
id: GO:0000005
name: heme binding
namespace: molecular_function
def: "Binding to a heme, a compound of iron complexed in a porphyrin ring." []
is_a: GO:0000002 ! binding

[Term]
id: GO:0000006
name: oxygen carrier activity
namespace: molecular_function
def: "Binding to oxygen and delivering it to the tissues." []
is_a: GO:0000005 ! heme binding
is_a: GO:0000003 ! catalytic activity
"""
PROTEINS = {"P1": "MKVLAAGIVWACDEFGHIK", "P2": "ACDEFGHIKLMNPQRSTVWY", "P3": "MMMKKKVVVLLL"}


def test_a_newer_obo_is_indexed_and_its_new_terms_scored_by_their_text(saved_pipeline, toy_obo, tmp_path):
    model, _ = saved_pipeline
    head, typedef = toy_obo.read_text().split("[Typedef]")
    newer = tmp_path / "newer.obo"
    newer.write_text(head.replace("releases/2099-01-01", "releases/2099-06-01") + NEW_TERMS + "\n[Typedef]" + typedef)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in PROTEINS.items()))
    run = CliRunner().invoke
    assert run(main, ["catalogue", str(newer), "-o", str(tmp_path / "functions.tsv")]).exit_code == 0
    built = run(main, ["build-index", str(tmp_path / "functions.tsv"), "--obo", str(newer), "--model", str(model),
                       "-o", str(tmp_path / "newer_index")])
    assert built.exit_code == 0, built.output
    out = run(main, ["annotate", str(fasta), "--model", str(model), "--index", str(tmp_path / "newer_index"),
                     "--no-reference", "--top", "100", "--include-roots"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(io.StringIO(out.stdout), sep="\t", comment="#")
    scores = table.pivot(index="protein_id", columns="term_id", values="score")
    assert {"GO:0000005", "GO:0000006"} <= set(scores.columns)
    # The leaf's score is its text's, as a free-text function with the same words would get (it has no
    # id memory: the model never saw it); its new parent scores at least as much (GO-consistent).
    from retrieval.annotate import Annotator

    annotator = Annotator.from_pretrained(model, index=tmp_path / "newer_index", reference=None)
    text = "oxygen carrier activity: Binding to oxygen and delivering it to the tissues."
    free = annotator.score(PROTEINS, [text])[text]
    np.testing.assert_allclose(scores.loc[list(PROTEINS), "GO:0000006"], free.loc[list(PROTEINS)], atol=5.1e-5)  # TSV keeps 4 decimals
    assert (scores["GO:0000005"] >= scores["GO:0000006"] - 1e-9).all()
    assert (scores["GO:0000002"] >= scores["GO:0000005"] - 1e-9).all()
