"""LoRA adapters (peft) on Hugging Face backbones: only adapters and heads train."""
from __future__ import annotations

import logging

from torch import nn

from index.errors import InputError

LOG = logging.getLogger(__name__)


def attach_lora(backbone: nn.Module, rank: int, alpha: int, targets: str, dropout: float = 0.05) -> nn.Module:
    """Wrap a transformers model with a LoRA adapter; every base weight is frozen.

    Args:
        backbone: a transformers ``PreTrainedModel`` (possibly 8/4-bit quantised).
        rank, alpha: LoRA rank and scaling.
        targets: comma-separated module names (e.g. "query,value" for BERT/ESM attention).

    Raises:
        InputError: no module of the backbone matches ``targets``.
    """
    from peft import LoraConfig, get_peft_model

    modules = [t.strip() for t in targets.split(",") if t.strip()]
    if getattr(backbone, "is_quantized", False) or getattr(backbone, "is_loaded_in_8bit", False):
        from peft import prepare_model_for_kbit_training

        backbone = prepare_model_for_kbit_training(backbone, use_gradient_checkpointing=False)
    try:
        model = get_peft_model(backbone, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                                                    target_modules=modules))
    except ValueError as err:
        raise InputError(f"LoRA: {str(err).splitlines()[0]} (check --lora-targets)") from None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    LOG.info("LoRA r=%d on %s: %d of %d backbone parameters train", rank, modules, trainable, total)
    return model


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
