"""Cutting work into pieces (blocks of records, length-sorted token-budget batches), device choice
and the autocast guard."""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, TypeVar

import numpy as np
import torch


T = TypeVar("T")


def blocks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter), read lazily: the one way a
    proteome is cut into blocks (a homology search, a part of a resumable run, a Ray task)."""
    block: list[T] = []
    for item in items:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def token_batches(lengths, max_tokens: int, max_batch: int = 512, multiple: int = 1) -> list[np.ndarray]:
    """Group item indices into batches whose padded size (batch x longest) stays within ``max_tokens``.

    Items are sorted by length first, so padding is small (esm's ``get_batch_indices`` idea).
    An item longer than the budget gets a batch of its own. ``multiple``: batches are padded to a
    multiple of this length, and the budget counts it.
    """
    lengths = -(-np.asarray(lengths) // multiple) * multiple
    order = np.argsort(lengths, kind="stable")
    batches, current, longest = [], [], 0
    for i in order:
        grown = max(longest, int(lengths[i]))
        if current and (grown * (len(current) + 1) > max_tokens or len(current) >= max_batch):
            batches.append(np.array(current))
            current, grown = [], int(lengths[i])
        current.append(i)
        longest = grown
    if current:
        batches.append(np.array(current))
    return batches


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast(device: torch.device, precision: str):
    """Mixed-precision context for ``precision`` (auto | fp32 | bf16 | fp16 | int8, resolved by
    :func:`retrieval.models.precision.resolve_precision`): a no-op for fp32 and int8."""
    dtype = low_precision_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.type == "cuda" else "cpu", dtype=dtype)


def low_precision_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The dtype ``precision`` computes in on ``device`` (None: fp32)."""
    from retrieval.models.precision import resolve_precision

    # int8 is the compact protein tower's convolutions only (retrieval.models.int8_cnn): floats stay fp32
    return {"fp32": None, "int8": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
        resolve_precision(precision, device).name]
