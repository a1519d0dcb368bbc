import json

import pandas as pd
from click.testing import CliRunner

from retrieval.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_catalogue_writes_live_terms(toy_obo, tmp_path):
    out = tmp_path / "functions.tsv"
    result = run("catalogue", toy_obo, "-o", out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert table.columns.tolist() == ["term_id", "name", "description", "aspect"]
    assert len(table) == 7 and "GO:0000099" not in set(table["term_id"])


def test_naive_then_evaluate(toy_obo, write, tmp_path):
    train_fa = write("train.fa", ">A taxon=1\nMKV\n>B\nMKW\n>C cafa3_benchmark=1\nMMM\n")
    train_ann = write("train.tsv", "EntryID\tterm\taspect\nA\tGO:0000004\tMFO\nB\tGO:0000002\tMFO\nC\tGO:0000003\tMFO\n")
    targets = write("t.fa", ">T1\nMKV\n>T2\nMKK\n")
    preds = tmp_path / "naive.tsv"
    result = run("naive", targets, "--train-fasta", train_fa, "--train-annotations", train_ann, "--obo", toy_obo,
                 "--exclude-tag", "cafa3_benchmark=1", "-o", preds)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds, sep="\t").set_index(["protein_id", "term_id"])["score"]
    # C is held out by its tag: binding in 2 of 2 proteins, catalytic (via protein binding) in 1 of 2.
    assert table[("T1", "GO:0000002")] == 1.0 and table[("T2", "GO:0000003")] == 0.5
    truth = write("truth.tsv", "EntryID\tterm\nT1\tGO:0000004\nT2\tGO:0000002\n")
    result = run("evaluate", preds, "--truth", truth, "--obo", toy_obo, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "MFO" in result.output and "fmax" in result.output
    mf = json.loads((tmp_path / "r.json").read_text())["results"][0]
    # Prior: binding 1.0, catalytic .5, protein binding .5. tau <= .5: T1 predicts {2,3,4} = its truth,
    # T2 {2,3,4} of truth {2} (p 1/3): P 2/3, R 1 -> F = .8; tau > .5: {2}: P 1, R (1/3 + 1)/2 -> F = .8.
    assert mf["aspect"] == "MFO" and abs(mf["fmax"] - 0.8) < 1e-9 and abs(mf["threshold"] - 0.01) < 1e-9


def test_bad_input_is_one_line_error_without_traceback(write, toy_obo):
    bad = write("bad.fa", ">a\nMK\n>a\nMV\n")
    result = run("naive", bad, "--train-fasta", bad, "--train-annotations", bad, "--obo", toy_obo)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {bad}:3: duplicate id 'a' (use --skip-invalid to skip such records)"]
    result = run("evaluate", write("p.txt", "P1 GO:1 7\n"), "--truth", write("t.tsv", "EntryID\tterm\nP1\tGO:0000002\n"),
                 "--obo", toy_obo)
    assert result.exit_code == 2 and "not a number in [0, 1]" in result.output


def test_unwritable_output_is_a_clear_error(toy_obo):
    result = run("catalogue", toy_obo, "-o", "/nonexistent/dir/f.tsv")
    assert result.exit_code == 2 and "cannot write here" in result.output


def test_annotate_never_imports_the_training_package(saved_pipeline, write, tmp_path):
    """The training commands load only when asked for: a whole annotate run leaves `train` unimported,
    and `train --help` loads it."""
    import subprocess
    import sys

    model, index = saved_pipeline
    fasta = write("p.fasta", ">p1\nMKTAYIAKQRQISFVKSHFSRQ\n")
    code = ("import sys; from retrieval.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
            "print(sorted(m for m in sys.modules if m == 'train' or m.startswith('train.')))")
    annotate = [sys.executable, "-c", code, "annotate", str(fasta), "--model", str(model), "--index", str(index),
                "--no-reference", "-o", str(tmp_path / "out.tsv")]
    assert subprocess.run(annotate, capture_output=True, text=True, check=True).stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-c", code, "train", "--help"], capture_output=True, text=True, check=True)
    assert "'train.cli'" in helped.stdout and "--protein-backbone" in helped.stdout
    listed = run("--help").output
    assert listed.index("Commands:") < listed.index("annotate") < listed.index("Training commands:") \
        < listed.index("train-reranker")


def test_search_options_are_generated_from_the_settings(tmp_path):
    """Every field of SearchSettings is an option of annotate, with its help text."""
    import dataclasses

    from retrieval.homology.settings import SearchSettings

    text = " ".join(run("annotate", "--help").output.split())
    for f in dataclasses.fields(SearchSettings):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        assert flag in text and " ".join(f.metadata["help"].split())[:40] in text, f.name


def test_the_command_reference_in_docs_is_what_help_prints():
    """docs/cli.md lists every option of every command: regenerate it when an option changes."""
    from pathlib import Path

    from retrieval.cli_options import help_markdown

    page = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    assert page.read_text() == help_markdown(main), "run: python -m retrieval.cli_options > docs/cli.md"
