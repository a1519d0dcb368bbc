"""prot-retrieve refresh: release files -> a self-consistent pipeline folder that annotate reads,
which refuses parts of another GO release."""
import hashlib
import json

from click.testing import CliRunner

from retrieval.cli import main
from train.loop import train
from test_training import toy_training  # noqa: F401 - the fixture


def _gaf(annotations, path):
    lines = ["!gaf-version: 2.2"]
    for row in annotations.splitlines()[1:]:
        protein, term, _ = row.split("\t")
        lines.append("\t".join(["UniProtKB", protein, protein, "enables", term, "PMID:1", "IDA", "", "F", "", "",
                                "protein", "taxon:1", "20200101", "UniProt", "", ""]))
    lines.append("\t".join(["UniProtKB", "P0", "P0", "NOT|enables", "GO:0000004", "PMID:2", "IDA", "", "F", "", "",
                            "protein", "taxon:1", "20200101", "UniProt", "", ""]))
    path.write_text("\n".join(lines) + "\n")


def test_refresh_builds_a_pipeline_that_annotate_reads(toy_training, tmp_path):  # noqa: F811
    model = train(toy_training)
    gaf = tmp_path / "goa.gaf"
    _gaf(open(toy_training.annotations).read(), gaf)
    out = tmp_path / "pipeline"
    result = CliRunner().invoke(main, ["refresh", "--obo", toy_training.obo, "--sequences", toy_training.fasta,
                                       "--annotations", str(gaf), "--model", str(model), "--search", "embedding",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "pipeline.json").read_text())
    assert [i["role"] for i in manifest["inputs"]] == ["ontology", "reference 1", "reference 1"]
    for entry in manifest["inputs"]:
        with open(entry["path"], "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == entry["sha256"]
    (reference,) = manifest["references"]
    assert "1 NOT" in reference["read"] and reference["evidence"] == "experimental"
    trained = json.loads((out / "model" / "retriever.json").read_text())["info"]
    assert [r["fingerprint"] for r in trained["homology_references"]] == [reference["fingerprint"]]
    assert "thresholds" in trained
    fasta = tmp_path / "q.fa"
    fasta.write_text(">Q1\nADEGKLMNPQCCCCRSTVADEGKLMNPQRSTV\n>Q2\nADEGKLMNPQWWWWRSTVADEGKLMN\n")
    via_pipeline = CliRunner().invoke(main, ["annotate", str(fasta), "--pipeline", str(out), "--search", "embedding",
                                             "--top", "3", "-o", str(tmp_path / "a.tsv")])
    assert via_pipeline.exit_code == 0, via_pipeline.output
    by_parts = CliRunner().invoke(main, ["annotate", str(fasta), "--model", str(out / "model"), "--index",
                                         str(out / "index"), "--reference", str(out / reference["folder"]),
                                         "--search", "embedding", "--top", "3", "-o", str(tmp_path / "b.tsv")])
    assert by_parts.exit_code == 0 and (tmp_path / "a.tsv").read_text() == (tmp_path / "b.tsv").read_text()
    mixed = CliRunner().invoke(main, ["annotate", str(fasta), "--pipeline", str(out), "--model", str(model)])
    assert mixed.exit_code == 2 and "leave out --model" in mixed.output
    meta = out / reference["folder"] / "reference.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "ontology_release": "releases/1999-01-01"}))
    other = CliRunner().invoke(main, ["annotate", str(fasta), "--pipeline", str(out), "--search", "embedding"])
    assert other.exit_code == 2 and "another GO release" in other.output


def test_refresh_refuses_unpaired_annotations(tmp_path, toy_obo):
    result = CliRunner().invoke(main, ["refresh", "--obo", str(toy_obo), "--sequences", str(toy_obo),
                                       "--annotations", str(toy_obo), "--annotations", str(toy_obo), "-o",
                                       str(tmp_path / "p")])
    assert result.exit_code == 2 and "no FASTA --sequences left" in result.output
