import pytest

from index.errors import InputError
from retrieval.io.tables import read_annotations, read_ia, read_id_list, read_predictions


def test_annotations_deduplicate_and_keep_aspect(write):
    table = read_annotations(write("a.tsv", "EntryID\tterm\taspect\nP1\tGO:1\tMFO\nP1\tGO:1\tMFO\nP2\tGO:2\tBPO\n"))
    assert table[["protein", "term", "aspect"]].values.tolist() == [["P1", "GO:1", "MFO"], ["P2", "GO:2", "BPO"]]


def test_annotations_errors(write):
    with pytest.raises(InputError, match="lacks column"):
        read_annotations(write("a.tsv", "protein\tterm\nP1\tGO:1\n"))
    with pytest.raises(InputError, match=":3: empty value in required column 'term'"):
        read_annotations(write("b.tsv", "EntryID\tterm\nP1\tGO:1\nP2\t\n"))


def test_cafa_submission_format(write):
    text = "AUTHOR\tme\nMODEL\t1\nKEYWORDS\tsequence alignment, machine learning.\nT1 GO:0000002 0.50\nT1\tGO:3\t1.00\nEND\n"
    table = read_predictions(write("p.txt", text))
    assert table.values.tolist() == [["T1", "GO:0000002", 0.5], ["T1", "GO:3", 1.0]]


def test_prot_retrieve_tsv_with_extra_columns(write):
    text = "protein_id\tterm_id\tscore\tname\nP1\tGO:2\t0.25\tprotein binding\n"
    assert read_predictions(write("p.tsv", text)).values.tolist() == [["P1", "GO:2", 0.25]]


@pytest.mark.parametrize("text, message", [
    ("P1 GO:1 1.5\n", "\\(P1, GO:1\\): score '1.5' is not a number in \\[0, 1\\]"),
    ("P1 GO:1 high\n", "expected 'protein term score' rows"),
    ("AUTHOR x\nEND\n", "no predictions found"),
])
def test_bad_predictions(write, text, message):
    with pytest.raises(InputError, match=message):
        read_predictions(write("p.txt", text))


def test_id_list_and_ia(write):
    assert read_id_list(write("ids.txt", "a\n\nb extra\n")) == ["a", "b"]
    assert read_ia(write("ia.tsv", "GO:1\t0.5\nGO:2\t2\n")).to_dict() == {"GO:1": 0.5, "GO:2": 2.0}
    with pytest.raises(InputError):
        read_ia(write("bad.tsv", "GO:1\tx\n"))
