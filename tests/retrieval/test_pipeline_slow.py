"""End to end on real data with the shipped model: both references, homology-aware annotation, evaluation."""
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import shared_data
from retrieval.cli import main
from retrieval.io.fasta import read_fasta
from retrieval.models.retriever import DEFAULT_MODEL

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DEFAULT_MODEL / "retriever.json").is_file(), reason="no shipped default model")]


def test_reference_annotate_and_evaluate(tmp_path, caplog):
    data = shared_data()
    runner = CliRunner()
    references = []
    for folder, labels, name in (("train_goa2019exp_7sp", "annotations_leaf_exp.tsv.gz", "exp7sp"),
                                 ("train_cafa3ids_sp2014", "annotations_sp2014_allevidence.tsv.gz", "sp2014")):
        result = runner.invoke(main, ["build-reference", str(data / folder / "sequences.fasta.gz"), str(data / folder / labels),
                                      "--exclude-tag", "cafa3_benchmark=1", "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        references += ["--reference", str(tmp_path / name)]
    subset = tmp_path / "targets.fasta"
    records = read_fasta(data / "test_cafa3_benchmark" / "targets.fasta")[:40]
    subset.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in records))
    result = runner.invoke(main, ["build-index", "examples/functions.tsv", "-o", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred.tsv"
    with caplog.at_level("WARNING"):
        result = runner.invoke(main, ["annotate", str(subset), "--index", str(tmp_path / "idx"), *references,
                                      "--top", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    # The references rebuilt here are the ones the shipped homology re-ranker was trained with, and shipped.
    assert "homology re-ranker" not in caplog.text
    from retrieval.homology import Reference
    from retrieval.homology.shipped import shipped_manifest

    assert [Reference.load(tmp_path / n).fingerprint() for n in ("exp7sp", "sp2014")] == \
        [r["fingerprint"] for r in shipped_manifest()["references"]]
    table = pd.read_csv(out, sep="\t", comment="#")
    assert table["protein_id"].nunique() == 40 and table["score"].between(0, 1).all()
    result = runner.invoke(main, ["evaluate", str(out), "--truth", str(data / "test_cafa3_benchmark" / "ground_truth_isa_propagated.tsv"),
                                  "--obo", str(data / "go" / "go-basic_2021-12-15.obo.gz")])
    assert result.exit_code == 0 and "fmax" in result.output, result.output
