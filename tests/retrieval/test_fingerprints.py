"""Fingerprints hash content: one changed backbone weight or reference sequence is refused."""
import json
import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from index.catalogue import FunctionCatalogue
from index.errors import InputError
from index.propagation import Propagator
from retrieval.homology import Reference
from retrieval.io.fasta import ProteinRecord


def one_weight_changed(folder):
    """Add 1e-3 to a single element of the HF backbone's weights, in place."""
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 1e-3
    save_file(tensors, str(path), metadata={"format": "pt"})


def tower_on_a_copied_backbone(tiny_bert_dir, tiny_model, tmp_path):
    """(backbone folder, config, text tower): the tiny model's text tower on its own copy of the backbone."""
    from retrieval.models.text_encoder import TextEncoder

    backbone = tmp_path / "bert"
    shutil.copytree(tiny_bert_dir, backbone)
    config = type(tiny_model.text_encoder.config)(**{**vars(tiny_model.text_encoder.config), "backbone": str(backbone)})
    tower = TextEncoder(config, known_terms=tiny_model.text_encoder.known_terms)
    tower.load_state_dict(tiny_model.text_encoder.state_dict(), strict=False)
    return backbone, config, tower


def test_a_text_backbone_with_one_other_weight_under_the_same_name_is_refused(tiny_bert_dir, tiny_model, tmp_path,
                                                                              toy_ontology):
    from retrieval.indexing import build_function_index
    from retrieval.models.text_encoder import TextEncoder

    backbone, config, first = tower_on_a_copied_backbone(tiny_bert_dir, tiny_model, tmp_path)
    model = type(tiny_model)(tiny_model.protein_encoder, first.eval(), tiny_model.reranker)
    index = build_function_index(model, FunctionCatalogue.from_ontology(toy_ontology), precision="fp32",
                                 progress=False)
    index.save(tmp_path / "index")
    one_weight_changed(backbone)
    second = TextEncoder(config, known_terms=tiny_model.text_encoder.known_terms)
    second.load_state_dict({k: v for k, v in first.state_dict().items() if not k.startswith("backbone.")},
                           strict=False)
    assert second.fingerprint() != first.fingerprint()  # same name, same head: the weights tell them apart
    from index.vector_index import FunctionIndex

    with pytest.raises(InputError, match="rebuild it"):
        FunctionIndex.load(tmp_path / "index", second.fingerprint())


def test_an_hf_protein_backbone_with_one_other_weight_is_another_model(tiny_esm_dir, tmp_path):
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig

    backbone = tmp_path / "esm"
    shutil.copytree(tiny_esm_dir, backbone)
    config = ProteinEncoderConfig(backbone=str(backbone), embed_dim=16)
    torch.manual_seed(0)
    before = ProteinEncoder(config).fingerprint()
    one_weight_changed(backbone)
    torch.manual_seed(0)
    assert ProteinEncoder(config).fingerprint() != before


@pytest.fixture
def reference_inputs(toy_ontology):
    records = [ProteinRecord("R1", "MKTAYIAKQRQISFVKSHFSRQ"), ProteinRecord("R2", "MSDNGPQNQRNAPRITFGGPSD")]
    annotations = pd.DataFrame({"protein": ["R1", "R2"], "term": ["GO:0000004", "GO:0000003"]})
    return records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology)


def test_a_reference_with_one_other_residue_has_another_fingerprint(reference_inputs, tmp_path):
    records, annotations, onto, prop = reference_inputs
    first = Reference.build(records, annotations, onto, prop, tmp_path / "a")
    changed = [records[0], ProteinRecord("R2", records[1].sequence[:-1] + "W")]
    second = Reference.build(changed, annotations, onto, prop, tmp_path / "b")
    assert first.fingerprint() != second.fingerprint()
    assert Reference.load(tmp_path / "a").fingerprint() == first.fingerprint()  # content, not the object


def test_an_edited_reference_fasta_is_detected(reference_inputs, tmp_path):
    reference = Reference.build(*reference_inputs, tmp_path / "ref")
    fasta = tmp_path / "ref" / "sequences.fasta"
    fasta.write_text(fasta.read_text().replace("RQ\n", "RW\n"))
    with pytest.raises(InputError, match="not those the reference"):
        Reference.load(tmp_path / "ref").records()
    with pytest.raises(InputError, match="not those the reference"):
        reference.records()  # an object loaded before the edit checks too

def test_the_annotator_refuses_another_reference_unless_forced(reference_inputs, model_copy, toy_ontology, tmp_path,
                                                               caplog):
    import copy

    from retrieval.annotate import Annotator
    from retrieval.homology import HomologySearch, SearchSettings, homology_feature_names
    from retrieval.indexing import build_function_index
    from retrieval.models.reranker import FusionReranker

    trained = Reference.build(*reference_inputs, tmp_path / "trained")
    records, annotations, onto, prop = reference_inputs
    other = Reference.build([records[0], ProteinRecord("R2", records[1].sequence + "K")], annotations, onto, prop,
                            tmp_path / "other")
    config = copy.deepcopy(model_copy.reranker.config)
    config.pair_features = (*config.pair_features, *homology_feature_names(0))
    model_copy.homology_reranker = FusionReranker(config)
    model_copy.info["homology_references"] = [{"fingerprint": trained.fingerprint()}]
    index = build_function_index(model_copy, FunctionCatalogue.from_ontology(toy_ontology), precision="fp32",
                                 progress=False)
    search = HomologySearch([other], SearchSettings(searcher="embedding"), protein_encoder=model_copy.protein_encoder)
    with pytest.raises(InputError, match="not the one the homology re-ranker was trained with.*--force"):
        Annotator(model_copy, index, search)
    with caplog.at_level("WARNING"):
        Annotator(model_copy, index, search, force=True)
    assert "--force" in caplog.text
    same = HomologySearch([trained], SearchSettings(searcher="embedding"), protein_encoder=model_copy.protein_encoder)
    Annotator(model_copy, index, same)  # the one it was trained with: accepted


def test_a_saved_text_tower_loads_its_backbone_only_to_embed_and_checks_its_weights(tiny_bert_dir, tiny_model,
                                                                                     tmp_path):
    import numpy as np

    from retrieval.models.text_encoder import TextEncoder

    backbone, _, tower = tower_on_a_copied_backbone(tiny_bert_dir, tiny_model, tmp_path)
    tower.eval().save_pretrained(tmp_path / "text")
    meta = json.loads((tmp_path / "text" / "config.json").read_text())
    assert meta["backbone_digest"] == tower._backbone_digest
    lazy = TextEncoder.from_pretrained(tmp_path / "text")  # never hashed here: the saved digest stands in
    assert "backbone" in tower._modules and "backbone" not in lazy._modules
    assert lazy.fingerprint() == tower.fingerprint()
    texts = ["binds heme", "kinase activity"]
    np.testing.assert_allclose(lazy.encode(texts, precision="fp32")[0], tower.encode(texts, precision="fp32")[0],
                               atol=1e-6)
    assert "backbone" in lazy._modules and not lazy.backbone.training
    stale = TextEncoder.from_pretrained(tmp_path / "text")
    one_weight_changed(backbone)  # after that tower was loaded: refused when it has to embed
    with pytest.raises(InputError, match="not those this tower's fingerprint was made with"):
        stale.encode(texts)
    again = TextEncoder.from_pretrained(tmp_path / "text")  # not the backbone it was saved with: refused too
    assert again.fingerprint() == tower.fingerprint()
    with pytest.raises(InputError, match="not the backbone it was saved with"):
        again.encode(texts)


def test_a_text_tower_saved_without_its_backbone_digest_hashes_the_backbone_once(tiny_bert_dir, tiny_model,
                                                                                 tmp_path):
    from retrieval.models.text_encoder import TextEncoder

    backbone, _, tower = tower_on_a_copied_backbone(tiny_bert_dir, tiny_model, tmp_path)
    tower.eval().save_pretrained(tmp_path / "text")
    meta = json.loads((tmp_path / "text" / "config.json").read_text())
    del meta["backbone_digest"]  # as in folders saved before the digest was recorded
    (tmp_path / "text" / "config.json").write_text(json.dumps(meta))
    eager = TextEncoder.from_pretrained(tmp_path / "text")  # these files were never hashed: loaded now
    lazy = TextEncoder.from_pretrained(tmp_path / "text")  # hashed by the first load
    assert "backbone" in eager._modules and "backbone" not in lazy._modules
    assert lazy.fingerprint() == eager.fingerprint() == tower.fingerprint()
    one_weight_changed(backbone)
    again = TextEncoder.from_pretrained(tmp_path / "text")  # the changed files are hashed again
    assert "backbone" in again._modules and again.fingerprint() != tower.fingerprint()
