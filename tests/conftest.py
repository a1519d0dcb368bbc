"""Shared fixtures: a toy ontology and tiny input files built here; nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Tests never write into the user's ~/.cache: point the cache at a temporary folder."""
    import os

    previous = os.environ.get("PROT_RETRIEVE_CACHE")
    os.environ["PROT_RETRIEVE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("PROT_RETRIEVE_CACHE", None)
    else:
        os.environ["PROT_RETRIEVE_CACHE"] = previous


@pytest.fixture(scope="session")
def toy_obo() -> Path:
    return DATA / "toy.obo"


@pytest.fixture(scope="session")
def toy_ontology(toy_obo):
    from index.ontology import Ontology

    return Ontology.from_obo(toy_obo)


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def shared_data() -> Path:
    """The real data folder beside the repository; slow tests skip when it is absent."""
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


VOCAB_WORDS = ["binding", "catalytic", "activity", "protein", "process", "root", "of", "a", "the", "kinase",
               "reaction", "to", "part", "interacting", "with", "thing", "sub", "mf", "bp", "glows", ":", "."]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a word + residue vocabulary, saved to disk.

    Serves as the text backbone and as a ProtBERT-style protein backbone (residues as words).
    """
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"ACDEFGHIKLMNPQRSTVWYX", *VOCAB_WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    import torch

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=128)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_esm_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer ESM-2-style model (hidden 32) and its tokenizer, saved to disk."""
    import torch
    from transformers import EsmConfig, EsmModel, EsmTokenizer

    folder = tmp_path_factory.mktemp("tiny_esm")
    vocab = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO", ".", "-", "<null_1>", "<mask>"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    EsmTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    EsmModel(EsmConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=1100, pad_token_id=1, mask_token_id=32,
                       position_embedding_type="rotary")).save_pretrained(folder)
    return folder


TOY_KNOWN = ["GO:0000002", "GO:0000003", "GO:0000004", "GO:0000011"]


@pytest.fixture(scope="session")
def tiny_model(tiny_bert_dir):
    """A small untrained RetrievalModel: compact CNN protein tower, tiny BERT text tower, re-ranker."""
    import torch

    from retrieval.models.retriever import RetrievalModel
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig
    from retrieval.models.reranker import FusionReranker, RerankerConfig
    from retrieval.models.text_encoder import TextEncoder, TextEncoderConfig

    torch.manual_seed(0)
    protein = ProteinEncoder(ProteinEncoderConfig(embed_dim=16, cnn_token_dim=8, cnn_channels=16, cnn_blocks=1,
                                                  max_residues=50, window_overlap=10))
    text = TextEncoder(TextEncoderConfig(backbone=str(tiny_bert_dir), embed_dim=16, hidden_dim=16,
                                         n_known_terms=len(TOY_KNOWN)), known_terms=TOY_KNOWN)
    with torch.no_grad():
        text.term_bias.weight.normal_()
        text.id_embedding.weight.normal_(std=0.1)
    return RetrievalModel(protein.eval(), text.eval(), FusionReranker(RerankerConfig(embed_dim=16, hidden_dim=8)).eval())


@pytest.fixture
def model_copy(tiny_model):
    import copy

    return copy.deepcopy(tiny_model)


@pytest.fixture
def saved_pipeline(tmp_path, tiny_model, toy_ontology, toy_obo) -> tuple[Path, Path]:
    """The tiny model saved to tmp_path/model and its index of the toy ontology, built by the CLI
    (tmp_path/index); for tests that run `annotate` as a user would."""
    from click.testing import CliRunner

    from index.catalogue import FunctionCatalogue
    from retrieval.cli import main

    tiny_model.save_pretrained(tmp_path / "model")
    FunctionCatalogue.from_ontology(toy_ontology).to_tsv(tmp_path / "functions.tsv")
    built = CliRunner().invoke(main, ["build-index", str(tmp_path / "functions.tsv"), "-o", str(tmp_path / "index"),
                                      "--model", str(tmp_path / "model"), "--obo", str(toy_obo)])
    assert built.exit_code == 0, built.output
    return tmp_path / "model", tmp_path / "index"
