import numpy as np
import pytest
import scipy.sparse as sp
import torch

from index.propagation import Propagator
from train.losses import masked_bce, multi_positive_infonce
from train.sampling import CandidateSampler


def test_infonce_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0, 5.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False]])  # the masked candidate does not compete
    expected = -np.log(np.exp(2) / (np.exp(2) + 2))
    assert multi_positive_infonce(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)
    two = multi_positive_infonce(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]]),
                                 torch.ones(1, 3, dtype=torch.bool))
    assert two.item() == pytest.approx(-np.log(np.e / (2 * np.e + 1)), rel=1e-6)


def test_masked_bce_ignores_masked_entries():
    logits, targets = torch.tensor([[0.0, 100.0]]), torch.tensor([[1.0, 0.0]])
    assert masked_bce(logits, targets, torch.tensor([[True, False]])).item() == pytest.approx(np.log(2), rel=1e-6)


def test_sampler_positives_siblings_and_open_world_mask(toy_ontology):
    onto = toy_ontology
    prop = Propagator.from_ontology(onto)
    ids = onto.live_ids
    col = {t: i for i, t in enumerate(ids)}
    terms = np.arange(len(ids))  # catalogue = every live term
    # Protein 0 is annotated "binding" (GO:2): protein binding (GO:4, a child) is unknown, not negative.
    # Protein 1 is annotated "catalytic activity" (GO:3).
    leaves = sp.csr_matrix(([True, True], ([0, 1], [col["GO:0000002"], col["GO:0000003"]])), shape=(2, len(ids)))
    y = prop.propagate_labels(leaves)
    sampler = CandidateSampler(y.tocsr(), leaves, terms, prop.ancestors, *onto.edges, random_negatives=50,
                               sibling_negatives=2)
    columns, targets, mask = sampler.sample(np.array([0, 1]), np.random.default_rng(0))
    columns = columns.tolist()
    assert {"GO:0000002", "GO:0000003", "GO:0000001"} <= {ids[c] for c in columns}
    c4 = columns.index(col["GO:0000004"])
    assert not mask[0, c4] and not mask[1, c4]  # below both proteins' annotated terms
    c3 = columns.index(col["GO:0000003"])
    assert mask[0, c3] and targets[0, c3] == 0  # a sibling of binding: a real negative for protein 0
    assert targets[1, c3] == 1
