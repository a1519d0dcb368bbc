import numpy as np
import scipy.sparse as sp

from index.information import information_accretion
from index.propagation import Propagator


def test_information_accretion_by_hand(toy_ontology):
    # Proteins (propagated): A {1,2}, B {1,3}, C {1,2,3,4}, D {1}. Term 4 has parents 2 and 3.
    onto = toy_ontology
    ids = onto.live_ids
    leaf = {"A": ["GO:0000002"], "B": ["GO:0000003"], "C": ["GO:0000004"], "D": ["GO:0000001"]}
    rows, cols = zip(*[(i, ids.index(t)) for i, terms in enumerate(leaf.values()) for t in terms])
    labels = Propagator.from_ontology(onto).propagate_labels(
        sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(4, len(ids))))
    ia = information_accretion(labels, *onto.edges)
    expected = {
        "GO:0000001": 0.0,  # root
        "GO:0000002": -np.log2(2 / 4),  # A, C of 4 with the root
        "GO:0000003": -np.log2(2 / 4),
        "GO:0000004": -np.log2(1 / 1),  # only C has both parents, and C has term 4
        "GO:0000011": 0.0,  # nobody annotated
    }
    for term, value in expected.items():
        assert abs(ia[ids.index(term)] - value) < 1e-12, term
