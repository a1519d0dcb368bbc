import contextlib

import numpy as np
import torch

from retrieval.models.batching import autocast, token_batches
from retrieval.models.compact_protein import CompactCNN


def test_token_batches_respect_budget_and_cover_all():
    lengths = [5, 100, 7, 50, 3, 300, 60]
    batches = token_batches(lengths, max_tokens=120)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert longest * len(batch) <= 120 or len(batch) == 1  # an over-long item gets its own batch


def test_autocast_guard_on_cpu():
    assert isinstance(autocast(torch.device("cpu"), "fp32"), contextlib.nullcontext)
    with autocast(torch.device("cpu"), "fp16"):  # fp16 is CUDA-only: CPU falls back to bf16
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = CompactCNN(token_dim=8, channels=16, blocks=2, dropout=0.0)
    ckpt = CompactCNN(token_dim=8, channels=16, blocks=2, dropout=0.0, gradient_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    tokens = torch.randint(1, 22, (3, 40))
    grads = []
    for model in (plain, ckpt):
        model.train()
        model(tokens).sum().backward()
        grads.append(model.stem.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
