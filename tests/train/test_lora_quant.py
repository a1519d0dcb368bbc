import json

import numpy as np
import pytest
import torch

from index.errors import InputError
from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig
from retrieval.models.text_encoder import TextEncoder, TextEncoderConfig
from train.lora import attach_lora, freeze


def test_lora_trains_only_adapters_and_heads(tiny_esm_dir):
    enc = ProteinEncoder(ProteinEncoderConfig(backbone=str(tiny_esm_dir), embed_dim=8))
    freeze(enc.backbone)
    enc.backbone = attach_lora(enc.backbone, rank=4, alpha=8, targets="query,value")
    enc.config.adapter = True
    loss = enc(enc.tokenize(["MKVLA", "ACDEF"])).sum()
    loss.backward()
    with_grad = {n for n, p in enc.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert with_grad <= trainable
    assert all("lora_" in n or n.startswith("projection") for n in trainable)
    assert any("lora_B" in n for n in with_grad) and any(n.startswith("projection") for n in with_grad)


def test_lora_adapter_is_saved_in_peft_format_and_reloads(tiny_bert_dir, tmp_path):
    text = TextEncoder(TextEncoderConfig(backbone=str(tiny_bert_dir), embed_dim=8, hidden_dim=8, adapter=True))
    text.backbone = attach_lora(text.backbone, rank=2, alpha=4, targets="query,value")
    with torch.no_grad():
        for name, p in text.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_()  # a non-trivial adapter, so reloading it is actually tested
    before = text.encode(["binding of a protein"], precision="fp32")[0]
    text.save_pretrained(tmp_path / "t")
    adapter = tmp_path / "t" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_bert_dir)
    again = TextEncoder.from_pretrained(tmp_path / "t")
    np.testing.assert_allclose(again.encode(["binding of a protein"], precision="fp32")[0], before, atol=1e-5)
    assert again.fingerprint() == text.fingerprint()


def test_unknown_lora_targets_are_a_clear_error(tiny_bert_dir):
    text = TextEncoder(TextEncoderConfig(backbone=str(tiny_bert_dir), embed_dim=8, hidden_dim=8))
    with pytest.raises(InputError, match="check --lora-targets"):
        attach_lora(text.backbone, rank=2, alpha=4, targets="no_such_module")


@pytest.fixture(scope="module")
def bert64_dir(tiny_bert_dir, tmp_path_factory):
    """Like tiny_bert_dir with hidden size 64: bitsandbytes' 4-bit blocks need dimensions of 64."""
    import shutil

    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("bert64")
    for f in tiny_bert_dir.iterdir():
        if "token" in f.name or f.name == "vocab.txt" or f.name == "special_tokens_map.json":
            shutil.copy(f, folder / f.name)
    size = len((tiny_bert_dir / "vocab.txt").read_text().split())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=size, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=128)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_quantised_backbone_matches_full_precision(bert64_dir, bits):
    full = ProteinEncoder(ProteinEncoderConfig(backbone=str(bert64_dir), embed_dim=8))
    try:
        quant = ProteinEncoder(ProteinEncoderConfig(backbone=str(bert64_dir), embed_dim=8, quantization=bits))
    except InputError as err:
        pytest.skip(f"{bits} loading unsupported here: {err}")
    name = "linear" if bits == "8bit" else "4bit"
    assert any(name in type(m).__name__.lower() and "bitsandbytes" in type(m).__module__ for m in quant.backbone.modules())
    quant.projection.load_state_dict(full.projection.state_dict())
    a, b = full.encode(["MKVLAW", "ACDEF"], precision="fp32"), quant.encode(["MKVLAW", "ACDEF"], precision="fp32")
    assert np.isfinite(b).all() and (a * b).sum(1).min() > 0.9  # same direction up to quantisation error


def test_bad_quantization_value(tiny_bert_dir):
    with pytest.raises(InputError, match="quantization must be one of"):
        ProteinEncoder(ProteinEncoderConfig(backbone=str(tiny_bert_dir), quantization="3bit"))


def test_qlora_adapters_train_on_a_4bit_backbone(bert64_dir):
    try:
        enc = ProteinEncoder(ProteinEncoderConfig(backbone=str(bert64_dir), embed_dim=8, quantization="4bit"))
    except InputError as err:
        pytest.skip(f"4-bit loading unsupported here: {err}")
    enc.backbone = attach_lora(enc.backbone, rank=4, alpha=8, targets="query,value")
    enc(enc.tokenize(["MKVLAW", "ACDEF"])).sum().backward()
    grads = {n for n, p in enc.named_parameters() if p.grad is not None}
    assert any("lora_B" in n for n in grads)
    assert not any(("lora_" not in n and not n.startswith("projection")) for n in grads)  # 4-bit weights stay frozen
