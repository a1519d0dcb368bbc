import pandas as pd
import pytest

from index.catalogue import FunctionCatalogue
from index.errors import InputError


def test_free_text_catalogue_round_trip(write, tmp_path):
    path = write("f.tsv", "term_id\tname\tdescription\nmy:kinase\tkinase\tadds phosphate\nx2\tglows\t\n")
    cat = FunctionCatalogue.from_tsv(path)
    assert cat.ids == ["my:kinase", "x2"]
    assert cat.texts() == ["kinase: adds phosphate", "glows"]
    assert cat.table["aspect"].tolist() == ["", ""]
    cat.to_tsv(tmp_path / "out.tsv")
    again = FunctionCatalogue.from_tsv(tmp_path / "out.tsv")
    assert again.sha256() == cat.sha256()


@pytest.mark.parametrize("text, message", [
    ("id\tname\nx\ty\n", "lacks column\\(s\\) term_id"),
    ("term_id\tname\nx\t\n", ":2: empty value in required column 'name'"),
    ("term_id\tname\na\tb\nc\td\na\te\n", ":4: duplicate term_id 'a'"),
    ("term_id\tname\n", "no functions"),
    ("", "empty file"),
])
def test_bad_catalogues_name_the_line(write, text, message):
    with pytest.raises(InputError, match=message):
        FunctionCatalogue.from_tsv(write("f.tsv", text))


def test_catalogue_from_ontology_has_live_terms_only(toy_ontology):
    cat = FunctionCatalogue.from_ontology(toy_ontology)
    assert len(cat) == 7
    row = cat.table.set_index("term_id").loc["GO:0000003"]
    assert (row["name"], row["description"], row["aspect"]) == ("catalytic activity", "Catalysis of a reaction.", "MFO")
    assert cat.sha256() != FunctionCatalogue(cat.table.iloc[:6]).sha256()


def test_graph_context_adds_parent_names_to_go_terms_only(toy_ontology):
    assert toy_ontology.parent_names("GO:0000004") == ["binding", "catalytic activity"]
    # part_of within the namespace counts; the regulates edge and the cross-namespace part_of do not
    assert toy_ontology.parent_names("GO:0000012") == ["process a"]
    assert toy_ontology.parent_names("GO:0000001") == [] and toy_ontology.parent_names("my:text") == []
    table = FunctionCatalogue.from_ontology(toy_ontology).table.set_index("term_id").loc[["GO:0000001", "GO:0000004"]]
    extra = pd.DataFrame({"term_id": ["my:text"], "name": ["glows"], "description": [""], "aspect": [""]})
    cat = FunctionCatalogue(pd.concat([table.reset_index(), extra]))
    plain, context = cat.texts(), cat.texts(toy_ontology)
    assert context[0] == plain[0]  # a root has no parents
    assert context[1] == plain[1].replace("protein binding:", "protein binding (binding; catalytic activity):", 1)
    assert context[2] == plain[2] == "glows"


def test_the_content_hash_is_that_of_the_rows_as_written_and_tabs_become_spaces(tmp_path):
    import hashlib

    cat = FunctionCatalogue(pd.DataFrame({"term_id": ["GO:1", "x y", "é"], "name": ["a\tb", "n", "ü"],
                                          "description": ["one\r\ntwo", "", "d"], "aspect": ["MFO", "", "CCO"]}))
    assert cat.table["name"].tolist() == ["a b", "n", "ü"] and cat.table["description"].tolist()[0] == "one two"
    cat.to_tsv(tmp_path / "f.tsv")
    rows = (tmp_path / "f.tsv").read_bytes().split(b"\n", 1)[1]  # after the header
    assert cat.sha256() == hashlib.sha256(rows).hexdigest()
    assert FunctionCatalogue(cat.table.iloc[:0]).sha256() == hashlib.sha256(b"").hexdigest()
