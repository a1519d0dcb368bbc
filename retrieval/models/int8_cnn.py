"""The compact tower with int8 convolutions, for CPUs that do not compute bfloat16 natively.

There (AVX2-only AMD and older Intel) fp32 is the fastest float arithmetic, and fbgemm's int8
convolutions ran the tower 1.6 times as fast, with CAFA3 Fmax within 0.001 of fp32's
(docs/benchmarks.md, speed on every CPU). A quantised copy of the tower replaces each convolution:
weights in int8 per output channel (BatchNorm folded in first), the input quantised per batch from its
own range, the output into a range measured once per tower on a fixed set of proteins (the shipped
references', so a tower gives the same vectors on every machine) and kept in the cache. GELU, the
residual sums, the masks and the pooling stay fp32.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import logging
import platform
import warnings
from pathlib import Path

import torch
from torch import nn

from retrieval.models.compact_protein import CompactCNN

LOG = logging.getLogger(__name__)
#: Proteins the output ranges are measured on (:func:`calibration_sequences`).
CALIBRATION_PROTEINS = 256
CALIBRATION_FASTA = Path(__file__).resolve().parents[1] / "data" / "references" / "sequences.fasta.gz"
#: Revision of the quantisation recipe, in the cache keys of the measured ranges and of int8 embeddings.
RECIPE = 1


@functools.lru_cache(maxsize=None)
def int8_supported() -> bool:
    """Whether torch has fbgemm's int8 convolutions here (x86 CPUs; torch calls its quantised tensors
    deprecated, so a torch without them falls back to fp32)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return "fbgemm" in torch.backends.quantized.supported_engines and hasattr(torch, "quantize_per_tensor_dynamic")
    except Exception as err:  # noqa: BLE001 - a torch built without quantised kernels
        LOG.debug("no int8 kernels: %s", err)
        return False


def fold_batch_norm(conv: nn.Conv1d, norm: nn.BatchNorm1d) -> nn.Conv1d:
    """One convolution computing ``norm(conv(x))`` in inference (running statistics)."""
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
    folded = copy.deepcopy(conv)
    folded.weight.data = conv.weight.detach() * scale[:, None, None]
    folded.bias.data = (conv.bias.detach() - norm.running_mean) * scale + norm.bias.detach()
    return folded


class Int8Conv1d(nn.Module):
    """A float convolution computed in int8: float in, float out.

    Args:
        conv: the float convolution (with a bias).
        low, high: the range its outputs are quantised into (clipped outside it).
    """

    def __init__(self, conv: nn.Conv1d, low: float, high: float):
        super().__init__()
        from torch.ao.nn.quantized import Conv1d as QuantizedConv1d

        low, high = min(low, 0.0), max(high, 0.0)
        scale = max(high - low, 1e-6) / 255
        weight = conv.weight.detach()
        weight_scale = (weight.abs().amax(dim=(1, 2)) / 127).clamp(min=1e-12).double()
        zero = torch.zeros(len(weight_scale), dtype=torch.long)  # symmetric: per-channel zero points 0
        with warnings.catch_warnings():  # torch 2.13 calls quantised tensors deprecated (see int8_supported)
            warnings.simplefilter("ignore")
            self.conv = QuantizedConv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0], stride=conv.stride,
                                        padding=conv.padding, dilation=conv.dilation)
            weight = torch.quantize_per_channel(weight, weight_scale, zero, 0, torch.qint8)
            self.conv.set_weight_bias(weight, conv.bias.detach())
        self.conv.scale, self.conv.zero_point = scale, int(round(-low / scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = torch.quantize_per_tensor_dynamic(x.float().contiguous(), torch.quint8, False)
            return self.conv(quantized).dequantize()


def _observed(cnn: CompactCNN) -> dict[str, nn.Module]:
    """The modules whose outputs are quantised, by name: the stem, and per block its BatchNorm (the
    folded first convolution's output) and its second convolution."""
    named = {"stem": cnn.stem}
    for i, block in enumerate(cnn.blocks):
        named[f"blocks.{i}.norm"], named[f"blocks.{i}.conv2"] = block.norm, block.conv2
    return named


@torch.inference_mode()
def output_ranges(cnn: CompactCNN, batches) -> dict[str, list[float]]:
    """[min, max] of each quantised output of the float tower over ``batches`` of token tensors."""
    ranges: dict[str, list[float]] = {}

    def observer(name):
        def hook(_module, _inputs, output):
            low, high = ranges.get(name, [0.0, 0.0])
            ranges[name] = [min(low, output.min().item()), max(high, output.max().item())]
        return hook

    handles = [m.register_forward_hook(observer(name)) for name, m in _observed(cnn).items()]
    was_training = cnn.training
    cnn.eval()
    try:
        for tokens in batches:
            cnn(tokens)
    finally:
        cnn.train(was_training)
        for handle in handles:
            handle.remove()
    return ranges


def quantized_copy(cnn: CompactCNN, ranges: dict[str, list[float]]) -> CompactCNN:
    """An inference copy of ``cnn`` whose convolutions compute in int8 (its forward is the float one's)."""
    out = copy.deepcopy(cnn).eval()
    out.stem = Int8Conv1d(cnn.stem, *ranges["stem"])
    for i, block in enumerate(out.blocks):
        block.conv1 = Int8Conv1d(fold_batch_norm(block.conv1, block.norm), *ranges[f"blocks.{i}.norm"])
        block.norm = nn.Identity()
        block.conv2 = Int8Conv1d(block.conv2, *ranges[f"blocks.{i}.conv2"])
    return out


def calibration_sequences(path: Path = CALIBRATION_FASTA, n: int = CALIBRATION_PROTEINS,
                          max_residues: int = 1000) -> list[str]:
    """Every 16th of the first ``16 n`` sequences of the shipped references (their first
    ``max_residues``): a fixed sample, read in a fraction of a second."""
    from retrieval.io.fasta import FastaReader

    return [r.sequence[:max_residues] for r in itertools.islice(FastaReader(path), 0, 16 * n, 16)]


def ranges_path(fingerprint: str) -> Path:
    """Where the output ranges of the tower with ``fingerprint`` are kept in the cache."""
    from retrieval.feature_cache import cache_dir

    key = hashlib.sha256(f"{fingerprint}|{RECIPE}|{CALIBRATION_PROTEINS}".encode()).hexdigest()[:16]
    return cache_dir() / "int8" / f"{key}.json"


def cached_ranges(fingerprint: str, measure) -> dict[str, list[float]]:
    """The output ranges of the tower with ``fingerprint``: read from the cache, else ``measure()``d
    and kept there."""
    from retrieval.feature_cache import read_json, write_json

    path = ranges_path(fingerprint)
    ranges = read_json(path).get("ranges")
    if not isinstance(ranges, dict):
        ranges = measure()
        write_json(path, {"fingerprint": fingerprint, "recipe": RECIPE, "ranges": ranges})
    return ranges
