"""Output files: atomic, with normal permissions, never replacing a link, a device or an input."""
import os
import stat

import pandas as pd
import pytest

from index.errors import InputError
from retrieval.io.tables import read_predictions
from retrieval.io.writers import PredictionWriter, atomic_output


def write_text(path, text="x\n", inputs=()):
    with atomic_output(path, inputs) as fh:
        fh.write(text)


def test_output_gets_the_umask_permissions_not_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "out.tsv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.tsv").stat().st_mode) == 0o644


def test_a_symlink_is_followed_not_replaced(tmp_path):
    real = tmp_path / "real.tsv"
    real.write_text("old\n")
    (tmp_path / "link.tsv").symlink_to(real)
    write_text(tmp_path / "link.tsv", "new\n")
    assert (tmp_path / "link.tsv").is_symlink() and real.read_text() == "new\n"


def test_a_device_or_fifo_is_written_not_replaced(tmp_path):
    write_text(os.devnull)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_text(fifo, "through the pipe\n")
        assert os.read(reader, 100) == b"through the pipe\n" and stat.S_ISFIFO(os.stat(fifo).st_mode)
    finally:
        os.close(reader)


def test_an_input_is_never_overwritten(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nMKV\n")
    with pytest.raises(InputError, match="overwrite an input"):
        write_text(tmp_path / "." / "in.fa", inputs=(fasta,))
    assert fasta.read_text() == ">a\nMKV\n"


@pytest.mark.parametrize("where", ["/proc/x.tsv", "/nonexistent/dir/out.tsv"])
def test_an_unwritable_place_is_one_error(where):
    with pytest.raises(InputError, match="cannot write here"):
        write_text(where)


def test_tsv_provenance_comments_are_skipped_by_evaluate_and_cafa_ids_are_kept(tmp_path):
    path = tmp_path / "p.tsv"
    with open(path, "w") as fh:
        writer = PredictionWriter(fh, "tsv", {"model": "abc", "ontology": "releases/2021"})
        writer.write(pd.DataFrame({"protein_id": ["END.1", "MODEL-2"], "term_id": ["GO:1", "GO:2"],
                                   "score": [0.5, 0.25]}))
        writer.close()
    assert path.read_text().startswith("# model: abc\n# ontology: releases/2021\nprotein_id\t")
    table = read_predictions(path)
    assert table["protein"].tolist() == ["END.1", "MODEL-2"]
    cafa = tmp_path / "p.cafa"
    cafa.write_text("AUTHOR me\nMODEL 1\nKEYWORDS x.\nEND.1 GO:1 0.50\nMODEL-2\tGO:2\t0.25\nACCURACY 1 PR=0.5\nEND\n")
    assert read_predictions(cafa)["protein"].tolist() == ["END.1", "MODEL-2"]


def test_parquet_has_the_tsv_columns_and_the_provenance(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    path = tmp_path / "p.parquet"
    chunks = [pd.DataFrame({"protein_id": ["P1", "P1"], "term_id": ["GO:1", "GO:2"], "score": [0.9, 0.4],
                            "aspect": ["MFO", "MFO"], "name": ["a", "b"]}),
              pd.DataFrame({"protein_id": ["P2"], "term_id": ["GO:3"], "score": [0.7], "aspect": ["BPO"],
                            "name": ["c"]})]
    with atomic_output(path, binary=True) as fh:
        writer = PredictionWriter(fh, "parquet", {"model": "abc"})
        for chunk in chunks:
            writer.write(chunk)
        writer.close()
    table = pd.read_parquet(path)
    assert table.equals(pd.concat(chunks, ignore_index=True))
    assert json.loads(pq.read_schema(path).metadata[b"prot-retrieve"]) == {"model": "abc"}
    assert pq.ParquetFile(path).num_row_groups == 2  # one per chunk: memory stays flat
    assert read_predictions(path)["score"].tolist() == [0.9, 0.4, 0.7]  # evaluate reads it
    empty = tmp_path / "e.parquet"
    with atomic_output(empty, binary=True) as fh:
        writer = PredictionWriter(fh, "parquet")
        writer.close()
    assert pd.read_parquet(empty).columns.tolist() == ["protein_id", "term_id", "score", "aspect", "name"]
