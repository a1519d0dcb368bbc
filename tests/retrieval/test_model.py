import json

import pytest
import torch

from index.errors import InputError
from retrieval.model import RetrievalModel


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
