import shutil

import numpy as np
import pandas as pd
import pytest

from index.propagation import Propagator
from retrieval.baselines import knn_transfer, top_hit_transfer
from retrieval.homology import HomologySource, Reference, SearchSettings, diamond_search, embedding_search
from retrieval.io.fasta import ProteinRecord

SEQS = {
    "R1": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAEGYNQD",
    "R2": "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFTALTQHGKEDLKFPRGQGVPINTNSSPDDQIGYYRRATRRIRGGDGKMKDLSPRWYFYYLGTGPEAGLPYGANKDGIIWVATEGALNTPKDHIGTRNPANNAAIVLQLPQGTTLPKGFYAEGSRGGSQASSRSSSRSRNSSRNSTPGSSRGTSPARMAGNGGD",
    "R3": "MAHHHHHHVDDDDKMLPLLLLLLLGLLLPASSGCEPRLCAEGGVCVLEGGLPRCRCPAGFTGDRCQVSPCDPNPCHHGGTCVEGPDGTPRCRCPRGYSGDRCELDVNECLHRPCPNGAVCRDSGPGHYTCVCAPGFWGHNCEAGIHPCASQPCRNGGSCREELGGYRCECLPGWTGPFCEEN",
}
LEAVES = {"R1": ["GO:0000004"], "R2": ["GO:0000003"], "R3": ["GO:0000011"]}


@pytest.fixture
def reference(toy_ontology, tmp_path):
    records = [ProteinRecord(k, v.replace("U", "X")) for k, v in SEQS.items()]
    annotations = pd.DataFrame([(p, t) for p, ts in LEAVES.items() for t in ts], columns=["protein", "term"])
    return Reference.build(records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology),
                           tmp_path / "ref", diamond=None)


def test_reference_labels_are_propagated(reference):
    terms = {reference.terms[c] for c in reference.labels[list(reference.ids).index("R1")].indices}
    assert terms == {"GO:0000004", "GO:0000002", "GO:0000003", "GO:0000001"}
    again = Reference.load(reference.folder)
    assert (again.labels != reference.labels).nnz == 0


def test_knn_transfer_by_hand(reference):
    # Q hits R1 (bitscore 30, MF: 1,2,3,4) and R2 (10, MF: 1,3) and R3 (20, BP only).
    hits = pd.DataFrame({"query": ["Q"] * 3, "target": ["R1", "R2", "R3"], "identity": [90.0, 40.0, 60.0],
                         "evalue": 0.0, "bitscore": [30.0, 10.0, 20.0]})
    transfer = reference.transfer(hits, ["Q", "none"])
    scores = knn_transfer(transfer, reference, ["Q", "none"]).set_index("term")["score"]
    assert scores["GO:0000004"] == pytest.approx(30 / 40)  # MF hits weigh 40 in total
    assert scores["GO:0000003"] == pytest.approx(1.0)
    assert scores["GO:0000011"] == pytest.approx(1.0)  # the only BP hit
    col = list(reference.terms).index("GO:0000003")
    assert transfer.max_identity[0, col] == pytest.approx(0.9) and transfer.hit_fraction[0, col] == pytest.approx(1.0)
    assert transfer.top_identity.tolist() == [0.9, 0.0] and transfer.has_hits.tolist() == [1.0, 0.0]
    top = top_hit_transfer(hits, reference, ["Q"]).set_index("term")["score"]
    assert top["GO:0000004"] == pytest.approx(0.9) and top["GO:0000011"] == pytest.approx(0.6)


@pytest.mark.skipif(shutil.which("diamond") is None, reason="DIAMOND not installed (apt-get install diamond-aligner)")
def test_diamond_finds_the_homolog(reference):
    query = ProteinRecord("Q", SEQS["R2"][5:-5])
    hits = diamond_search(reference, [query], SearchSettings(sensitivity="fast", threads=1))
    assert hits.iloc[0]["target"] == "R2" and hits.iloc[0]["identity"] == pytest.approx(100.0)


def test_embedding_fallback_finds_nearest_vectors():
    ref = np.eye(3, dtype=np.float32)
    hits = embedding_search(ref, np.array(["a", "b", "c"], dtype=object), np.array([[0.1, 0.9, 0.0]], np.float32),
                            ["q"], k=2)
    assert hits["target"].tolist() == ["b", "a"] and hits["bitscore"].iloc[0] == pytest.approx(900, rel=1e-5)


def test_homology_candidates_map_to_index_rows(reference, tiny_model):
    catalogue = ["GO:0000011", "GO:0000004", "my:text"]
    source = HomologySource(reference, catalogue, protein_encoder=tiny_model.protein_encoder)
    hits = pd.DataFrame({"query": ["Q"], "target": ["R1"], "identity": [50.0], "evalue": 0.0, "bitscore": [10.0]})
    rows = source.candidate_rows(reference.transfer(hits, ["Q"]))
    assert rows[0].tolist() == [1]  # R1 carries GO:4 (row 1); GO:11 and the free text are not transferred


def test_annotator_with_homology_adds_transferred_terms(reference, tiny_model, toy_ontology):
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index

    index = build_function_index(tiny_model, FunctionCatalogue.from_ontology(toy_ontology), ontology=toy_ontology,
                                 precision="fp32", progress=False)
    source = HomologySource(reference, index.catalogue.ids, protein_encoder=tiny_model.protein_encoder)
    annotator = Annotator(tiny_model, index, source)
    table = annotator.annotate({"Q": SEQS["R2"][5:-5]}, top=50, recall=1, propagate=False)
    # recall=1 gives one tower candidate; the homolog R2 adds its catalytic activity (and ancestors).
    assert "GO:0000003" in set(table["term_id"]) and len(table) >= 2
