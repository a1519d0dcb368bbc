"""Stage 0 of a training run when a teacher is given: the compact protein tower first learns to
reproduce a pretrained model's vector of each protein (knowledge distillation, as the seed distilled
ProtBERT), then learns GO as usual. The student pays nothing for it at inference.

The target is the teacher's vector standardised per dimension; a linear head maps the tower's
pooled features onto it and is dropped afterwards. A small random share of the proteins is kept
aside to report how much of the teacher's variance the student explains (R²).
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from index.errors import InputError
from retrieval.models.batching import autocast
from train.data import protein_batches
from train.schedule import warmup_cosine
from train.teacher import TeacherVectors

LOG = logging.getLogger(__name__)


def distillation_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over standardised teacher dimensions."""
    return nn.functional.mse_loss(predicted.float(), target.float())


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """R² of standardised targets, averaged over dimensions."""
    residual = ((target - predicted) ** 2).sum(0)
    total = ((target - target.mean(0)) ** 2).sum(0)
    return float(np.mean(1 - residual / np.maximum(total, 1e-12)))


def distill(protein, sequences: list[str], teacher: TeacherVectors, epochs: int, batch_size: int, lr: float,
            rng: np.random.Generator, device: torch.device, precision: str, held_out: float = 0.02) -> dict:
    """Train ``protein``'s backbone to predict the teacher's vectors of ``sequences``; returns the record."""
    if not protein.is_compact:
        raise InputError("distillation trains the compact protein tower; a Hugging Face backbone already "
                         "brings pretrained knowledge")
    if epochs < 1:
        raise InputError(f"--distill-epochs must be at least 1 (got {epochs})")
    started = time.time()
    sequences = list(dict.fromkeys(sequences))
    target = teacher.vectors(sequences)
    sequences = [s[: teacher.spec.max_length] for s in sequences]  # the residues the teacher read
    mean, std = target.mean(0), target.std(0) + 1e-6
    target = torch.from_numpy((target - mean) / std).float()
    order = rng.permutation(len(sequences))
    n_val = max(1, int(held_out * len(sequences)))
    val, fit = order[:n_val], order[n_val:]
    head = nn.Linear(protein.backbone.out_dim, target.shape[1]).to(device)
    params = list(protein.backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    lengths = np.array([len(s) for s in sequences])
    total = epochs * math.ceil(len(fit) / batch_size)
    scheduler = warmup_cosine(optimizer, total)
    history = []
    for epoch in range(epochs):
        protein.train()
        bar = tqdm(protein_batches(lengths, fit, batch_size, rng), desc=f"distil {epoch + 1}/{epochs}", unit="step")
        losses = []
        for batch in bar:
            inputs = {k: v.to(device) for k, v in protein.tokenize([sequences[i] for i in batch]).items()}
            with autocast(device, precision):
                predicted = head(protein.features(inputs).float())
            loss = distillation_loss(predicted, target[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        r2 = explained_variance(_predict(protein, head, sequences, val, device, precision), target[val].numpy())
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "held_out_r2": round(r2, 4),
                        "minutes": round((time.time() - started) / 60, 1)})
        LOG.info("distillation epoch %d: %s", epoch + 1, history[-1])
    return {"teacher": f"{teacher.spec.model}-{teacher.spec.size}", "max_length": teacher.spec.max_length,
            "proteins": len(fit), "held_out": len(val), "history": history}


@torch.no_grad()
def _predict(protein, head, sequences, rows, device, precision, batch: int = 64) -> np.ndarray:
    protein.eval()
    out = []
    for start in range(0, len(rows), batch):
        inputs = {k: v.to(device) for k, v in protein.tokenize([sequences[i] for i in rows[start: start + batch]]).items()}
        with autocast(device, precision):
            out.append(head(protein.features(inputs).float()).float().cpu().numpy())  # autocast gives bf16
    return np.concatenate(out)
