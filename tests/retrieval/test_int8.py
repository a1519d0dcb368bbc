"""The compact tower with int8 convolutions: each piece against its float original, the ranges it is
calibrated with kept per tower, and its vectors close to fp32's."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from retrieval.models import int8_cnn
from retrieval.models.compact_protein import CompactCNN

pytestmark = pytest.mark.skipif(not int8_cnn.int8_supported(), reason="no int8 kernels in this torch")

SEQUENCES = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "MSDNELKQLLEEAGVSAEELKQ" * 3, "MAHHHHHHVGTGSNDDDDK", "MKV"]


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    model = CompactCNN(token_dim=8, channels=32, blocks=3).eval()
    for block in model.blocks:  # BatchNorm statistics other than the identity, as after training
        block.norm.running_mean.uniform_(-0.5, 0.5)
        block.norm.running_var.uniform_(0.5, 2.0)
        block.norm.weight.data.uniform_(0.5, 1.5)
        block.norm.bias.data.uniform_(-0.2, 0.2)
    return model


def test_folding_batch_norm_into_the_convolution_changes_nothing(cnn):
    block = cnn.blocks[1]
    x = torch.randn(3, 32, 40)
    with torch.inference_mode():
        np.testing.assert_allclose(int8_cnn.fold_batch_norm(block.conv1, block.norm)(x).numpy(),
                                   block.norm(block.conv1(x)).numpy(), atol=1e-5)


def test_an_int8_convolution_is_within_two_percent_of_the_float_one_and_clips_outside_its_range():
    torch.manual_seed(1)
    conv = nn.Conv1d(32, 48, 5, padding=4, dilation=2)
    x = torch.randn(4, 32, 60)
    with torch.inference_mode():
        exact = conv(x)
        low, high = exact.min().item(), exact.max().item()
        approx = int8_cnn.Int8Conv1d(conv, low, high)(x)
        assert approx.shape == exact.shape and approx.dtype == torch.float32
        assert ((approx - exact).norm() / exact.norm()).item() < 0.02  # 8 bits: steps of 1/255 of the range
        clipped = int8_cnn.Int8Conv1d(conv, low / 2, high / 2)(x)
    step = (high - low) / 2 / 255  # the zero point is rounded to a whole step
    assert clipped.max().item() <= high / 2 + step and clipped.min().item() >= low / 2 - step


def test_the_int8_copy_gives_the_float_towers_features_and_leaves_it_alone(cnn):
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig

    tokens = ProteinEncoder(ProteinEncoderConfig()).tokenize(SEQUENCES)["tokens"]
    ranges = int8_cnn.output_ranges(cnn, [tokens])
    assert set(ranges) == {"stem", *(f"blocks.{i}.{n}" for i in range(3) for n in ("norm", "conv2"))}
    assert all(low <= 0 <= high for low, high in ranges.values())
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    quantized = int8_cnn.quantized_copy(cnn, ranges)
    with torch.inference_mode():
        exact, approx = cnn(tokens), quantized(tokens)
    cosine = nn.functional.cosine_similarity(exact, approx, dim=1)
    assert cosine.min().item() > 0.999, cosine
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items()) and not cnn._forward_hooks


def test_the_tower_in_int8_measures_its_ranges_once_per_tower(tiny_model, monkeypatch, tmp_path):
    import copy

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    tower = copy.deepcopy(tiny_model.protein_encoder)
    keys, fingerprint = set(tower.state_dict()), tower.fingerprint()
    exact = tower.encode(SEQUENCES, precision="fp32")
    approx = tower.encode(SEQUENCES, precision="int8")
    assert (exact * approx).sum(axis=1).min() > 0.99
    assert set(tower.state_dict()) == keys and tower.fingerprint() == fingerprint  # the copy is not saved
    assert len(list((tmp_path / "int8").iterdir())) == 1

    def no_calibration(*args, **kwargs):
        raise AssertionError("the ranges were measured again")

    monkeypatch.setattr(int8_cnn, "calibration_sequences", no_calibration)
    again = copy.deepcopy(tiny_model.protein_encoder)  # a new process: the ranges come from the cache
    np.testing.assert_array_equal(again.encode(SEQUENCES, precision="int8"), approx)
    with torch.no_grad():
        again.backbone.stem.weight.mul_(1.5)  # another tower: measured anew
    with pytest.raises(AssertionError, match="measured again"):
        again.encode(SEQUENCES, precision="int8")


def test_damaged_ranges_are_measured_again(tiny_model, monkeypatch, tmp_path):
    import copy

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    tower = copy.deepcopy(tiny_model.protein_encoder)
    path = int8_cnn.ranges_path(tower.fingerprint())
    path.parent.mkdir(parents=True)
    path.write_text('{"ranges": [1, 2')  # cut short
    first = tower.encode(SEQUENCES, precision="int8")
    assert set(json.loads(path.read_text())["ranges"]) >= {"stem", "blocks.0.norm", "blocks.0.conv2"}
    np.testing.assert_array_equal(copy.deepcopy(tiny_model.protein_encoder).encode(SEQUENCES, precision="int8"), first)
