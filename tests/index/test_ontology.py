import gzip

import numpy as np
import pytest

from index.errors import InputError
from index.ontology import Ontology


def test_terms_names_definitions_and_release(toy_ontology):
    onto = toy_ontology
    assert onto.release == "releases/2099-01-01"
    assert len(onto.terms) == 9 and len(onto.live_ids) == 7
    binding = onto.terms["GO:0000002"]
    assert binding.name == "binding"
    assert binding.definition == 'Interacting "selectively" with a thing.'
    assert binding.synonyms == ("ligand",)
    assert binding.aspect == "MFO"
    assert onto.terms["GO:0000012"].aspect == "BPO"
    assert "part_of" not in onto.terms  # Typedef stanzas are not terms


def test_edges_keep_is_a_and_part_of_within_namespace_only(toy_ontology):
    onto = toy_ontology
    pairs = {(onto.live_ids[c], onto.live_ids[p]) for c, p in zip(*onto.edges)}
    assert pairs == {
        ("GO:0000002", "GO:0000001"), ("GO:0000003", "GO:0000001"), ("GO:0000004", "GO:0000002"),
        ("GO:0000004", "GO:0000003"), ("GO:0000011", "GO:0000010"), ("GO:0000012", "GO:0000011"),
    }  # regulates and the cross-namespace part_of are not propagated
    assert [onto.live_ids[r] for r in onto.roots] == ["GO:0000001", "GO:0000010"]


def test_resolve_alt_ids_and_obsolete_terms(toy_ontology):
    onto = toy_ontology
    assert onto.resolve("GO:0000092") == "GO:0000002"
    assert onto.resolve("GO:0000099") == "GO:0000011"
    assert onto.resolve("GO:0000099", follow_replaced_by=False) is None
    assert onto.resolve("GO:0000098") is None  # 'consider' is advice, never followed
    assert onto.resolve("GO:1234567") is None
    idx, stats = onto.resolve_many(["GO:0000092", "GO:0000004", "GO:0000099", "nope"])
    assert idx.tolist() == [1, 3, 5, -1]
    assert stats == {"mapped": 2, "dropped": 1}


def test_gzip_is_read_like_plain(toy_obo, tmp_path):
    gz = tmp_path / "toy.obo.gz"
    gz.write_bytes(gzip.compress(toy_obo.read_bytes()))
    assert Ontology.from_obo(gz).live_ids == Ontology.from_obo(toy_obo).live_ids


def test_not_an_obo_file_is_a_clear_error(write):
    with pytest.raises(InputError, match="no \\[Term\\] stanzas"):
        Ontology.from_obo(write("x.obo", "hello\nworld\n"))
    with pytest.raises(InputError, match="cannot read"):
        Ontology.from_obo("/nonexistent/go.obo")


def test_namespaces_align_with_live_ids(toy_ontology):
    assert np.sum(toy_ontology.namespaces == "molecular_function") == 4


def test_a_term_without_a_name_is_a_truncated_file(tmp_path):
    from index.errors import InputError
    from index.ontology import Ontology

    path = tmp_path / "cut.obo"
    path.write_text("format-version: 1.2\n\n[Term]\nid: GO:0000001\nname: root\nnamespace: molecular_function\n\n"
                    "[Term]\nid: GO:0000002\n")
    with pytest.raises(InputError, match="GO:0000002 has no name"):
        Ontology.from_obo(path)
