"""Agreement with the community reference evaluator (cafaeval, a test-only oracle) on real CAFA3 data."""
import gzip
import shutil

import pandas as pd
import pytest

from conftest import shared_data
from retrieval.cli import main as cli

pytestmark = pytest.mark.slow


def test_evaluate_agrees_with_cafaeval_on_cafa3_nk(tmp_path):
    cafaeval = pytest.importorskip("cafaeval.evaluation")
    from click.testing import CliRunner

    data = shared_data()
    bench = data / "test_cafa3_benchmark"
    obo_gz = data / "go" / "go-basic_2021-12-15.obo.gz"
    train = data / "train_goa2019exp_7sp"
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    runner = CliRunner()
    result = runner.invoke(cli, ["naive", str(bench / "targets.fasta"), "--train-fasta", str(train / "sequences.fasta.gz"),
                                 "--train-annotations", str(train / "annotations_leaf_exp.tsv.gz"), "--obo", str(obo_gz),
                                 "--exclude-tag", "cafa3_benchmark=1", "--format", "cafa", "-o", str(pred_dir / "naive.txt")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["ia", str(train / "annotations_leaf_exp.tsv.gz"), "--obo", str(obo_gz),
                                 "-o", str(tmp_path / "ia.tsv")])
    assert result.exit_code == 0, result.output
    ours = runner.invoke(cli, ["evaluate", str(pred_dir / "naive.txt"), "--truth", str(bench / "ground_truth_isa_propagated.tsv"),
                               "--obo", str(obo_gz), "--ia", str(tmp_path / "ia.tsv"), "--targets", str(bench / "all_type1.txt"),
                               "--json", str(tmp_path / "ours.json")])
    assert ours.exit_code == 0, ours.output
    ours = pd.read_json(tmp_path / "ours.json")["results"].apply(pd.Series).set_index("aspect")

    # cafaeval reads a plain OBO and a header-less truth file restricted to the targets.
    obo = tmp_path / "go.obo"
    with gzip.open(obo_gz, "rb") as src, open(obo, "wb") as dst:
        shutil.copyfileobj(src, dst)
    nk = set((bench / "all_type1.txt").read_text().split())
    truth = pd.read_csv(bench / "ground_truth_isa_propagated.tsv", sep="\t")
    truth[truth["EntryID"].isin(nk)][["EntryID", "term"]].to_csv(tmp_path / "gt.tsv", sep="\t", header=False, index=False)
    df, best = cafaeval.cafa_eval(str(obo), str(pred_dir), str(tmp_path / "gt.tsv"), ia=str(tmp_path / "ia.tsv"),
                                  no_orphans=True, n_cpu=2)
    aspect = {"molecular_function": "MFO", "biological_process": "BPO", "cellular_component": "CCO"}
    for (_, ns, tau), row in best["f"].iterrows():
        assert ours.loc[aspect[ns], "fmax"] == pytest.approx(row["f"], abs=5e-4)
        assert ours.loc[aspect[ns], "threshold"] == pytest.approx(tau)
        assert ours.loc[aspect[ns], "coverage"] == pytest.approx(row["cov"], abs=5e-4)
    for (_, ns, _), row in best["f_w"].iterrows():
        assert ours.loc[aspect[ns], "wfmax"] == pytest.approx(row["f_w"], abs=5e-4)
    for ns, s_w in df.groupby(level="ns")["s_w"].min().items():
        assert ours.loc[aspect[ns], "smin"] == pytest.approx(s_w, abs=5e-3)
    assert ours.loc["MFO", "fmax"] == pytest.approx(0.343, abs=2e-3)  # the naive figure in the README
