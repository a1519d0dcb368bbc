"""Bad input, command by command: one line ``Error: ...``, exit code 2, and existing files untouched."""
import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from retrieval.cli import main

SEQ = "MKVLAAGIVWACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def files(tmp_path_factory, toy_obo):
    """Good and bad inputs of every kind, and an existing output that must survive every failure."""
    d = tmp_path_factory.mktemp("bad")
    good = {
        "fa": f">P1 taxon=9606\n{SEQ}\n>P2\n{SEQ[::-1]}\n",
        "ann": "EntryID\tterm\nP1\tGO:0000004\nP2\tGO:0000011\n",
        "truth": "EntryID\tterm\nP1\tGO:0000004\n",
        "pred": "protein_id\tterm_id\tscore\nP1\tGO:0000004\t0.9\n",
        "ia": "GO:0000004\t1.5\n",
        "functions": "term_id\tname\tdescription\nF1\tbinds heme\tcarries oxygen\n",
    }
    bad = {
        "binary.fa": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01",
        "nul_id.fa": f">P\x001\n{SEQ}\n".encode(),
        "empty.fa": b"",
        "bad_residue.fa": b">P1\nMK9V\n",
        "missing_column.tsv": b"protein\tgo\nP1\tGO:0000004\n",
        "tab_in_field.tsv": b"term_id\tname\tdescription\nF1\tbinds\theme\tand carries oxygen\n",
        "negative.ia": b"GO:0000004\t-1.0\n",
        "score_above_one.tsv": b"protein_id\tterm_id\tscore\nP1\tGO:0000004\t7\n",
        "unknown_terms.tsv": b"EntryID\tterm\nP1\tGO:9999999\n",
        "unknown_held_out.txt": b"GO:0000004\nGO:1234567\n",
        "all_held_out.txt": b"GO:0000002  # binding and its descendants\nGO:0000011\n",
    }
    for name, text in good.items():
        (d / name).write_text(text)
    for name, data in bad.items():
        (d / name).write_bytes(data)
    full = gzip.compress(f">P1\n{SEQ}\n".encode() * 50)
    (d / "truncated.fa.gz").write_bytes(full[: len(full) // 2])
    corrupt = bytearray(gzip.compress(f">P1\n{SEQ}\n".encode()))
    corrupt[-8] ^= 0xFF  # the CRC
    (d / "crc.fa.gz").write_bytes(bytes(corrupt))
    (d / "obo").write_text(toy_obo.read_text())
    (d / "truncated.obo").write_text(toy_obo.read_text()[:-10])
    (d / "existing.tsv").write_text("precious\n")
    result = CliRunner().invoke(main, ["build-reference", str(d / "fa"), str(d / "ann"), "--obo", str(d / "obo"),
                                       "-o", str(d / "ref")])
    assert result.exit_code == 0, result.output
    (d / "broken_ref").mkdir()
    (d / "broken_ref" / "sequences.fasta").write_text(good["fa"])
    np.savez(d / "broken_ref" / "labels.npz", ids=np.array(["P1"]))  # truncated: no labels
    return d


OUT = ["-o", "{d}/existing.tsv"]
CASES = [
    # annotate
    (["annotate", "{d}/binary.fa", "--no-reference", *OUT], "not UTF-8 text"),
    (["annotate", "{d}/truncated.fa.gz", "--no-reference", *OUT], "corrupt or truncated gzip"),
    (["annotate", "{d}/crc.fa.gz", "--no-reference", *OUT], "corrupt or truncated gzip"),
    (["annotate", "{d}/nul_id.fa", "--no-reference", *OUT], "control character"),
    (["annotate", "{d}/empty.fa", "--no-reference", *OUT], "no FASTA records"),
    (["annotate", "{d}/bad_residue.fa", "--no-reference", *OUT], "invalid residue '9'"),
    (["annotate", "{d}/fa", "--no-reference", "--precision", "xyz", *OUT], "--precision must be one of"),
    (["annotate", "{d}/fa", "--no-reference", "--taxon", "²", *OUT], "--taxon must be an NCBI taxon id"),
    (["annotate", "{d}/fa", "--no-reference", "--top", "0", *OUT], "--top must be at least 1"),
    (["annotate", "{d}/fa", "--no-reference", "--min-score", "2", *OUT], "--min-score must be in [0, 1]"),
    (["annotate", "{d}/fa", "--reference", "{d}/broken_ref", *OUT], "labels.npz: corrupt"),
    (["annotate", "{d}/fa", "--no-reference", "--reference", "{d}/ref", *OUT], "exclude each other"),
    (["annotate", "{d}/fa", "--no-reference", "-o", "{d}/fa"], "overwrite an input"),
    (["annotate", "{d}/fa", "--no-reference", "-o", "/proc/x.tsv"], "cannot write here"),
    (["annotate", "{d}/fa", "--format", "gaf", "--no-reference", *OUT], "GAF needs its database"),
    (["annotate", "{d}/fa", "--no-reference", "--engine", "ray", "--worker-cpus", "0", *OUT], "--worker-cpus"),
    (["annotate", "{d}/fa", "--no-reference", "--engine", "ray", "-o", "-"], "--engine ray needs an output file"),
    # build-reference
    (["build-reference", "{d}/binary.fa", "{d}/ann", "--obo", "{d}/obo", "-o", "{d}/new_ref"], "not UTF-8 text"),
    (["build-reference", "{d}/fa", "{d}/missing_column.tsv", "--obo", "{d}/obo", "-o", "{d}/new_ref"],
     "header lacks column"),
    (["build-reference", "{d}/fa", "{d}/unknown_terms.tsv", "--obo", "{d}/obo", "-o", "{d}/new_ref"],
     "no annotation maps to a live term"),
    (["build-reference", "{d}/fa", "{d}/ann", "--obo", "{d}/obo", "-o", "{d}/existing.tsv"], "is a file"),
    (["build-reference", "{d}/fa", "{d}/ann", "--obo", "{d}/obo", "--hold-out-terms", "{d}/unknown_held_out.txt",
      "-o", "{d}/new_ref"], "unknown_held_out.txt:2: 'GO:1234567' is not a live term"),
    (["build-reference", "{d}/fa", "{d}/ann", "--obo", "{d}/obo", "--hold-out-terms", "{d}/all_held_out.txt",
      "-o", "{d}/new_ref"], "leaves no annotation"),
    # build-index, build-protein-index
    (["build-index", "{d}/tab_in_field.tsv", "-o", "{d}/idx"], "a tab inside a field"),
    (["build-protein-index", "{d}/fa", "--no-reference", "--reference", "{d}/ref", "-o", "{d}/pidx"],
     "exclude each other"),
    (["build-protein-index", "{d}/fa", "--reference", "{d}/broken_ref", "-o", "{d}/pidx"], "labels.npz: corrupt"),
    (["build-index", "{d}/missing_column.tsv", "-o", "{d}/idx"], "header lacks column"),
    # transfer
    (["transfer", "{d}/fa", "--reference", "{d}/broken_ref", *OUT], "labels.npz: corrupt"),
    (["transfer", "{d}/fa", "--reference", "{d}/ref", "--search", "embedding", *OUT], "needs a sequence search"),
    (["transfer", "{d}/crc.fa.gz", "--reference", "{d}/ref", *OUT], "corrupt or truncated gzip"),
    # evaluate
    (["evaluate", "{d}/score_above_one.tsv", "--truth", "{d}/truth", "--obo", "{d}/obo"], "not a number in [0, 1]"),
    (["evaluate", "{d}/pred", "--truth", "{d}/truth", "--obo", "{d}/obo", "--ia", "{d}/negative.ia"],
     "negative information accretion"),
    (["evaluate", "{d}/pred", "--truth", "{d}/missing_column.tsv", "--obo", "{d}/obo"], "header lacks column"),
    (["evaluate", "{d}/pred", "--truth", "{d}/truth", "--obo", "{d}/binary.fa"], "not UTF-8 text"),
    (["evaluate", "{d}/pred", "--truth", "{d}/truth", "--obo", "{d}/truncated.obo"], "truncated"),
    (["evaluate", "{d}/pred", "--truth", "{d}/truth", "--obo", "{d}/obo", "--json", "{d}/pred"],
     "overwrite an input"),
    # ia
    (["ia", "{d}/missing_column.tsv", "--obo", "{d}/obo", *OUT], "header lacks column"),
    (["ia", "{d}/unknown_terms.tsv", "--obo", "{d}/obo", *OUT], "no annotation maps to a live term"),
    (["ia", "{d}/ann", "--obo", "{d}/obo", "-o", "{d}/ann"], "overwrite an input"),
    # naive, catalogue
    (["naive", "{d}/fa", "--train-fasta", "{d}/binary.fa", "--train-annotations", "{d}/ann", "--obo", "{d}/obo"],
     "not UTF-8 text"),
    (["catalogue", "{d}/binary.fa", *OUT], "not UTF-8 text"),
    # train-reranker, train
    (["train-reranker", "--model", "{d}/ref", "--reference", "{d}/ref", "-o", "{d}/run"], "not a prot-retrieve model"),
    (["train", "--fasta", "{d}/binary.fa", "--annotations", "{d}/ann", "--obo", "{d}/obo", "--output", "{d}/run"],
     "not UTF-8 text"),
    (["train", "--fasta", "{d}/fa", "--annotations", "{d}/ann", "--obo", "{d}/obo", "--output", "{d}/run",
      "--hold-out-terms", "{d}/missing.txt"], "missing.txt: no such file"),
    (["train", "--fasta", "{d}/fa", "--annotations", "{d}/ann", "--obo", "{d}/obo", "--output", "{d}/run",
      "--hold-out-terms", "{d}/unknown_held_out.txt"], "'GO:1234567' is not a live term"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:2]) + f" [{m}]" for a, m in CASES])
def test_bad_input_is_one_line_and_changes_nothing(files, args, message):
    from retrieval.cli import main as full_main  # with the training commands

    before = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}
    result = CliRunner().invoke(full_main, [a.format(d=files) for a in args])
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    after = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}
    assert after == before  # no input or earlier output touched, no temporary file left
    assert not (files / "new_ref").exists() and not (files / "idx").exists()
