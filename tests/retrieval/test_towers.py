import numpy as np
import pytest
import torch

from index.errors import InputError
from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig
from retrieval.models.reranker import FusionReranker, RerankerConfig
from retrieval.models.text_encoder import TextEncoder

SEQS = ["MKVLAAGIVW", "ACDEFGHIKLMNPQRSTVWY", "MK"]


def test_compact_encoder_unit_vectors_and_determinism(tiny_model):
    enc = tiny_model.protein_encoder
    a, b = enc.encode(SEQS, precision="fp32"), enc.encode(SEQS[::-1], precision="fp32")
    assert a.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b[::-1], atol=1e-5)  # batching order does not change a protein's vector


def test_long_sequences_are_windowed_not_truncated(tiny_model):
    enc = tiny_model.protein_encoder  # max_residues=50, overlap 10
    assert enc.windows("M" * 50) == ["M" * 50]
    windows = enc.windows("A" * 30 + "C" * 100)
    # 130 residues, step 40: windows start at 0, 40 and 80 (the last one aligned to the end).
    assert windows == [("A" * 30 + "C" * 100)[s: s + 50] for s in (0, 40, 80)]
    huge = enc.encode(["MKV" * 11667], precision="fp32")  # 35,001 residues
    assert huge.shape == (1, 16) and np.isfinite(huge).all()


@pytest.mark.parametrize("backbone_fixture, spaced", [("tiny_bert_dir", True), ("tiny_esm_dir", False)])
def test_hf_protein_backbones_load_from_folder(request, backbone_fixture, spaced, tmp_path):
    folder = request.getfixturevalue(backbone_fixture)
    enc = ProteinEncoder(ProteinEncoderConfig(backbone=str(folder), embed_dim=8, max_residues=20))
    assert enc._spaced is spaced  # ProtBERT vocabularies need 'M K V', ESM tokenises 'MKV'
    before = enc.encode(SEQS, precision="fp32")
    enc.save_pretrained(tmp_path / "p")
    assert not any("backbone" in k for k in __import__("safetensors.torch").torch.load_file(tmp_path / "p" / "model.safetensors"))
    again = ProteinEncoder.from_pretrained(tmp_path / "p")
    np.testing.assert_allclose(again.encode(SEQS, precision="fp32"), before, atol=1e-5)
    assert again.fingerprint() == enc.fingerprint()


def test_compact_save_load_identical(tiny_model, tmp_path):
    enc = tiny_model.protein_encoder
    enc.save_pretrained(tmp_path / "c")
    again = ProteinEncoder.from_pretrained(tmp_path / "c")
    np.testing.assert_array_equal(again.encode(SEQS), enc.encode(SEQS))
    assert again.fingerprint() == enc.fingerprint()


def test_text_encoder_known_and_unknown_terms(tiny_model, tmp_path):
    text = tiny_model.text_encoder
    texts = ["binding: interacting with a thing", "binding: interacting with a thing"]
    v, b = text.encode(texts, ["GO:0000002", "my:free-text"], precision="fp32")
    assert b[1] == pytest.approx(float(text.default_bias))  # unseen: shared default prior
    assert b[0] == pytest.approx(float(text.term_bias.weight[0]))
    assert not np.allclose(v[0], v[1])  # the id embedding moves a known term away from its text alone
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    text.save_pretrained(tmp_path / "t")
    assert (tmp_path / "t" / "terms.txt").read_text().split() == text.known_terms
    again = TextEncoder.from_pretrained(tmp_path / "t")
    v2, b2 = again.encode(texts, ["GO:0000002", "my:free-text"], precision="fp32")
    np.testing.assert_allclose(v2, v, atol=1e-6)
    np.testing.assert_allclose(b2, b, atol=1e-6)


def seeded_reranker(embed_dim: int, hidden_dim: int, product: bool) -> FusionReranker:
    torch.manual_seed(0)
    return FusionReranker(RerankerConfig(embed_dim=embed_dim, hidden_dim=hidden_dim, pair_features=("similarity",),
                                         use_product=product)).eval()


@pytest.mark.parametrize("product", [True, False])
def test_reranker_first_layer_equals_linear_on_concatenation(product):
    rr = seeded_reranker(4, 3, product)
    u, v, f = torch.randn(2, 4, requires_grad=True), torch.randn(2, 5, 4, requires_grad=True), torch.randn(2, 5, 1)
    weight = torch.cat([rr.w_u.weight, rr.w_v.weight, rr.w_diff.weight] + ([rr.w_prod.weight] if product else []), 1)
    feats = rr.feature_norm(f.reshape(10, 1)).reshape(2, 5, 1)

    def on_concatenation():
        parts = [u.unsqueeze(1).expand(-1, 5, -1), v, (u.unsqueeze(1) - v).abs()] + [u.unsqueeze(1) * v] * product
        return rr.head(torch.cat(parts, -1) @ weight.T + rr.w_u.bias + rr.w_feat(feats)).squeeze(-1)

    np.testing.assert_allclose(rr(u, v, f).detach(), on_concatenation().detach(), atol=1e-5)
    # and its gradients (the forward adds in place), against the concatenation's
    grads = [torch.autograd.grad(out.sum(), (u, v)) for out in (rr(u, v, f), on_concatenation())]
    for got, expected in zip(*grads):
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("product", [True, False])
def test_reranker_low_precision_rounds_only_the_candidate_products(product):
    rr = seeded_reranker(64, 16, product)
    u, v, f = torch.randn(3, 64), torch.randn(3, 7, 64), torch.randn(3, 7, 1)

    def rounded(t):  # to bf16 and back, then exact arithmetic in float64
        return t.detach().bfloat16().double()

    # inputs and each product rounded to bf16, the sums in fp32
    weight = rr.w_v.weight + (rr.w_prod.weight * u.unsqueeze(1) if product else 0)  # (B, H, D) or (H, D)
    first = (rounded(rounded(v) @ rounded(weight).transpose(-1, -2))
             + rounded(rounded((u.unsqueeze(1) - v).abs()) @ rounded(rr.w_diff.weight).T)).float()
    first += rr.w_u(u).unsqueeze(1) + rr.w_feat(rr.feature_norm(f.reshape(21, 1)).reshape(3, 7, 1))
    with torch.no_grad():
        expected = rr.head(first).squeeze(-1)
        got, full = rr(u, v, f, torch.bfloat16), rr(u, v, f)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert 1e-4 < (got - full).abs().max() < 0.05  # rounded, and still close to fp32


def test_bad_model_folders_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not a prot-retrieve model folder"):
        ProteinEncoder.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="unreadable model files"):
        ProteinEncoder.from_pretrained(tmp_path)
    with pytest.raises(InputError, match="cannot load backbone"):
        ProteinEncoder(ProteinEncoderConfig(backbone=str(tmp_path / "nope")))


def test_feature_cache_returns_the_same_vectors(tiny_model, tmp_path):
    text = tiny_model.text_encoder
    texts = ["binding of a protein", "kinase activity", "glows"]
    plain = text.encode(texts, precision="fp32")[0]
    first = text.encode(texts[:2], precision="fp32", cache_dir=tmp_path)[0]  # fills the cache
    mixed = text.encode(texts, precision="fp32", cache_dir=tmp_path)[0]  # two cached, one new
    np.testing.assert_allclose(first, plain[:2], atol=1e-6)
    np.testing.assert_allclose(mixed, plain, atol=1e-6)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_protein_embedding_cache_is_keyed_by_sequence_and_model(tiny_model, model_copy, tmp_path, monkeypatch):
    seqs = ["MKTAYIAKQR", "MSDNGPQNQRNAPR", "MKTAYIAKQR"]
    protein = tiny_model.protein_encoder
    plain = protein.encode(seqs, precision="fp32")
    np.testing.assert_allclose(protein.encode(seqs[:1], precision="fp32", cache_dir=tmp_path), plain[:1], atol=1e-6)
    embedded = []
    original = type(protein)._encode
    monkeypatch.setattr(type(protein), "_encode",
                        lambda self, todo, *a: embedded.append(list(todo)) or original(self, todo, *a))
    np.testing.assert_allclose(protein.encode(seqs, precision="fp32", cache_dir=tmp_path), plain, atol=1e-6)
    assert embedded == [["MSDNGPQNQRNAPR"]]  # the cached sequence (given twice) is not embedded again
    with torch.no_grad():  # another model (other weights) must not read the first one's vectors
        next(model_copy.protein_encoder.parameters()).add_(1.0)
    model_copy.protein_encoder.encode(seqs[:1], precision="fp32", cache_dir=tmp_path)
    assert embedded[-1] == ["MKTAYIAKQR"] and len(list(tmp_path.glob("*.npz"))) == 2


def test_compact_bf16_inference_stays_close_to_fp32_and_is_cached_by_arithmetic(tiny_model, tmp_path, monkeypatch):
    """bf16 keeps the activations in bf16 (pooling sums in fp32); a new arithmetic revision is a new cache."""
    import retrieval.models.protein_encoder as protein_module

    protein = tiny_model.protein_encoder
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ" * 5, "MSDNGPQNQRNAPR", "MK"]
    exact, low = protein.encode(seqs, precision="fp32"), protein.encode(seqs, precision="bf16")
    assert np.all((exact * low).sum(axis=1) > 0.999) and not np.array_equal(exact, low)
    protein.encode(seqs, precision="bf16", cache_dir=tmp_path)
    monkeypatch.setattr(protein_module, "ARITHMETIC", protein_module.ARITHMETIC + 1)
    assert protein.cache_key("bf16") != protein.cache_key("fp32")
    protein.encode(seqs, precision="bf16", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_graph_context_model_indexes_go_terms_with_their_parents(model_copy, toy_ontology, tmp_path):
    from index.catalogue import FunctionCatalogue
    from retrieval.indexing import build_function_index
    from retrieval.models.text_encoder import TextEncoder

    catalogue = FunctionCatalogue.from_ontology(toy_ontology)
    plain = build_function_index(model_copy, catalogue, ontology=toy_ontology, precision="fp32", progress=False)
    model_copy.text_encoder.config.graph_context = True
    assert model_copy.text_encoder.function_texts(catalogue) == catalogue.texts()  # no ontology: no context
    with_context = build_function_index(model_copy, catalogue, ontology=toy_ontology, precision="fp32", progress=False)
    expected = model_copy.text_encoder.encode(catalogue.texts(toy_ontology), catalogue.ids, precision="fp32")[0]
    stored = with_context.vectors(np.arange(len(catalogue))[None])[0]
    np.testing.assert_allclose(stored[:, :-1] / model_copy.text_encoder.scale, expected, atol=1e-5)
    changed = ~np.isclose(stored, plain.vectors(np.arange(len(catalogue))[None])[0], atol=1e-6).all(axis=1)
    roots = {"GO:0000001", "GO:0000010"}
    assert changed.tolist() == [t not in roots for t in catalogue.ids]  # roots have no parents to add
    model_copy.text_encoder.save_pretrained(tmp_path / "text")
    assert TextEncoder.from_pretrained(tmp_path / "text").config.graph_context is True
