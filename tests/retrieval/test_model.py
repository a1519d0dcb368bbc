import json

import pytest
import torch

from index.errors import InputError
from retrieval.models.retriever import RetrievalModel


def test_bundle_round_trip_keeps_fingerprint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "retriever.json").read_text())
    assert set(manifest["parts"]) == {"protein_encoder", "text_encoder", "reranker"}
    assert "torch" in manifest["versions"]
    again = RetrievalModel.from_pretrained(tmp_path / "m")
    assert again.fingerprint() == tiny_model.fingerprint() == manifest["fingerprint"]


def test_changed_weights_change_the_fingerprint_and_are_detected(model_copy, tmp_path):
    before = model_copy.fingerprint()
    model_copy.save_pretrained(tmp_path / "m")
    with torch.no_grad():
        model_copy.reranker.head[-1].bias.add_(1.0)
    assert model_copy.fingerprint() != before
    model_copy.reranker.save_pretrained(tmp_path / "m" / "reranker")  # tamper with one part only
    with pytest.raises(InputError, match="do not match the fingerprint"):
        RetrievalModel.from_pretrained(tmp_path / "m")


def test_missing_model_folder(tmp_path):
    with pytest.raises(InputError, match="no retriever.json"):
        RetrievalModel.from_pretrained(tmp_path)


def test_optional_homology_reranker_round_trip_and_selection(model_copy, tmp_path, toy_ontology):
    import copy

    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index

    model_copy.homology_reranker = copy.deepcopy(model_copy.reranker)
    with torch.no_grad():
        model_copy.homology_reranker.head[-1].bias.add_(1.0)
    model_copy.save_pretrained(tmp_path / "m")
    again = RetrievalModel.from_pretrained(tmp_path / "m")
    assert again.homology_reranker is not None and again.fingerprint() == model_copy.fingerprint()
    index = build_function_index(again, FunctionCatalogue.from_ontology(toy_ontology), progress=False)
    assert Annotator(again, index).reranking.reranker is again.reranker  # no homology evidence: the plain ranker
