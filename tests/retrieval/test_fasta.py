import gzip

import pytest

from index.errors import InputError
from retrieval.io.fasta import FastaReader, parse_header, read_fasta


def test_headers_accessions_and_tags():
    assert parse_header("sp|P12345|NAME_HUMAN Some protein OS=Homo") == ("P12345", "Some protein OS=Homo", {"OS": "Homo"})
    assert parse_header("A0A1F4 taxon=7227 cafa3_benchmark=0")[2] == {"taxon": "7227", "cafa3_benchmark": "0"}
    assert parse_header("T100900000026")[0] == "T100900000026"


def test_reads_multiline_gzip_with_normalisation(tmp_path):
    path = tmp_path / "x.fa.gz"
    path.write_bytes(gzip.compress(b">sp|P1|A_B desc\nmku\nzv*\n\n>P2 taxon=9606\nACD\n"))
    records = read_fasta(path)
    assert [(r.id, r.sequence) for r in records] == [("P1", "MKXXV"), ("P2", "ACD")]
    assert records[1].tags == {"taxon": "9606"}
    assert (records[0].taxon, records[1].taxon) == ("", "9606")


@pytest.mark.parametrize("header, taxon", [("sp|P1|A_HUMAN Name OS=Homo sapiens OX=9606 GN=X", "9606"),
                                           ("P1 taxon=10090|taxon", "10090"), ("P1 taxon=unknown", ""), ("P1", "")])
def test_taxon_from_tags(header, taxon):
    from retrieval.io.fasta import ProteinRecord

    _, description, tags = parse_header(header)
    assert ProteinRecord("P1", "M", description, tags).taxon == taxon


@pytest.mark.parametrize("text, message", [
    (">a\nMK\n>b\nMK9V\n", ":4: record 'b': invalid residue '9' at position 3"),
    (">a\nMKV\nM-K\n", ":3: record 'a': invalid residue '-' at position 5"),
    (">a\n>b\nMK\n", ":1: record 'a' has an empty sequence"),
    (">a\nMK\n>a\nMV\n", ":3: duplicate id 'a'"),
    ("MKV\n>a\nMK\n", ":1: sequence data before the first '>' header"),
    ("", "no FASTA records found"),
    ("> \nMK\n", ":1: header has no id"),
])
def test_bad_records_name_file_line_and_record(write, text, message):
    with pytest.raises(InputError, match=message):
        read_fasta(write("bad.fa", text))


def test_skip_invalid_counts_every_skipped_record(write, caplog):
    path = write("mixed.fa", ">a\nMK\n>b\n\n>a\nMV\n>c\nMK1\n>d\nWW\n")
    reader = FastaReader(path, skip_invalid=True)
    assert [r.id for r in reader] == ["a", "d"]
    assert reader.skipped == {"empty sequence": 1, "duplicate id": 1, "invalid residues": 1}
    assert "skipped 3 record(s)" in caplog.text


def test_streaming_does_not_read_ahead(write):
    path = write("s.fa", ">a\nMK\n>b\nMK9\n")
    it = iter(FastaReader(path))
    assert next(it).id == "a"  # the bad record after it is only seen when asked for
    with pytest.raises(InputError):
        next(it)
