import numpy as np
import pandas as pd
import pytest

from index.errors import InputError
from index.holdout import drop_subtrees, read_term_list, subtrees
from index.propagation import Propagator


@pytest.fixture
def toy(toy_ontology):
    return toy_ontology, Propagator.from_ontology(toy_ontology)


def _ids(onto, mask):
    return sorted(np.asarray(onto.live_ids)[mask])


def test_a_subtree_is_the_term_and_its_descendants_within_its_namespace(toy):
    onto, prop = toy
    # GO:0000004 is_a GO:0000002; GO:0000012 is part_of GO:0000002 too, but across namespaces (no edge).
    assert _ids(onto, subtrees(onto, prop, ["GO:0000002"])) == ["GO:0000002", "GO:0000004"]
    assert _ids(onto, subtrees(onto, prop, ["GO:0000011"])) == ["GO:0000011", "GO:0000012"]
    assert _ids(onto, subtrees(onto, prop, ["GO:0000004", "GO:0000012"])) == ["GO:0000004", "GO:0000012"]


def test_dropping_a_subtree_drops_its_terms_alt_ids_and_descendants_only(toy):
    onto, prop = toy
    table = pd.DataFrame({"protein": list("ABCDEF"),
                          "term": ["GO:0000002", "GO:0000092", "GO:0000004", "GO:0000003", "GO:0000012", "GO:9999999"]})
    kept = drop_subtrees(table, onto, prop, ["GO:0000002"])
    # GO:0000092 is an alt_id of GO:0000002; an unknown id is left for the label builder to report.
    assert kept["protein"].tolist() == ["D", "E", "F"]


def test_term_list_reads_comments_and_alt_ids_and_rejects_unknown_terms(toy, tmp_path):
    onto, _ = toy
    good = tmp_path / "terms.txt"
    good.write_text("# held out\nGO:0000011\t# subtree BPO 40\n\nGO:0000092\nGO:0000011\n")
    assert read_term_list(good, onto) == ["GO:0000011", "GO:0000002"]
    for text, message in (("GO:0000011\nGO:1234567\n", r"terms.txt:2: 'GO:1234567' is not a live term"),
                          ("GO:0000099\n", r":1: 'GO:0000099' is not a live term"),  # obsolete, even if replaced
                          ("# nothing\n\n", "no GO ids")):
        good.write_text(text)
        with pytest.raises(InputError, match=message):
            read_term_list(good, onto)
