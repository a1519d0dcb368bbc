"""The term list the zero-shot benchmarks hold out (benchmarks/data/held_out_terms.txt), checked
against real GO and the real training labels, independently of the code that picked it."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from index.holdout import drop_subtrees, read_term_list, subtrees

pytestmark = pytest.mark.slow
TERMS = Path(__file__).parents[2] / "benchmarks" / "data" / "held_out_terms.txt"


@pytest.fixture(scope="module")
def training():
    from index.labels import label_matrix
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.dataset import AnnotatedProteins

    data = shared_data()
    onto = Ontology.from_obo(data / "go" / "go-basic_2021-12-15.obo.gz")
    prop = Propagator.from_ontology(onto)
    train = AnnotatedProteins.load(data / "train_goa2019exp_7sp" / "sequences.fasta.gz",
                                   data / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz", {"cafa3_benchmark": "1"})
    labels, _ = label_matrix(onto, prop, train.annotations["protein"], train.annotations["term"])
    return onto, prop, train, labels


def test_held_out_terms_follow_the_protocols(training):
    onto, prop, train, labels = training
    rows = [line.split("#") for line in TERMS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    table = pd.DataFrame([(t.strip(), *c.split()) for t, c in rows], columns=["term", "protocol", "aspect", "proteins"])
    assert read_term_list(TERMS, onto) == table["term"].tolist()
    counts = np.asarray(labels.sum(axis=0)).ravel()
    index = [onto.index[t] for t in table["term"]]
    assert (table["proteins"].astype(int).to_numpy() == counts[index]).all()
    deepgozero = table[table["protocol"] == "deepgozero"]
    assert len(deepgozero) == 16 and deepgozero.groupby("aspect").size().to_dict() == {"BPO": 7, "CCO": 4, "MFO": 5}
    subtree = table[table["protocol"] == "subtree"]
    assert subtree["proteins"].astype(int).between(20, 500).all()
    # No subtree term is an ancestor or a descendant of another held-out term (of either protocol).
    anc = prop.ancestors.toarray()[np.ix_(index, index)]
    related = anc | anc.T
    np.fill_diagonal(related, False)
    is_subtree = (table["protocol"] == "subtree").to_numpy()
    assert not related[is_subtree].any()
    # About 5 % of the eligible terms of each aspect.
    namespaces = {"MFO": "molecular_function", "BPO": "biological_process", "CCO": "cellular_component"}
    for aspect, n in subtree.groupby("aspect").size().items():
        eligible = ((onto.namespaces == namespaces[aspect]) & (counts >= 20) & (counts <= 500)).sum()
        assert abs(n - 0.05 * eligible) <= 1


def test_holding_them_out_removes_them_and_their_subtrees_after_propagation(training):
    from index.labels import label_matrix

    onto, prop, train, _ = training
    held = read_term_list(TERMS, onto)
    kept = drop_subtrees(train.annotations, onto, prop, held)
    labels, _ = label_matrix(onto, prop, kept["protein"], kept["term"])
    assert np.asarray(labels[:, subtrees(onto, prop, held)].sum()) == 0
