"""The resume checkpoint: weights, optimiser, scheduler, step and RNG states (not the exported model)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(folder: Path, modules: dict[str, torch.nn.Module], optimizer, scheduler, epoch: int,
                    rng: np.random.Generator) -> None:
    """Write atomically (temp file + rename) so an interrupted save never corrupts the last good one."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {"modules": {k: m.state_dict() for k, m in modules.items()}, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "epoch": epoch, "numpy_rng": rng.bit_generator.state,
             "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}
    tmp = folder / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / CHECKPOINT)


def load_checkpoint(folder: Path, modules: dict[str, torch.nn.Module], optimizer, scheduler,
                    rng: np.random.Generator) -> int:
    """Restore everything saved by :func:`save_checkpoint`; returns the next epoch (0 when none exists)."""
    path = folder / CHECKPOINT
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    for key, module in modules.items():
        module.load_state_dict(state["modules"][key])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    return state["epoch"] + 1
